"""Where a policy's audio is kept: an object store and an item index, each behind a small
protocol, paired in an ``AudioStore``. S3 (s3_objects.py) and DynamoDB (dynamodb_items.py)
are the implementations; a new backend or table layout is a new implementation of one
protocol. ``repository.py`` owns writing the pair, undoing it and reading it back."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from tempaudio_service.core.errors import ObjectTooLarge
from tempaudio_service.storage.aws_clients import (
    DEFAULT_CONNECTIONS,
    make_dynamodb_client,
    make_s3_client,
)
from tempaudio_service.storage.dynamodb_items import DynamoItems
from tempaudio_service.storage.job_table import JobTable
from tempaudio_service.storage.s3_objects import S3Objects, SourceMissing

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

    from tempaudio_service.core.locations import Storage

__all__ = [
    "AudioObjects",
    "AudioStore",
    "ItemIndex",
    "ObjectTooLarge",
    "SourceMissing",
    "Stores",
    "make_dynamodb_client",
    "make_s3_client",
]


class AudioObjects(Protocol):
    """Audio files under keys; errors are ``StorageUnavailable`` (and ``SourceMissing``)."""

    bucket: str
    dependency: str  # what the client is told failed: "S3"

    def put_audio(self, key: str, audio: bytes, content_type: str = "audio/wav") -> None: ...
    def start_upload(self, key: str, content_type: str) -> str: ...
    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str: ...
    def complete_upload(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None: ...
    def abort_upload(self, key: str, upload_id: str) -> None: ...
    def copy_audio(self, source_key: str, key: str, content_type: str) -> None: ...
    def delete_audio(self, key: str) -> None: ...
    def read_object(self, key: str, max_bytes: int) -> bytes | None: ...
    def presign(self, key: str, expires_in: int) -> str: ...
    def check(self) -> None: ...


class ItemIndex(Protocol):
    """One item per audio, by date and id; an undone write leaves a tombstone."""

    table: str
    dependency: str  # "DynamoDB"

    def put_item(self, item: dict[str, Any]) -> None: ...
    def revoke_item(
        self, date: str, audio_id: str, ttl: int, ttl_attribute: str = "ttl"
    ) -> None: ...
    def get_item(self, date: str, audio_id: str) -> dict[str, Any] | None: ...
    def check(self) -> None: ...


class RepeatIndex(Protocol):
    """The repeat cache's entries, shared by every replica (``repeat_cache.py``)."""

    def find_repeat(self, key: str) -> dict[str, Any] | None: ...
    def remember_repeat(self, key: str, entry: dict[str, Any], expires: int) -> None: ...
    def forget_repeat(self, key: str, source_key: str) -> None: ...


