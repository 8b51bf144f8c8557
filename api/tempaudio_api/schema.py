"""The declared schemas (``tempaudiopolicy.yaml``, ``tempaudiolexicon.yaml``) with the API's
own rules filled in, and the check a policy file gets that the API server gives a CRD: no
unknown fields (pure)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from importlib.resources import files
from typing import Any

import yaml

from . import durations, jobs, lexicon_rules, phonetics, storage
from .errors import PolicyError


def _cel_string(text: str) -> str:
    """``text`` as a CEL string literal (a regular expression's backslashes kept)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# A callback URL prefix's rules the pattern cannot say clearly, each with its reason.
_CALLBACK_PREFIX_RULES = [
    {
        "rule": f"self.matches({_cel_string(jobs.TEXT_PATTERN)})",
        "message": "a callback URL prefix is printable ASCII without backslashes or spaces"
        " (an international host name in its xn-- form)",
    },
    {
        "rule": f"self.matches({_cel_string(jobs.AUTHORITY_PATTERN)})",
        "message": "a callback URL prefix names a host (letters, digits, '.', '-', '_', or an"
        " [IPv6] address) and at most a port from 1 to 65535",
    },
    {
        "rule": f"!self.matches({_cel_string(jobs.REFUSED_PATH_PATTERN)})",
        "message": "a callback URL prefix's path has no '.' or '..' segment, no %2F or %5C,"
        " and a '%' only before two hex digits",
    },
]
# Where the API's rules meet the schema: (path of properties, what to set).
_RULES: dict[tuple[str, ...], dict[str, Any]] = {
    ("retention",): {"pattern": durations.PATTERN},
    ("storage", "prefix"): {"pattern": storage.PREFIX_PATTERN, "default": storage.DEFAULT_PREFIX},
    ("storage", "region"): {"pattern": storage.REGION_PATTERN, "default": storage.DEFAULT_REGION},
    ("lexicons",): {"maxItems": lexicon_rules.MAX_LEXICONS},
    ("lexicons", "[]"): {
        "pattern": lexicon_rules.NAME_PATTERN,
        "maxLength": lexicon_rules.MAX_NAME,
    },
    ("jobs", "maxCharacters"): {
        "maximum": jobs.MAX_JOB_CHARACTERS,
        "default": jobs.MAX_JOB_CHARACTERS,
    },
    ("jobs", "callbackUrlPrefixes"): {"maxItems": jobs.MAX_CALLBACK_PREFIXES},
    ("jobs", "callbackUrlPrefixes", "[]"): {
        "maxLength": jobs.MAX_CALLBACK_PREFIX,
        "pattern": jobs.CALLBACK_PREFIX_PATTERN,
        "x-kubernetes-validations": _CALLBACK_PREFIX_RULES,
    },
}
_LEXICON_RULES: dict[tuple[str, ...], dict[str, Any]] = {
    ("entries",): {"maxItems": lexicon_rules.MAX_ENTRIES},
    ("entries", "[]", "grapheme"): {
        "maxLength": lexicon_rules.MAX_GRAPHEME,
        "pattern": lexicon_rules.TEXT_PATTERN,
    },
    ("entries", "[]", "alias"): {
        "maxLength": lexicon_rules.MAX_ALIAS,
        "pattern": lexicon_rules.TEXT_PATTERN,
    },
    ("entries", "[]", "phoneme"): {
        "maxLength": lexicon_rules.MAX_PHONEME,
        "pattern": lexicon_rules.TEXT_PATTERN,
    },
    ("entries", "[]", "alphabet"): {"enum": list(phonetics.ALPHABETS)},
    ("pls",): {"maxLength": lexicon_rules.MAX_PLS},
}
POLICY_FILE = "tempaudiopolicy.yaml"
LEXICON_FILE = "tempaudiolexicon.yaml"
_KINDS = {POLICY_FILE: "TempAudioPolicy", LEXICON_FILE: "TempAudioLexicon"}


@functools.cache
def _declaration(file: str = POLICY_FILE) -> Mapping[str, Any]:
    text = files("tempaudio_api").joinpath(file).read_text()
    declared: dict[str, Any] = yaml.safe_load(text)
    spec = declared["openAPIV3Schema"]["properties"]["spec"]
    for path, rules in (_RULES if file == POLICY_FILE else _LEXICON_RULES).items():
        node = spec
        for name in path:
            node = node["items"] if name == "[]" else node["properties"][name]
        node.update(rules)
    return declared


def declaration(file: str = POLICY_FILE) -> dict[str, Any]:
    """``{"additionalPrinterColumns": [...], "openAPIV3Schema": {...}}`` (a fresh copy) of
    the policy's declaration, or of ``file``'s (``LEXICON_FILE``)."""
    return copy.deepcopy(dict(_declaration(file)))


def spec_schema(file: str = POLICY_FILE) -> dict[str, Any]:
    schema: dict[str, Any] = declaration(file)["openAPIV3Schema"]["properties"]["spec"]
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


def check_fields(spec: Mapping[str, Any], file: str = POLICY_FILE) -> None:
    """``PolicyError`` naming every field the schema does not declare (a typo, a field of
    another version): kubectl's strict field validation, for policies (and lexicons,
    ``file=LEXICON_FILE``) no API server reads."""
    unknown = sorted(unknown_fields(spec, spec_schema(file)))
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise PolicyError(
            f"unknown field(s) {shown}: see the {_KINDS[file]} schema"
            f" (kubectl explain {_KINDS[file].lower()}.spec)"
        )
