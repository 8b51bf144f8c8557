"""The declared schema (``tempaudiopolicy.yaml``) with the API's own rules filled in, and the
check a policy file gets that the API server gives a CRD: no unknown fields (pure)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from importlib.resources import files
from typing import Any

import yaml

from . import durations, storage
from .errors import PolicyError

# Where the API's rules meet the schema: (path of properties, what to set).
_RULES: dict[tuple[str, ...], dict[str, Any]] = {
    ("retention",): {"pattern": durations.PATTERN},
    ("storage", "prefix"): {"pattern": storage.PREFIX_PATTERN, "default": storage.DEFAULT_PREFIX},
    ("storage", "region"): {"pattern": storage.REGION_PATTERN, "default": storage.DEFAULT_REGION},
}


@functools.cache
def _declaration() -> Mapping[str, Any]:
    text = files("tempaudio_api").joinpath("tempaudiopolicy.yaml").read_text()
    declared: dict[str, Any] = yaml.safe_load(text)
    spec = declared["openAPIV3Schema"]["properties"]["spec"]
    for path, rules in _RULES.items():
        node = spec
        for name in path:
            node = node["properties"][name]
        node.update(rules)
    return declared


def declaration() -> dict[str, Any]:
    """``{"additionalPrinterColumns": [...], "openAPIV3Schema": {...}}`` (a fresh copy)."""
    return copy.deepcopy(dict(_declaration()))


def spec_schema() -> dict[str, Any]:
    schema: dict[str, Any] = declaration()["openAPIV3Schema"]["properties"]["spec"]
    return schema


def unknown_fields(value: Any, schema: Mapping[str, Any], path: str = "spec") -> Iterator[str]:
    """The paths of fields ``schema`` does not declare, as a strict API server names them."""
    if isinstance(value, Mapping) and schema.get("type") == "object":
        declared = schema.get("properties")
        if declared is None or schema.get("x-kubernetes-preserve-unknown-fields"):
            extra = schema.get("additionalProperties")
            if isinstance(extra, Mapping):
                for key, item in value.items():
                    yield from unknown_fields(item, extra, f"{path}.{key}")
            return
        for key, item in value.items():
            if key not in declared:
                yield f"{path}.{key}"
            else:
                yield from unknown_fields(item, declared[key], f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from unknown_fields(item, schema["items"], f"{path}[{index}]")


def check_fields(spec: Mapping[str, Any]) -> None:
    """``PolicyError`` naming every field the schema does not declare (a typo, a field of
    another version): kubectl's strict field validation, for policies no API server reads."""
    unknown = sorted(unknown_fields(spec, spec_schema()))
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise PolicyError(
            f"unknown field(s) {shown}: see the TempAudioPolicy schema (kubectl explain tap.spec)"
        )
