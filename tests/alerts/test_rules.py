"""The chart's alerts under promtool: `check rules` on what the chart renders, and `test rules`
with fixtures in which every alert fires and each also stays quiet."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.alerts.rules import alerts, rendered_objects, rule_groups, tool, write

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed: run `make test-packages` as root (Debian prometheus)",
)
FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATE = re.compile(r"\{\{\s*\$(labels\.(\w+)|value)[^}]*\}\}")


def expanded(text: str, labels: dict[str, str], value: str | None) -> str:
    """An annotation as Prometheus renders it, for the templates the rules use."""

    def put(match: re.Match[str]) -> str:
        if match.group(2) is not None:
            return labels[match.group(2)]
        assert value is not None, f"the fixture needs the `value` shown in {text!r}"
        return value

    done = TEMPLATE.sub(put, text)
    assert "{{" not in done, done
    return done


def promtool_tests(rules: dict[str, Any]) -> dict[str, Any]:
    """The fixture, each expected alert with its annotations from the rule itself."""
    fixture = yaml.safe_load((FIXTURES / "alerts_test.yaml").read_text())
    by_name = alerts(rules)
    for case in fixture["tests"]:
        for check in case["alert_rule_test"]:
            for expected in check["exp_alerts"]:
                value = expected.pop("value", None)
                expected["exp_annotations"] = {
                    key: expanded(text, expected["exp_labels"], value)
                    for key, text in by_name[check["alertname"]]["annotations"].items()
                }
    return fixture


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_the_rendered_rules_pass_promtool_check(tmp_path: Path) -> None:
    write(tmp_path / "rules.yaml", rule_groups())
    result = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_every_alert_fires_and_stays_quiet_in_promtool_tests(tmp_path: Path) -> None:
    rules = rule_groups()
    write(tmp_path / "rules.yaml", rules)
    fixture = promtool_tests(rules)
    write(tmp_path / "alerts_test.yaml", fixture)
    result = promtool("test", "rules", "alerts_test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = [c for case in fixture["tests"] for c in case["alert_rule_test"]]
    assert {c["alertname"] for c in checks if c["exp_alerts"]} == set(alerts(rules))
    assert {c["alertname"] for c in checks if not c["exp_alerts"]} == set(alerts(rules))


def test_a_broken_expectation_fails_promtool(tmp_path: Path) -> None:
    """The fixtures can fail: an alert expected where none fires is reported."""
    rules = rule_groups()
    write(tmp_path / "rules.yaml", rules)
    fixture = promtool_tests(rules)
    quiet = next(c for case in fixture["tests"] for c in case["alert_rule_test"]
                 if not c["exp_alerts"])  # fmt: skip
    quiet["exp_alerts"] = [{"exp_labels": {"severity": "warning"}}]
    write(tmp_path / "alerts_test.yaml", fixture)
    result = promtool("test", "rules", "alerts_test.yaml", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert quiet["alertname"] in result.stdout + result.stderr


def test_every_alert_says_what_it_means_and_what_to_check() -> None:
    for name, rule in alerts(rule_groups()).items():
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, name
        assert "kubectl" in annotations["runbook"], name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        minutes = int(rule["for"].removesuffix("m"))
        assert minutes >= 2, f"{name}: for {rule['for']} would flap"


def test_thresholds_come_from_values() -> None:
    rules = alerts(rule_groups(
        "--set", "prometheusRule.thresholds.firstAudioP95Seconds=3.5",
        "--set", "prometheusRule.thresholds.cleanupMissedRuns=4",
    ))  # fmt: skip
    assert rules["TempAudioSlowFirstAudio"]["expr"].endswith("> 3.5")
    assert "* 4 and" in rules["TempAudioCleanupOverdue"]["expr"]
    assert "4 times" in rules["TempAudioCleanupOverdue"]["annotations"]["description"]
    defaults = yaml.safe_dump(rule_groups())
    assert "${" not in defaults
    assert rules["TempAudioSlowFirstAudio"]["expr"].startswith("histogram_quantile(0.95")


def test_runbooks_name_the_release_objects() -> None:
    """kubectl commands name the Deployments and ServiceAccount the chart renders."""
    objects = rendered_objects("--set", "fullnameOverride=audio")
    deployments = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    accounts = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    runbooks = " ".join(
        r["annotations"]["runbook"] for g in rule["spec"]["groups"] for r in g["rules"]
    )
    named = set(re.findall(r"deploy/([\w.-]+)", runbooks))
    assert named == {"audio-service", "audio-operator"} <= deployments
    (account,) = re.findall(r"serviceaccount:tempaudio:([\w.-]+)", runbooks)
    assert account in accounts
    assert "RELEASE" not in runbooks
    assert "urlopen" not in runbooks


def test_the_readiness_one_liner_prints_the_failing_check(tmp_path: Path) -> None:
    """A 503 from /readyz is what the runbook is for: its body must be shown."""
    body = json.dumps({"status": "not_ready", "problems": {"s3": "S3 is unavailable"}})

    class NotReady(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_: object) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), NotReady) as server:
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        rules = alerts(rule_groups("--set", f"service.healthPort={port}"))
        runbook = rules["TempAudioStorageUnavailable"]["annotations"]["runbook"]
        (script,) = re.findall(r'python -c\s+"([^"]+)"', runbook)
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
            check=False,
        )  # fmt: skip
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert "503" in result.stdout
    assert "S3 is unavailable" in result.stdout
