"""Job records in a policy's DynamoDB table, beside its audio items.

A job's record has a partition of its own (``job#<id>``), like the quota counters and the
repeat cache entries: no read of audio reaches it, and it expires on the table's TTL like
audio does. Every change is one conditional ``UpdateItem``, so that replicas working on one
job agree without a lock: the part numbers done are a set (a part counted twice is counted
once), and exactly one replica wins the right to finish (jobs/lifecycle.py says which
conditions). A caller's jobs are listed from an index record of the ids under its policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tempaudio_service.storage.aws_clients import unavailable
from tempaudio_service.storage.dynamodb_items import deserialize_item, serialize_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# BatchGetItem takes at most 100 keys.
MAX_BATCH_GET = 100


def _failed_condition(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class JobTable:
    dependency = "DynamoDB"

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        key_schema: str = "DateAudioId",
        ttl_attribute: str = "ttl",
    ) -> None:
        self._dynamodb = dynamodb
        self.table = table
        self._key_schema = key_schema
        self.expiry = tuple(dict.fromkeys(("ttl", ttl_attribute)))  # what TTL reads

    def _partition(self, name: str) -> dict[str, Any]:
        if self._key_schema == "AudioId":
            return {"audio_id": {"S": name}}
        return {"date": {"S": name}, "audio_id": {"S": "-"}}

    def _job_key(self, job_id: str) -> dict[str, Any]:
        return self._partition(f"job#{job_id}")

    def _index_key(self, owner: str) -> dict[str, Any]:
        return self._partition(f"jobs#{owner}")

    def create(self, record: Mapping[str, Any], now: int) -> dict[str, Any] | None:
        """Write a new job's record unless a live one has its id; None when written, else
        the record already there (the same idempotency key, or a retried submission)."""
        expires = {f"#e{i}": name for i, name in enumerate(self.expiry)}
        expired = " OR ".join(f"#e{i} < :now" for i in range(len(self.expiry)))
        try:
            self._dynamodb.put_item(
                TableName=self.table,
                Item={**serialize_item(dict(record)), **self._job_key(str(record["job_id"]))},
                ConditionExpression=f"attribute_not_exists(job_id) OR {expired}",
                ExpressionAttributeNames=expires,
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as error:
            if not _failed_condition(error):
                raise unavailable("DynamoDB", "PutItem", error) from error
        except BotoCoreError as error:
            raise unavailable("DynamoDB", "PutItem", error) from error
        else:
            return None
        return self.get(str(record["job_id"])) or {}

    def get(self, job_id: str) -> dict[str, Any] | None:
        try:
            answer = self._dynamodb.get_item(
                TableName=self.table, Key=self._job_key(job_id), ConsistentRead=True
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "GetItem", error) from error
        raw = answer.get("Item")
        return deserialize_item(dict(raw)) if raw and "job_id" in raw else None

    def update(
        self,
        job_id: str,
        expression: str,
        values: Mapping[str, Any],
        *,
        names: Mapping[str, str] | None = None,
        condition: str | None = None,
    ) -> dict[str, Any] | None:
        """Apply ``expression`` (``values`` in Python form) if ``condition`` holds; the
        record as it is afterwards, or None when the condition failed (or it is gone)."""
        call: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._job_key(job_id),
            "UpdateExpression": expression,
            "ReturnValues": "ALL_NEW",
            "ConditionExpression": "attribute_exists(job_id)"
            + ("" if condition is None else f" AND ({condition})"),
        }
        if values:
            call["ExpressionAttributeValues"] = serialize_item(dict(values))
        if names:
            call["ExpressionAttributeNames"] = dict(names)
        try:
            answer = self._dynamodb.update_item(**call)
        except ClientError as error:
            if _failed_condition(error):
                return None
            raise unavailable("DynamoDB", "UpdateItem", error) from error
        except BotoCoreError as error:
            raise unavailable("DynamoDB", "UpdateItem", error) from error
        return deserialize_item(dict(answer.get("Attributes", {})))

    def delete(self, job_id: str) -> None:
        """Remove a job that was never queued (its submission failed)."""
        try:
            self._dynamodb.delete_item(TableName=self.table, Key=self._job_key(job_id))
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "DeleteItem", error) from error

    def expiry_names(self) -> tuple[str, dict[str, str]]:
        """``#e0 = :expires, #e1 = :expires`` and its names: a SET of every TTL attribute."""
        names = {f"#e{i}": name for i, name in enumerate(self.expiry)}
        return ", ".join(f"#e{i} = :expires" for i in range(len(self.expiry))), names

    # --- a caller's jobs under a policy: one index record of ids --------------------------

    def remember(self, owner: str, job_id: str, expires: int) -> None:
        """Add the job to its owner's index, which lives as long as its newest job."""
        sets, names = self.expiry_names()
        try:
            self._dynamodb.update_item(
                TableName=self.table,
                Key=self._index_key(owner),
                UpdateExpression=f"ADD ids :id SET {sets}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":id": {"SS": [job_id]},
                    ":expires": {"N": str(expires)},
                },
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "UpdateItem", error) from error

    def remembered(self, owner: str) -> set[str]:
        try:
            answer = self._dynamodb.get_item(
                TableName=self.table, Key=self._index_key(owner), ConsistentRead=True
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "GetItem", error) from error
        return set(answer.get("Item", {}).get("ids", {}).get("SS", []))

    def forget(self, owner: str, job_ids: Iterable[str]) -> None:
        """Drop ids of jobs that are gone from the index."""
        ids = sorted(set(job_ids))
        if not ids:
            return
        try:
            self._dynamodb.update_item(
                TableName=self.table,
                Key=self._index_key(owner),
                UpdateExpression="DELETE ids :ids",
                ExpressionAttributeValues={":ids": {"SS": ids}},
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "UpdateItem", error) from error

    def get_many(self, job_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The records of the ids that exist (any order)."""
        ids = sorted(set(job_ids))
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), MAX_BATCH_GET):
            keys = [self._job_key(job_id) for job_id in ids[start : start + MAX_BATCH_GET]]
            while keys:
                try:
                    answer = self._dynamodb.batch_get_item(
                        RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}}
                    )
                except (BotoCoreError, ClientError) as error:
                    raise unavailable("DynamoDB", "BatchGetItem", error) from error
                found.extend(
                    deserialize_item(dict(raw))
                    for raw in answer.get("Responses", {}).get(self.table, [])
                    if "job_id" in raw
                )
                unprocessed: Any = answer.get("UnprocessedKeys") or {}
                keys = list(unprocessed.get(self.table, {}).get("Keys", []))
        return found
