"""TempAudioPolicy spec -> validated Policy (pure).

The CRD's schema and CEL rules reject most bad input at the API server; this repeats
the checks a schema cannot make (any cron schedule's period) and guards against
objects stored before a stricter schema, and policies no API server has seen (a file).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from . import storage
from .access import Access, parse_access
from .cron import CronError, longest_gap
from .durations import parse_retention
from .errors import PolicyError
from .jobs import JobsSpec, parse_jobs
from .lexicon_rules import lexicon_names
from .values import flag
from .voice_rules import default_voice, openai_voices, voice_names

# The policy's name is a label value on its CronJob and Jobs.
MAX_NAME = 63
# Kubernetes' own quantity grammar (the API server answers 500 to others in a CronJob).
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")


def _shrink(value: Any) -> str:
    if value not in {"Deferred", "Immediate"}:
        raise PolicyError(f"retentionShrink {str(value)[:20]!r} must be Deferred or Immediate")
    return str(value)


def _one_of(spec: Mapping[str, Any], name: str, choices: tuple[str, ...], at: str = "") -> str:
    """An enum field; the first choice is its default."""
    value = spec.get(name, choices[0])
    if value not in choices:
        raise PolicyError(f"{at}{name} {str(value)[:20]!r} must be one of {', '.join(choices)}")
    return str(value)


def _env(entries: Any) -> tuple[Mapping[str, Any], ...]:
    """jobTemplate.env; the TEMPAUDIO_* variables are the operator's, from the policy."""
    env = tuple(dict(e) for e in entries)
    for entry in env:
        if str(entry.get("name", "")).startswith("TEMPAUDIO_"):
            raise PolicyError(
                f"jobTemplate.env {entry['name']!r}: TEMPAUDIO_* variables are set by the operator"
            )
    return env


@dataclass(frozen=True)
class JobOverrides:
    image: str | None = None
    image_pull_policy: str | None = None
    service_account_name: str | None = None
    resources: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    node_selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tolerations: tuple[Mapping[str, Any], ...] = ()
    env: tuple[Mapping[str, Any], ...] = ()
    env_from: tuple[Mapping[str, Any], ...] = ()
    backoff_limit: int = 2
    active_deadline_seconds: int = 3600
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 3

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> JobOverrides:
        for kind, amounts in (spec.get("resources") or {}).items():
            for resource, amount in (amounts or {}).items():
                if not _QUANTITY.match(str(amount)):
                    raise PolicyError(
                        f"jobTemplate.resources.{kind}.{resource} {str(amount)[:40]!r} is not a"
                        " Kubernetes quantity such as 100m, 128Mi or 1"
                    )
        return cls(
            image=spec.get("image"),
            image_pull_policy=spec.get("imagePullPolicy"),
            service_account_name=spec.get("serviceAccountName"),
            resources=MappingProxyType(dict(spec.get("resources") or {})),
            node_selector=MappingProxyType(dict(spec.get("nodeSelector") or {})),
            tolerations=tuple(dict(t) for t in spec.get("tolerations") or ()),
            env=_env(spec.get("env") or ()),
            env_from=tuple(dict(e) for e in spec.get("envFrom") or ()),
            backoff_limit=int(spec.get("backoffLimit", 2)),
            active_deadline_seconds=int(spec.get("activeDeadlineSeconds", 3600)),
            successful_jobs_history_limit=int(spec.get("successfulJobsHistoryLimit", 3)),
            failed_jobs_history_limit=int(spec.get("failedJobsHistoryLimit", 3)),
        )


