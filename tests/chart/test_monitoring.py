"""The chart's alerts and dashboard: a PrometheusRule (files/alerts.yaml), a Grafana dashboard
ConfigMap (files/dashboard.json) and the operator's PodMonitor, each behind its value."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.chart.helm import CHART, by_kind, helm, one, render

MONITORING = (
    "--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
    "--api-versions", "monitoring.coreos.com/v1/PodMonitor",
    "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
)  # fmt: skip
BOTH = ("--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true")


def test_off_by_default() -> None:
    objects = render(*MONITORING)
    assert not by_kind(objects, "PrometheusRule")
    assert not by_kind(objects, "PodMonitor")
    assert not [o for o in by_kind(objects, "ConfigMap") if "grafana_dashboard" in str(o)]


def test_both_flags_render_the_rule_and_the_dashboard() -> None:
    objects = render(*BOTH, *MONITORING, "--set", "prometheusRule.labels.release=kps")
    rule = one(objects, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    names = {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert {"TempAudioCleanupFailing", "TempAudioCleanupOverdue", "TempAudioPolicyNotReady",
            "TempAudioStorageUnavailable", "TempAudioOverloaded", "TempAudioSlowFirstAudio",
            "TempAudioQuotaRefusalsSpiking", "TempAudioPolicyViewStale"} == names  # fmt: skip
    (board,) = [
        o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")
    ]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert board["metadata"]["namespace"] == "tempaudio"
    dashboard = json.loads(board["data"]["tempaudio.json"])
    assert dashboard["uid"] == "tempaudio"
    assert json.loads((CHART / "files" / "dashboard.json").read_text()) == dashboard
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert queries
    assert all("tempaudio_" in q for q in queries)


def test_the_rule_needs_its_crd_as_the_service_monitor_does() -> None:
    """Without the Prometheus Operator the kind does not exist: it would fail the install."""
    objects = render(*BOTH)
    assert not by_kind(objects, "PrometheusRule")
    assert by_kind(objects, "ConfigMap")  # a dashboard needs no CRD


def test_dashboard_labels_namespace_and_annotations_follow_values() -> None:
    objects = render(
        "--set", "grafanaDashboard.enabled=true", "--set", "grafanaDashboard.namespace=monitoring",
        "--set", "grafanaDashboard.labels.custom_dashboard=yes",
        "--set", "grafanaDashboard.annotations.grafana_folder=Audio",
    )  # fmt: skip
    (board,) = [
        o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")
    ]
    meta = board["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["custom_dashboard"] == "yes"
    assert meta["annotations"] == {"grafana_folder": "Audio"}


def test_operator_pod_monitor_scrapes_its_metrics_port() -> None:
    objects = render("--set", "operator.podMonitor.enabled=true", *MONITORING)
    monitor = one(objects, "PodMonitor")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    ports = one(objects, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0][
        "ports"
    ]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in ports
    assert (
        monitor["spec"]["selector"]["matchLabels"]
        == one(objects, "Deployment", "operator")["spec"]["selector"]["matchLabels"]
    )
    off = render("--set", "operator.podMonitor.enabled=true", "--set", "operator.metricsPort=0",
                 *MONITORING)  # fmt: skip
    assert not by_kind(off, "PodMonitor")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("prometheusRule.enable=true", "additional properties 'enable' not allowed"),
        ("prometheusRule.thresholds.firstAudioP95Secs=2", "firstAudioP95Secs"),
        ("prometheusRule.thresholds.overloadRatio=lots", "overloadRatio"),
        ("grafanaDashboard.enabled=maybe", "grafanaDashboard/enabled"),
        ("operator.podMonitor.intervals=1m", "intervals"),
    ],
)
def test_schema_rejects_typos_in_the_new_values(override: str, message: str) -> None:
    result = helm("template", "rel", str(CHART), "--set", override, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    "override",
    [
        "prometheusRule.thresholds.overloadRatio=1.5",
        "prometheusRule.thresholds.policyViewStaleRatio=1.01",
        "prometheusRule.thresholds.policyViewStaleRatio=0.0",
        "prometheusRule.thresholds.cleanupMissedRuns=0.5",
        "prometheusRule.thresholds.firstAudioP95Seconds=0.0",
        "prometheusRule.thresholds.overloadRatio=0",
    ],
)
def test_thresholds_given_as_strings_keep_their_bounds(override: str) -> None:
    """--set passes decimals as strings, which minimum and maximum do not bound."""
    result = helm("template", "rel", str(CHART), "--set", override, check=False)
    assert result.returncode != 0, override
    assert override.split("=")[0].rsplit(".", 1)[1] in result.stderr, result.stderr


@pytest.mark.parametrize(
    "override",
    [
        "prometheusRule.thresholds.overloadRatio=0.25",
        "prometheusRule.thresholds.policyViewStaleRatio=1.0",
        "prometheusRule.thresholds.cleanupMissedRuns=1.5",
        "prometheusRule.thresholds.firstAudioP95Seconds=0.75",
        "prometheusRule.thresholds.storageFailuresPerMinute=0.5",
    ],
)
def test_thresholds_within_their_bounds_render(override: str) -> None:
    value = override.split("=")[1]
    rule = one(render(*BOTH, *MONITORING, "--set", override), "PrometheusRule")
    assert value in json.dumps(rule["spec"])


def test_notes_warn_when_the_operator_alerts_cannot_fire(tmp_path: Path) -> None:
    """NOTES.txt as `helm install` prints it (helm template skips it: a copy of the chart
    includes it in a ConfigMap)."""
    chart = tmp_path / "tempaudio"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data: {notes: {{ include "tempaudio/templates/NOTES.txt" . | quote }}}\n'
    )

    def notes(*args: str) -> str:
        output = helm("template", "rel", str(chart), "--show-only", "templates/zz-notes.yaml",
                      *args).stdout  # fmt: skip
        text: str = yaml.safe_load(output)["data"]["notes"]
        return text

    warning = "operator.podMonitor.enabled is false"
    assert warning in notes("--set", "prometheusRule.enabled=true")
    assert "metricsPort is 0" in notes(
        "--set", "prometheusRule.enabled=true", "--set", "operator.metricsPort=0"
    )
    quiet = notes(
        "--set", "prometheusRule.enabled=true", "--set", "operator.podMonitor.enabled=true"
    )
    assert "WARNING" not in quiet
    assert "tts/sync" in quiet
    assert "WARNING" not in notes()
