from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest

from tempaudio_service.core import hosts
from tempaudio_service.core.settings import INTEGER, ServiceSettings, Setting, SettingsError, rows

REPO = Path(__file__).resolve().parents[2]


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
        {"TEMPAUDIO_MAX_CHUNK_PHONEMES": "60", "TEMPAUDIO_ONNX_IDLE_THREADS": "1"}
    )
    assert (settings.max_chunk_phonemes, settings.onnx_idle_threads) == (60, 1)
    assert ServiceSettings.from_env({}).max_chunk_phonemes == ServiceSettings().max_chunk_phonemes
    # 0 once meant "whole sentences": unbounded memory for a run-on sentence.
    for value in ("-1", "0"):
        with pytest.raises(SettingsError, match="TEMPAUDIO_MAX_CHUNK_PHONEMES"):
            ServiceSettings.from_env({"TEMPAUDIO_MAX_CHUNK_PHONEMES": value})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TEMPAUDIO_RETENTION": "soon"}, "TEMPAUDIO_RETENTION"),
        ({"TEMPAUDIO_SYNTH_WORKERS": "0"}, "TEMPAUDIO_SYNTH_WORKERS='0' must be 1 to 256"),
        ({"TEMPAUDIO_PORT": "http"}, "whole number"),
        ({"TEMPAUDIO_PORT": "70000"}, "TEMPAUDIO_PORT"),
        ({"TEMPAUDIO_LOCAL_AWS": "maybe"}, "boolean"),
        ({"TEMPAUDIO_LOG_FORMAT": "xml"}, "TEMPAUDIO_LOG_FORMAT='xml' must be one of: text, json"),
        # Each of these started the service before, and failed later or silently.
        ({"TEMPAUDIO_RETENTION": "3000000d"}, "TEMPAUDIO_RETENTION: .* between 1m and 365d"),
        ({"TEMPAUDIO_RETENTION": "30s"}, "TEMPAUDIO_RETENTION: .* between 1m and 365d"),
        ({"TEMPAUDIO_LOG_LEVEL": "verbose"}, "TEMPAUDIO_LOG_LEVEL: 'verbose' is not a log level"),
        ({"TEMPAUDIO_PREFIX": ""}, "TEMPAUDIO_PREFIX: the prefix must not be empty"),
        ({"TEMPAUDIO_PREFIX": "/abs"}, "TEMPAUDIO_PREFIX"),
        ({"TEMPAUDIO_PREFIX": "a/../b"}, "TEMPAUDIO_PREFIX"),
        ({"TEMPAUDIO_MAX_AUDIO_SECONDS": "0"}, "TEMPAUDIO_MAX_AUDIO_SECONDS"),
        ({"TEMPAUDIO_IO_TIMEOUT": "9" * 5000}, "TEMPAUDIO_IO_TIMEOUT"),
    ],
)
def test_bad_values_are_reported_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ServiceSettings.from_env(env)


def test_describe_is_printable() -> None:
    described = ServiceSettings.from_env({"TEMPAUDIO_VOICES_DIR": "/v"}).describe()
    assert described["retention"] == "1d"
    assert described["voices_dir"] == "/v"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("on", True), (" true", True), ("YES", True), ("1", True), ("off", False), ("No", False)],
)
def test_one_boolean_rule(raw: str, expected: bool) -> None:
    assert ServiceSettings.from_env({"TEMPAUDIO_LOCAL_AWS": raw}).local_aws is expected


def test_log_level_is_case_insensitive() -> None:
    assert ServiceSettings.from_env({"TEMPAUDIO_LOG_LEVEL": "debug"}).log_level == "DEBUG"


def test_the_web_console_is_on_unless_turned_off() -> None:
    assert ServiceSettings.from_env({}).console is True
    assert ServiceSettings.from_env({"TEMPAUDIO_CONSOLE": "false"}).console is False
    with pytest.raises(SettingsError, match="TEMPAUDIO_CONSOLE"):
        ServiceSettings.from_env({"TEMPAUDIO_CONSOLE": "api-only"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ("localhost", "127.0.0.1", "[::1]")),  # empty: the default
        ("tts.example.com", ("tts.example.com",)),
        (" TTS.Example.com., *.internal.example ,localhost,", ("tts.example.com",
                                                               "*.internal.example", "localhost")),
        ("[::1],[fd00::12],10.0.0.5", ("[::1]", "[fd00::12]", "10.0.0.5")),
        ("*", ("*",)),
    ],
)  # fmt: skip
def test_console_hosts_are_patterns(raw: str, expected: tuple[str, ...]) -> None:
    settings = ServiceSettings.from_env({"TEMPAUDIO_CONSOLE_HOSTS": raw})
    assert settings.console_hosts == expected


