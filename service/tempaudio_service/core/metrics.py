"""Prometheus metrics, one registry per app so tests can build many apps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
# Time to first audio: finer below 2 s, where the alert's default threshold sits.
_FIRST_AUDIO_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 8, 16)


_JOB_BUCKETS = (0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


@dataclass(frozen=True)
class JobMetrics:
    """``tempaudio_jobs_*``: what this replica did for the jobs (every replica works them)."""

    submitted: Counter
    finished: Counter
    parts: Counter
    parts_running: Gauge
    part_seconds: Histogram
    assembly_seconds: Histogram
    job_seconds: Histogram
    callbacks: Counter
    queue_messages: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> JobMetrics:
        return cls(
            submitted=Counter(
                "tempaudio_jobs_submitted",
                "Jobs queued by this replica (POST /tts/jobs), by policy.",
                ["policy"],
                registry=registry,
            ),
            finished=Counter(
                "tempaudio_jobs_finished",
                "Jobs that ended on this replica, by policy and status (completed, failed,"
                " cancelled).",
                ["policy", "status"],
                registry=registry,
            ),
            parts=Counter(
                "tempaudio_jobs_parts",
                "Job parts this replica handled, by outcome: done, repeated (done before, by"
                " a replica that died before it said so), failed, given_back (retried later),"
                " dropped (its job had ended).",
                ["outcome"],
                registry=registry,
            ),
            parts_running=Gauge(
                "tempaudio_jobs_running_parts",
                "Job parts this replica is synthesizing now.",
                registry=registry,
            ),
            part_seconds=Histogram(
                "tempaudio_jobs_part_seconds",
                "Seconds from a part's receipt to its audio stored, waits for requests included.",
                buckets=_JOB_BUCKETS,
                registry=registry,
            ),
            assembly_seconds=Histogram(
                "tempaudio_jobs_assembly_seconds",
                "Seconds this replica took to join a job's parts into its audio and item.",
                buckets=_JOB_BUCKETS,
                registry=registry,
            ),
            job_seconds=Histogram(
                "tempaudio_jobs_seconds",
                "Seconds from a job's submission to its end, for the jobs this replica ended.",
                buckets=_JOB_BUCKETS,
                registry=registry,
            ),
            callbacks=Counter(
                "tempaudio_jobs_callbacks",
                "Job callback deliveries by outcome: delivered, retried, given_up, refused"
                " (an address no prefix allows).",
                ["outcome"],
                registry=registry,
            ),
            queue_messages=Gauge(
                "tempaudio_jobs_queue_messages",
                "The job queue's messages as SQS counts them (approximate), by state: waiting"
                " or in_flight; sampled by each replica's workers.",
                ["state"],
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    request_seconds: Histogram
    synthesis_seconds: Histogram
    audio_seconds: Counter
    queue_depth: Gauge
    in_flight: Gauge
    rejected: Counter
    storage_failures: Counter
    storage_ready: Gauge
    stored: Counter
    policy_refusals: Counter
    streams: Counter
    repeat_cache: Counter
    auth_lookups: Counter
    access_refusals: Counter
    quota_refusals: Counter
    first_audio_seconds: Histogram
    policy_view_age: Gauge
    policy_view_max_age: Gauge
    jobs: JobMetrics

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "tempaudio_requests",
                "HTTP requests by route, method and status.",
                ["route", "method", "status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "tempaudio_request_seconds",
                "HTTP request latency by route.",
                ["route"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            synthesis_seconds=Histogram(
                "tempaudio_synthesis_seconds",
                "Time spent in Piper per request.",
                ["voice"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            audio_seconds=Counter(
                "tempaudio_audio_seconds",
                "Seconds of audio synthesized.",
                ["voice"],
                registry=registry,
            ),
            queue_depth=Gauge(
                "tempaudio_synthesis_queue_depth",
                "Requests waiting for a synthesis slot.",
                registry=registry,
            ),
            in_flight=Gauge(
                "tempaudio_synthesis_in_flight",
                "Syntheses running now.",
                registry=registry,
            ),
            rejected=Counter(
                "tempaudio_overload_rejections",
                "Requests answered 503 because the synthesis queue was full.",
                registry=registry,
            ),
            storage_failures=Counter(
                "tempaudio_storage_failures",
                "S3 or DynamoDB calls that failed or ran out of their budget, by operation"
                " (reads, writes, quota counters and the readiness checks alike).",
                ["operation"],
                registry=registry,
            ),
            storage_ready=Gauge(
                "tempaudio_storage_ready",
                "1 when the readiness check of the default policy's storage (check: s3,"
                " dynamodb) last passed, 0 when it failed; set by each check /readyz runs.",
                ["check"],
                registry=registry,
            ),
            # Bounded: only served policies (at most TEMPAUDIO_MAX_POLICIES) become labels.
            stored=Counter(
                "tempaudio_audio_stored",
                "Audio files stored, by TempAudioPolicy (namespace/name).",
                ["policy"],
                registry=registry,
            ),
            policy_refusals=Counter(
                "tempaudio_policy_refusals",
                "Requests refused for their policy: unknown_policy, policy_not_ready, policy_stale.",
                ["reason"],
                registry=registry,
            ),
            streams=Counter(
                "tempaudio_streams",
                "Streams that ended, by outcome: complete, client_gone (disconnected or stopped"
                " reading), refused (before the first byte: answered as JSON) or cut (after it:"
                " shut down, policy withdrawn, storage failed).",
                ["outcome"],
                registry=registry,
            ),
            repeat_cache=Counter(
                "tempaudio_repeat_cache",
                "POST /tts/sync against the repeat cache: hit (a copy of earlier audio), miss"
                " (synthesized), bypass (opted out by the request or the policy).",
                ["result"],
                registry=registry,
            ),
            auth_lookups=Counter(
                "tempaudio_auth_lookups",
                "Caller checks by result: cached, reviewed (TokenReview), refused, missing"
                " (no token), unavailable (the API did not answer).",
                ["result"],
                registry=registry,
            ),
            access_refusals=Counter(
                "tempaudio_access_refusals",
                "Authenticated requests refused by a policy's clients or readers (403/404).",
                ["policy", "rule"],
                registry=registry,
            ),
            quota_refusals=Counter(
                "tempaudio_quota_refusals",
                "Requests refused by a policy's quotas (429).",
                ["policy", "quota"],
                registry=registry,
            ),
            first_audio_seconds=Histogram(
                "tempaudio_stream_first_audio_seconds",
                "Streams that sent audio: seconds from the request, read and checked, to its"
                " first chunk of audio handed to the server, the wait for a synthesis slot"
                " included; streams refused before any audio are not counted.",
                buckets=_FIRST_AUDIO_BUCKETS,
                registry=registry,
            ),
            policy_view_age=Gauge(
                "tempaudio_policy_view_age_seconds",
                "Seconds since the service last heard from its policy source (the API server);"
                " 0 for policies declared in a file or the environment, +Inf before any contact.",
                registry=registry,
            ),
            policy_view_max_age=Gauge(
                "tempaudio_policy_view_max_age_seconds",
                "TEMPAUDIO_POLICY_MAX_STALENESS: past this age no policy is served.",
                registry=registry,
            ),
            jobs=JobMetrics.create(registry),
        )

    def follow_policy_view(self, age: Callable[[], float], max_age: float) -> None:
        """Export the policy view's age, read at each scrape."""
        self.policy_view_age.set_function(age)
        self.policy_view_max_age.set(max_age)
