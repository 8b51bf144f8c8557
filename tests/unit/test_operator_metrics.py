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
