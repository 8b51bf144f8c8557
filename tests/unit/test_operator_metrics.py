from datetime import UTC, datetime
from typing import Any

from prometheus_client import generate_latest

from tempaudio_operator.metrics import OperatorMetrics, epoch, ready_status, schedule_gap


def policy(status: str | None) -> dict[str, Any]:
    if status is None:
        return {}
    return {"status": {"conditions": [{"type": "Ready", "status": status}]}}


def test_policies_are_counted_by_ready_status_with_bounded_labels() -> None:
    metrics = OperatorMetrics.create()
    metrics.count_policies([policy("True"), policy("True"), policy("False"), policy(None)])
    text = generate_latest(metrics.registry).decode()
    assert 'tempaudio_operator_policies{ready="True"} 2.0' in text
    assert 'tempaudio_operator_policies{ready="False"} 1.0' in text
    assert 'tempaudio_operator_policies{ready="Unknown"} 1.0' in text
    # Every outcome is exported from the start, at zero.
    assert 'tempaudio_operator_reconciles_total{outcome="error"} 0.0' in text


def test_ready_status_of_odd_objects() -> None:
    assert ready_status({"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}}) == (
        "Unknown"
    )


def listed(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "team",
            "name": name,
            "creationTimestamp": "2026-06-15T00:00:00Z",
        },
        "spec": {"schedule": "*/15 * * * *"},
        **fields,
    }


def samples(metrics: OperatorMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name
    }


def test_each_policy_has_its_readiness_schedule_and_last_cleanup() -> None:
    metrics = OperatorMetrics.create()
    ran = {
        "conditions": [{"type": "Ready", "status": "True"}],
        "lastCleanup": {"completionTime": "2026-06-15T01:00:00Z", "succeeded": False},
    }
    metrics.observe_policies([
        listed("ran", status=ran),
        listed("new", spec={"schedule": "@hourly", "suspend": False}),
        listed("paused", spec={"schedule": "*/15 * * * *", "suspend": True}),
    ])  # fmt: skip
    ready = samples(metrics, "tempaudio_operator_policy_ready")
    assert ready == {
        (("policy", "team/ran"),): 1.0,
        (("policy", "team/new"),): 0.0,
        (("policy", "team/paused"),): 0.0,
    }
    assert samples(metrics, "tempaudio_operator_policy_cleanup_interval_seconds") == {
        (("policy", "team/ran"),): 900.0,
        (("policy", "team/new"),): 3600.0,  # none while suspended
    }
    # The last run's end, or the policy's creation before its first.
    assert (
        samples(metrics, "tempaudio_operator_policy_last_cleanup_timestamp_seconds")[
            (("policy", "team/ran"),)
        ]
        == datetime(2026, 6, 15, 1, tzinfo=UTC).timestamp()
    )
    assert (
        samples(metrics, "tempaudio_operator_policy_last_cleanup_timestamp_seconds")[
            (("policy", "team/new"),)
        ]
        == datetime(2026, 6, 15, tzinfo=UTC).timestamp()
    )
    assert samples(metrics, "tempaudio_operator_policy_last_cleanup_succeeded") == {
        (("policy", "team/ran"),): 0.0
    }
    # Counted from zero for every policy, so the first failure is an increase.
    assert (
        samples(metrics, "tempaudio_operator_policy_cleanups_total")[
            (("policy", "team/new"), ("result", "failed"))
        ]
        == 0.0
    )


def test_a_finished_cleanup_is_counted_for_its_policy_and_a_gone_policy_takes_its_series() -> None:
    metrics = OperatorMetrics.create()
    metrics.observe_policies([listed("audio"), listed("other")])
    finished = {"jobName": "audio-cleanup-1", "completionTime": "2026-06-15T02:00:00Z",
                "succeeded": True, "deleted": 7}  # fmt: skip
    metrics.cleanup_finished("team/audio", finished)
    assert (
        samples(metrics, "tempaudio_operator_policy_cleanups_total")[
            (("policy", "team/audio"), ("result", "succeeded"))
        ]
        == 1.0
    )
    assert samples(metrics, "tempaudio_operator_policy_last_cleanup_succeeded") == {
        (("policy", "team/audio"),): 1.0
    }
    assert samples(metrics, "tempaudio_operator_cleanups_total")[(("result", "succeeded"),)] == 1
    assert samples(metrics, "tempaudio_operator_cleanup_deleted_objects_total")[()] == 7
    # A reconcile's verdict wins over the status it read.
    metrics.observe_policy(listed("audio"), ready=True)
    assert samples(metrics, "tempaudio_operator_policy_ready")[(("policy", "team/audio"),)] == 1
    metrics.observe_policies([listed("other")])
    for name in ("tempaudio_operator_policy_ready", "tempaudio_operator_policy_cleanups_total",
                 "tempaudio_operator_policy_last_cleanup_succeeded",
                 "tempaudio_operator_policy_last_cleanup_timestamp_seconds",
                 "tempaudio_operator_policy_cleanup_interval_seconds"):  # fmt: skip
        assert all(("policy", "team/audio") not in labels for labels in samples(metrics, name))
    metrics.forget_policy("team/unknown")  # never seen: nothing to remove, no error


