"""DynamoDB TTL and S3 lifecycle side effects: describe before update, thin."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tempaudio_api.storage import KEY_SCHEMAS

from .desired_aws import merged_lifecycle_rules, ttl_in_place

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9.]{0,63}")


class AwsNotReady(Exception):
    """AWS refused for now (throttled, changing, unreachable); retry after ``delay``."""

    def __init__(self, reason: str, message: str, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.throttled = throttled


def _raw(error: BotoCoreError | ClientError) -> str:
    """The whole error, remote message included: for matching and the log only."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
    return str(error)


def describe_error(error: BotoCoreError | ClientError) -> str:
    """What may go into a policy's status and Events: an error code and HTTP status.

    A policy's endpoint can point at any listener, so whatever its response says stays in
    the operator's log; a code that is not a plain identifier is not repeated either.
    """
    logger.warning("AWS call failed: %s", _raw(error))
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        shown = code if _ERROR_CODE.fullmatch(code) else "Error"
        return f"{shown} (HTTP {status})" if status else shown
    return type(error).__name__


class AwsClients:
    """boto3 clients per (region, endpoint), made on first use and kept."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        # A budget per call that a listener which never answers cannot stretch: about
        # 2 x (3 + 5) s at most, and the handlers run on a pool other policies share.
        self._config = Config(
            connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 2}
        )

    def _client(self, service: str, region: str, endpoint_url: str | None) -> Any:
        key = (service, region, endpoint_url)
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=endpoint_url,
                config=self._config,
            )
        return self._clients[key]

    def dynamodb(self, region: str, endpoint_url: str | None) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb", region, endpoint_url)
        return client

    def s3(self, region: str, endpoint_url: str | None) -> S3Client:
        client: S3Client = self._client("s3", region, endpoint_url)
        return client


def check_key_schema(dynamodb: DynamoDBClient, table: str, key_schema: str) -> None:
    """The table's real keys (DescribeTable) are the policy's ``keySchema``; a mismatch is
    reported before any request fails on it (retried: the table may be replaced)."""
    try:
        keys = dynamodb.describe_table(TableName=table)["Table"].get("KeySchema", [])
    except (BotoCoreError, ClientError) as error:
        raise AwsNotReady(
            "DescribeFailed", f"DescribeTable {table}: {describe_error(error)}"
        ) from error
    actual = tuple((k["AttributeName"], k["KeyType"]) for k in keys)
    if actual != KEY_SCHEMAS[key_schema]:
        shown = ", ".join(f"{name} {kind}" for name, kind in actual) or "none"
        raise AwsNotReady(
            "KeySchemaMismatch",
            f"table {table} is keyed by {shown}; the policy's dynamodb.keySchema {key_schema}"
            f" needs {', '.join(f'{n} {k}' for n, k in KEY_SCHEMAS[key_schema])}",
        )


def ensure_ttl(dynamodb: DynamoDBClient, table: str, attribute: str) -> bool:
    """Enable TTL on ``attribute``; True if this call changed it.

    Moto accepts any number of UpdateTimeToLive calls; AWS rejects enabling what is
    enabled and allows about one change per hour, so read first and map refusals.
    """
    try:
        description: Mapping[str, Any] = dynamodb.describe_time_to_live(TableName=table).get(
            "TimeToLiveDescription", {}
        )
    except (BotoCoreError, ClientError) as error:
        raise AwsNotReady(
            "DescribeFailed", f"DescribeTimeToLive {table}: {describe_error(error)}"
        ) from error
    if ttl_in_place(description, attribute):
        return False
    status = description.get("TimeToLiveStatus")
    if status == "DISABLING":
        raise AwsNotReady(
            "TTLChanging",
            f"TTL on {table} is being disabled; AWS allows enabling it later",
            throttled=True,
        )
    if status == "ENABLED":
        raise AwsNotReady(
            "TTLAttributeMismatch",
            f"TTL on {table} is enabled on {description.get('AttributeName')!r}, not {attribute!r};"
            " disable it first (AWS allows one change per hour)",
            throttled=True,
        )
    try:
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
        )
    except ClientError as error:
        message = _raw(error)
        if "already enabled" in message:
            return False
        throttled = "multiple times" in message or "LimitExceeded" in message
        raise AwsNotReady(
            "Throttled" if throttled else "UpdateFailed",
            f"UpdateTimeToLive {table}: {describe_error(error)}",
            throttled=throttled,
        ) from error
    except BotoCoreError as error:
        raise AwsNotReady(
            "UpdateFailed", f"UpdateTimeToLive {table}: {describe_error(error)}"
        ) from error
    return True


def ensure_lifecycle_rule(
    s3: S3Client, bucket: str, rule_id: str, rule: Mapping[str, Any] | None
) -> bool:
    """Set (or, for None, remove) our rule, keeping the bucket's other rules; True if changed."""
    try:
        try:
            existing = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            existing = []
        rules = merged_lifecycle_rules(existing, rule_id, rule)
        if rules is None:
            return False
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket,
                LifecycleConfiguration={"Rules": rules},  # type: ignore[typeddict-item]
            )
        else:
            s3.delete_bucket_lifecycle(Bucket=bucket)
    except (BotoCoreError, ClientError) as error:
        raise AwsNotReady(
            "LifecycleFailed", f"lifecycle of {bucket}: {describe_error(error)}"
        ) from error
    return True
