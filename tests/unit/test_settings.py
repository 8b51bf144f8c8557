from datetime import timedelta
from pathlib import Path

import pytest

from tempaudio_service.settings import ServiceSettings, SettingsError


def test_defaults_without_environment_use_embedded_aws() -> None:
    settings = ServiceSettings.from_env({})
    assert settings.local_aws is True
    assert settings.retention == timedelta(hours=24)
    assert settings.prefix == "temp-audio/"
    assert settings.default_voice == "en_US-joe-medium"
    assert settings.max_text_chars == 5000


@pytest.mark.parametrize(
    ("env", "local"),
    [
        ({"TEMPAUDIO_S3_ENDPOINT_URL": "http://minio:9000"}, False),
        ({"AWS_ACCESS_KEY_ID": "AKIA"}, False),
        ({"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"}, False),
        ({"AWS_ACCESS_KEY_ID": "AKIA", "TEMPAUDIO_LOCAL_AWS": "true"}, True),
        ({"TEMPAUDIO_LOCAL_AWS": "false"}, False),
    ],
)
def test_local_mode_detection(env: dict[str, str], local: bool) -> None:
    assert ServiceSettings.from_env(env).local_aws is local


def test_environment_is_read() -> None:
    settings = ServiceSettings.from_env(
        {
            "TEMPAUDIO_BUCKET": "audio",
            "TEMPAUDIO_PREFIX": "tts",
            "TEMPAUDIO_TABLE": "meta",
            "TEMPAUDIO_RETENTION": "90m",
            "TEMPAUDIO_S3_ENDPOINT_URL": "http://s3:9000",
            "TEMPAUDIO_VOICES_DIR": "/voices",
            "TEMPAUDIO_SYNTH_WORKERS": "3",
            "TEMPAUDIO_MAX_TEXT_CHARS": "100",
        }
    )
    assert (settings.bucket, settings.prefix, settings.table) == ("audio", "tts/", "meta")
    assert settings.retention == timedelta(minutes=90)
    assert settings.dynamodb_endpoint_url == "http://s3:9000"
    assert settings.voices_dir == Path("/voices")
    assert (settings.synth_workers, settings.synth_queue) == (3, 6)
    assert settings.onnx_idle_threads == 3
    assert settings.max_text_chars == 100


def test_chunk_limit_and_idle_threads() -> None:
    settings = ServiceSettings.from_env(
        {"TEMPAUDIO_MAX_CHUNK_PHONEMES": "0", "TEMPAUDIO_ONNX_IDLE_THREADS": "1"}
    )
    assert (settings.max_chunk_phonemes, settings.onnx_idle_threads) == (0, 1)
    assert ServiceSettings.from_env({}).max_chunk_phonemes == ServiceSettings().max_chunk_phonemes
    with pytest.raises(SettingsError, match="TEMPAUDIO_MAX_CHUNK_PHONEMES"):
        ServiceSettings.from_env({"TEMPAUDIO_MAX_CHUNK_PHONEMES": "-1"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TEMPAUDIO_RETENTION": "soon"}, "TEMPAUDIO_RETENTION"),
        ({"TEMPAUDIO_SYNTH_WORKERS": "0"}, "at least 1"),
        ({"TEMPAUDIO_PORT": "http"}, "whole number"),
        ({"TEMPAUDIO_LOCAL_AWS": "maybe"}, "boolean"),
        ({"TEMPAUDIO_LOG_FORMAT": "xml"}, "text or json"),
    ],
)
def test_bad_values_are_reported_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ServiceSettings.from_env(env)


def test_describe_is_printable() -> None:
    described = ServiceSettings.from_env({"TEMPAUDIO_VOICES_DIR": "/v"}).describe()
    assert described["retention"] == "1d"
    assert described["voices_dir"] == "/v"
