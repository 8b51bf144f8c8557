"""Service settings, read once from ``TEMPAUDIO_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from tempaudio_api.durations import format_duration
from tempaudio_api.storage import DEFAULT_PREFIX

from .chunking import DEFAULT_MAX_AUDIO_SECONDS, DEFAULT_MAX_CHUNK_PHONEMES
from .config import ConfigError, Env
from .hosts import DEFAULT_HOSTS

DEFAULT_VOICE = "en_US-joe-medium"
# Credentials that make boto3 talk to real AWS rather than the embedded endpoint.
_AWS_CREDENTIAL_HINTS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)
# Where the served TempAudioPolicies come from (README "Policies").
POLICY_SOURCES = ("env", "file", "kubernetes")
# How callers prove who they are (README "Callers").
AUTH_MODES = ("none", "serviceaccount")
# The shorthand for the one policy of the "env" source; with a file or Kubernetes the
# policy declares these, and a variable that could disagree with it is refused.
SHORTHAND_VARIABLES = (
    "TEMPAUDIO_BUCKET",
    "TEMPAUDIO_PREFIX",
    "TEMPAUDIO_TABLE",
    "TEMPAUDIO_REGION",
    "TEMPAUDIO_RETENTION",
    "TEMPAUDIO_S3_ENDPOINT_URL",
    "TEMPAUDIO_DYNAMODB_ENDPOINT_URL",
)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not every core of the node."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_CORES = usable_cores()


# The one error type for bad settings, shared with the cleanup program.
SettingsError = ConfigError


def _voice_map(name: str, text: str | None) -> dict[str, str]:
    """``alloy=en_US-joe-medium,nova=en_US-lessac-medium`` as a mapping."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        alias, _, voice = part.partition("=")
        if not alias.strip() or not voice.strip():
            raise ConfigError(f"{name}: {part.strip()!r} is not name=voice")
        mapping[alias.strip()] = voice.strip()
    return mapping


def _namespaces(text: str | None) -> tuple[str, ...]:
    return tuple(sorted({part.strip() for part in (text or "").split(",") if part.strip()}))


