"""Every TEMPAUDIO_* variable the programs read is documented in README.md and .env.example."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = [
    *REPO.glob("service/tempaudio_service/*.py"),
    *REPO.glob("operator/tempaudio_operator/*.py"),
]


def variables_read() -> list[str]:
    found = set()
    for source in SOURCES:
        found |= set(re.findall(r'"(TEMPAUDIO_[A-Z_]+)"', source.read_text(encoding="utf-8")))
    return sorted(found)


def test_the_programs_read_settings_from_the_environment() -> None:
    assert "TEMPAUDIO_RETENTION" in variables_read()


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_variable_is_documented(document: str) -> None:
    text = (REPO / document).read_text(encoding="utf-8")
    missing = [name for name in variables_read() if name not in text]
    assert not missing, f"{document} does not mention {missing}"
