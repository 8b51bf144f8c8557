"""AudioStore: the WAV in S3 and its item in DynamoDB (boto3, thin)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tempaudio_api.storage import AUDIO_TAGGING

from .errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

    from .policies import Storage
    from .settings import ServiceSettings

logger = logging.getLogger(__name__)
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# Every object is tagged: the operator's lifecycle safety net expires tagged objects only.
AUDIO_TAG = AUDIO_TAGGING
# Attribute of a tombstone item: a write that was undone (readers treat it as absent).
REVOKED = "revoked"
# The embedded moto endpoint accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_KEY_ID, LOCAL_SECRET = "tempaudio-local", "local"


def unavailable(dependency: str, operation: str, error: Exception) -> StorageUnavailable:
    """The client learns which dependency failed; endpoints, buckets and keys go to the log."""
    logger.warning("%s %s failed: %s", dependency, operation, error)
    return StorageUnavailable(f"{dependency} is unavailable ({operation} failed); retry later")


def boto_config(timeout_seconds: int) -> Config:
    return Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"mode": "standard", "max_attempts": 3},
    )


def s3_config(timeout_seconds: int, *, path_style: bool) -> Config:
    """SigV4 presigned URLs (boto3 may otherwise sign with SigV2); path style for custom endpoints."""
    return boto_config(timeout_seconds).merge(
        Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"} if path_style else None,
        )
    )


def make_s3_client(
    *, region: str, endpoint_url: str | None, timeout_seconds: int, local: bool = False
) -> S3Client:
    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        config=s3_config(timeout_seconds, path_style=endpoint_url is not None),
        aws_access_key_id=LOCAL_KEY_ID if local else None,
        aws_secret_access_key=LOCAL_SECRET if local else None,
    )


def make_dynamodb_client(
    *, region: str, endpoint_url: str | None, timeout_seconds: int, local: bool = False
) -> DynamoDBClient:
    return boto3.client(
        "dynamodb",
        region_name=region,
        endpoint_url=endpoint_url,
        config=boto_config(timeout_seconds),
        aws_access_key_id=LOCAL_KEY_ID if local else None,
        aws_secret_access_key=LOCAL_SECRET if local else None,
    )


def serialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


class SourceMissing(Exception):
    """The object a copy starts from is gone (deleted by the cleanup, or by hand)."""


def deserialize_item(raw: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in raw.items()}


class AudioStore:
    def __init__(self, s3: S3Client, dynamodb: DynamoDBClient, *, bucket: str, table: str) -> None:
        self._s3 = s3
        self._dynamodb = dynamodb
        self.bucket = bucket
        self.table = table

    @classmethod
    def connect(cls, storage: Storage, *, timeout_seconds: int, local: bool = False) -> AudioStore:
        """Clients for one policy's storage (``local``: the embedded endpoint's credentials)."""
        return cls(
            make_s3_client(
                region=storage.region,
                endpoint_url=storage.s3_endpoint_url,
                timeout_seconds=timeout_seconds,
                local=local,
            ),
            make_dynamodb_client(
                region=storage.region,
                endpoint_url=storage.dynamodb_endpoint_url,
                timeout_seconds=timeout_seconds,
                local=local,
            ),
            bucket=storage.bucket,
            table=storage.table,
        )

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> AudioStore:
        """The store of the built-in policy with the settings' shorthand (tests, benchmarks):
        the one mapping from ``TEMPAUDIO_*`` to a policy's storage, ``policy_sources``'."""
        from .policy_sources import static_source

        shorthand = static_source(replace(settings, policy_source="env"))
        storage = shorthand.current().resolve(None, 0.0).storage
        return cls.connect(
            storage, timeout_seconds=settings.io_timeout_seconds, local=settings.local_aws
        )

    def put_audio(self, key: str, audio: bytes, content_type: str = "audio/wav") -> None:
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=audio, ContentType=content_type, Tagging=AUDIO_TAG
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "PutObject", error) from error

    def copy_audio(self, source_key: str, key: str, content_type: str) -> None:
        """A server-side copy of this bucket's ``source_key`` (S3 moves no audio through us).

        Raises ``SourceMissing`` when the source is gone: nothing was written then.
        """
        try:
            self._s3.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": source_key},
                ContentType=content_type,
                MetadataDirective="REPLACE",
                Tagging=AUDIO_TAG,
                TaggingDirective="REPLACE",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise SourceMissing(source_key) from error
            raise unavailable("S3", "CopyObject", error) from error
        except BotoCoreError as error:
            raise unavailable("S3", "CopyObject", error) from error

    def delete_audio(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "DeleteObject", error) from error

    def presign(self, key: str, expires_in: int) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )

    def put_item(self, item: dict[str, Any]) -> None:
        try:
            self._dynamodb.put_item(
                TableName=self.table,
                Item=serialize_item(item),
                ConditionExpression="attribute_not_exists(audio_id)",
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "PutItem", error) from error

    def revoke_item(self, date: str, audio_id: str, ttl: int, ttl_attribute: str = "ttl") -> None:
        """Replace the item, whatever is there, with a tombstone that DynamoDB's TTL removes.

        Deleting would not do: a PutItem attempt still held by a hung endpoint could land
        afterwards and leave an item without its object. Every real PutItem is conditional
        on the key being absent, so once the tombstone is there, none lands in any order.
        """
        tombstone = {
            "date": date,
            "audio_id": audio_id,
            REVOKED: True,
            "ttl": ttl,
            ttl_attribute: ttl,
        }
        try:
            self._dynamodb.put_item(TableName=self.table, Item=serialize_item(tombstone))
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "PutItem", error) from error

    def get_item(self, date: str, audio_id: str) -> dict[str, Any] | None:
        try:
            answer = self._dynamodb.get_item(
                TableName=self.table,
                Key={"date": {"S": date}, "audio_id": {"S": audio_id}},
                ConsistentRead=True,
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "GetItem", error) from error
        raw = answer.get("Item")
        if not raw or REVOKED in raw:
            return None
        return deserialize_item(dict(raw))

    def check_s3(self) -> None:
        """Raise ``StorageUnavailable`` unless the bucket answers."""
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "HeadBucket", error) from error

    def check_dynamodb(self) -> None:
        """Raise ``StorageUnavailable`` unless the table answers."""
        try:
            self._dynamodb.describe_table(TableName=self.table)
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "DescribeTable", error) from error

    def ensure_resources(self, ttl_attribute: str = "ttl", *, enable_ttl: bool = True) -> None:
        """Create bucket, table and TTL when missing (the embedded local mode only)."""
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            region = self._s3.meta.region_name
            if region == "us-east-1":  # the one region that takes no location constraint
                self._s3.create_bucket(Bucket=self.bucket)
            else:
                self._s3.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
        try:
            self._dynamodb.describe_table(TableName=self.table)
        except self._dynamodb.exceptions.ResourceNotFoundException:
            self._dynamodb.create_table(
                TableName=self.table,
                KeySchema=[
                    {"AttributeName": "date", "KeyType": "HASH"},
                    {"AttributeName": "audio_id", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "date", "AttributeType": "S"},
                    {"AttributeName": "audio_id", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        if not enable_ttl:
            return
        # Describe before update: AWS rejects enabling TTL that is already enabled.
        ttl = self._dynamodb.describe_time_to_live(TableName=self.table)
        description = ttl.get("TimeToLiveDescription", {})
        if description.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
            self._dynamodb.update_time_to_live(
                TableName=self.table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
            )


class Stores:
    """One ``AudioStore`` per policy storage, made on first use and kept (boto3 clients are
    thread-safe and costly to build). The number of policies bounds it."""

    def __init__(
        self,
        *,
        timeout_seconds: int,
        local_endpoint: str | None = None,
        known: Mapping[Storage, AudioStore] | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._local_endpoint = local_endpoint
        self._stores: dict[Storage, AudioStore] = dict(known or {})
        self._lock = threading.Lock()

    def get(self, storage: Storage) -> AudioStore:
        with self._lock:
            store = self._stores.get(storage)
            if store is None:
                store = self._stores[storage] = self._make(storage)
            return store

    def _make(self, storage: Storage) -> AudioStore:
        if self._local_endpoint is None:
            return AudioStore.connect(storage, timeout_seconds=self._timeout)
        # Embedded mode: every policy's storage is on the embedded endpoint.
        embedded = replace(
            storage,
            s3_endpoint_url=self._local_endpoint,
            dynamodb_endpoint_url=self._local_endpoint,
        )
        return AudioStore.connect(embedded, timeout_seconds=self._timeout, local=True)