class AudioStore:
    """One policy's objects and items (``objects``, ``items``), paired."""

    def __init__(
        self,
        s3: S3Client,
        dynamodb: DynamoDBClient,
        *,
        bucket: str,
        table: str,
        key_schema: str = "DateAudioId",
        ttl_attribute: str = "ttl",
    ) -> None:
        self._s3_objects = S3Objects(s3, bucket)
        self._dynamo_items = DynamoItems(dynamodb, table, key_schema, ttl_attribute)
        self.objects: AudioObjects = self._s3_objects
        self.items: ItemIndex = self._dynamo_items
        # Quota counters and the shared repeat cache live in the items' table.
        self.counters = self._dynamo_items
        self.repeats: RepeatIndex = self._dynamo_items
        # Job records too (job_table.py); a job's request and parts are objects under its
        # folder (list_keys, delete_keys).
        self.jobs = JobTable(dynamodb, table, key_schema, ttl_attribute)
        self.bucket = bucket
        self.table = table
        self._s3, self._dynamodb = s3, dynamodb

    @classmethod
    def connect(
        cls,
        storage: Storage,
        *,
        timeout_seconds: int,
        local: bool = False,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> AudioStore:
        """Clients for one policy's storage (``local``: the embedded endpoint's credentials),
        each keeping ``connections`` open: as many as threads call it at once."""
        return cls(
            make_s3_client(
                region=storage.region,
                endpoint_url=storage.s3_endpoint_url,
                timeout_seconds=timeout_seconds,
                local=local,
                connections=connections,
            ),
            make_dynamodb_client(
                region=storage.region,
                endpoint_url=storage.dynamodb_endpoint_url,
                timeout_seconds=timeout_seconds,
                local=local,
                connections=connections,
            ),
            bucket=storage.bucket,
            table=storage.table,
            key_schema=storage.key_schema,
            ttl_attribute=storage.ttl_attribute,
        )

    # The pair's operations, as the repository calls them (tests wrap them in faults).
    def put_audio(self, key: str, audio: bytes, content_type: str = "audio/wav") -> None:
        self.objects.put_audio(key, audio, content_type)

    def start_upload(self, key: str, content_type: str) -> str:
        return self.objects.start_upload(key, content_type)

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        return self.objects.upload_part(key, upload_id, number, data)

    def complete_upload(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        self.objects.complete_upload(key, upload_id, parts)

    def abort_upload(self, key: str, upload_id: str) -> None:
        self.objects.abort_upload(key, upload_id)

    def copy_audio(self, source_key: str, key: str, content_type: str) -> None:
        self.objects.copy_audio(source_key, key, content_type)

    def delete_audio(self, key: str) -> None:
        self.objects.delete_audio(key)

    def read_object(self, key: str, max_bytes: int) -> bytes | None:
        return self.objects.read_object(key, max_bytes)

    def presign(self, key: str, expires_in: int) -> str:
        return self.objects.presign(key, expires_in)

    def list_keys(self, prefix: str) -> list[str]:
        return self._s3_objects.list_keys(prefix)

    def delete_keys(self, keys: list[str]) -> None:
        self._s3_objects.delete_keys(keys)

    def put_item(self, item: dict[str, Any]) -> None:
        self.items.put_item(item)

    def revoke_item(self, date: str, audio_id: str, ttl: int, ttl_attribute: str = "ttl") -> None:
        self.items.revoke_item(date, audio_id, ttl, ttl_attribute)

    def get_item(self, date: str, audio_id: str) -> dict[str, Any] | None:
        return self.items.get_item(date, audio_id)

    def check_s3(self) -> None:
        self.objects.check()

    def check_dynamodb(self) -> None:
        self.items.check()

    def checks(self) -> dict[str, tuple[str, Any]]:
        """Readiness: name -> (dependency, check) of each half."""
        return {
            "s3": (self.objects.dependency, self.check_s3),
            "dynamodb": (self.items.dependency, self.check_dynamodb),
        }

    def ensure_resources(self, ttl_attribute: str = "ttl", *, enable_ttl: bool = True) -> None:
        """Create bucket, table and TTL when missing (the embedded local mode only)."""
        self._s3_objects.ensure()
        self._dynamo_items.ensure(ttl_attribute, enable_ttl=enable_ttl)


class Stores:
    """One ``AudioStore`` per policy storage, made on first use and kept (boto3 clients are
    thread-safe and costly to build). The number of policies bounds it. ``connections``: the
    threads that call the stores at once (the service's storage threads)."""

    def __init__(
        self,
        *,
        timeout_seconds: int,
        local_endpoint: str | None = None,
        known: Mapping[Storage, AudioStore] | None = None,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        self._timeout = timeout_seconds
        self._connections = connections
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
            return AudioStore.connect(
                storage, timeout_seconds=self._timeout, connections=self._connections
            )
        # Embedded mode: every policy's storage is on the embedded endpoint.
        embedded = replace(
            storage,
            s3_endpoint_url=self._local_endpoint,
            dynamodb_endpoint_url=self._local_endpoint,
        )
        return AudioStore.connect(
            embedded, timeout_seconds=self._timeout, local=True, connections=self._connections
        )
