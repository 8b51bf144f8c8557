"""Every program the chart and the CronJob run is an installed console script that starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        ("tempaudio-service", "TEMPAUDIO_"),
        ("tempaudio-cleanup", "--retention"),
        ("tempaudio-operator", "--all-namespaces"),
    ],
)
def test_console_scripts_start(program: str, expected: str) -> None:
    result = subprocess.run(
        [str(BIN / program), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_service_rejects_bad_settings_with_a_usage_error() -> None:
    result = subprocess.run(
        [str(BIN / "tempaudio-service")],
        capture_output=True, text=True, timeout=60, check=False,
        env={"TEMPAUDIO_RETENTION": "forever", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "TEMPAUDIO_RETENTION" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # Each of these started a service that failed later: a traceback, or 500 on every POST.
        ("TEMPAUDIO_LOG_LEVEL", "verbose"),
        ("TEMPAUDIO_RETENTION", "3000000d"),
        ("TEMPAUDIO_PREFIX", ""),
        ("TEMPAUDIO_LOCAL_AWS", "y"),
    ],
)
def test_service_exits_2_with_one_line_naming_the_variable(variable: str, value: str) -> None:
    result = subprocess.run(
        [str(BIN / "tempaudio-service")],
        capture_output=True, text=True, timeout=60, check=False,
        env={variable: value, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"tempaudio-service: {variable}")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        # Each died with a traceback (ConfigException, RuntimeError) from the lifespan.
        ({"TEMPAUDIO_AUTH": "serviceaccount"}, "no usable kubeconfig"),
        (
            {"TEMPAUDIO_POLICY_SOURCE": "kubernetes", "TEMPAUDIO_POLICY_NAMESPACES": "team-a"},
            "no usable kubeconfig",
        ),
        ({"TEMPAUDIO_DEFAULT_VOICE": "en_GB-nobody"}, "TEMPAUDIO_DEFAULT_VOICE='en_GB-nobody'"),
        ({"TEMPAUDIO_OPENAI_VOICES": "alloy=en_GB-nobody"}, "TEMPAUDIO_OPENAI_VOICES maps to"),
        ({"TEMPAUDIO_VOICES_DIR": "/nonexistent/voices"}, "does not exist"),
    ],
)
def test_configuration_mistakes_found_at_start_are_one_line_usage_errors(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    result = subprocess.run(
        [str(BIN / "tempaudio-service")],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none"),
             **env},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # The start-up log may come first (the voices it loaded); the error is one last line.
    last = result.stderr.splitlines()[-1]
    assert last.startswith("tempaudio-service: ")
    assert says in last


def test_a_port_that_cannot_be_listened_on_is_a_usage_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for env in ({"TEMPAUDIO_PORT": str(port)},
                    {"TEMPAUDIO_PORT": "18124", "TEMPAUDIO_HEALTH_PORT": str(port)},
                    {"TEMPAUDIO_PORT": "18123", "TEMPAUDIO_HEALTH_PORT": "18123"}):  # fmt: skip
            result = subprocess.run(
                [str(BIN / "tempaudio-service")],
                capture_output=True, text=True, timeout=120, check=False,
                env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
            )  # fmt: skip
            assert result.returncode == 2, result.stderr
            assert "Traceback" not in result.stderr
            last = result.stderr.splitlines()[-1]
            assert last.startswith("tempaudio-service: "), last
            assert str(port) in last or "18123" in last