@dataclass(frozen=True)
class Policy:
    name: str
    namespace: str
    retention: timedelta
    retention_text: str
    schedule: str
    time_zone: str
    suspend: bool
    dry_run: bool
    bucket: str
    prefix: str
    region: str
    endpoint_url: str | None
    dynamodb_endpoint_url: str | None
    table: str
    ttl_attribute: str
    lifecycle_safety_net: bool
    job: JobOverrides
    # Deferred: a shorter retention waits until audio promised the longer one has expired.
    retention_shrink: str = "Deferred"
    # The service may reuse identical audio made before under this policy (a server-side copy).
    repeat_cache: bool = True
    # Whose: "Caller" (an authenticated caller's own only) or "Policy" (any caller's).
    repeat_cache_scope: str = "Caller"
    # The table's keys: "DateAudioId" (hash date, range audio_id) or "AudioId" (hash only).
    key_schema: str = "DateAudioId"
    # spec.clients, spec.readers, spec.quotas: who may use the policy (access.py).
    access: Access = field(default_factory=Access)
    # spec.lexicons: TempAudioLexicons of its namespace every request is said with, in order.
    lexicons: tuple[str, ...] = ()
    # spec.jobs: whether asynchronous jobs run, their longest text, where they call back.
    jobs: JobsSpec = field(default_factory=JobsSpec)
    # spec.voices: the voices its requests may use; None (unset): every voice served.
    voices: tuple[str, ...] | None = None
    # spec.defaultVoice: the voice of its requests that name none; None: the service's.
    default_voice: str | None = None
    # spec.openaiVoices: OpenAI voice name -> voice, over the service's mapping.
    openai_voices: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def writes_lifecycle_rule(self) -> bool:
        """A dry run writes nothing anywhere, the safety net included."""
        return self.lifecycle_safety_net and not self.dry_run

    @property
    def lifecycle_days(self) -> int:
        """S3 lifecycle expiration: whole days past the retention, plus one day of slack."""
        return math.ceil(self.retention / timedelta(days=1)) + 1

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], *, name: str, namespace: str) -> Policy:
        if len(name) > MAX_NAME:
            raise PolicyError(
                f"the policy's name has {len(name)} characters; at most {MAX_NAME} are supported"
                " (it labels the CronJob and its Jobs)"
            )
        where = spec.get("storage") or {}
        # spec.dynamodb; spec.metadata is its deprecated name (confusable with the object's).
        if spec.get("dynamodb") and spec.get("metadata"):
            raise PolicyError("set spec.dynamodb (spec.metadata is its deprecated name), not both")
        metadata = spec.get("dynamodb") or spec.get("metadata") or {}
        retention_text = str(spec.get("retention", "24h"))
        retention = parse_retention(retention_text)
        schedule = str(spec.get("schedule", "*/15 * * * *")).strip()
        if not schedule:
            raise PolicyError("schedule must not be empty")
        try:
            period = longest_gap(schedule)
        except CronError as error:
            raise PolicyError(str(error)) from None
        if retention < period:
            raise PolicyError(
                f"retention {retention_text} is shorter than the schedule's period ({period}):"
                " audio would outlive its retention by up to one period"
            )
        bucket = storage.check_bucket(str(where.get("bucket", "")))
        prefix = storage.check_prefix(str(where.get("prefix", storage.DEFAULT_PREFIX)))
        region = storage.check_region(str(where.get("region", storage.DEFAULT_REGION)))
        table = storage.check_table(str(metadata.get("table", "")))
        voices = voice_names(spec.get("voices"))
        return cls(
            name=name,
            namespace=namespace,
            retention=retention,
            retention_text=retention_text,
            schedule=schedule,
            time_zone=str(spec.get("timeZone", "Etc/UTC")),
            suspend=flag(spec, "suspend", default=False),
            dry_run=flag(spec, "dryRun", default=False),
            bucket=bucket,
            prefix=prefix,
            region=region,
            endpoint_url=where.get("endpointURL") or None,
            # Like the service's TEMPAUDIO_DYNAMODB_ENDPOINT_URL: the S3 endpoint unless set.
            dynamodb_endpoint_url=metadata.get("endpointURL") or where.get("endpointURL") or None,
            table=table,
            ttl_attribute=str(metadata.get("ttlAttribute", "ttl")),
            lifecycle_safety_net=flag(spec, "lifecycleSafetyNet", default=False),
            job=JobOverrides.from_spec(spec.get("jobTemplate") or {}),
            retention_shrink=_shrink(spec.get("retentionShrink", "Deferred")),
            repeat_cache=flag(spec, "repeatCache", default=True),
            repeat_cache_scope=_one_of(spec, "repeatCacheScope", ("Caller", "Policy")),
            key_schema=_one_of(metadata, "keySchema", tuple(storage.KEY_SCHEMAS), "dynamodb."),
            access=parse_access(spec),
            lexicons=lexicon_names(spec.get("lexicons")),
            jobs=parse_jobs(spec.get("jobs")),
            voices=voices,
            default_voice=default_voice(spec.get("defaultVoice"), voices),
            openai_voices=openai_voices(spec.get("openaiVoices"), voices),
        )
