"""Long text in the console: over the sync limit it becomes a job (``POST /tts/jobs``), its
parts shown on a progress bar as they are made, then played as a sync answer is; Cancel
stops a job; without a job queue a long text is refused as it always was.

The tone synthesizer stands in for the voice, held at a gate the test opens, so the bar is
seen mid-way whatever the machine's speed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.synth import SynthesisOptions
from tempaudio_service.storage.aws_clients import make_sqs_client
from tempaudio_service.storage.job_queue import ensure_queue
from tempaudio_service.storage.store import AudioStore
from tests.conftest import ToneSynthesizer, serving
from tests.console.conftest import Browser
from tests.console.test_console import (
    PLAYBACK,
    WATCH_HIGHLIGHTS,
    assert_kept_to_loopback,
    highlighted,
    labelled,
    open_console,
    shown,
)

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
LONG = " ".join([SENTENCE] * 16)  # 1,039 characters: over the 300 of one request
SYNC_LIMIT = 300
# Every value and label the progress bar shows, in order.
WATCH_PROGRESS = """
window.progressed = [];
const bar = document.getElementById("job-progress");
const label = document.getElementById("job-label");
const seen = () => window.progressed.push([bar.value, bar.max, label.textContent]);
new MutationObserver(seen).observe(document.getElementById("job"),
    {subtree: true, attributes: true, childList: true, characterData: true});
"""


class GatedTone(ToneSynthesizer):
    """The tone, but every part after the first waits until ``gate`` opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self._lock = threading.Lock()
        self._started = 0

    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        with self._lock:
            self._started += 1
            first = self._started == 1
        if not first:
            assert self.gate.wait(60), "the test never opened the gate"
        yield from super().sentences(text, voice, options)