@pytest.mark.parametrize(
    "raw", [",", "localhost:8080", "http://localhost", "::1", "a.*.example", "*example.com",
            "tts example", "a/b"],
)  # fmt: skip
def test_bad_console_hosts_are_reported_by_name(raw: str) -> None:
    with pytest.raises(SettingsError, match="TEMPAUDIO_CONSOLE_HOSTS"):
        ServiceSettings.from_env({"TEMPAUDIO_CONSOLE_HOSTS": raw})


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost:8080", True), ("127.0.0.1", True), ("[::1]:8080", True),
        ("LocalHost.:8080", True), ("evil.example:8080", False), ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False), ("[::2]:8080", False), ("", False), (None, False),
    ],
)  # fmt: skip
def test_a_host_is_matched_by_name_without_its_port(host: str | None, allowed: bool) -> None:
    assert hosts.is_allowed(host, hosts.DEFAULT_HOSTS) is allowed
    assert hosts.is_allowed(host, ("*",))  # any host, even none


@pytest.mark.parametrize(
    ("headers", "browser"),
    [
        ({"sec-fetch-site": "same-origin"}, True),
        ({"sec-fetch-mode": "navigate"}, True),
        ({"origin": "http://evil.example:8080"}, True),
        ({"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}, True),
        ({"user-agent": "curl/8.5.0"}, False),
        ({"user-agent": "kube-probe/1.31"}, False),
        ({"user-agent": "python-httpx/0.28.1", "accept": "*/*"}, False),
        ({}, False),
    ],
)
def test_a_browser_is_known_by_its_headers(headers: dict[str, str], browser: bool) -> None:
    assert hosts.is_browser(headers) is browser


# --- the settings table ---------------------------------------------------------------------

ROWS = rows()
INTEGERS = [(name, spec) for name, spec, _ in ROWS if spec.kind is INTEGER]


def test_every_setting_is_one_row_with_a_variable_of_its_own() -> None:
    assert [name for name, _, _ in ROWS] == [f.name for f in fields(ServiceSettings)]
    variables = [spec.variable for _, spec, _ in ROWS]
    assert len(set(variables)) == len(variables)
    for _, spec, _ in ROWS:
        assert spec.variable.startswith("TEMPAUDIO_")
        assert spec.doc, spec.variable
        assert "\n" not in spec.doc, spec.variable


@pytest.mark.parametrize(("name", "spec"), INTEGERS, ids=[spec.variable for _, spec in INTEGERS])
def test_integer_bounds_come_from_the_table(name: str, spec: Setting) -> None:
    assert spec.maximum is not None, "every whole number is bounded"
    for edge in (spec.minimum, spec.maximum):
        # The probes' port may not be the listen port: move the listen port out of the way.
        settings = ServiceSettings.from_env({"TEMPAUDIO_PORT": "1", spec.variable: str(edge)})
        assert getattr(settings, name) == edge
    for outside in (spec.minimum - 1, spec.maximum + 1):
        with pytest.raises(SettingsError) as refused:
            ServiceSettings.from_env({spec.variable: str(outside)})
        assert str(refused.value) == (
            f"{spec.variable}='{outside}' must be {spec.minimum} to {spec.maximum}"
        )


def test_a_default_can_follow_another_setting() -> None:
    settings = ServiceSettings.from_env({"TEMPAUDIO_SYNTH_WORKERS": "5", "AWS_REGION": "eu-west-1"})
    assert (settings.synth_queue, settings.onnx_idle_threads, settings.region) == (
        10,
        5,
        "eu-west-1",
    )
    kubernetes = ServiceSettings.from_env({"TEMPAUDIO_POLICY_SOURCE": "kubernetes"})
    assert kubernetes.local_aws is False  # no embedded storage unless asked for
    assert ServiceSettings.from_env({"TEMPAUDIO_POLICY_FILE": "p.yaml"}).policy_source == "file"


def test_env_example_sets_only_the_defaults() -> None:
    """`.env.example`'s uncommented lines are the service's defaults, so copying it changes
    nothing; every variable of the table is in it."""
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    variables = {spec.variable for _, spec, _ in ROWS}
    assert not [v for v in variables if v not in example]
    written = dict(
        line.split("=", 1)
        for line in example.splitlines()
        if line.startswith("TEMPAUDIO_") and line.split("=", 1)[0] in variables
    )
    assert len(written) > 20
    for variable, value in written.items():
        assert ServiceSettings.from_env({variable: value}) == ServiceSettings.from_env({}), variable
