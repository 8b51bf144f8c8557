"""Declared voices' files fetched from S3 (speech/declared_voices.py's ``ModelFetcher``):
the config read whole (it is small), the model streamed to disk and hashed as it arrives.
Bytes whose SHA-256 is not the declared one are deleted, never handed on.

What can go wrong is named as the operator names it: ``ObjectMissing`` (no such key),
``Unreadable`` (refused, unreachable, or larger than any voice), ``HashMismatch``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tempaudio_service.core.declared_voices import (
    CONFIG_INVALID,
    HASH_MISMATCH,
    OBJECT_MISSING,
    UNREADABLE,
    DeclaredVoice,
    ObjectSource,
)
from tempaudio_service.core.errors import VoiceNotReady
from tempaudio_service.storage.aws_clients import make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)
# Piper's largest ("high") models are about 110 MB; a voice is never more than this.
MAX_MODEL_BYTES = 1024 * 1024 * 1024
MAX_CONFIG_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


class S3ModelFetcher:
    def __init__(
        self,
        *,
        timeout_seconds: int,
        region: str,
        endpoint_url: str | None = None,
        local: bool = False,
    ) -> None:
        """``endpoint_url`` with ``local``: the embedded endpoint, which holds every
        object (as the embedded mode's stores do); else a voice's own endpoint, or AWS."""
        self._timeout = timeout_seconds
        self._region = region
        self._endpoint = endpoint_url
        self._local = local
        self._clients: dict[tuple[str | None, str], S3Client] = {}
        self._lock = threading.Lock()

    def _client(self, source: ObjectSource) -> S3Client:
        endpoint = self._endpoint if self._local else source.endpoint_url or self._endpoint
        region = source.region or self._region
        with self._lock:
            client = self._clients.get((endpoint, region))
            if client is None:
                client = self._clients[(endpoint, region)] = make_s3_client(
                    region=region,
                    endpoint_url=endpoint,
                    timeout_seconds=self._timeout,
                    local=self._local,
                )
            return client

    def fetch(self, voice: DeclaredVoice, model: Path, config: Path) -> None:
        source = voice.source
        if not isinstance(source, ObjectSource):
            raise VoiceNotReady(f"voice {voice.key} is not in an object store", UNREADABLE)
        s3 = self._client(source)
        body = self._read(s3, voice, source.bucket, source.config_key, MAX_CONFIG_BYTES)
        if len(body) > MAX_CONFIG_BYTES:
            raise VoiceNotReady(
                f"voice {voice.key}: its config is larger than {MAX_CONFIG_BYTES} bytes",
                CONFIG_INVALID,
            )
        config.write_bytes(body)
        digest = hashlib.sha256()
        size = 0
        try:
            answer = s3.get_object(Bucket=source.bucket, Key=source.key)
            with model.open("wb") as out:
                for chunk in answer["Body"].iter_chunks(_CHUNK):
                    size += len(chunk)
                    if size > MAX_MODEL_BYTES:
                        raise VoiceNotReady(
                            f"voice {voice.key}: its model is larger than any voice"
                            f" ({MAX_MODEL_BYTES} bytes)",
                            UNREADABLE,
                        )
                    digest.update(chunk)
                    out.write(chunk)
        except (BotoCoreError, ClientError) as error:
            raise _refusal(voice, source.key, error) from None
        if digest.hexdigest() != voice.sha256:
            model.unlink(missing_ok=True)
            raise VoiceNotReady(
                f"voice {voice.key}: s3://{source.bucket}/{source.key} has SHA-256"
                f" {digest.hexdigest()[:12]}…, not the declared {voice.sha256[:12]}…; it is"
                " not loaded",
                HASH_MISMATCH,
            )

    @staticmethod
    def _read(s3: S3Client, voice: DeclaredVoice, bucket: str, key: str, most: int) -> bytes:
        try:
            answer = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{most}")
            return answer["Body"].read(most + 1)
        except (BotoCoreError, ClientError) as error:
            raise _refusal(voice, key, error) from None


def _refusal(voice: DeclaredVoice, key: str, error: Exception) -> VoiceNotReady:
    code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
    if code in ("NoSuchKey", "404", "NoSuchBucket"):
        return VoiceNotReady(f"voice {voice.key}: {key} is not in its bucket", OBJECT_MISSING)
    logger.warning("voice %s: reading %s failed: %s", voice.key, key, error)
    return VoiceNotReady(
        f"voice {voice.key}: {key} cannot be read now ({code or 'no answer'})", UNREADABLE
    )
