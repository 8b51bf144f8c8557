"""KEDA as ``scripts/keda-crd.sh`` vendored it from one release: the ScaledObject CRD and the
trigger metadata its scalers read, each file's header naming the Go module version."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).parent / "fixtures"
CRD = FIXTURES / "keda.sh_scaledobjects.yaml"
SCALER_METADATA = FIXTURES / "keda-scaler-metadata.txt"
_MODULE = re.compile(r"github\.com/kedacore/keda/v2@(v[0-9][^ ,]*)")


@dataclass(frozen=True)
class ScalerMetadata:
    """The metadata names one scaler (a trigger type) reads, from its ``keda:"name=..."`` tags."""

    trigger: str
    names: frozenset[str]


def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD.read_text())
    return loaded


def openapi_schema(version: str = "v1alpha1") -> dict[str, Any]:
    """The CRD's openAPIV3Schema of one served version."""
    (served,) = [v for v in crd()["spec"]["versions"] if v["name"] == version]
    schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
    return schema


def scalers() -> dict[str, ScalerMetadata]:
    """Each vendored scaler by its trigger type."""
    names: dict[str, set[str]] = {}
    for line in SCALER_METADATA.read_text().splitlines():
        if line and not line.startswith("#"):
            trigger, name = line.split()
            names.setdefault(trigger, set()).add(name)
    return {trigger: ScalerMetadata(trigger, frozenset(n)) for trigger, n in names.items()}


def release(path: Path) -> str:
    """The KEDA release a fixture's header names."""
    header = takewhile(lambda line: line.startswith("#"), path.read_text().splitlines())
    found = _MODULE.search("\n".join(header))
    assert found, f"{path.name} names no github.com/kedacore/keda/v2 version"
    return found[1]