def queue_url(endpoint: str) -> str:
    sqs = make_sqs_client(region="us-east-1", endpoint_url=endpoint, timeout_seconds=5, local=True)
    return ensure_queue(sqs, f"console-jobs-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def job_settings(console_settings: ServiceSettings) -> ServiceSettings:
    """A sync limit of 300 characters, and a queue with parts of 200 characters at most."""
    assert console_settings.s3_endpoint_url is not None
    return replace(
        console_settings,
        max_text_chars=SYNC_LIMIT,
        jobs_queue_url=queue_url(console_settings.s3_endpoint_url),
        jobs_part_chars=200,
        jobs_workers=2,
    )


@pytest.fixture
def gated() -> Iterator[GatedTone]:
    synth = GatedTone()
    yield synth
    synth.gate.set()  # no part left waiting when the service stops


def type_and_speak(driver: Any, text: str) -> None:
    box = labelled(driver, "Text")
    box.clear()
    box.send_keys(text)
    driver.execute_script(WATCH_HIGHLIGHTS)
    driver.execute_script(WATCH_PROGRESS)
    driver.find_element(By.XPATH, "//button[normalize-space()='Speak']").click()


def no_error(driver: Any) -> None:
    error = shown(driver, "error")
    assert not error, error


def played(browser: Browser) -> dict[str, Any]:
    driver = browser.driver

    def playing() -> dict[str, Any] | None:
        no_error(driver)
        state: dict[str, Any] = driver.execute_script(PLAYBACK)
        assert state["error"] is None, state
        started = (state["duration"] or 0) > 0 and (state["time"] > 0 or state["ended"])
        return state if started else None

    state: dict[str, Any] = browser.wait(playing, "the job's audio to play", timeout=60)
    return state


def progress(driver: Any) -> tuple[float, float]:
    bar = driver.find_element(By.ID, "job-progress")
    value: float = driver.execute_script("return arguments[0].value", bar)
    top: float = driver.execute_script("return arguments[0].max", bar)
    return value, top


def test_a_text_over_the_sync_limit_is_a_job_with_a_progress_bar_then_plays(
    browser: Browser, job_settings: ServiceSettings, store: AudioStore, gated: GatedTone
) -> None:
    with serving(create_app(job_settings, synth=gated, store=store)) as base:
        config = httpx.get(f"{base}/console/config").json()
        assert config == {"max_text_chars": SYNC_LIMIT, "jobs": True, "max_job_chars": 200_000}
        driver = open_console(browser, base)
        type_and_speak(driver, LONG)
        # The first part is made; the others wait at the gate: the bar stands part-way.
        label = browser.wait(
            lambda: "Synthesizing part 2 of" in shown(driver, "job") and shown(driver, "job"),
            "the second part",
        )
        value, top = progress(driver)
        assert (value, top) == (1, int(label.split(" of ")[1].split()[0])), label
        assert top >= 5, label  # 1,039 characters in parts of 200 at most
        bar = driver.find_element(By.XPATH, "//label[starts-with(., 'Synthesizing part 2 of')]")
        assert bar.get_attribute("for") == "job-progress"
        assert driver.find_element(By.ID, "cancel").is_displayed()
        assert not driver.find_element(By.ID, "speak").is_enabled()
        speaking = shown(driver, "status")
        assert speaking.startswith("Speaking as job"), speaking
        # A look that gets no answer is taken again later, then the page goes on.
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/tts/jobs/*"]})
        browser.wait(lambda: "asking again in 2 s" in shown(driver, "status"), "a retry")
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        browser.wait(lambda: shown(driver, "status") == speaking, "the job followed again")
        gated.gate.set()

        state = played(browser)
        # Played as a sync answer is: the presigned URL, its duration and expiry shown.
        assert state["src"].startswith("http://127.0.0.1:")
        assert "X-Amz-Signature=" in state["src"]
        assert state["src"] == driver.find_element(By.ID, "url").get_attribute("href")
        # The tone says 10 ms per character of each sentence: the parts join to the whole.
        assert state["duration"] == pytest.approx(16 * len(SENTENCE) * 0.01, abs=0.05)
        assert shown(driver, "duration").endswith("s of wav")
        assert driver.find_element(By.ID, "url-expires").get_attribute("datetime")
        assert shown(driver, "audio-id").endswith("policy plain")
        # The bar ends full, and no Cancel is offered for an ended job.
        assert progress(driver) == (top, top)
        assert shown(driver, "job-label") == f"Synthesized all {top} parts"
        assert not driver.find_element(By.ID, "cancel").is_displayed()
        # From the submission's answer (queued) to the end, never backwards.
        seen = [shown for shown in driver.execute_script("return window.progressed") if shown[2]]
        assert seen[0] == [0, top, f"Waiting to synthesize part 1 of {top}"], seen
        assert [1, top, f"Synthesizing part 2 of {top}"] in seen
        assert [value for value, _, _ in seen] == sorted(value for value, _, _ in seen)
        # The job's speech marks index the text as sent: its words are highlighted.
        assert set(highlighted(browser)) <= set(SENTENCE.rstrip(".").split())
        assert shown(driver, "spoken") == LONG
        assert driver.find_element(By.ID, "speak").is_enabled()
        no_error(driver)
        assert_kept_to_loopback(browser, "net::ERR_BLOCKED_BY_CLIENT")


def test_cancel_stops_a_job_and_a_double_click_makes_one(
    browser: Browser, job_settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    # No worker: the job stays queued until it is cancelled.
    settings = replace(job_settings, jobs_workers=0)
    with serving(create_app(settings, synth=tone, store=store)) as base:
        driver = open_console(browser, base)
        box = labelled(driver, "Text")
        box.send_keys(LONG)
        driver.execute_script(WATCH_PROGRESS)
        speak = driver.find_element(By.XPATH, "//button[normalize-space()='Speak']")
        ActionChains(driver).double_click(speak).perform()
        browser.wait(lambda: "Waiting to synthesize part 1 of" in shown(driver, "job"), "queued")
        assert progress(driver)[0] == 0
        driver.find_element(By.XPATH, "//button[normalize-space()='Cancel']").click()
        browser.wait(lambda: shown(driver, "status").startswith("Cancelled: job"), "cancelled")
        assert shown(driver, "job-label").startswith("Cancelled after 0 of")
        assert not driver.find_element(By.ID, "cancel").is_displayed()
        assert driver.find_element(By.ID, "speak").is_enabled()
        assert not driver.execute_script(PLAYBACK)["src"]
        no_error(driver)
        # The service agrees, and holds one job: the double click sent one.
        listing = httpx.get(f"{base}/tts/jobs", params={"policy": "default/plain"}).json()
        assert [job["status"] for job in listing["jobs"]] == ["cancelled"], listing
        assert_kept_to_loopback(browser)


def test_without_a_job_queue_a_long_text_is_refused_as_before(
    browser: Browser, console_settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    settings = replace(console_settings, max_text_chars=SYNC_LIMIT)
    with serving(create_app(settings, synth=tone, store=store)) as base:
        assert httpx.get(f"{base}/console/config").json()["jobs"] is False
        driver = open_console(browser, base)
        labelled(driver, "Text").send_keys(LONG)
        driver.find_element(By.XPATH, "//button[normalize-space()='Speak']").click()
        alert = browser.wait(lambda: shown(driver, "error"), "the alert")
        assert alert == (
            f"422 text_too_long: 'text' has {len(LONG)} characters; the limit is {SYNC_LIMIT}"
        )
        assert not driver.find_element(By.ID, "job").is_displayed()
        assert_kept_to_loopback(
            browser,
            "/tts/sync - Failed to load resource: the server responded with a status of 422",
        )
