"""The generated reference: the configuration page from the settings table, the TempAudioPolicy,
TempAudioLexicon and TempAudioVoice pages from the schema declaration, the chart README's
values table from values.yaml's comments; each current, and a stale one fails its check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tempaudio_api import chart_docs, reference
from tempaudio_api.schema import LEXICON_FILE, VOICE_FILE, declaration
from tempaudio_service.core import reference as configuration
from tempaudio_service.core.settings import rows

REPO = Path(__file__).resolve().parents[2]
CHART_README = REPO / chart_docs.README
VALUES = REPO / chart_docs.VALUES


def leaves(node: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in node.items():
        if isinstance(value, Mapping) and value:
            yield from leaves(value, (*path, key))
        else:
            yield (*path, key)


def test_every_values_key_is_in_the_chart_readme() -> None:
    """A leaf is listed itself, or under a described key whose default shows it."""
    text = CHART_README.read_text()
    listed = {row.key for row in chart_docs.value_rows(*_chart())}
    for leaf in leaves(yaml.safe_load(VALUES.read_text())):
        covering = [leaf[:n] for n in range(len(leaf), 0, -1) if leaf[:n] in listed]
        assert covering, f"{'.'.join(leaf)} is in no row"
        assert f"| `{chart_docs.key_name(covering[0])}` |" in text
        assert leaf[-1] in text


def _chart() -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    text = VALUES.read_text()
    return yaml.safe_load(text), chart_docs.descriptions(text)


VALUES_TEXT = """\
# A file comment, not a key's.
# -- Described,
# over two lines.
top: 1

# A section comment.
group:
  # -- The whole map is one row.
  described:
    inner: {a: 1}
    # -- Yet a described key under it is a row too.
    own: x
  plain:
    leaf: true
    emptyMap: {}
  # -- A comment cut off by a blank line describes nothing.

  after: [1, 2]
  list:
    - name: not a key
  "quoted.key/name": "v"
