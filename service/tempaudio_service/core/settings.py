"""Service settings, read once from ``TEMPAUDIO_*`` environment variables by one table.

The table is ``ServiceSettings`` itself: each field names its variable, its kind, its bounds,
its default and one line of doc (``setting(...)``). ``from_env`` reads the fields in order,
and ``python -m tempaudio_service.core.reference`` writes docs/reference/configuration.md from
the same rows, so the parser and the reference cannot disagree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from tempaudio_api.durations import format_duration
from tempaudio_api.storage import DEFAULT_PREFIX, DEFAULT_REGION
from tempaudio_service.core.config import LOG_LEVELS, ConfigError, Env
from tempaudio_service.core.hosts import DEFAULT_HOSTS

DEFAULT_VOICE = "en_US-joe-medium"
# A sentence longer than this many phonemes (about 7 s of audio) is decoded in pieces.
DEFAULT_MAX_CHUNK_PHONEMES = 150
# Audio one request may produce: the longest text (5,000 characters) at normal speed is
# about 6 minutes.
DEFAULT_MAX_AUDIO_SECONDS = 600
# Credentials that make boto3 talk to real AWS rather than the embedded endpoint.
_AWS_CREDENTIAL_HINTS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)
# Where the served TempAudioPolicies come from (docs/concepts/policies.md).
POLICY_SOURCES = ("env", "file", "kubernetes")
# How callers prove who they are (docs/concepts/tenancy.md).
AUTH_MODES = ("none", "serviceaccount")
LOG_FORMATS = ("text", "json")
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
SETTING = "setting"  # the key of a field's row in its metadata


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not every core of the node."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_CORES = usable_cores()


# The one error type for bad settings, shared with the cleanup program.
SettingsError = ConfigError


@dataclass(frozen=True)
class Kind:
    """A type of setting: how a value of it is read, its name and what it accepts in the
    reference."""

    name: str
    read: Callable[[Env, Setting, Any], Any]
    accepts: str = ""


@dataclass(frozen=True)
class Setting:
    """One row of the settings table (the field's name and default are the rest of it)."""

    variable: str
    kind: Kind
    doc: str
    minimum: int = 1
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    # A default computed from the environment and the settings read before this one.
    derived: Callable[[Env, Mapping[str, Any]], Any] | None = None
    # How the default reads in the reference when it is computed (or depends on the machine).
    shown: str | None = None

    def accepted(self) -> str:
        """What a value may be, for the reference."""
        if self.choices:
            return ", ".join(f"`{choice}`" for choice in self.choices)
        if self.kind is INTEGER:
            return f"{self.minimum} to {self.maximum}"
        return self.kind.accepts


def row(
    variable: str,
    kind: Kind,
    doc: str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    choices: tuple[str, ...] = (),
    derived: Callable[[Env, Mapping[str, Any]], Any] | None = None,
    shown: str | None = None,
) -> dict[str, Setting]:
    """A ``ServiceSettings`` field's row of the table, as the field's metadata."""
    return {SETTING: Setting(variable, kind, doc, minimum, maximum, choices, derived, shown)}


# --- the kinds ----------------------------------------------------------------------------


def _text(env: Env, spec: Setting, default: Any) -> Any:
    return env.text(spec.variable, default)


def _optional(env: Env, spec: Setting, default: Any) -> Any:
    return env.raw(spec.variable) or default


def _path(env: Env, spec: Setting, default: Any) -> Any:
    raw = env.raw(spec.variable)
    return Path(raw) if raw else default


def _integer(env: Env, spec: Setting, default: Any) -> Any:
    return env.integer(spec.variable, default, minimum=spec.minimum, maximum=spec.maximum)


def _boolean(env: Env, spec: Setting, default: Any) -> Any:
    return env.boolean(spec.variable, default)


def _choice(env: Env, spec: Setting, default: Any) -> Any:
    return env.choice(spec.variable, default, spec.choices)


def _duration(env: Env, spec: Setting, default: Any) -> Any:
    return env.retention(spec.variable, default)


def _prefix(env: Env, spec: Setting, default: Any) -> Any:
    return env.prefix(spec.variable, default)


def _hosts(env: Env, spec: Setting, default: Any) -> Any:
    return env.hosts(spec.variable, default)


def _log_level(env: Env, spec: Setting, default: Any) -> Any:
    return env.log_level(spec.variable, default)


def _names(env: Env, spec: Setting, default: Any) -> Any:
    """``a, b,,a`` as the sorted names ``("a", "b")``."""
    text = env.raw(spec.variable) or ""
    return tuple(sorted({part.strip() for part in text.split(",") if part.strip()})) or default


def _voice_map(env: Env, spec: Setting, default: Any) -> Any:
    """``alloy=en_US-joe-medium,nova=en_US-lessac-medium`` as a mapping."""
    mapping: dict[str, str] = {}
    for part in (env.raw(spec.variable) or "").split(","):
        if not part.strip():
            continue
        alias, _, voice = part.partition("=")
        if not alias.strip() or not voice.strip():
            raise ConfigError(f"{spec.variable}: {part.strip()!r} is not name=voice")
        mapping[alias.strip()] = voice.strip()
    return mapping or dict(default)


def _policy_source(env: Env, spec: Setting, default: Any) -> Any:
    """A choice that must agree with the other variables: a file source names its file, and
    only the ``env`` source takes the shorthand."""
    source = env.choice(spec.variable, default, spec.choices)
    if source == "file" and not env.raw("TEMPAUDIO_POLICY_FILE"):
        raise ConfigError("TEMPAUDIO_POLICY_SOURCE=file needs TEMPAUDIO_POLICY_FILE (--policy)")
    clashing = [name for name in SHORTHAND_VARIABLES if env.raw(name)]
    if source != "env" and clashing:
        raise ConfigError(
            f"{', '.join(clashing)}: the policy declares this with the {source} policy"
            " source; remove the variable (it is the shorthand of the built-in policy)"
        )
    return source


def _auto_boolean(env: Env, spec: Setting, default: Any) -> Any:
    """A boolean, or ``auto``: on when no AWS endpoint and no AWS credentials are set."""
    raw = env.raw(spec.variable)
    if raw is not None and raw.strip().lower() == "auto":
        return not _aws_configured(env)
    return env.boolean(spec.variable, default)


def _aws_configured(env: Env) -> bool:
    hints = ("TEMPAUDIO_S3_ENDPOINT_URL", *_AWS_CREDENTIAL_HINTS)
    return any(env.raw(name) for name in hints)


TEXT = Kind("text", _text)
OPTIONAL = Kind("text", _optional)
PATH = Kind("path", _path)
INTEGER = Kind("integer", _integer)
BOOLEAN = Kind("boolean", _boolean, "`true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`")
AUTO_BOOLEAN = Kind("boolean or auto", _auto_boolean, "`auto`, or a boolean")
CHOICE = Kind("choice", _choice)
POLICY_SOURCE = Kind("choice", _policy_source)
DURATION = Kind("duration", _duration, "`90m`, `2d`, `1h30m`: 1m to 365d")
PREFIX = Kind("key prefix", _prefix, "not empty, no leading `/`; a last `/` is added")
NAMES = Kind("list", _names, "comma-separated names")
VOICE_MAP = Kind("map", _voice_map, "comma-separated `name=voice`")
HOSTS = Kind("host list", _hosts, "comma-separated hosts, `*.domain`, `[IPv6]`, or `*`")
LOG_LEVEL = Kind("log level", _log_level, ", ".join(f"`{level}`" for level in LOG_LEVELS))


@dataclass(frozen=True)
class ServiceSettings:
    """Every setting of ``tempaudio-service``: the table the parser and the reference share."""

    policy_source: str = field(
        default="env",
        metadata=row(
            "TEMPAUDIO_POLICY_SOURCE",
            POLICY_SOURCE,
            "where the served policies come from: the built-in policy with the shorthand below"
            " (env), a YAML file (file), or the Kubernetes API, gated by the operator (kubernetes)",
            choices=POLICY_SOURCES,
            derived=lambda env, _: "file" if env.raw("TEMPAUDIO_POLICY_FILE") else "env",
            shown="`file` when `TEMPAUDIO_POLICY_FILE` is set, else `env`",
        ),
    )
    policy_file: Path | None = field(
        default=None,
        metadata=row(
            "TEMPAUDIO_POLICY_FILE",
            PATH,
            "YAML file of `TempAudioPolicy` (and `TempAudioLexicon`) documents (`--policy`)",
        ),
    )
    policy_namespaces: tuple[str, ...] = field(
        default=(),
        metadata=row(
            "TEMPAUDIO_POLICY_NAMESPACES",
            NAMES,
            "`kubernetes`: comma-separated namespaces whose policies are served",
            shown="the pod's namespace",
        ),
    )
    default_policy: str | None = field(
        default=None,
        metadata=row(
            "TEMPAUDIO_DEFAULT_POLICY",
            OPTIONAL,
            "policy of requests that name none: `name` or `namespace/name`",
            shown="the only policy, if there is one",
        ),
    )
    policy_max_staleness_seconds: int = field(
        default=300,
        metadata=row(
            "TEMPAUDIO_POLICY_MAX_STALENESS",
            INTEGER,
            "`kubernetes`: seconds without contact with the API after which no policy is served"
            " (keep it below the operator's `TEMPAUDIO_OPERATOR_RETENTION_LAG`)",
            maximum=3600,
        ),
    )
    max_policies: int = field(
        default=64,
        metadata=row(
            "TEMPAUDIO_MAX_POLICIES",
            INTEGER,
            "most policies one service serves (bounds its clients and the metrics' policy label)",
            maximum=1000,
        ),
    )
    bucket: str = field(
        default="tempaudio",
        metadata=row("TEMPAUDIO_BUCKET", TEXT, "`env` shorthand: the S3 bucket of the audio"),
    )
    prefix: str = field(
        default=DEFAULT_PREFIX,
        metadata=row(
            "TEMPAUDIO_PREFIX",
            PREFIX,
            "`env` shorthand: the key prefix holding the `YYYY-MM-DD/` folders (the cleanup"
            " deletes under it)",
        ),
    )
    table: str = field(
        default="tempaudio",
        metadata=row(
            "TEMPAUDIO_TABLE",
            TEXT,
            "`env` shorthand: the DynamoDB table (`date` hash key, `audio_id` range key)",
        ),
    )
    region: str = field(
        default=DEFAULT_REGION,
        metadata=row(
            "TEMPAUDIO_REGION",
            TEXT,
            "`env` shorthand: the AWS region",
            derived=lambda env, _: env.raw("AWS_REGION") or DEFAULT_REGION,
            shown="`AWS_REGION`, else `us-east-1`",
        ),
    )
    s3_endpoint_url: str | None = field(
        default=None,
        metadata=row(
            "TEMPAUDIO_S3_ENDPOINT_URL",
            OPTIONAL,
            "`env` shorthand: an S3-compatible endpoint; unset: AWS",
        ),
    )
    dynamodb_endpoint_url: str | None = field(
        default=None,
        metadata=row(
            "TEMPAUDIO_DYNAMODB_ENDPOINT_URL",
            OPTIONAL,
            "`env` shorthand: a DynamoDB-compatible endpoint",
            derived=lambda _, read: read["s3_endpoint_url"],
            shown="`TEMPAUDIO_S3_ENDPOINT_URL`",
        ),
    )
    local_aws: bool = field(
        default=False,
        metadata=row(
            "TEMPAUDIO_LOCAL_AWS",
            AUTO_BOOLEAN,
            "start an embedded S3 + DynamoDB (moto server on 127.0.0.1) instead of AWS; `auto`:"
            " when no endpoint and no AWS credential variables are set",
            derived=lambda env, read: (
                read["policy_source"] != "kubernetes" and not _aws_configured(env)
            ),
            shown="`auto` (`false` with the `kubernetes` source)",
        ),
    )
    local_aws_port: int = field(
        default=0,
        metadata=row(
            "TEMPAUDIO_LOCAL_AWS_PORT",
            INTEGER,
            "loopback port of the embedded endpoint (`0`: any free port)",
            minimum=0,
            maximum=65535,
        ),
    )
    retention: timedelta = field(
        default=timedelta(hours=24),
        metadata=row(
            "TEMPAUDIO_RETENTION",
            DURATION,
            "`env` shorthand: how long audio lives: its `ttl`, and its URL's lifetime up to"
            " SigV4's 7 days",
            shown="`24h`",
        ),
    )
    voices_dir: Path | None = field(
        default=None,
        metadata=row(
            "TEMPAUDIO_VOICES_DIR",
            PATH,
            "directory of extra Piper voices (`*.onnx` with `*.onnx.json`), served by file name",
        ),
    )
    model_cache: Path | None = field(
        default=None,
        metadata=row(
            "TEMPAUDIO_MODEL_CACHE",
            PATH,
            "where voice models are kept prepared (word timings patched in, weights apart to be"
            " mapped), made once per model; the image ships the bundled voice's",
            shown="`$XDG_CACHE_HOME/tempaudio/models`, else `~/.cache/tempaudio/models`",
        ),
    )
    voice_cache: Path | None = field(
        default=None,
        metadata=row(
            "TEMPAUDIO_VOICE_CACHE",
            PATH,
            "where declared voices' models and configs are kept once fetched and verified, by"
            " their SHA-256 (chart: an `emptyDir` with a size limit)",
            shown="`$XDG_CACHE_HOME/tempaudio/voices`, else `~/.cache/tempaudio/voices`",
        ),
    )
    max_resident_voices: int = field(
        default=2,
        metadata=row(
            "TEMPAUDIO_MAX_RESIDENT_VOICES",
            INTEGER,
            "declared voices loaded at once (each holds its sessions; see BENCHMARKS.md"
            ' "Voices" for the memory of one); the least recently used goes first',
            maximum=64,
        ),
    )
    default_voice: str = field(
        default=DEFAULT_VOICE,
        metadata=row("TEMPAUDIO_DEFAULT_VOICE", TEXT, "the voice of requests that name none"),
    )
    openai_voices: dict[str, str] = field(
        default_factory=dict,
        metadata=row(
            "TEMPAUDIO_OPENAI_VOICES",
            VOICE_MAP,
            "OpenAI voice names mapped to installed voices for `/v1/audio/speech`, e.g."
            " `alloy=en_US-joe-medium,nova=en_US-lessac-medium`; unmapped OpenAI names speak"
            " with the default voice",
        ),
    )
    max_text_chars: int = field(
        default=5000,
        metadata=row(
            "TEMPAUDIO_MAX_TEXT_CHARS",
            INTEGER,
            "longest accepted text, in characters",
            maximum=100_000,
        ),
    )
    max_body_bytes: int = field(
        default=65536,
        metadata=row(
            "TEMPAUDIO_MAX_BODY_BYTES",
            INTEGER,
            "largest accepted request body, in bytes",
            minimum=256,
            maximum=2**24,
        ),
    )
    synth_workers: int = field(
        default=_CORES,
        metadata=row(
            "TEMPAUDIO_SYNTH_WORKERS",
            INTEGER,
            "concurrent Piper syntheses",
            maximum=256,
            shown="cores the process may use (its CPU affinity)",
        ),
    )
    synth_queue: int = field(
        default=2 * _CORES,
        metadata=row(
            "TEMPAUDIO_SYNTH_QUEUE",
            INTEGER,
            "requests allowed to wait for a synthesis before `503 overloaded`",
            minimum=0,
            maximum=4096,
            derived=lambda _, read: 2 * read["synth_workers"],
            shown="2 x the workers",
        ),
    )
    onnx_intra_threads: int = field(
        default=1,
        metadata=row(
            "TEMPAUDIO_ONNX_THREADS",
            INTEGER,
            "onnxruntime threads of one synthesis while several run (best throughput)",
            maximum=256,
        ),
    )
    onnx_idle_threads: int = field(
        default=_CORES,
        metadata=row(
            "TEMPAUDIO_ONNX_IDLE_THREADS",
            INTEGER,
            "threads of a synthesis that starts while no other runs (lowest latency); `1` skips"
            " this second session and its memory",
            maximum=256,
            derived=lambda _, read: read["synth_workers"],
            shown="`TEMPAUDIO_SYNTH_WORKERS`",
        ),
    )
    max_chunk_phonemes: int = field(
        default=DEFAULT_MAX_CHUNK_PHONEMES,
        metadata=row(
            "TEMPAUDIO_MAX_CHUNK_PHONEMES",
            INTEGER,
            "longest piece of a sentence decoded at once (about 7 s of audio; fewer when"
            " `length_scale` is over 1): bounds the memory of a synthesis for any text",
            maximum=100_000,
        ),
    )
    max_audio_seconds: int = field(
        default=DEFAULT_MAX_AUDIO_SECONDS,
        metadata=row(
            "TEMPAUDIO_MAX_AUDIO_SECONDS",
            INTEGER,
            "most audio one request may produce; more is `422 audio_too_long`, before synthesis"
            " when a low estimate is over it, else as soon as the decoded audio is",
            maximum=3600,
        ),
    )
    repeat_cache_entries: int = field(
        default=10_000,
        metadata=row(
            "TEMPAUDIO_REPEAT_CACHE_ENTRIES",
            INTEGER,
            "entries of the repeat cache each replica keeps in memory (least recently used go"
            " first); `0` turns the cache off",
            minimum=0,
            maximum=10_000_000,
        ),
    )
    io_timeout_seconds: int = field(
        default=5,
        metadata=row(
            "TEMPAUDIO_IO_TIMEOUT",
            INTEGER,
            "seconds one S3 or DynamoDB operation may take, botocore's retries included (also"
            " its connect and read timeouts)",
            maximum=120,
        ),
    )
    body_timeout_seconds: int = field(
        default=10,
        metadata=row(
            "TEMPAUDIO_BODY_TIMEOUT",
            INTEGER,
            "seconds a request body may take to arrive, else `408 body_timeout`; a stream whose"
            " client stops reading this long ends",
            maximum=600,
        ),
    )
    max_connections: int = field(
        default=256,
        metadata=row(
            "TEMPAUDIO_MAX_CONNECTIONS",
            INTEGER,
            "connections served at once; more get uvicorn's plain-text `503`",
            maximum=100_000,
        ),
    )
    header_timeout_seconds: int = field(
        default=10,
        metadata=row(
            "TEMPAUDIO_HEADER_TIMEOUT",
            INTEGER,
            "seconds a request's headers may take to arrive (from the connection or the previous"
            " answer); then the connection is closed (`408` if part of a request came)",
            maximum=600,
        ),
    )
    max_header_bytes: int = field(
        default=32 * 1024,
        metadata=row(
            "TEMPAUDIO_MAX_HEADER_BYTES",
            INTEGER,
            "largest request head; larger gets `431 headers_too_large`",
            minimum=1024,
            maximum=1024 * 1024,
        ),
    )
    health_port: int = field(
        default=0,
        metadata=row(
            "TEMPAUDIO_HEALTH_PORT",
            INTEGER,
            "a second listener for `/healthz`, `/readyz` and `/metrics` only, so probes answer"
            " while client connections are exhausted; `0`: none (the chart sets 8081)",
            minimum=0,
            maximum=65535,
        ),
    )
    drain_seconds: int = field(
        default=20,
        metadata=row(
            "TEMPAUDIO_DRAIN_SECONDS",
            INTEGER,
            "after SIGTERM, seconds admitted requests may take before the rest get `503 shutting_down`",
            minimum=0,
            maximum=3600,
        ),
    )
    auth: str = field(
        default="none",
        metadata=row(
            "TEMPAUDIO_AUTH",
            CHOICE,
            "how callers prove who they are: `none` (anonymous) or `serviceaccount` (each"
            " synthesis and read carries a projected ServiceAccount token, checked with"
            " TokenReview)",
            choices=AUTH_MODES,
        ),
    )
    auth_audience: str = field(
        default="tempaudio",
        metadata=row(
            "TEMPAUDIO_AUTH_AUDIENCE", TEXT, "the audience callers' tokens must be minted for"
        ),
    )
    auth_cache_seconds: int = field(
        default=60,
        metadata=row(
            "TEMPAUDIO_AUTH_CACHE_SECONDS",
            INTEGER,
            "seconds a verdict on a token (never past its `exp`) and a namespace's labels are kept",
            maximum=3600,
        ),
    )
    audit_text: bool = field(
        default=False,
        metadata=row(
            "TEMPAUDIO_AUDIT_TEXT",
            BOOLEAN,
            "the audit line (logger `tempaudio.audit`) carries the request's text too",
        ),
    )
    console: bool = field(
        default=True,
        metadata=row(
            "TEMPAUDIO_CONSOLE",
            BOOLEAN,
            "serve the web console at `/`; `false`: the API only (chart `service.console.enabled`)",
        ),
    )
    console_hosts: tuple[str, ...] = field(
        default=DEFAULT_HOSTS,
        metadata=row(
            "TEMPAUDIO_CONSOLE_HOSTS",
            HOSTS,
            "the hosts (no port) a browser's request may name, on every route; others get"
            " `421 unknown_host` (DNS rebinding); requests without a browser's headers are not"
            " checked (chart `service.console.hosts`)",
        ),
    )
    jobs_queue_url: str | None = field(
        default=None,
        metadata=row(
            "TEMPAUDIO_JOBS_QUEUE_URL",
            OPTIONAL,
            "the SQS queue of job parts and callbacks, shared by every replica; unset: `POST"
            " /tts/jobs` answers `503 jobs_unavailable` (the embedded mode makes one)",
        ),
    )
    sqs_endpoint_url: str | None = field(
        default=None,
        metadata=row(
            "TEMPAUDIO_SQS_ENDPOINT_URL",
            OPTIONAL,
            "an SQS-compatible endpoint of the job queue; unset: AWS",
            derived=lambda _, read: read["s3_endpoint_url"],
            shown="`TEMPAUDIO_S3_ENDPOINT_URL`",
        ),
    )
    jobs_workers: int = field(
        default=1,
        metadata=row(
            "TEMPAUDIO_JOBS_WORKERS",
            INTEGER,
            "job parts this replica synthesizes at once, each only while no request of"
            " `/tts/sync`, `/tts/stream` or `/v1` waits for a synthesis worker (one: the"
            " other cores stay free for requests, and replicas add workers); `0`: none",
            minimum=0,
            maximum=64,
        ),
    )
    jobs_part_chars: int = field(
        default=1500,
        metadata=row(
            "TEMPAUDIO_JOBS_PART_CHARS",
            INTEGER,
            "the characters a job's part says at most, cut at sentence or paragraph ends (a"
            " part is one queue message, synthesized on one replica)",
            minimum=100,
            maximum=20_000,
        ),
    )
    jobs_visibility_seconds: int = field(
        default=60,
        metadata=row(
            "TEMPAUDIO_JOBS_VISIBILITY_SECONDS",
            INTEGER,
            "how long a part a replica works on stays invisible to the others between two"
            " extensions (a third of it apart): a replica that dies gives its part back after"
            " at most this",
            minimum=3,
            maximum=43_200,
        ),
    )
    jobs_max_receives: int = field(
        default=5,
        metadata=row(
            "TEMPAUDIO_JOBS_MAX_RECEIVES",
            INTEGER,
            "times a part may be received before its job fails `part_failed` (its workers"
            " died or gave it back each time)",
            maximum=100,
        ),
    )
    jobs_max_audio_seconds: int = field(
        default=36_000,
        metadata=row(
            "TEMPAUDIO_JOBS_MAX_AUDIO_SECONDS",
            INTEGER,
            "the longest audio a job may make, in seconds (each part is held to"
            " `TEMPAUDIO_MAX_AUDIO_SECONDS` too)",
            minimum=60,
            maximum=172_800,
        ),
    )
    webhook_secret: str | None = field(
        default=None,
        metadata=row(
            "TEMPAUDIO_WEBHOOK_SECRET",
            OPTIONAL,
            "the Standard Webhooks key job callbacks are signed with (`whsec_` and base64;"
            " chart: a Secret); unset: a job with a `callback_url` is refused",
        ),
    )
    callback_attempts: int = field(
        default=8,
        metadata=row(
            "TEMPAUDIO_CALLBACK_ATTEMPTS",
            INTEGER,
            "deliveries of a job's callback tried before it is given up",
            maximum=20,
        ),
    )
    callback_backoff_seconds: int = field(
        default=5,
        metadata=row(
            "TEMPAUDIO_CALLBACK_BACKOFF_SECONDS",
            INTEGER,
            "the wait before a callback's second attempt; it doubles after each (at most 15"
            " minutes, SQS's longest delay)",
            maximum=900,
        ),
    )
    callback_timeout_seconds: int = field(
        default=10,
        metadata=row(
            "TEMPAUDIO_CALLBACK_TIMEOUT_SECONDS",
            INTEGER,
            "how long one callback delivery may take, connection included",
            maximum=60,
        ),
    )
    host: str = field(
        default="127.0.0.1",
        metadata=row("TEMPAUDIO_HOST", TEXT, "listen address (`0.0.0.0` in containers; `--host`)"),
    )
    port: int = field(
        default=8080,
        metadata=row("TEMPAUDIO_PORT", INTEGER, "listen port (`--port`)", maximum=65535),
    )
    log_format: str = field(
        default="text",
        metadata=row(
            "TEMPAUDIO_LOG_FORMAT",
            CHOICE,
            "`text`, or `json`: one object a line (`--log-format`)",
            choices=LOG_FORMATS,
        ),
    )
    log_level: str = field(
        default="INFO", metadata=row("TEMPAUDIO_LOG_LEVEL", LOG_LEVEL, "the log level")
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServiceSettings:
        """Every variable validated, in the table's order; a bad one raises
        ``SettingsError`` naming it."""
        env, read = Env(environ), dict[str, Any]()
        for column in fields(cls):
            spec: Setting = column.metadata[SETTING]
            default = spec.derived(env, read) if spec.derived else _default(column.name)
            read[column.name] = spec.kind.read(env, spec, default)
        return cls(**read)

    def __post_init__(self) -> None:
        if self.health_port and self.health_port == self.port:
            raise ConfigError(
                f"TEMPAUDIO_HEALTH_PORT={self.health_port} is TEMPAUDIO_PORT too: the probes"
                " need a port of their own (or 0 for none)"
            )

    def with_endpoint(self, endpoint_url: str) -> ServiceSettings:
        return replace(
            self,
            s3_endpoint_url=endpoint_url,
            dynamodb_endpoint_url=endpoint_url,
            sqs_endpoint_url=endpoint_url,
        )

    def describe(self) -> dict[str, Any]:
        """The effective configuration for the start-up log line (holds no secrets)."""
        described: dict[str, Any] = {}
        for setting_field in fields(self):
            value = getattr(self, setting_field.name)
            if isinstance(value, timedelta):
                value = format_duration(value)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            if setting_field.name in SECRETS and value is not None:
                value = "(set)"
            described[setting_field.name] = value
        return described


# Settings whose values are never logged.
SECRETS = frozenset({"webhook_secret"})


def _default(name: str) -> Any:
    return getattr(_DEFAULTS, name)


def rows() -> list[tuple[str, Setting, Any]]:
    """The table: each field's name, its row and its default."""
    return [(f.name, f.metadata[SETTING], _default(f.name)) for f in fields(ServiceSettings)]


_DEFAULTS = ServiceSettings()