@dataclass(frozen=True)
class ServiceSettings:
    # env: the built-in policy (default-policy.yaml) with the TEMPAUDIO_* shorthand below;
    # file: TempAudioPolicy documents in policy_file; kubernetes: watched, operator-gated.
    policy_source: str = "env"
    policy_file: Path | None = None
    # kubernetes: namespaces whose policies are served (empty: the pod's own namespace).
    policy_namespaces: tuple[str, ...] = ()
    # The policy of a request that names none ("name" or "namespace/name"); None: the only
    # policy of the env source or of a one-policy file, else none.
    default_policy: str | None = None
    # kubernetes: without contact with the API for this long, no policy is vouched for.
    policy_max_staleness_seconds: int = 300
    # Most policies one service serves (bounds clients, and the metrics' policy label).
    max_policies: int = 64
    # The env source's shorthand (defaults equal default-policy.yaml; a test keeps them so).
    bucket: str = "tempaudio"
    prefix: str = DEFAULT_PREFIX
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
    # OpenAI voice name -> installed voice; unmapped OpenAI names speak with default_voice.
    openai_voices: dict[str, str] = field(default_factory=dict)
    max_text_chars: int = 5000
    max_body_bytes: int = 65536
    # Concurrent Piper syntheses, and requests allowed to wait for one before 503.
    synth_workers: int = _CORES
    synth_queue: int = 2 * _CORES
    # onnxruntime threads inside one synthesis while others run, and for one running alone.
    onnx_intra_threads: int = 1
    onnx_idle_threads: int = _CORES
    # Longest piece of a sentence decoded at once (phonemes): bounds memory per synthesis.
    max_chunk_phonemes: int = DEFAULT_MAX_CHUNK_PHONEMES
    # Audio one request may produce: bounds its output, time and memory.
    max_audio_seconds: int = DEFAULT_MAX_AUDIO_SECONDS
    # Repeat cache entries (repeat_cache.py); 0 turns it off.
    repeat_cache_entries: int = 10_000
    # Time budget of one storage operation, retries included.
    io_timeout_seconds: int = 5
    # A request body must arrive within this; connections beyond the cap get 503.
    body_timeout_seconds: int = 10
    max_connections: int = 256
    # A request's headers must arrive within this (connections.py), and fit in this.
    header_timeout_seconds: int = 10
    max_header_bytes: int = 32 * 1024
    # A second listener for the probes and /metrics only, so that they answer while client
    # connections are exhausted; 0: none (the chart sets one).
    health_port: int = 0
    # After SIGTERM: how long admitted work may take before what is left is refused.
    drain_seconds: int = 20
    # none: callers are anonymous; serviceaccount: each synthesis and read carries a
    # projected ServiceAccount token for auth_audience, checked with TokenReview.
    auth: str = "none"
    auth_audience: str = "tempaudio"
    # How long the API server's verdict on a token (and a namespace's labels) is kept.
    auth_cache_seconds: int = 60
    # The audit log line carries the request's text too.
    audit_text: bool = False
    # The web console at / (console_api.py); off: the API only.
    console: bool = True
    # The hosts a browser may reach the service as (hosts.py: DNS rebinding); "*": any.
    console_hosts: tuple[str, ...] = DEFAULT_HOSTS
    host: str = "127.0.0.1"
    port: int = 8080
    log_format: str = "text"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServiceSettings:
        """Every variable validated; a bad one raises ``SettingsError`` naming it."""
        env, defaults = Env(environ), cls()
        policy_file = env.raw("TEMPAUDIO_POLICY_FILE")
        source = env.choice(
            "TEMPAUDIO_POLICY_SOURCE", "file" if policy_file else "env", POLICY_SOURCES
        )
        if source == "file" and not policy_file:
            raise ConfigError("TEMPAUDIO_POLICY_SOURCE=file needs TEMPAUDIO_POLICY_FILE (--policy)")
        if source != "env":
            clashing = [name for name in SHORTHAND_VARIABLES if env.raw(name)]
            if clashing:
                raise ConfigError(
                    f"{', '.join(clashing)}: the policy declares this with the {source} policy"
                    " source; remove the variable (it is the shorthand of the built-in policy)"
                )
        s3_endpoint = env.raw("TEMPAUDIO_S3_ENDPOINT_URL")
        has_aws = s3_endpoint is not None or any(env.raw(name) for name in _AWS_CREDENTIAL_HINTS)
        local = env.text("TEMPAUDIO_LOCAL_AWS", "auto").strip().lower()
        if source == "kubernetes":
            local = env.text("TEMPAUDIO_LOCAL_AWS", "false").strip().lower()
        voices_dir = env.raw("TEMPAUDIO_VOICES_DIR")
        workers = env.integer("TEMPAUDIO_SYNTH_WORKERS", defaults.synth_workers, maximum=256)
        return cls(
            policy_source=source,
            policy_file=Path(policy_file) if policy_file else None,
            policy_namespaces=_namespaces(env.raw("TEMPAUDIO_POLICY_NAMESPACES")),
            default_policy=env.raw("TEMPAUDIO_DEFAULT_POLICY"),
            policy_max_staleness_seconds=env.integer(
                "TEMPAUDIO_POLICY_MAX_STALENESS",
                defaults.policy_max_staleness_seconds,
                maximum=3600,
            ),
            max_policies=env.integer("TEMPAUDIO_MAX_POLICIES", defaults.max_policies, maximum=1000),
            bucket=env.text("TEMPAUDIO_BUCKET", defaults.bucket),
            prefix=env.prefix("TEMPAUDIO_PREFIX", defaults.prefix),
            table=env.text("TEMPAUDIO_TABLE", defaults.table),
            region=env.raw("TEMPAUDIO_REGION") or env.raw("AWS_REGION") or defaults.region,
            s3_endpoint_url=s3_endpoint,
            dynamodb_endpoint_url=env.raw("TEMPAUDIO_DYNAMODB_ENDPOINT_URL") or s3_endpoint,
            local_aws=(not has_aws)
            if local == "auto"
            else env.boolean("TEMPAUDIO_LOCAL_AWS", False),
            local_aws_port=env.integer("TEMPAUDIO_LOCAL_AWS_PORT", 0, minimum=0, maximum=65535),
            retention=env.retention("TEMPAUDIO_RETENTION", defaults.retention),
            voices_dir=Path(voices_dir) if voices_dir else None,
            default_voice=env.text("TEMPAUDIO_DEFAULT_VOICE", defaults.default_voice),
            openai_voices=_voice_map("TEMPAUDIO_OPENAI_VOICES", env.raw("TEMPAUDIO_OPENAI_VOICES")),
            max_text_chars=env.integer(
                "TEMPAUDIO_MAX_TEXT_CHARS", defaults.max_text_chars, maximum=100_000
            ),
            max_body_bytes=env.integer(
                "TEMPAUDIO_MAX_BODY_BYTES", defaults.max_body_bytes, minimum=256, maximum=2**24
            ),
            synth_workers=workers,
            synth_queue=env.integer("TEMPAUDIO_SYNTH_QUEUE", 2 * workers, minimum=0, maximum=4096),
            onnx_intra_threads=env.integer(
                "TEMPAUDIO_ONNX_THREADS", defaults.onnx_intra_threads, maximum=256
            ),
            # A lone synthesis may use every core the workers share, and no more.
            onnx_idle_threads=env.integer("TEMPAUDIO_ONNX_IDLE_THREADS", workers, maximum=256),
            max_chunk_phonemes=env.integer(
                "TEMPAUDIO_MAX_CHUNK_PHONEMES", defaults.max_chunk_phonemes, maximum=100_000
            ),
            max_audio_seconds=env.integer(
                "TEMPAUDIO_MAX_AUDIO_SECONDS", defaults.max_audio_seconds, maximum=3600
            ),
            repeat_cache_entries=env.integer(
                "TEMPAUDIO_REPEAT_CACHE_ENTRIES",
                defaults.repeat_cache_entries,
                minimum=0,
                maximum=10_000_000,
            ),
            io_timeout_seconds=env.integer(
                "TEMPAUDIO_IO_TIMEOUT", defaults.io_timeout_seconds, maximum=120
            ),
            body_timeout_seconds=env.integer(
                "TEMPAUDIO_BODY_TIMEOUT", defaults.body_timeout_seconds, maximum=600
            ),
            max_connections=env.integer(
                "TEMPAUDIO_MAX_CONNECTIONS", defaults.max_connections, maximum=100_000
            ),
            header_timeout_seconds=env.integer(
                "TEMPAUDIO_HEADER_TIMEOUT", defaults.header_timeout_seconds, maximum=600
            ),
            max_header_bytes=env.integer(
                "TEMPAUDIO_MAX_HEADER_BYTES",
                defaults.max_header_bytes,
                minimum=1024,
                maximum=1024 * 1024,
            ),
            health_port=env.integer(
                "TEMPAUDIO_HEALTH_PORT", defaults.health_port, minimum=0, maximum=65535
            ),
            drain_seconds=env.integer(
                "TEMPAUDIO_DRAIN_SECONDS", defaults.drain_seconds, minimum=0, maximum=3600
            ),
            auth=env.choice("TEMPAUDIO_AUTH", defaults.auth, AUTH_MODES),
            auth_audience=env.text("TEMPAUDIO_AUTH_AUDIENCE", defaults.auth_audience),
            auth_cache_seconds=env.integer(
                "TEMPAUDIO_AUTH_CACHE_SECONDS", defaults.auth_cache_seconds, maximum=3600
            ),
            audit_text=env.boolean("TEMPAUDIO_AUDIT_TEXT", defaults.audit_text),
            console=env.boolean("TEMPAUDIO_CONSOLE", defaults.console),
            console_hosts=env.hosts("TEMPAUDIO_CONSOLE_HOSTS", defaults.console_hosts),
            host=env.text("TEMPAUDIO_HOST", defaults.host),
            port=env.integer("TEMPAUDIO_PORT", defaults.port, maximum=65535),
            log_format=env.choice("TEMPAUDIO_LOG_FORMAT", defaults.log_format, ("text", "json")),
            log_level=env.log_level("TEMPAUDIO_LOG_LEVEL", defaults.log_level),
        )

    def __post_init__(self) -> None:
        if self.health_port and self.health_port == self.port:
            raise ConfigError(
                f"TEMPAUDIO_HEALTH_PORT={self.health_port} is TEMPAUDIO_PORT too: the probes"
                " need a port of their own (or 0 for none)"
            )

    def with_endpoint(self, endpoint_url: str) -> ServiceSettings:
        return replace(self, s3_endpoint_url=endpoint_url, dynamodb_endpoint_url=endpoint_url)

    def describe(self) -> dict[str, Any]:
        """The effective configuration for the start-up log line (holds no secrets)."""
        described: dict[str, Any] = {}
        for setting in fields(self):
            value = getattr(self, setting.name)
            if isinstance(value, timedelta):
                value = format_duration(value)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            described[setting.name] = value
        return described
