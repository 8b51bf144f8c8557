"""Every relative link and #anchor of the docs resolves, by GitHub's rules: the README,
docs/, BENCHMARKS.md, RELIABILITY.md and the chart's README."""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    {
        REPO / "README.md",
        REPO / "BENCHMARKS.md",
        REPO / "RELIABILITY.md",
        REPO / "charts/tempaudio/README.md",
        *(REPO / "docs").rglob("*.md"),
    }
)
_MARKDOWN = MarkdownIt("commonmark").enable("table")


def slug(text: str) -> str:
    """GitHub's anchor for a heading's text: lower case, only letters, marks, numbers,
    connector punctuation, spaces and hyphens kept, each space a hyphen."""
    kept = (
        c
        for c in text.lower()
        if c in " -" or unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) == "Pc"
    )
    return "".join(kept).replace(" ", "-")


def _plain(inline: Token) -> str:
    """A heading's text as GitHub renders it: code spans' content, no markup."""
    return "".join(
        child.content for child in inline.children or () if child.type in ("text", "code_inline")
    )


def anchors(text: str) -> set[str]:
    """Each heading's anchor; a repeated one gets -1, -2... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    tokens = _MARKDOWN.parse(text)
    for opening, inline in itertools.pairwise(tokens):
        if opening.type != "heading_open":
            continue
        base = slug(_plain(inline))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def targets(text: str) -> Iterator[str]:
    """Every link and image target of a Markdown text (code spans and blocks hold none)."""
    stack = list(_MARKDOWN.parse(text))
    while stack:
        token = stack.pop(0)
        stack[:0] = token.children or []
        if token.type == "link_open":
            yield str(token.attrGet("href"))
        elif token.type == "image":
            yield str(token.attrGet("src"))


def broken_links(document: Path) -> list[str]:
    """The relative links of ``document`` whose file or #anchor does not exist."""
    broken = []
    for target in targets(document.read_text(encoding="utf-8")):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # a URL elsewhere: not this repository's to check
        path = (document.parent / unquote(parts.path)).resolve() if parts.path else document
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif parts.fragment and path.suffix == ".md":
            if unquote(parts.fragment) not in anchors(path.read_text(encoding="utf-8")):
                broken.append(f"{target}: no such heading")
        elif parts.fragment:
            broken.append(f"{target}: an anchor into a file that is not Markdown")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_resolves(document: Path) -> None:
    assert broken_links(document) == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Capacity: S3 and DynamoDB per request", "capacity-s3-and-dynamodb-per-request"),
        ("The /tts API", "the-tts-api"),
        ("IAM: least privilege per component", "iam-least-privilege-per-component"),
        (
            "Shared quotas and repeat cache: latency at concurrency 1",
            "shared-quotas-and-repeat-cache-latency-at-concurrency-1",
        ),
        ("`spec.metadata` and snake_case", "specmetadata-and-snake_case"),
        ("Kubernetes API down: caller authentication", "kubernetes-api-down-caller-authentication"),
        ("Ünïcode — dashes", "ünïcode--dashes"),
    ],
)
def test_anchors_are_githubs(heading: str, anchor: str) -> None:
    assert anchors(f"# {heading}\n") == {anchor}


def test_a_repeated_heading_gets_a_number() -> None:
    assert anchors("# Tests\n\n## Tests\n\n### Tests\n") == {"tests", "tests-1", "tests-2"}


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#a-section) [fine too](#page) [elsewhere](https://example.com/x#y)\n"
        "[gone](missing.md) [wrong anchor](other.md#no-section) [here](#nowhere)\n\n"
        "`[not a link](missing.md)`\n\n| a | b |\n| --- | --- |\n| [cell](other.md#nope) | x |\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#no-section: no such heading",
        "#nowhere: no such heading",
        "other.md#nope: no such heading",
    ]
