"""Every TEMPAUDIO_* variable the programs read is documented in docs/ and .env.example, and
the README stays a front page that leads there."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = [
    *REPO.glob("service/tempaudio_service/**/*.py"),
    *REPO.glob("operator/tempaudio_operator/**/*.py"),
]
DOCS = REPO / "docs"


def variables_read() -> list[str]:
    found = set()
    for source in SOURCES:
        found |= set(re.findall(r'"(TEMPAUDIO_[A-Z_]+)"', source.read_text(encoding="utf-8")))
    return sorted(found)


def documents() -> dict[str, str]:
    pages = "\n".join(page.read_text(encoding="utf-8") for page in sorted(DOCS.rglob("*.md")))
    return {"docs/": pages, ".env.example": (REPO / ".env.example").read_text(encoding="utf-8")}


def test_the_programs_read_settings_from_the_environment() -> None:
    assert "TEMPAUDIO_RETENTION" in variables_read()
    assert "TEMPAUDIO_OPERATOR_RETENTION_LAG" in variables_read()


@pytest.mark.parametrize("document", ["docs/", ".env.example"])
def test_every_variable_is_documented(document: str) -> None:
    text = documents()[document]
    missing = [name for name in variables_read() if name not in text]
    assert not missing, f"{document} does not mention {missing}"


def test_the_readme_is_a_front_page() -> None:
    """What it is, the parts, the commands, the first request, links: the rest is in docs/."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    for command in ("make run", "make test", "make e2e", "curl -s -X POST"):
        assert command in readme
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", readme))
    pages = {str(page.relative_to(REPO)) for page in DOCS.rglob("*.md")}
    assert len(pages) >= 5
    assert pages - linked <= {"docs/reference/README.md"}, "a page the README does not lead to"
