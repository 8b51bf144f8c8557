"""The console's voice picker follows the chosen policy: the voices a request under it may
name (``GET /voices?policy=``, asked again when the policy changes), only the ones it
allows, its ``defaultVoice`` chosen, a declared voice that is not ready listed but not
choosable, its reason in its label.

The tone synthesizer stands in for Piper, with TempAudioVoices as the synthesizer holds
them once declared (``namespace/name``, source ``resource``): one of the policies'
namespace, whose readiness the test sets as the operator's verdict would, and one of
another namespace, which no policy here sees."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.voices import VoiceInfo
from tempaudio_service.storage.store import AudioStore
from tests.conftest import ToneSynthesizer, documents_file, policy_document, serving
from tests.console.conftest import Browser
from tests.console.test_console import (
    assert_kept_to_loopback,
    labelled,
    open_console,
    shown,
    speak,
)

SHA256 = "ab" * 32


def declared(key: str, *, ready: bool = True, reason: str | None = None) -> VoiceInfo:
    """A TempAudioVoice as the synthesizer describes it before its bytes are here."""
    return VoiceInfo(
        name=key,
        sample_rate=22050,
        language="de_DE",
        quality="medium",
        num_speakers=1,
        word_timings=True,
        source="resource",
        version=SHA256,
        ready=ready,
        reason=reason,
    )


class DeclaringTone(ToneSynthesizer):
    """The tone's two voices, ``default/de-thorsten`` and ``team-b/fr-siwis``."""

    def __init__(self) -> None:
        super().__init__()
        self.judge(ready=True)

    def judge(self, *, ready: bool, reason: str | None = None) -> None:
        """Set de-thorsten's readiness, as a new verdict of the operator would."""
        self._voices = {
            **{k: v for k, v in self._voices.items() if v.source != "resource"},
            "default/de-thorsten": declared("default/de-thorsten", ready=ready, reason=reason),
            "team-b/fr-siwis": declared("team-b/fr-siwis"),
        }


@pytest.fixture
def declaring() -> DeclaringTone:
    return DeclaringTone()


@pytest.fixture
def voices_base(
    tmp_path: Path,
    console_settings: ServiceSettings,
    store: AudioStore,
    declaring: DeclaringTone,
) -> Iterator[str]:
    """Three policies: ``joe-only`` allows one voice, ``open`` every voice (the default
    policy), ``multi`` every voice with xx-multi as its default."""
    bucket, table = console_settings.bucket, console_settings.table
    policies = documents_file(
        tmp_path / "voices.yaml",
        policy_document("joe-only", bucket, table, voices=["en_US-joe-medium"]),
        policy_document("open", bucket, table),
        policy_document("multi", bucket, table, defaultVoice="xx-multi"),
    )
    settings = replace(console_settings, policy_file=policies, default_policy="default/open")
    with serving(create_app(settings, synth=declaring, store=store)) as url:
        yield url


def picker(browser: Browser, expected: list[str]) -> list[tuple[str, bool, str]]:
    """Once the voice picker offers exactly ``expected`` (its options' labels): each
    option's label, whether it may be chosen, and its title."""
    driver = browser.driver

    def options() -> list[tuple[str, bool, str]] | None:
        found = [
            (item.text, item.is_enabled(), item.get_attribute("title") or "")
            for item in Select(labelled(driver, "Voice")).options
        ]
        return found if [label for label, _, _ in found] == expected else None

    found: list[tuple[str, bool, str]] = browser.wait(options, f"the voices {expected}")
    return found


def chosen(driver: Any) -> str:
    text: str = Select(labelled(driver, "Voice")).first_selected_option.text
    return text


def test_the_voice_picker_offers_what_the_chosen_policy_allows(
    browser: Browser, voices_base: str
) -> None:
    driver = open_console(browser, voices_base)
    # Under the default policy (open): the service's voices and its namespace's
    # TempAudioVoice by its plain name; another namespace's is not there.
    found = picker(browser, ["de-thorsten", "en_US-joe-medium", "xx-multi"])
    assert all(enabled for _, enabled, _ in found), found
    assert chosen(driver) == "en_US-joe-medium"
    assert shown(driver, "policy-voices") == "This policy allows every voice the service serves."
    # The catalog lists every voice, declared ones by namespace/name, with source and state.
    catalog = shown(driver, "voices")
    assert "default/de-thorsten de_DE 22050 Hz 1 yes resource Ready" in catalog
    assert "team-b/fr-siwis de_DE 22050 Hz 1 yes resource Ready" in catalog
    assert "en_US-joe-medium en_US 22050 Hz 1 yes bundled Ready" in catalog

    Select(labelled(driver, "Policy")).select_by_visible_text("default/joe-only")
    picker(browser, ["en_US-joe-medium"])
    assert chosen(driver) == "en_US-joe-medium"
    assert shown(driver, "policy-voices") == "This policy allows 1 of the service's 3 voices."
    speak(browser, "Only Joe here.")
    assert shown(driver, "audio-id").endswith("policy joe-only")

    Select(labelled(driver, "Policy")).select_by_visible_text("default/multi")
    picker(browser, ["de-thorsten", "en_US-joe-medium", "xx-multi"])
    assert chosen(driver) == "xx-multi"  # the policy's defaultVoice
    speak(browser, "The declared voice speaks.", Voice="de-thorsten")
    assert shown(driver, "audio-id").endswith("policy multi")
    assert_kept_to_loopback(browser)


def test_a_declared_voice_that_is_not_ready_is_listed_and_not_choosable(
    browser: Browser, voices_base: str, declaring: DeclaringTone
) -> None:
    driver = open_console(browser, voices_base)
    picker(browser, ["de-thorsten", "en_US-joe-medium", "xx-multi"])
    Select(labelled(driver, "Voice")).select_by_visible_text("de-thorsten")
    # The operator finds the object changed: the page, filled before, still offers it; the
    # service refuses it with the reason, and the page lists the voices again.
    declaring.judge(ready=False, reason="HashMismatch")
    labelled(driver, "Text").send_keys("Too late.")
    driver.find_element(By.XPATH, "//button[normalize-space()='Speak']").click()
    alert = browser.wait(
        lambda: driver.find_element(By.CSS_SELECTOR, "[role=alert]").text, "the alert"
    )
    refused = "503 voice_not_ready: voice de-thorsten is not ready (HashMismatch)"
    assert alert.startswith(refused), alert
    found = picker(
        browser, ["de-thorsten (not ready: HashMismatch)", "en_US-joe-medium", "xx-multi"]
    )
    assert found[0] == (
        "de-thorsten (not ready: HashMismatch)",
        False,
        "Not ready: HashMismatch: refused (503 voice_not_ready)",
    )
    assert chosen(driver) == "en_US-joe-medium"  # the default, de-thorsten being unusable
    assert shown(driver, "policy-voices").endswith("Not ready, so not choosable: de-thorsten.")

    # A policy chosen afterwards lists it as it is now; one that does not allow it, not at all.
    Select(labelled(driver, "Policy")).select_by_visible_text("default/joe-only")
    picker(browser, ["en_US-joe-medium"])
    Select(labelled(driver, "Policy")).select_by_visible_text("default/multi")
    picker(browser, ["de-thorsten (not ready: HashMismatch)", "en_US-joe-medium", "xx-multi"])
    assert chosen(driver) == "xx-multi"
    assert_kept_to_loopback(
        browser, "/tts/sync - Failed to load resource: the server responded with a status of 503"
    )
