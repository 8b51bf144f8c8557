"""A TempAudioVoice's objects in S3, read only and bounded: whether they are there (HeadObject),
the config's bytes, and the model's SHA-256 streamed through GetObject. Thin.

Each refusal is a ``VoiceUnverified`` carrying the voice's reason: a key or bucket that does
not exist is ObjectMissing; anything else S3 answers (AccessDenied, a throttle, an endpoint
that does not answer) is Unreadable. What goes into the message is the call, the object and
an error code, never the remote message (``aws.describe_error``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tempaudio_api.voice_rules import (
    CONFIG_INVALID,
    MAX_CONFIG_BYTES,
    OBJECT_MISSING,
    UNREADABLE,
)

from .aws import describe_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# How much of the model one read holds: the hash is taken as it streams.
CHUNK_BYTES = 1 << 20
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


class VoiceUnverified(Exception):
    """The voice's objects could not be verified: ``reason`` is its Ready condition's."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Seen:
    """What S3 said of one object: its ETag (the version read) and its size."""

    etag: str
    size: int


def _refused(error: BotoCoreError | ClientError, call: str, where: str) -> VoiceUnverified:
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _MISSING_CODES:
            what = "its bucket does not exist" if code == "NoSuchBucket" else "it does not exist"
            return VoiceUnverified(OBJECT_MISSING, f"{where}: {what}")
    return VoiceUnverified(UNREADABLE, f"{call} {where}: {describe_error(error)}")


def head(s3: S3Client, bucket: str, key: str) -> Seen:
    """The object's ETag and size; ``VoiceUnverified`` when it is missing or unreadable."""
    where = f"s3://{bucket}/{key}"
    try:
        response = s3.head_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError) as error:
        raise _refused(error, "HeadObject", where) from error
    return Seen(str(response.get("ETag") or ""), int(response.get("ContentLength") or 0))


def read_config(s3: S3Client, bucket: str, key: str) -> tuple[bytes, Seen]:
    """The config's bytes (at most MAX_CONFIG_BYTES: a larger one is ConfigInvalid) and the
    version read."""
    where = f"s3://{bucket}/{key}"
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
        body = response["Body"]
        try:
            data = body.read(MAX_CONFIG_BYTES + 1)
        finally:
            body.close()
    except (BotoCoreError, ClientError) as error:
        raise _refused(error, "GetObject", where) from error
    if len(data) > MAX_CONFIG_BYTES:
        raise VoiceUnverified(
            CONFIG_INVALID, f"{where}: the config has more than {MAX_CONFIG_BYTES} bytes"
        )
    return data, Seen(str(response.get("ETag") or ""), len(data))


def model_sha256(s3: S3Client, bucket: str, key: str, limit: int) -> tuple[str, Seen]:
    """The model's SHA-256 (lower-case hex), hashed as it streams, and the version read; a
    model of more than ``limit`` bytes is Unreadable (never read to its end)."""
    where = f"s3://{bucket}/{key}"
    digest = hashlib.sha256()
    size = 0
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
        body = response["Body"]
        try:
            for chunk in body.iter_chunks(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise VoiceUnverified(
                        UNREADABLE, f"{where}: the model has more than {limit} bytes"
                    )
                digest.update(chunk)
        finally:
            body.close()
    except (BotoCoreError, ClientError) as error:
        raise _refused(error, "GetObject", where) from error
    return digest.hexdigest(), Seen(str(response.get("ETag") or ""), size)
