"""One rule each: the mismatches between the programs' copies of the policy contract, each
now read one way by the service (a policy file, the shorthand), the operator and the
cleanup program, and the generated copies of the schema kept current."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tempaudio_api import durations, storage
from tempaudio_api.errors import PolicyError
from tempaudio_api.generate import CRD_PATHS, crd, outputs
from tempaudio_api.policy import Policy
from tempaudio_service.cleanup.job import build_parser
from tempaudio_service.core.config import ConfigError
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policies import declared

REPO = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {"storage": {"bucket": "my-audio"}, "dynamodb": {"table": "audio"}}


def document(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioPolicy",
        "metadata": {"name": "audio"},
        "spec": {**BASE, **spec},
    }


def parse_args(argv: list[str]) -> Any:
    """The cleanup program's command line, as the operator's CronJob gives it."""
    return build_parser({}).parse_args(argv)


def with_storage(**fields: Any) -> dict[str, Any]:
    return document(storage={"bucket": "my-audio", **fields})


# --- durations: one grammar -------------------------------------------------------------


@pytest.mark.parametrize("text", [" 24h", "24h ", "24 h", "+24h", "1.5h", "0s", ""])
def test_a_duration_has_one_grammar_everywhere(text: str) -> None:
    with pytest.raises(PolicyError):
        durations.parse_retention(text)
    with pytest.raises(PolicyError):
        declared(document(retention=text))
    with pytest.raises(ConfigError, match="TEMPAUDIO_RETENTION"):
        ServiceSettings.from_env({"TEMPAUDIO_RETENTION": text or "x"})


def test_durations_are_written_as_they_are_read() -> None:
    for text in ("1d", "1d1h1m1s", "1h30m", "365d"):
        assert durations.format_duration(durations.parse_retention(text)) == text
    assert durations.parse_retention("90m") == timedelta(minutes=90)


# --- prefix: what the cleanup refuses, the policy refuses ---------------------------------


@pytest.mark.parametrize("prefix", ["a//b/", "x/../y/", "x/./", "./", "../", "/x/", ""])
def test_a_prefix_the_cleanup_refuses_is_an_invalid_policy(prefix: str) -> None:
    with pytest.raises(PolicyError, match="prefix"):
        declared(with_storage(prefix=prefix))
    with pytest.raises(SystemExit):
        parse_args(["--bucket", "b", "--prefix", prefix, "--retention", "24h"])


@pytest.mark.parametrize("prefix", ["temp-audio/", "a/b/", ".hidden/", "..x/", "x../", "a.b/c/"])
def test_a_prefix_the_policy_takes_the_cleanup_takes(prefix: str) -> None:
    assert declared(with_storage(prefix=prefix)).storage.prefix == prefix
    assert parse_args(["--bucket", "b", "--prefix", prefix, "--retention", "24h"]).prefix == prefix


def test_the_crd_pattern_is_the_parsers_rule() -> None:
    (version,) = crd()["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["storage"]["properties"]["prefix"]["pattern"] == storage.PREFIX_PATTERN
    assert spec["storage"]["properties"]["prefix"]["default"] == storage.DEFAULT_PREFIX
    assert spec["storage"]["properties"]["region"]["pattern"] == storage.REGION_PATTERN
    assert spec["retention"]["pattern"] == durations.PATTERN


# --- booleans: a policy's are booleans ---------------------------------------------------


@pytest.mark.parametrize("field", ["suspend", "dryRun", "lifecycleSafetyNet", "repeatCache"])
@pytest.mark.parametrize("value", ["false", "no", 0, 1, "true"])
def test_a_policy_boolean_is_true_or_false_never_a_word(field: str, value: Any) -> None:
    with pytest.raises(PolicyError, match=f"{field} .* must be true or false"):
        Policy.from_spec({**BASE, field: value}, name="p", namespace="ns")


# --- region: the CRD's rule --------------------------------------------------------------


@pytest.mark.parametrize("region", ["local", "useast1", "us-east", "US-EAST-1", "us-east-1a"])
def test_a_region_the_crd_refuses_the_parser_refuses(region: str) -> None:
    with pytest.raises(PolicyError, match="region"):
        declared(with_storage(region=region))


# --- unknown fields: a usage error naming them ------------------------------------------


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"dynamodb": {"table": "audio", "sortKey": "audio_id"}}, "spec.dynamodb.sortKey"),
        ({"retension": "1h"}, "spec.retension"),
        ({"storage": {"bucket": "my-audio", "prefx": "a/"}}, "spec.storage.prefx"),
        ({"clients": [{"namespace": "a", "serviceacount": "x"}]}, "spec.clients[0].serviceacount"),
        ({"quotas": {"requestsPerMinut": 5}}, "spec.quotas.requestsPerMinut"),
    ],
)
def test_a_policy_file_with_an_unknown_field_names_it(spec: dict[str, Any], named: str) -> None:
    with pytest.raises(
        PolicyError, match=f"unknown field.*{named.replace('[', '.').replace(']', '.')}"
    ):
        declared(document(**spec))


def test_the_policy_file_program_error_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document(dynamodb={"table": "audio", "sortKey": "audio_id"})))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tempaudio-service"), "--policy", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "spec.dynamodb.sortKey" in result.stderr.splitlines()[-1]


# --- generated copies ----------------------------------------------------------------------


def test_the_generated_files_are_current() -> None:
    stale = [
        str(path.relative_to(REPO))
        for path, text in outputs(REPO).items()
        if path.read_text() != text
    ]
    assert stale == [], "run `make generate`"


def test_a_stale_generated_file_fails_the_check(tmp_path: Path) -> None:
    for path, text in outputs(REPO).items():
        copy = tmp_path / path.relative_to(REPO)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(text)
    check = [sys.executable, "-m", "tempaudio_api.generate", "--check", "--repo", str(tmp_path)]
    assert subprocess.run(check, capture_output=True, check=False).returncode == 0
    stale = tmp_path / CRD_PATHS[1]
    stale.write_text(stale.read_text().replace("default: 24h", "default: 12h"))
    result = subprocess.run(check, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert CRD_PATHS[1] in result.stderr
