"""Run the helm binary built by scripts/k8s-binaries.sh."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.controlplane import REPO, binaries_dir

CHART = REPO / "charts" / "tempaudio"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def helm(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    home = Path(os.environ.get("TMPDIR", "/tmp")) / "tempaudio-helm-home"
    helm_env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        **(env or {}),
    }
    result = subprocess.run(
        [str(binaries_dir() / "helm"), *args],
        capture_output=True, text=True, env=helm_env, timeout=300, check=False,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


def render(*args: str) -> list[dict[str, Any]]:
    output = helm("template", "rel", str(CHART), "--namespace", "tempaudio", *args).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        o for o in by_kind(objects, kind)
        if component is None
        or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]  # fmt: skip
    assert len(found) == 1, f"{len(found)} {kind} objects for {component}"
    return found[0]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}
