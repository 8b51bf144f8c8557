"""Declared voices in the chart: the service fetches them into an emptyDir of bounded size,
because the image's own caches lie on its read-only root filesystem, and keeps at most
service.maxResidentVoices of them loaded."""

from __future__ import annotations

from typing import Any

import pytest

from tempaudio_service.core.settings import ServiceSettings
from tests.chart.helm import CHART, env_of, helm, one, render

MOUNT = "/var/cache/tempaudio/voices"


def service_pod(*args: str) -> dict[str, Any]:
    pod: dict[str, Any] = one(render(*args), "Deployment", "service")["spec"]["template"]["spec"]
    return pod


def settings_of(container: dict[str, Any]) -> ServiceSettings:
    """What the service reads from the rendered environment (values only: no Secrets)."""
    env = {name: value for name, value in env_of(container).items() if value is not None}
    return ServiceSettings.from_env(env)


def test_the_voice_cache_is_a_bounded_writable_emptydir_the_service_is_pointed_at() -> None:
    pod = service_pod()
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["voice-cache"] == {"name": "voice-cache", "emptyDir": {"sizeLimit": "1Gi"}}
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    assert mounts["voice-cache"] == {"name": "voice-cache", "mountPath": MOUNT}  # writable
    settings = settings_of(container)
    assert str(settings.voice_cache) == MOUNT
    assert settings.max_resident_voices == 2


def test_the_cache_size_and_the_resident_bound_are_values() -> None:
    pod = service_pod(
        "--set", "service.voiceCache.sizeLimit=300Mi", "--set", "service.maxResidentVoices=4"
    )
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["voice-cache"]["emptyDir"] == {"sizeLimit": "300Mi"}
    assert env_of(pod["containers"][0])["TEMPAUDIO_MAX_RESIDENT_VOICES"] == "4"
    assert settings_of(pod["containers"][0]).max_resident_voices == 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("service.voiceCache.sizeLimit=lots", "does not match pattern"),
        ("service.voiceCache.size=1Gi", "additional properties 'size' not allowed"),
        ("service.maxResidentVoices=0", "minimum"),
        ("service.maxResidentVoices=65", "maximum"),  # TEMPAUDIO_MAX_RESIDENT_VOICES' bound
    ],
)
def test_the_schema_refuses_a_bad_cache_or_bound(override: str, message: str) -> None:
    result = helm("template", "rel", str(CHART), "--set", override, check=False)
    assert result.returncode != 0
    assert message in result.stderr
