"""Audio items in DynamoDB (``ItemIndex``, store.py): conditional puts, tombstones that no
late put can overwrite, consistent reads."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from tempaudio_api.storage import KEY_SCHEMAS
from tempaudio_service.storage.aws_clients import unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# Attribute of a tombstone item: a write that was undone (readers treat it as absent).
REVOKED = "revoked"


def serialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def deserialize_item(raw: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in raw.items()}


class DynamoItems:
    """One table's items, in either layout (``tempaudio_api.storage.KEY_SCHEMAS``): keyed by
    date (hash) and audio_id (range), the seed's, or by audio_id alone, with date an
    ordinary attribute that a read checks."""

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
        self._keys = tuple(name for name, _ in KEY_SCHEMAS[key_schema])
        self._key_schema = key_schema
        self._expiry = tuple(dict.fromkeys(("ttl", ttl_attribute)))  # what TTL reads

    # --- the shared repeat cache (store.RepeatIndex): one entry per key, expiring with
    # the audio it points at ---------------------------------------------------------

    def _repeat_key(self, key: str) -> dict[str, Any]:
        if self._key_schema == "AudioId":
            return {"audio_id": {"S": f"repeat#{key}"}}
        return {"date": {"S": f"repeat#{key}"}, "audio_id": {"S": "-"}}

    def find_repeat(self, key: str) -> dict[str, Any] | None:
        try:
            answer = self._dynamodb.get_item(
                TableName=self.table, Key=self._repeat_key(key), ConsistentRead=True
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "GetItem", error) from error
        raw = answer.get("Item")
        return None if not raw else deserialize_item(dict(raw))

    def remember_repeat(self, key: str, entry: dict[str, Any], expires: int) -> None:
        item = {**entry, **dict.fromkeys(self._expiry, expires)}
        raw = {**serialize_item(item), **self._repeat_key(key)}
        try:
            self._dynamodb.put_item(TableName=self.table, Item=raw)
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "PutItem", error) from error

    def forget_repeat(self, key: str, source_key: str) -> None:
        """Drop the entry if it still points at ``source_key`` (a newer one stays)."""
        try:
            self._dynamodb.delete_item(
                TableName=self.table,
                Key=self._repeat_key(key),
                ConditionExpression="source_key = :source",
                ExpressionAttributeValues={":source": {"S": source_key}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise unavailable("DynamoDB", "DeleteItem", error) from error
        except BotoCoreError as error:
            raise unavailable("DynamoDB", "DeleteItem", error) from error

    # --- counters (quotas.Counters): items beside the audio's, never read as audio ------

    def _counter_key(self, counter: str) -> dict[str, Any]:
        """A counter's own partition under either layout (``counter#...`` is no date and no
        uuid, so no read of audio can reach it)."""
        series, _, window = counter.rpartition("#")
        if self._key_schema == "AudioId":
            return {"audio_id": {"S": f"counter#{counter}"}}
        return {"date": {"S": f"counter#{series}"}, "audio_id": {"S": window}}

    def _expiry_update(self, expires: int) -> tuple[list[str], dict[str, str], dict[str, Any]]:
        names = {f"#e{i}": name for i, name in enumerate(self._expiry)}
        sets = [f"#e{i} = :expires" for i in range(len(self._expiry))]
        return sets, names, {":expires": {"N": str(expires)}}

    def take(
        self, counter: str, name: str | None, limits: Mapping[str, float], expires: int
    ) -> bool:
        sets, names, values = self._expiry_update(expires)
        conditions = []
        for index, (limited, limit) in enumerate(limits.items()):
            names[f"#l{index}"] = limited
            values[f":l{index}"] = {"N": str(limit)}
            conditions.append(f"(attribute_not_exists(#l{index}) OR #l{index} < :l{index})")
        expression = "SET " + ", ".join(sets)
        if name is not None:
            names["#n"] = name
            values[":one"] = {"N": "1"}
            expression = f"ADD #n :one {expression}"
        try:
            self._dynamodb.update_item(
                TableName=self.table,
                Key=self._counter_key(counter),
                UpdateExpression=expression,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise unavailable("DynamoDB", "UpdateItem", error) from error
        except BotoCoreError as error:
            raise unavailable("DynamoDB", "UpdateItem", error) from error
        return True

    def add(self, counter: str, name: str, amount: float, expires: int) -> None:
        sets, names, values = self._expiry_update(expires)
        names["#n"] = name
        values[":amount"] = {"N": str(Decimal(str(round(amount, 3))))}
        try:
            self._dynamodb.update_item(
                TableName=self.table,
                Key=self._counter_key(counter),
                UpdateExpression="ADD #n :amount SET " + ", ".join(sets),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "UpdateItem", error) from error

    def values(self, counter: str) -> dict[str, float]:
        try:
            answer = self._dynamodb.get_item(
                TableName=self.table, Key=self._counter_key(counter), ConsistentRead=True
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "GetItem", error) from error
        return {
            name: float(value["N"])
            for name, value in answer.get("Item", {}).items()
            if "N" in value and name not in self._expiry
        }

    def _key(self, date: str, audio_id: str) -> dict[str, Any]:
        values = {"date": date, "audio_id": audio_id}
        return {name: {"S": values[name]} for name in self._keys}

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
                Key=self._key(date, audio_id),
                ConsistentRead=True,
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "GetItem", error) from error
        raw = answer.get("Item")
        # Keyed by audio_id alone, an id asked for under another day is not this audio.
        if not raw or REVOKED in raw or raw.get("date") != {"S": date}:
            return None
        return deserialize_item(dict(raw))

    def check(self) -> None:
        """Raise ``StorageUnavailable`` unless the table answers."""
        try:
            self._dynamodb.describe_table(TableName=self.table)
        except (BotoCoreError, ClientError) as error:
            raise unavailable("DynamoDB", "DescribeTable", error) from error

    def ensure(self, ttl_attribute: str = "ttl", *, enable_ttl: bool = True) -> None:
        """Create the table and turn on its TTL when missing (the embedded local mode only)."""
        try:
            self._dynamodb.describe_table(TableName=self.table)
        except self._dynamodb.exceptions.ResourceNotFoundException:
            self._dynamodb.create_table(
                TableName=self.table,
                KeySchema=[
                    {"AttributeName": name, "KeyType": kind}  # type: ignore[typeddict-item]
                    for name, kind in KEY_SCHEMAS[self._key_schema]
                ],
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": "S"} for name in self._keys
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