"""


def test_comments_describe_the_key_below_them_as_helm_docs_reads_them() -> None:
    assert chart_docs.descriptions(VALUES_TEXT) == {
        ("top",): "Described, over two lines.",
        ("group", "described"): "The whole map is one row.",
        ("group", "described", "own"): "Yet a described key under it is a row too.",
    }


def test_a_described_key_is_one_row_and_the_rest_are_opened_to_their_leaves() -> None:
    values = yaml.safe_load(VALUES_TEXT)
    found = [
        (chart_docs.key_name(row.key), row.type, row.default, row.description)
        for row in chart_docs.value_rows(values, chart_docs.descriptions(VALUES_TEXT))
    ]
    assert found == [
        ("top", "int", "1", "Described, over two lines."),
        ("group.described", "object", '{"inner":{"a":1},"own":"x"}', "The whole map is one row."),
        ("group.described.own", "string", '"x"', "Yet a described key under it is a row too."),
        ("group.plain.leaf", "bool", "true", ""),
        ("group.plain.emptyMap", "object", "{}", ""),
        ("group.after", "list", "[1,2]", ""),
        ("group.list", "list", '[{"name":"not a key"}]', ""),
        ('group."quoted.key/name"', "string", '"v"', ""),
    ]


def test_descriptions_show_as_written_in_markdown() -> None:
    table = chart_docs.values_table("# -- Defaults to <fullname>-x; *.onnx | `<b>`.\nkey: ''\n")
    assert "Defaults to &lt;fullname>-x; \\*.onnx \\| `<b>`. |" in table


@pytest.mark.parametrize(
    "outputs",
    [
        chart_docs.outputs,
        configuration.outputs,
        lambda repo: {repo / p: text for p, text in reference.pages().items()},
    ],
    ids=["chart values", "configuration", "resources"],
)
def test_the_generated_pages_are_current(outputs: Any) -> None:
    stale = [str(p.relative_to(REPO)) for p, text in outputs(REPO).items() if p.read_text() != text]
    assert stale == [], "run `make generate`"


def test_a_stale_values_table_fails_the_check(tmp_path: Path) -> None:
    for path in (CHART_README, VALUES):
        copy = tmp_path / path.relative_to(REPO)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, copy)
    check = [sys.executable, "-m", "tempaudio_api.chart_docs", "--check", "--repo", str(tmp_path)]
    assert subprocess.run(check, capture_output=True, check=False).returncode == 0
    values = tmp_path / chart_docs.VALUES
    values.write_text(values.read_text().replace("# -- Image pull policy.", "# -- Pull it."))
    result = subprocess.run(check, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert chart_docs.README in result.stderr
    write = [sys.executable, "-m", "tempaudio_api.chart_docs", "--repo", str(tmp_path)]
    subprocess.run(write, capture_output=True, check=True)
    assert (
        '| `image.pullPolicy` | string | `"IfNotPresent"` | Pull it. |'
        in (tmp_path / chart_docs.README).read_text()
    )


def test_a_stale_configuration_page_fails_the_check(tmp_path: Path) -> None:
    page = tmp_path / configuration.CONFIGURATION
    page.parent.mkdir(parents=True)
    check = [
        sys.executable,
        "-m",
        "tempaudio_service.core.reference",
        "--check",
        "--repo",
        str(tmp_path),
    ]
    assert subprocess.run(check, capture_output=True, check=False).returncode == 1  # missing
    page.write_text(configuration.configuration())
    assert subprocess.run(check, capture_output=True, check=False).returncode == 0
    page.write_text(configuration.configuration().replace("`8080`", "`8081`"))
    result = subprocess.run(check, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert configuration.CONFIGURATION in result.stderr


def test_the_configuration_page_has_a_row_per_setting_from_the_table() -> None:
    page = configuration.configuration()
    for name, spec, _ in rows():
        line = next(line for line in page.splitlines() if line.startswith(f"| `{spec.variable}` |"))
        assert f"| `{name}` |" in line
        assert spec.doc.replace("|", "\\|") in line
        if spec.maximum is not None:
            assert f"| {spec.minimum} to {spec.maximum} |" in line
    # Machine-dependent defaults never reach the page: it is the same on every machine.
    workers = next(line for line in page.splitlines() if "TEMPAUDIO_SYNTH_WORKERS" in line[:30])
    assert "| cores the process may use (its CPU affinity) |" in workers


def schema_paths(node: Mapping[str, Any], path: str) -> Iterator[str]:
    for name, child in node.get("properties", {}).items():
        yield f"{path}.{name}"
        below = child.get("items", child) if child.get("type") == "array" else child
        yield from schema_paths(
            below, f"{path}.{name}[]" if below is not child else f"{path}.{name}"
        )


@pytest.mark.parametrize(
    ("page", "declared"),
    [
        (reference.POLICY_REFERENCE, declaration()),
        (reference.LEXICON_REFERENCE, declaration(LEXICON_FILE)),
        (reference.VOICE_REFERENCE, declaration(VOICE_FILE)),
    ],
)
def test_every_declared_field_has_a_row(page: str, declared: dict[str, Any]) -> None:
    text = (REPO / page).read_text()
    schema = declared["openAPIV3Schema"]["properties"]
    paths = [p for section in ("spec", "status") for p in schema_paths(schema[section], section)]
    assert len(paths) > 10
    missing = [p for p in paths if f"| `{p}` |" not in text]
    assert missing == []


def test_a_fields_bounds_default_and_checks_are_in_its_row() -> None:
    text = (REPO / reference.POLICY_REFERENCE).read_text()
    backoff = next(line for line in text.splitlines() if "`spec.jobTemplate.backoffLimit`" in line)
    assert "| integer | `2` | 0 to 20 |" in backoff
    retention = next(line for line in text.splitlines() if line.startswith("| `spec.retention` |"))
    assert "retention must be at least 1m" in retention  # a CEL rule's message
    bucket = next(line for line in text.splitlines() if line.startswith("| `spec.storage.bucket`"))
    assert "required; 3 to 63 characters" in bucket
