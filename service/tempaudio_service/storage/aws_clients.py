"""boto3 clients as tempaudio makes them: bounded timeouts and retries, SigV4 presigning, path
style for custom endpoints, and errors that name the dependency, never the endpoint."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tempaudio_service.core.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger("tempaudio_service.storage.store")
# The embedded moto endpoint accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_KEY_ID, LOCAL_SECRET = "tempaudio-local", "local"


def unavailable(dependency: str, operation: str, error: Exception) -> StorageUnavailable:
    """The client learns which dependency failed; endpoints, buckets and keys go to the log."""
    logger.warning("%s %s failed: %s", dependency, operation, error)
    return StorageUnavailable(
        f"{dependency} is unavailable ({operation} failed); retry later",
        refused=refused(error),
    )


def refused(error: Exception) -> bool:
    """The service answered the first attempt with a plain no (a 4xx other than a failed
    condition), so nothing was written. After a retry, a write may have landed through an
    attempt whose answer was lost (a failed condition then means exactly that)."""
    if not isinstance(error, ClientError):
        return False
    meta = error.response.get("ResponseMetadata", {})
    code = error.response.get("Error", {}).get("Code")
    return (
        meta.get("RetryAttempts", 0) == 0
        and meta.get("HTTPStatusCode", 500) < 500
        and code != "ConditionalCheckFailedException"
    )


# Connections a client keeps, botocore's default: enough for a caller of a few threads.
DEFAULT_CONNECTIONS = 10


def boto_config(timeout_seconds: int, connections: int = DEFAULT_CONNECTIONS) -> Config:
    """``connections``: as many as threads call the client at once, so that none is opened
    for one call and dropped after it (urllib3's "Connection pool is full" warning)."""
    return Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=connections,
    )


def s3_config(
    timeout_seconds: int, *, path_style: bool, connections: int = DEFAULT_CONNECTIONS
) -> Config:
    """SigV4 presigned URLs (boto3 may otherwise sign with SigV2); path style for custom endpoints."""
    return boto_config(timeout_seconds, connections).merge(
        Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"} if path_style else None,
        )
    )


def make_s3_client(
    *,
    region: str,
    endpoint_url: str | None,
    timeout_seconds: int,
    local: bool = False,
    connections: int = DEFAULT_CONNECTIONS,
) -> S3Client:
    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        config=s3_config(
            timeout_seconds, path_style=endpoint_url is not None, connections=connections
        ),
        aws_access_key_id=LOCAL_KEY_ID if local else None,
        aws_secret_access_key=LOCAL_SECRET if local else None,
    )


def make_dynamodb_client(
    *,
    region: str,
    endpoint_url: str | None,
    timeout_seconds: int,
    local: bool = False,
    connections: int = DEFAULT_CONNECTIONS,
) -> DynamoDBClient:
    return boto3.client(
        "dynamodb",
        region_name=region,
        endpoint_url=endpoint_url,
        config=boto_config(timeout_seconds, connections),
        aws_access_key_id=LOCAL_KEY_ID if local else None,
        aws_secret_access_key=LOCAL_SECRET if local else None,
    )


def make_sqs_client(
    *,
    region: str,
    endpoint_url: str | None,
    timeout_seconds: int,
    local: bool = False,
    connections: int = DEFAULT_CONNECTIONS,
) -> SQSClient:
    """The job queue's client (job_queue.py): its long polls wait less than the timeout."""
    return boto3.client(
        "sqs",
        region_name=region,
        endpoint_url=endpoint_url,
        config=boto_config(timeout_seconds, connections),
        aws_access_key_id=LOCAL_KEY_ID if local else None,
        aws_secret_access_key=LOCAL_SECRET if local else None,
    )
