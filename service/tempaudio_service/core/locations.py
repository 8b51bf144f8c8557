"""Where one policy's audio and items live: a value every room may hold (the policy book
resolves it, the storage connects to it, a request carries it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Storage:
    """Where one policy's audio and items live: one set of clients serves it."""

    bucket: str
    prefix: str
    region: str
    table: str
    s3_endpoint_url: str | None = None
    dynamodb_endpoint_url: str | None = None
    # spec.dynamodb.keySchema: DateAudioId (hash date, range audio_id) or AudioId.
    key_schema: str = "DateAudioId"
    # spec.dynamodb.ttlAttribute: what the table's TTL reads (counters expire on it too).
    # Not part of the storage's identity: one table has one TTL attribute.
    ttl_attribute: str = field(default="ttl", compare=False)
