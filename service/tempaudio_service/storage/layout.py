"""Where audio lives and what its metadata item holds (pure: no clocks, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from tempaudio_service.core.formats import DEFAULT_FORMAT, FORMATS

# S3 reports LastModified in whole seconds; an object may have been written up to
# this much later than its LastModified says, so expiry keeps this margin.
LAST_MODIFIED_GRANULARITY = timedelta(seconds=1)
# SigV4 presigned URLs cannot live longer than seven days.
MAX_PRESIGN = timedelta(days=7)

# Objects an item may name beside its audio (``<name>_s3_url``).
COMPANION_NAMES = ("speech_marks", "captions")
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


@dataclass(frozen=True)
class AudioItem:
    """One audio's item as the service holds it: the object's key and its companions' keys,
    never URIs. ``record()`` is what DynamoDB stores; ``from_record`` reads a stored one."""

    date: str
    audio_id: str
    bucket: str
    key: str
    text: str
    voice_id: str
    duration: Decimal
    ttl: int
    ttl_attribute: str = "ttl"
    audio_format: str = DEFAULT_FORMAT
    sample_rate: int | None = None
    # ``namespace/serviceaccount`` of an authenticated maker.
    caller: str | None = None
    # ``namespace/name`` of the policy it was made under: it is read under that one only.
    policy: str | None = None
    # Name -> key of each object kept beside the audio (speech marks, captions).
    companions: Mapping[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return FORMATS[self.audio_format].content_type

    def record(self) -> dict[str, Any]:
        """The DynamoDB item: exactly the seed's seven attributes for the seed's audio (a
        WAV at the voice's rate), in the seed's order.

        ``ttl`` is always written (it is part of the contract); a policy whose
        ``dynamodb.ttlAttribute`` names another attribute gets that one too, with the same
        value, so DynamoDB's TTL expires the item on whichever attribute the table is set
        to. Another format adds ``format``, a resampled file ``sample_rate``, an
        authenticated caller ``caller``, the policy ``policy``, and each companion
        ``<name>_s3_url``."""
        extra: dict[str, Any] = {}
        if self.audio_format != DEFAULT_FORMAT:
            extra["format"] = self.audio_format
        if self.sample_rate is not None:
            extra["sample_rate"] = self.sample_rate
        if self.caller is not None:
            extra["caller"] = self.caller
        if self.policy is not None:
            extra["policy"] = self.policy
        for name, companion in self.companions.items():
            extra[f"{name}_s3_url"] = s3_uri(self.bucket, companion)
        return {
            "date": self.date,
            "audio_id": self.audio_id,
            "s3_url": s3_uri(self.bucket, self.key),
            "text": self.text,
            "voice_id": self.voice_id,
            "duration": self.duration,
            "ttl": self.ttl,
            self.ttl_attribute: self.ttl,
            **extra,
        }

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any], bucket: str, names: Sequence[str] = COMPANION_NAMES
    ) -> AudioItem | None:
        """A stored item of ``bucket`` (None: its object is elsewhere, or it is not an
        audio item). Of its companions (``names``), only those at the audio's own key stem
        are taken, whatever else a record might say."""
        uri = record.get("s3_url")
        head = s3_uri(bucket, "")
        if not isinstance(uri, str) or not uri.startswith(head):
            return None
        key = uri[len(head) :]
        if str(record.get("format", DEFAULT_FORMAT)) not in FORMATS:
            return None
        try:
            return cls(
                date=str(record["date"]),
                audio_id=str(record["audio_id"]),
                bucket=bucket,
                key=key,
                text=str(record["text"]),
                voice_id=str(record["voice_id"]),
                duration=Decimal(record["duration"]),
                ttl=int(record["ttl"]),
                audio_format=str(record.get("format", DEFAULT_FORMAT)),
                sample_rate=_optional_int(record.get("sample_rate")),
                caller=_optional_str(record.get("caller")),
                policy=_optional_str(record.get("policy")),
                companions=_companions(record, bucket, key, names),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError):
            return None

    def with_duration(self, duration: Decimal) -> AudioItem:
        return replace(self, duration=duration)


def new_audio_item(
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
    companions: Mapping[str, str] | None = None,
) -> AudioItem:
    """The item of audio made at ``created`` and kept for ``retention``."""
    return AudioItem(
        date=date_folder(created),
        audio_id=audio_id,
        bucket=bucket,
        key=key,
        text=text,
        voice_id=voice_id,
        duration=duration,
        ttl=expiry_epoch(created, retention),
        ttl_attribute=ttl_attribute,
        audio_format=audio_format,
        sample_rate=sample_rate,
        caller=caller,
        policy=policy,
        companions=dict(companions or {}),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _companions(
    record: Mapping[str, Any], bucket: str, audio: str, names: Sequence[str]
) -> dict[str, str]:
    stem = audio.rsplit(".", 1)[0] + "."
    found: dict[str, str] = {}
    for name in names:
        uri = record.get(f"{name}_s3_url")
        if not isinstance(uri, str) or not uri.startswith(s3_uri(bucket, stem)):
            continue
        key = key_from_s3_uri(uri, bucket)
        if "/" not in key[len(stem) :] and key != audio:
            found[name] = key
    return found


def is_item_of(item: AudioItem, policy: str, bucket: str, prefix: str) -> bool:
    """The item was made under ``policy`` (``namespace/name``) and its object is in that
    policy's storage. Policies may share a table: an item is never answered under another.
    An item made before items recorded their policy belongs to any policy whose storage
    holds its object."""
    if item.policy is not None and item.policy != policy:
        return False
    # Exactly <prefix><date>/<id>.<ext>: prefixes may nest (audio/ and audio/team-b/).
    extension = FORMATS[item.audio_format].extension
    return item.bucket == bucket and item.key == f"{prefix}{item.date}/{item.audio_id}.{extension}"


def is_item_expired(item: AudioItem, now: datetime) -> bool:
    """True once the item's ``ttl`` has passed (DynamoDB may keep it up to days longer)."""
    return item.ttl <= int(now.timestamp())


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
