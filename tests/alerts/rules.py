"""The chart's alerts and dashboard as the tests read them: rendered by helm with the default
thresholds, and the expressions in them, with the metric names they read."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import helm

MONITORING = ("--api-versions", "monitoring.coreos.com/v1/PrometheusRule")
# What Grafana puts in for the dashboard's variables, for Prometheus itself to run them.
VARIABLES = {"$__rate_interval": "1m", "$namespace": ".*"}
METRIC = re.compile(r"\btempaudio_[a-z0-9_]+\b")
COMPARISONS = (">=", "<=", "==", "!=", ">", "<")


def tool(name: str) -> str:
    """Debian's prometheus package (scripts/test-packages.sh installs it as root)."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(
            f"{name} is not installed: run `make test-packages` as root (Debian prometheus)"
        )
    return found


def rendered_objects(*args: str) -> list[dict[str, Any]]:
    from tests.chart.helm import CHART

    output = helm(
        "template", "rel", str(CHART), "--namespace", "tempaudio", *MONITORING,
        "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true", *args,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(output) if doc]


def rule_groups(*args: str) -> dict[str, Any]:
    """The PrometheusRule's spec: a Prometheus rules file ({"groups": [...]})."""
    (rule,) = [o for o in rendered_objects(*args) if o["kind"] == "PrometheusRule"]
    spec: dict[str, Any] = rule["spec"]
    return spec


def alerts(groups: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in groups["groups"] for r in group["rules"] if "alert" in r}


def dashboard() -> dict[str, Any]:
    (config_map,) = [o for o in rendered_objects() if o["kind"] == "ConfigMap"]
    loaded: dict[str, Any] = json.loads(config_map["data"]["tempaudio.json"])
    return loaded


def panel_expressions(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query, with Grafana's variables put in."""
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expression = target["expr"]
            for name, value in VARIABLES.items():
                expression = expression.replace(name, value)
            found.append((panel["title"], expression))
    return found


def _top_level(expression: str) -> list[int]:
    """Indexes of the characters outside brackets, braces and quotes."""
    found, depth, quoted = [], 0, False
    for index, char in enumerate(expression):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "([{":
            depth += 1
        elif not quoted and char in ")]}":
            depth -= 1
        elif not quoted and depth == 0:
            found.append(index)
    return found


def branches(expression: str) -> list[str]:
    """The operands of an expression's top-level ``or`` (``a > 1 or b == 0`` -> both)."""
    parts, start = [], 0
    for index in _top_level(expression):
        word = expression[index : index + 4]
        if index >= start and word[:3].lower() == " or" and word[3:4].isspace():
            parts.append(expression[start:index].strip())
            start = index + 4
    return [*parts, expression[start:].strip()]


def left_side(expression: str) -> str:
    """An alert's expression without its threshold: what precedes its first comparison
    outside brackets, braces and quotes (``a > b * 2 and c == 1`` -> ``a``)."""
    for index in _top_level(expression):
        for operator in COMPARISONS:
            if expression.startswith(operator, index):
                return expression[:index].strip()
    return expression.strip()


def metrics_named(expression: str) -> set[str]:
    """tempaudio metric names an expression reads (histogram series by their family)."""
    return set(METRIC.findall(expression))


def write(path: Path, content: Any) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False, width=1000))
    return path
