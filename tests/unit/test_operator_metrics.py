from typing import Any

from prometheus_client import generate_latest

from tempaudio_operator.metrics import OperatorMetrics, ready_status


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
