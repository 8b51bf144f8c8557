"""The image, checked by what runs here (no Docker engine): lint, entry points, read-only root."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.chart.helm import render
from tests.conftest import wait_until_ready
from tests.controlplane import REPO, free_port

BIN = Path(sys.executable).parent
SCRIPTS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_no_build_stage_leftovers() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001:10001$", final_stage, re.MULTILINE)
    assert "pip install" not in final_stage
    assert "COPY --from=build /opt/tempaudio /opt/tempaudio" in final_stage
    assert "org.opencontainers.image.source" in final_stage
    cmd = re.search(r'^CMD \["([^"]+)"\]', final_stage, re.MULTILINE)
    assert cmd is not None
    assert cmd.group(1) in SCRIPTS


def test_every_command_the_chart_and_operator_run_is_a_console_script() -> None:
    commands = {
        c["command"][0]
        for o in render()
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    commands.add("tempaudio-cleanup")  # what the operator's CronJobs run
    assert commands == SCRIPTS
    for command in commands:
        assert (BIN / command).exists(), command


needs_mount_namespace = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare to remount / read-only in a private mount namespace",
)


def read_only_root(scratch: Path, *command: str) -> list[str]:
    """Run ``command`` with every filesystem read-only but an empty tmpfs on ``scratch``.

    Like the chart's pods: read-only root, one emptyDir for temporary files. (Not /tmp
    itself: the checkout under test may live there.)
    """
    script = (
        "set -e; mount -o remount,bind,ro /; "
        "for m in $(findmnt -rn -o TARGET | grep -vE '^/(proc|sys|dev)' | grep -v '^/$'); do "
        'mount -o remount,bind,ro "$m" 2>/dev/null || true; done; '
        f'mount -t tmpfs tmpfs {scratch}; exec env HOME={scratch} TMPDIR={scratch} "$@"'
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *command]


@needs_mount_namespace
def test_service_runs_on_a_read_only_root_filesystem(tmp_path: Path) -> None:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "TEMPAUDIO_"))
    }
    env.update(PYTHONDONTWRITEBYTECODE="1", TEMPAUDIO_PORT=str(port))
    process = subprocess.Popen(
        read_only_root(tmp_path, str(BIN / "tempaudio-service")),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}")
        answer = httpx.post(
            f"http://127.0.0.1:{port}/tts/sync", json={"text": "Read only."}, timeout=60
        )
        assert answer.status_code == 200, answer.text
    finally:
        process.terminate()
        process.wait(30)


@needs_mount_namespace
def test_cleanup_runs_on_a_read_only_root_filesystem(
    aws_env: dict[str, str], s3: object, tmp_path: Path
) -> None:
    bucket = "ro-cleanup"
    s3.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    result = subprocess.run(
        read_only_root(tmp_path, str(BIN / "tempaudio-cleanup"), "--bucket", bucket, "--retention", "1h"),
        env={**os.environ, **aws_env, "TEMPAUDIO_TERMINATION_LOG": f"{tmp_path}/termination-log"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"event": "tempaudio-cleanup-summary"' in result.stdout
