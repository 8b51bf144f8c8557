"""The declared schemas (``tempaudiopolicy.yaml``, ``tempaudiolexicon.yaml``,
``tempaudiovoice.yaml``) with the API's own rules filled in, and the check a policy file gets
that the API server gives a CRD: no unknown fields (pure)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from importlib.resources import files
from typing import Any

import yaml

from . import durations, jobs, lexicon_rules, phonetics, storage, voice_rules
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
    ("voices",): {"maxItems": voice_rules.MAX_VOICES},
    ("voices", "[]"): {
        "pattern": voice_rules.VOICE_NAME_PATTERN,
        "maxLength": voice_rules.MAX_VOICE_NAME,
    },
    ("defaultVoice",): {
        "pattern": voice_rules.VOICE_NAME_PATTERN,
        "maxLength": voice_rules.MAX_VOICE_NAME,
    },
    ("openaiVoices",): {
        "maxProperties": voice_rules.MAX_OPENAI_VOICES,
        "x-kubernetes-validations": [
            {
                "rule": "self.all(name, name.size() <= "
                f"{voice_rules.MAX_VOICE_NAME} && name.matches("
                f"{_cel_string(voice_rules.VOICE_NAME_PATTERN)}))",
                "message": "an OpenAI voice name is a letter or digit, then letters, digits,"
                f" '_', '.' or '-', at most {voice_rules.MAX_VOICE_NAME} characters",
                "reason": "FieldValueInvalid",
            }
        ],
    },
    ("openaiVoices", "{}"): {
        "pattern": voice_rules.VOICE_NAME_PATTERN,
        "maxLength": voice_rules.MAX_VOICE_NAME,
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
# Exactly one kind of source, whichever kinds there are: (has(self.s3) ? 1 : 0) + ... == 1.
_ONE_SOURCE = {
    "rule": " + ".join(f"(has(self.{kind}) ? 1 : 0)" for kind in voice_rules.SOURCES) + " == 1",
    "message": f"a voice's source is exactly one of {' and '.join(voice_rules.SOURCES)}",
    "reason": "FieldValueInvalid",
}
_VOICE_RULES: dict[tuple[str, ...], dict[str, Any]] = {
    ("source",): {"x-kubernetes-validations": [_ONE_SOURCE]},
    ("source", "s3", "key"): {"maxLength": voice_rules.MAX_KEY},
    ("source", "s3", "configKey"): {"maxLength": voice_rules.MAX_KEY},
    ("source", "path"): {
        "pattern": voice_rules.PATH_PATTERN,
        "maxLength": voice_rules.MAX_PATH,
    },
    ("sha256",): {"pattern": voice_rules.SHA256_PATTERN},
}
# A voice's bucket, region and endpoint are checked as a policy's storage fields are: their
# declared rules (pattern, bounds, CEL, default) are copied, the descriptions kept.
_VOICE_STORAGE = {
    ("source", "s3", "bucket"): ("storage", "bucket"),
    ("source", "s3", "region"): ("storage", "region"),
    ("source", "s3", "endpointURL"): ("storage", "endpointURL"),
}
# A TempAudioVoice's own name is a DNS-1123 label, so that a policy's voices can name it
# (the API server itself allows any DNS-1123 subdomain).
_VOICE_NAME_RULE = {
    "rule": f"self.metadata.name.size() <= {voice_rules.MAX_RESOURCE_NAME}"
    f" && self.metadata.name.matches({_cel_string(voice_rules.RESOURCE_NAME_PATTERN)})",
    "message": "a voice's name is a DNS-1123 label (lower case letters, digits and '-', at"
    f" most {voice_rules.MAX_RESOURCE_NAME} characters), which a policy's spec.voices can name",
    "reason": "FieldValueInvalid",
}
POLICY_FILE = "tempaudiopolicy.yaml"
LEXICON_FILE = "tempaudiolexicon.yaml"
VOICE_FILE = "tempaudiovoice.yaml"
_KINDS = {
    POLICY_FILE: "TempAudioPolicy",
    LEXICON_FILE: lexicon_rules.KIND,
    VOICE_FILE: voice_rules.KIND,
}
_FILE_RULES = {POLICY_FILE: _RULES, LEXICON_FILE: _LEXICON_RULES, VOICE_FILE: _VOICE_RULES}
_CHECKS = ("type", "minLength", "maxLength", "pattern", "default", "x-kubernetes-validations")


@functools.cache
def _declaration(file: str = POLICY_FILE) -> Mapping[str, Any]:
    text = files("tempaudio_api").joinpath(file).read_text()
    declared: dict[str, Any] = yaml.safe_load(text)
    spec = declared["openAPIV3Schema"]["properties"]["spec"]
    for path, rules in _FILE_RULES[file].items():
        _node(spec, path).update(rules)
    if file == VOICE_FILE:
        storage_of = _declaration(POLICY_FILE)["openAPIV3Schema"]["properties"]["spec"]
        for path, policy_path in _VOICE_STORAGE.items():
            shared = _node(storage_of, policy_path)
            _node(spec, path).update(
                {key: copy.deepcopy(shared[key]) for key in _CHECKS if key in shared}
            )
        declared["openAPIV3Schema"]["x-kubernetes-validations"] = [_VOICE_NAME_RULE]
    return declared


def _node(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """The schema of the field at ``path`` ("[]": a list's items, "{}": a map's values)."""
    node = schema
    for name in path:
        if name == "[]":
            node = node["items"]
        elif name == "{}":
            node = node["additionalProperties"]
        else:
            node = node["properties"][name]
    return node


def declaration(file: str = POLICY_FILE) -> dict[str, Any]:
    """``{"additionalPrinterColumns": [...], "openAPIV3Schema": {...}}`` (a fresh copy) of
    the policy's declaration, or of ``file``'s (``LEXICON_FILE``, ``VOICE_FILE``)."""
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
    ``file=LEXICON_FILE``, and voices, ``file=VOICE_FILE``) no API server reads."""
    unknown = sorted(unknown_fields(spec, spec_schema(file)))
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise PolicyError(
            f"unknown field(s) {shown}: see the {_KINDS[file]} schema"
            f" (kubectl explain {_KINDS[file].lower()}.spec)"
        )