def test_odd_timestamps_and_schedules_export_nothing() -> None:
    assert epoch(None) is None
    assert epoch("yesterday") is None
    assert schedule_gap("not cron") is None
    assert schedule_gap(None) is None


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class Clock:
    def __init__(self, now: str) -> None:
        self.now = at(now)

    def __call__(self) -> float:
        return self.now


def versioned(name: str, generation: int, observed: int, **spec: Any) -> dict[str, Any]:
    body = listed(name, spec=spec)
    body["metadata"]["generation"] = generation
    body["status"] = {
        "observedGeneration": observed,
        "conditions": [{"type": "Ready", "status": "True"}],
        "lastCleanup": {"completionTime": "2026-06-15T01:00:00Z", "succeeded": True},
    }
    return body


def last_time(metrics: OperatorMetrics, name: str = "audio") -> float:
    series = samples(metrics, "tempaudio_operator_policy_last_cleanup_timestamp_seconds")
    return series[(("policy", f"team/{name}"),)]


def test_a_new_schedule_or_unsuspending_gets_its_full_intervals_before_overdue() -> None:
    clock = Clock("2026-06-20T00:00:00+00:00")
    metrics = OperatorMetrics.create(clock=clock)
    metrics.observe_policy(versioned("audio", 1, 1, schedule="@daily", suspend=True))
    assert last_time(metrics) == at("2026-06-15T01:00:00+00:00")  # seen first: as it was
    clock.now += 60
    metrics.observe_policy(versioned("audio", 1, 1, schedule="@daily", suspend=True))
    assert last_time(metrics) == at("2026-06-15T01:00:00+00:00")  # nothing changed
    clock.now = at("2026-06-20T06:00:00+00:00")
    metrics.observe_policy(versioned("audio", 2, 1, schedule="@daily", suspend=False))
    assert last_time(metrics) == clock.now  # un-suspended now: a day from now, not 5 ago
    clock.now += 600
    metrics.observe_policy(versioned("audio", 2, 2, schedule="@daily"))
    assert last_time(metrics) == at("2026-06-20T06:00:00+00:00")
    metrics.cleanup_finished("team/audio", {"completionTime": "2026-06-21T00:01:00Z",
                                            "succeeded": True})  # fmt: skip
    assert last_time(metrics) == at("2026-06-21T00:01:00+00:00")
    clock.now = at("2026-06-21T12:00:00+00:00")
    metrics.observe_policy(versioned("audio", 3, 2, schedule="*/15 * * * *"))
    assert last_time(metrics) == clock.now  # tightened: 15 minutes from now


def test_a_spec_the_operator_has_yet_to_apply_counts_from_first_sight() -> None:
    """The schedule may have changed while the operator was away (a restart)."""
    clock = Clock("2026-06-20T00:00:00+00:00")
    metrics = OperatorMetrics.create(clock=clock)
    metrics.observe_policies([versioned("audio", 2, 1, schedule="*/15 * * * *"),
                              versioned("other", 2, 2, schedule="*/15 * * * *")])  # fmt: skip
    assert last_time(metrics) == clock.now
    assert last_time(metrics, "other") == at("2026-06-15T01:00:00+00:00")


def test_an_older_body_does_not_roll_back_the_last_cleanup() -> None:
    metrics = OperatorMetrics.create(clock=Clock("2026-06-15T00:00:00+00:00"))
    metrics.cleanup_finished("team/audio", {"completionTime": "2026-06-15T03:00:00Z",
                                            "succeeded": False})  # fmt: skip
    stale = versioned("audio", 1, 1, schedule="*/15 * * * *")  # lastCleanup at 01:00, succeeded
    metrics.observe_policies([stale])
    assert last_time(metrics) == at("2026-06-15T03:00:00+00:00")
    succeeded = samples(metrics, "tempaudio_operator_policy_last_cleanup_succeeded")
    assert succeeded == {(("policy", "team/audio"),): 0.0}
    newer = versioned("audio", 1, 1, schedule="*/15 * * * *")
    newer["status"]["lastCleanup"] = {"completionTime": "2026-06-15T04:00:00Z", "succeeded": True}
    metrics.observe_policy(newer)
    assert last_time(metrics) == at("2026-06-15T04:00:00+00:00")
    succeeded = samples(metrics, "tempaudio_operator_policy_last_cleanup_succeeded")
    assert succeeded == {(("policy", "team/audio"),): 1.0}


def test_a_listing_neither_forgets_newer_policies_nor_revives_deleted_ones() -> None:
    metrics = OperatorMetrics.create()
    metrics.observe_policies([listed("old"), listed("doomed")])
    listed_at = metrics.listing_started()
    metrics.observe_policy(listed("new"))  # a handler, while the listing was under way
    metrics.forget_policy("team/doomed")  # deleted meanwhile
    metrics.observe_policies([listed("old"), listed("doomed")], listed_at=listed_at)
    ready = samples(metrics, "tempaudio_operator_policy_ready")
    assert set(ready) == {(("policy", "team/old"),), (("policy", "team/new"),)}
    # The next listing is the truth again.
    metrics.observe_policies([listed("old"), listed("doomed")])
    ready = samples(metrics, "tempaudio_operator_policy_ready")
    assert set(ready) == {(("policy", "team/old"),), (("policy", "team/doomed"),)}
