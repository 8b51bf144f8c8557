"""Where audio lives and what its metadata item holds (pure: no clocks, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from .formats import DEFAULT_FORMAT, FORMATS

# S3 reports LastModified in whole seconds; an object may have been written up to
# this much later than its LastModified says, so expiry keeps this margin.
LAST_MODIFIED_GRANULARITY = timedelta(seconds=1)
# SigV4 presigned URLs cannot live longer than seven days.
MAX_PRESIGN = timedelta(days=7)

_DATE_FOLDER = re.compile(r"^(\d{4})-(\d{2})-(\d{2})/$")
_AUDIO_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
T = TypeVar("T")


def date_folder(created: datetime) -> str:
    """The UTC day an object belongs to, as ``YYYY-MM-DD``."""
    return created.astimezone(UTC).strftime("%Y-%m-%d")


def object_key(prefix: str, created: datetime, audio_id: str, extension: str = "wav") -> str:
    return f"{prefix}{date_folder(created)}/{audio_id}.{extension}"


def companion_key(key: str, extension: str) -> str:
    """An object kept beside the audio at ``key``: its stem, another extension."""
    return f"{key.rsplit('.', 1)[0]}.{extension}"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def key_from_s3_uri(uri: str, bucket: str) -> str:
    head = f"s3://{bucket}/"
    if not uri.startswith(head):
        raise ValueError(f"{uri!r} is not an object of bucket {bucket!r}")
    return uri[len(head) :]


def expiry_epoch(created: datetime, retention: timedelta) -> int:
    """DynamoDB ``ttl``: whole epoch seconds when the audio may be deleted."""
    return int((created + retention).timestamp())


def presign_seconds(now: datetime, expires_epoch: int) -> int:
    """URL lifetime that never outlives the audio (and respects the SigV4 limit)."""
    remaining = expires_epoch - int(now.timestamp())
    return max(0, min(remaining, int(MAX_PRESIGN.total_seconds())))


def is_valid_audio_id(audio_id: str) -> bool:
    return _AUDIO_ID.match(audio_id) is not None


def is_audio_item(raw: dict[str, Any]) -> bool:
    """A table item (DynamoDB's attribute form) that is audio's, not a quota counter or a
    repeat cache entry kept beside them: its audio_id is a uuid4."""
    audio_id = raw.get("audio_id")
    return isinstance(audio_id, dict) and is_valid_audio_id(str(audio_id.get("S", "")))


def parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


def duration_decimal(num_frames: int, sample_rate: int) -> Decimal:
    """Audio duration in seconds, as DynamoDB wants numbers: a Decimal, millisecond precision."""
    return (Decimal(num_frames) / Decimal(sample_rate)).quantize(
        Decimal("0.001"), rounding=ROUND_HALF_UP
    )


def audio_item(
    *,
    created: datetime,
    audio_id: str,
    bucket: str,
    key: str,
    text: str,
    voice_id: str,
    duration: Decimal,
    retention: timedelta,
    ttl_attribute: str = "ttl",
    audio_format: str = DEFAULT_FORMAT,
    sample_rate: int | None = None,
    caller: str | None = None,
    policy: str | None = None,
    companions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The DynamoDB item for one audio file: exactly the seed's seven attributes for the
    seed's audio (a WAV at the voice's rate).

    ``ttl`` is always written (it is part of the contract); a policy whose
    ``dynamodb.ttlAttribute`` names another attribute gets that one too, with the same value,
    so DynamoDB's TTL expires the item on whichever attribute the table is set to. Another
    format adds ``format``, a resampled file ``sample_rate``, an authenticated caller
    ``caller`` (``namespace/serviceaccount``). ``policy`` (``namespace/name``) is the
    policy it was made under: it is read under that policy only. ``companions`` (name ->
    key: speech marks, captions) adds ``<name>_s3_url`` for each object kept beside it.
    """
    expires = expiry_epoch(created, retention)
    extra: dict[str, Any] = {}
    if audio_format != DEFAULT_FORMAT:
        extra["format"] = audio_format
    if sample_rate is not None:
        extra["sample_rate"] = sample_rate
    if caller is not None:
        extra["caller"] = caller
    if policy is not None:
        extra["policy"] = policy
    for name, companion in (companions or {}).items():
        extra[f"{name}_s3_url"] = s3_uri(bucket, companion)
    return {
        "date": date_folder(created),
        "audio_id": audio_id,
        "s3_url": s3_uri(bucket, key),
        "text": text,
        "voice_id": voice_id,
        "duration": duration,
        "ttl": expires,
        ttl_attribute: expires,
        **extra,
    }


def companions_of(item: dict[str, Any], bucket: str, names: Sequence[str]) -> dict[str, str]:
    """The keys of the objects the item names beside its audio (of ``names``): only those
    at the audio's own stem in its bucket, whatever else an item might say."""
    audio = key_from_s3_uri(str(item["s3_url"]), bucket)
    stem = audio.rsplit(".", 1)[0] + "."
    found: dict[str, str] = {}
    for name in names:
        uri = item.get(f"{name}_s3_url")
        if not isinstance(uri, str) or not uri.startswith(s3_uri(bucket, stem)):
            continue
        key = key_from_s3_uri(uri, bucket)
        if "/" not in key[len(stem) :] and key != audio:
            found[name] = key
    return found


def audio_format(item: dict[str, Any]) -> str:
    """The item's audio format; items without one are the seed's WAVs."""
    return str(item.get("format", DEFAULT_FORMAT))


def content_type(item: dict[str, Any]) -> str:
    return FORMATS[audio_format(item)].content_type


def is_item_of(item: dict[str, Any], policy: str, bucket: str, prefix: str) -> bool:
    """The item was made under ``policy`` (``namespace/name``) and its object is in that
    policy's storage. Policies may share a table: an item is never answered under another.
    An item made before items recorded their policy belongs to any policy whose storage
    holds its object."""
    recorded = item.get("policy")
    if recorded is not None and recorded != policy:
        return False
    # Exactly <prefix><date>/<id>.<ext>: prefixes may nest (audio/ and audio/team-b/).
    key = (
        f"{prefix}{item.get('date')}/{item.get('audio_id')}.{FORMATS[audio_format(item)].extension}"
    )
    return str(item.get("s3_url", "")) == s3_uri(bucket, key)


def is_item_expired(item: dict[str, Any], now: datetime) -> bool:
    """True once the item's ``ttl`` has passed (DynamoDB may keep it up to days longer)."""
    return int(item["ttl"]) <= int(now.timestamp())


# --- cleanup ---------------------------------------------------------------------------


def folder_date(prefix: str, common_prefix: str) -> date | None:
    """The day of a ``<prefix>YYYY-MM-DD/`` folder, or None for anything else."""
    if not common_prefix.startswith(prefix):
        return None
    match = _DATE_FOLDER.match(common_prefix[len(prefix) :])
    if match is None:
        return None
    return parse_date(common_prefix[len(prefix) : -1])


def expiry_cutoff(now: datetime, retention: timedelta) -> datetime:
    """Objects whose LastModified is at or before this instant are older than retention."""
    return now - retention - LAST_MODIFIED_GRANULARITY


def folder_may_hold_expired(day: date, cutoff: datetime) -> bool:
    """A day folder holds objects created that UTC day, so later days cannot be expired."""
    return day <= cutoff.astimezone(UTC).date()


def is_object_expired(last_modified: datetime, cutoff: datetime) -> bool:
    return last_modified <= cutoff


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    last_modified: datetime


def chunked(items: Iterable[T], size: int) -> Iterator[Sequence[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
