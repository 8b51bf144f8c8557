"""Service settings, read once from ``TEMPAUDIO_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from .durations import format_duration, parse_duration

DEFAULT_VOICE = "en_US-joe-medium"
# Credentials that make boto3 talk to real AWS rather than the embedded endpoint.
_AWS_CREDENTIAL_HINTS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not every core of the node."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_CORES = usable_cores()


class SettingsError(ValueError):
    """A TEMPAUDIO_* variable holds a value the service cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (true/false)")


def _duration(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return parse_duration(raw)
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None


def _optional(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name) or None


@dataclass(frozen=True)
class ServiceSettings:
    bucket: str = "tempaudio"
    prefix: str = "temp-audio/"
    table: str = "tempaudio"
    region: str = "us-east-1"
    s3_endpoint_url: str | None = None
    dynamodb_endpoint_url: str | None = None
    # Start an embedded S3 + DynamoDB (moto server on 127.0.0.1) instead of AWS.
    local_aws: bool = False
    local_aws_port: int = 0  # 0: any free loopback port
    retention: timedelta = timedelta(hours=24)
    voices_dir: Path | None = None
    default_voice: str = DEFAULT_VOICE
    max_text_chars: int = 5000
    max_body_bytes: int = 65536
    # Concurrent Piper syntheses, and requests allowed to wait for one before 503.
    synth_workers: int = _CORES
    synth_queue: int = 2 * _CORES
    # onnxruntime threads inside one synthesis while others run, and for one running alone.
    onnx_intra_threads: int = 1
    onnx_idle_threads: int = _CORES
    # Longest piece of a sentence decoded at once (phonemes; 0: whole sentences): bounds memory.
    max_chunk_phonemes: int = 150
    io_timeout_seconds: int = 5
    host: str = "127.0.0.1"
    port: int = 8080
    log_format: str = "text"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceSettings:
        defaults = cls()
        prefix = env.get("TEMPAUDIO_PREFIX", defaults.prefix)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        s3_endpoint = _optional(env, "TEMPAUDIO_S3_ENDPOINT_URL")
        dynamodb_endpoint = _optional(env, "TEMPAUDIO_DYNAMODB_ENDPOINT_URL") or s3_endpoint
        has_aws = s3_endpoint is not None or any(env.get(name) for name in _AWS_CREDENTIAL_HINTS)
        local_raw = env.get("TEMPAUDIO_LOCAL_AWS", "auto").strip().lower()
        local_aws = (
            (not has_aws) if local_raw in {"", "auto"} else _bool(env, "TEMPAUDIO_LOCAL_AWS", False)
        )
        log_format = env.get("TEMPAUDIO_LOG_FORMAT", defaults.log_format)
        if log_format not in {"text", "json"}:
            raise SettingsError(f"TEMPAUDIO_LOG_FORMAT={log_format!r} must be text or json")
        voices_dir = _optional(env, "TEMPAUDIO_VOICES_DIR")
        workers = _int(env, "TEMPAUDIO_SYNTH_WORKERS", defaults.synth_workers)
        return cls(
            bucket=env.get("TEMPAUDIO_BUCKET", defaults.bucket),
            prefix=prefix,
            table=env.get("TEMPAUDIO_TABLE", defaults.table),
            region=env.get("TEMPAUDIO_REGION") or env.get("AWS_REGION") or defaults.region,
            s3_endpoint_url=s3_endpoint,
            dynamodb_endpoint_url=dynamodb_endpoint,
            local_aws=local_aws,
            local_aws_port=_int(env, "TEMPAUDIO_LOCAL_AWS_PORT", 0, minimum=0),
            retention=_duration(env, "TEMPAUDIO_RETENTION", defaults.retention),
            voices_dir=Path(voices_dir) if voices_dir else None,
            default_voice=env.get("TEMPAUDIO_DEFAULT_VOICE", defaults.default_voice),
            max_text_chars=_int(env, "TEMPAUDIO_MAX_TEXT_CHARS", defaults.max_text_chars),
            max_body_bytes=_int(env, "TEMPAUDIO_MAX_BODY_BYTES", defaults.max_body_bytes),
            synth_workers=workers,
            synth_queue=_int(env, "TEMPAUDIO_SYNTH_QUEUE", 2 * workers, minimum=0),
            onnx_intra_threads=_int(env, "TEMPAUDIO_ONNX_THREADS", defaults.onnx_intra_threads),
            # A lone synthesis may use every core the workers share, and no more.
            onnx_idle_threads=_int(env, "TEMPAUDIO_ONNX_IDLE_THREADS", workers),
            max_chunk_phonemes=_int(
                env, "TEMPAUDIO_MAX_CHUNK_PHONEMES", defaults.max_chunk_phonemes, minimum=0
            ),
            io_timeout_seconds=_int(env, "TEMPAUDIO_IO_TIMEOUT", defaults.io_timeout_seconds),
            host=env.get("TEMPAUDIO_HOST", defaults.host),
            port=_int(env, "TEMPAUDIO_PORT", defaults.port),
            log_format=log_format,
            log_level=env.get("TEMPAUDIO_LOG_LEVEL", defaults.log_level).upper(),
        )

    def with_endpoint(self, endpoint_url: str) -> ServiceSettings:
        return replace(self, s3_endpoint_url=endpoint_url, dynamodb_endpoint_url=endpoint_url)

    def describe(self) -> dict[str, Any]:
        """The effective configuration for the start-up log line (holds no secrets)."""
        described: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, timedelta):
                value = format_duration(value)
            elif isinstance(value, Path):
                value = str(value)
            described[field.name] = value
        return described
