"""The field reference of TempAudioPolicy, TempAudioLexicon and TempAudioVoice
(``docs/reference/``), written
from the schema declaration by ``make generate`` (pure): one row per field, with its type,
default, bounds and description, so the reference says what the API server checks."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import GROUP, KIND, VERSION, lexicon_rules, voice_rules
from .schema import LEXICON_FILE, VOICE_FILE, declaration

POLICY_REFERENCE = "docs/reference/tempaudiopolicy.md"
LEXICON_REFERENCE = "docs/reference/tempaudiolexicon.md"
VOICE_REFERENCE = "docs/reference/tempaudiovoice.md"
# The parts of an object a reader declares or reads; apiVersion, kind and metadata are
# Kubernetes' own.
SECTIONS = ("spec", "status")


@dataclass(frozen=True)
class FieldRow:
    """One field of a resource, as the reference prints it."""

    path: str
    type: str
    default: str
    accepts: str
    doc: str


def field_rows(node: Mapping[str, Any], path: str) -> Iterator[FieldRow]:
    """Every field under ``node`` (a structural schema), depth first, in declared order;
    the items of a list read as ``path[]``."""
    required = set(node.get("required", ()))
    for name, child in node.get("properties", {}).items():
        child_path = f"{path}.{name}"
        yield _row(child_path, child, name in required)
        yield from _below(child, child_path)


def _below(node: Mapping[str, Any], path: str) -> Iterator[FieldRow]:
    if node.get("type") == "array" and "items" in node:
        items = node["items"]
        if "properties" in items:
            yield from field_rows(items, f"{path}[]")
    elif "properties" in node:
        yield from field_rows(node, path)


def _row(path: str, node: Mapping[str, Any], required: bool) -> FieldRow:
    default = node.get("default")
    return FieldRow(
        path=path,
        type=type_of(node),
        default="" if default is None else _code(_plain(default)),
        accepts="; ".join(_bounds(node, required)),
        doc=_doc(node),
    )


def type_of(node: Mapping[str, Any]) -> str:
    """``string``, ``array of object``, ``map of string``, ``integer or string``..."""
    if "anyOf" in node:
        return " or ".join(type_of(choice) for choice in node["anyOf"])
    kind = str(node.get("type", "any"))
    if kind == "array" and "items" in node:
        return f"array of {type_of(node['items'])}"
    extra = node.get("additionalProperties")
    if kind == "object" and isinstance(extra, Mapping):
        return f"map of {type_of(extra)}"
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return "object (any fields)"
    return kind


def _bounds(node: Mapping[str, Any], required: bool) -> Iterator[str]:
    if required:
        yield "required"
    if "enum" in node:
        yield "one of " + ", ".join(_code(_plain(value)) for value in node["enum"])
    numbers = _range(node.get("minimum"), node.get("maximum"))
    if numbers:
        yield numbers
    length = _range(node.get("minLength"), node.get("maxLength"))
    if length:
        yield f"{length} characters"
    items = _range(node.get("minItems"), node.get("maxItems"))
    if items:
        yield f"{items} items"
    entries = _range(node.get("minProperties"), node.get("maxProperties"))
    if entries:
        yield f"{entries} entries"
    if "pattern" in node:
        yield "matches " + _code(node["pattern"])


def _range(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return ""


def _doc(node: Mapping[str, Any]) -> str:
    text = " ".join(str(node.get("description", "")).split())
    rules = [rule["message"] for rule in node.get("x-kubernetes-validations", ())]
    if rules:
        text += " Refused: " + "; ".join(rules) + "."
    return text.strip()


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _code(text: str) -> str:
    """``text`` as a code span that holds any backticks."""
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"


def cell(text: str) -> str:
    """``text`` safe in a table cell: pipes escaped (GitHub reads ``\\|`` in code spans
    too), no line breaks."""
    return " ".join(text.split()).replace("|", "\\|")


def prose(text: str) -> str:
    """Plain text as Markdown that shows it as written: outside code spans, ``<`` cannot open
    an HTML tag (``<region>`` would vanish) and ``*`` cannot start emphasis."""
    parts = re.split(r"(`+[^`]*`+)", text)
    return "".join(
        part if part.startswith("`") else part.replace("<", "&lt;").replace("*", "\\*")
        for part in parts
    )


def table(header: tuple[str, ...], body: Sequence[tuple[str, ...]]) -> str:
    """A GitHub Markdown table."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(cell(value) for value in row) + " |" for row in body),
    ]
    return "\n".join(lines) + "\n"


def page(kind: str, declared: Mapping[str, Any], source: str, intro: str) -> str:
    """The reference page of one resource."""
    schema = declared["openAPIV3Schema"]
    columns = [
        (column["name"], f"`{column['jsonPath']}`")
        for column in declared["additionalPrinterColumns"]
    ]
    fields = [
        (f"`{row.path}`", row.type, row.default, row.accepts, prose(row.doc))
        for section in SECTIONS
        if section in schema["properties"]
        for row in [
            _row(section, schema["properties"][section], section in schema.get("required", ())),
            *_below(schema["properties"][section], section),
        ]
    ]
    return (
        f"<!-- Generated by `make generate` from {source}: do not edit. -->\n"
        f"# {kind} reference\n\n"
        f"`apiVersion: {GROUP}/{VERSION}`, `kind: {kind}`. {' '.join(schema['description'].split())}"
        f"\n\n{intro}\n\n"
        "## Fields\n\n"
        "Every field the API server accepts, with what it checks. `[]` is an item of a list.\n\n"
        + table(("field", "type", "default", "accepts", "description"), fields)
        + "\n## Columns\n\n"
        f"What `kubectl get` prints for a {kind}.\n\n" + table(("column", "from"), columns)
    )


def policy_page() -> str:
    return page(
        KIND,
        declaration(),
        "api/tempaudio_api/tempaudiopolicy.yaml",
        "What a policy means for the service and the operator is in "
        "[Policies and the retention proof](../concepts/policies.md); an example is "
        "[examples/policy.yaml](../../examples/policy.yaml).",
    )


def lexicon_page() -> str:
    return page(
        lexicon_rules.KIND,
        declaration(LEXICON_FILE),
        "api/tempaudio_api/tempaudiolexicon.yaml",
        "How lexicons are applied is in [Pronunciation lexicons](../api/lexicons.md).",
    )


def voice_page() -> str:
    return page(
        voice_rules.KIND,
        declaration(VOICE_FILE),
        "api/tempaudio_api/tempaudiovoice.yaml",
        "Its name is a DNS-1123 label (lower case letters, digits and `-`, at most "
        f"{voice_rules.MAX_RESOURCE_NAME} characters), so that a policy's `spec.voices` "
        "([TempAudioPolicy](tempaudiopolicy.md)) can name it; an example is "
        "[examples/voice.yaml](../../examples/voice.yaml).",
    )


def pages() -> dict[str, str]:
    """Each reference page by its path in the repository."""
    return {
        POLICY_REFERENCE: policy_page(),
        LEXICON_REFERENCE: lexicon_page(),
        VOICE_REFERENCE: voice_page(),
    }
