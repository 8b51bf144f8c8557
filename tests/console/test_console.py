"""The web console in a real browser: it lists the policies and voices, speaks through the
public API and plays the presigned URL, highlights the words as they are spoken, auditions
SSML and a lexicon entry, shows refusals, and asks for a token when the service authenticates
callers. No request leaves 127.0.0.1 and the browser logs no error.

``CONSOLE_SCREENSHOT=docs/console.png`` saves the README's screenshot."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.storage.store import AudioStore
from tests.conftest import serving
from tests.console.conftest import REBOUND, Browser

# Records each word the page highlights (the class it sets on a word while it is spoken).
WATCH_HIGHLIGHTS = """
window.highlighted = [];
new MutationObserver((records) => {
  for (const record of records) {
    if (record.target.classList.contains("speaking")) {
      window.highlighted.push(record.target.textContent);
    }
  }
}).observe(document.getElementById("spoken"),
           {subtree: true, attributes: true, attributeFilter: ["class"]});
"""
PLAYBACK = """
const audio = document.getElementById("audio");
return {src: audio.currentSrc, duration: audio.duration, time: audio.currentTime,
        ended: audio.ended, error: audio.error && audio.error.message};
"""


def open_console(browser: Browser, base: str) -> Any:
    driver = browser.driver
    driver.get(f"{base}/")
    browser.wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#policies tbody tr"), "policies")
    browser.wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#voices tbody tr"), "voices")
    return driver


def labelled(driver: Any, label: str) -> Any:
    """The control a <label> with exactly this text names."""
    target = driver.find_element(By.XPATH, f"//label[normalize-space()='{label}']")
    return driver.find_element(By.ID, target.get_attribute("for"))


def speak(browser: Browser, text: str, **choices: str) -> dict[str, Any]:
    """Type ``text``, choose (label -> option text), press Speak; the playback once the
    audio has played (or ended)."""
    driver = browser.driver
    for label, choice in choices.items():
        Select(labelled(driver, label)).select_by_visible_text(choice)
    box = labelled(driver, "Text")
    box.clear()
    box.send_keys(text)
    driver.execute_script(WATCH_HIGHLIGHTS)
    before = driver.execute_script(PLAYBACK)["src"]
    driver.find_element(By.XPATH, "//button[normalize-space()='Speak']").click()

    def played() -> Mapping[str, Any] | None:
        state: dict[str, Any] = driver.execute_script(PLAYBACK)
        assert not driver.find_element(By.ID, "error").text, driver.find_element(
            By.ID, "error"
        ).text
        assert state["error"] is None, state
        started = (state["duration"] or 0) > 0 and (state["time"] > 0 or state["ended"])
        started = started and state["src"] != before  # this answer's audio, not the last
        return state if started else None

    state: dict[str, Any] = browser.wait(played, f"{text!r} to play", timeout=60)
    return state


def highlighted(browser: Browser) -> list[str]:
    words: list[str] = browser.wait(
        lambda: browser.driver.execute_script("return window.highlighted"),
        "a highlighted word", timeout=30,
    )  # fmt: skip
    return words


def shown(driver: Any, element_id: str) -> str:
    text: str = driver.find_element(By.ID, element_id).text
    return text


def assert_kept_to_loopback(browser: Browser, *expected_errors: str) -> None:
    assert browser.hosts() == {"127.0.0.1"}, browser.urls
    unexpected = browser.errors(lambda message: any(e in message for e in expected_errors))
    assert not unexpected, unexpected


def test_the_console_lists_the_policies_and_plays_what_it_speaks(
    browser: Browser, base: str
) -> None:
    driver = open_console(browser, base)
    policies = shown(driver, "policies")
    assert "default/plain (default) 2h Ready none" in policies
    assert "default/said 1h Ready tech" in policies
    assert "en_US-joe-medium en_US 22050 Hz 1 yes" in shown(driver, "voices")
    assert (
        Select(labelled(driver, "Policy")).first_selected_option.text == "default/plain (default)"
    )

    state = speak(browser, "Hello from the console.")
    # The <audio> element plays the presigned URL, from moto's server on loopback.
    assert state["src"].startswith("http://127.0.0.1:")
    assert "X-Amz-Signature=" in state["src"]
    assert state["src"] == driver.find_element(By.ID, "url").get_attribute("href")
    # When the URL and the audio expire (2h under this policy).
    url_expires = driver.find_element(By.ID, "url-expires").get_attribute("datetime")
    audio_expires = driver.find_element(By.ID, "audio-expires").get_attribute("datetime")
    made = datetime.fromisoformat(url_expires) - datetime.fromisoformat(audio_expires)
    assert abs(made.total_seconds()) < 2
    assert audio_expires in shown(driver, "audio-expires")
    # Each word is highlighted as it is spoken, and only words of the text.
    words = highlighted(browser)
    assert set(words) <= {"Hello", "from", "the", "console"}, words
    assert shown(driver, "spoken") == "Hello from the console."
    assert_kept_to_loopback(browser)
    if os.environ.get("CONSOLE_SCREENSHOT"):
        screenshot(browser, Path(os.environ["CONSOLE_SCREENSHOT"]))


def screenshot(browser: Browser, path: Path) -> None:
    """The lexicon's policy, its audio paused on a highlighted word (README's picture)."""
    driver = browser.driver
    speak(browser, "Query the orders with SQL, then play the answer.", Policy="default/said")
    browser.wait(lambda: driver.execute_script(PLAYBACK)["ended"], "the end", timeout=60)
    driver.execute_script(
        "const a = document.getElementById('audio'); a.currentTime = a.duration * 0.55;"
    )
    browser.wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#spoken .speaking"), "a word")
    driver.execute_script("window.scrollTo(0, 0)")
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))


def test_ssml_and_a_lexicon_entry_are_auditioned(browser: Browser, base: str) -> None:
    driver = open_console(browser, base)
    document = '<speak>Your code is <say-as interpret-as="digits">42</say-as>. Thanks!</speak>'
    speak(browser, document, **{"Text type": "SSML"})
    # Offsets index the document: the words highlighted are the document's, never its tags.
    words = highlighted(browser)
    assert set(words) <= {"Your", "code", "is", "42", "Thanks"}, words
    assert shown(driver, "spoken") == document

    Select(labelled(driver, "Text type")).select_by_visible_text("Plain text")
    Select(labelled(driver, "Policy")).select_by_visible_text("default/said")
    assert "lexicons: tech" in shown(driver, "policy-lexicons")
    speak(browser, "Query it with SQL.")
    assert shown(driver, "audio-id").endswith("policy said")
    # Said as the alias, marked as the written word.
    browser.wait(lambda: "SQL" in driver.execute_script("return window.highlighted"), "SQL")
    assert_kept_to_loopback(browser)


def test_a_refusal_is_shown_in_the_page(browser: Browser, base: str) -> None:
    driver = open_console(browser, base)
    Select(labelled(driver, "Text type")).select_by_visible_text("SSML")
    labelled(driver, "Text").send_keys("<speak>Unclosed <break time='1s'></speak>")
    driver.find_element(By.XPATH, "//button[normalize-space()='Speak']").click()
    alert = browser.wait(
        lambda: driver.find_element(By.CSS_SELECTOR, "[role=alert]").text, "the alert"
    )
    assert alert.startswith("422 invalid_request: SSML is not well-formed at line 1"), alert
    # Chromium logs the refused request itself; nothing else.
    assert_kept_to_loopback(
        browser, "/tts/sync - Failed to load resource: the server responded with a status of 422"
    )


class OneToken:
    """TokenReview answered for one token (the real review: tests/operator/test_callers.py)."""

    def review(self, token: str, audience: str) -> str | None:
        return "system:serviceaccount:team-a:console" if token == "t-console" else None

    def labels(self, namespace: str) -> Mapping[str, str]:
        return {}


def test_under_serviceaccount_auth_the_console_needs_a_pasted_token(
    browser: Browser, console_settings: ServiceSettings, store: AudioStore, piper: Any
) -> None:
    settings = replace(console_settings, auth="serviceaccount")
    with serving(create_app(settings, synth=piper, store=store, lookups=OneToken())) as base:
        driver = open_console(browser, base)
        labelled(driver, "Text").send_keys("Hello.")
        driver.find_element(By.XPATH, "//button[normalize-space()='Speak']").click()
        alert = browser.wait(
            lambda: driver.find_element(By.CSS_SELECTOR, "[role=alert]").text, "the alert"
        )
        assert alert.startswith("401 unauthenticated"), alert
        assert "paste a ServiceAccount token" in alert
        token = labelled(driver, "Token")
        assert token.get_attribute("type") == "password"
        # In no form: no form submission carries it, so no password is offered for saving.
        assert driver.execute_script("return arguments[0].form", token) is None
        assert not driver.find_elements(By.CSS_SELECTOR, "form input[type=password]")
        token.send_keys("t-console")
        speak(browser, "Hello with a token.")
        highlighted(browser)  # the marks are read with the token too
        assert not shown(driver, "error")
        assert_kept_to_loopback(
            browser,
            "/tts/sync - Failed to load resource: the server responded with a status of 401",
        )
    # The token went in a header, never in a URL.
    assert not [url for url in browser.urls if "t-console" in url]


# Run in the page: what a rebound page's own script would get from the service.
FETCH_AS_THE_PAGE = """
const done = arguments[arguments.length - 1];
const speak = {method: "POST", headers: {"Content-Type": "application/json"},
               body: JSON.stringify({text: "Stolen."})};
Promise.all([fetch("/policies"), fetch("/tts/sync", speak)])
  .then(async (answers) => done(await Promise.all(
    answers.map(async (answer) => [answer.status, (await answer.json()).error]))))
  .catch((error) => done(String(error)));
"""


def test_a_page_rebound_to_the_service_reads_and_speaks_nothing(
    browser: Browser, base: str
) -> None:
    """DNS rebinding: http://rebound.example:<port> resolves to 127.0.0.1, where the service
    listens (as under kubectl port-forward); the page is same-origin with it. Over plain
    http Chromium sends it no Sec-Fetch-* header: its User-Agent and Origin tell it apart."""
    driver = browser.driver
    port = base.rsplit(":", 1)[1]
    driver.get(f"http://{REBOUND}:{port}/")
    assert "unknown_host" in driver.find_element(By.TAG_NAME, "body").text
    driver.set_script_timeout(30)
    refused = driver.execute_async_script(FETCH_AS_THE_PAGE)
    assert refused == [[421, "unknown_host"], [421, "unknown_host"]], refused
    # The same page at the console's own address is served.
    driver.get(f"{base}/")
    served = driver.execute_async_script(FETCH_AS_THE_PAGE)
    assert [status for status, _ in served] == [200, 200], served
