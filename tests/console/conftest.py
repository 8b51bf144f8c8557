"""Debian's headless Chromium, driven through its chromedriver by Selenium (no browser is
downloaded), against the service on loopback with the real Piper voice and moto's server;
every request the browser makes and every message it logs is kept for the tests to check."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.storage.store import AudioStore
from tests.conftest import documents_file, lexicon_document, policy_document, serving

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REBOUND = "rebound.example"
# Headless, and kept off the network: every host name but 127.0.0.1 resolves to nothing (but
# rebound.example, an attacker's name rebound to 127.0.0.1), and nothing runs in the
# background (updates, sync, metrics uploads, default apps).
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-default-apps", "--disable-extensions",
    "--metrics-recording-only", f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--autoplay-policy=no-user-gesture-required", "--window-size=1100,1700",
    "--mute-audio",
)  # fmt: skip


def missing_browser() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(path) is None:
            return f"{path} is missing: install Debian's {package} (make test-packages, as root)"
    return None


@dataclass
class Browser:
    """The driver, and what the browser has requested and logged so far."""

    driver: Any
    urls: list[str] = field(default_factory=list)
    logged: list[dict[str, Any]] = field(default_factory=list)

    def drain(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.urls.append(message["params"]["request"]["url"])
        self.logged.extend(self.driver.get_log("browser"))

    def hosts(self) -> set[str]:
        """The hosts of every request that could leave the browser: http(s) and websockets
        (chrome: pages, data: icons of the media controls and blob: stay inside it)."""
        self.drain()
        schemes = {urlsplit(url).scheme for url in self.urls}
        assert schemes <= {"http", "https", "ws", "wss", "chrome", "data", "blob", "about"}, schemes
        network = [
            url for url in self.urls if urlsplit(url).scheme in ("http", "https", "ws", "wss")
        ]
        return {urlsplit(url).hostname or url for url in network}

    def errors(self, expected: Callable[[str], bool] = lambda message: False) -> list[str]:
        """SEVERE messages of the browser's console, but those ``expected``."""
        self.drain()
        return [
            entry["message"]
            for entry in self.logged
            if entry["level"] == "SEVERE" and not expected(entry["message"])
        ]

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        """Poll ``condition`` until it is truthy (its value), or fail saying ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    reason = missing_browser()
    if reason is not None:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield Browser(driver)
    finally:
        driver.quit()


def lexicon_file(tmp_path: Path, settings: ServiceSettings) -> Path:
    """A lexicon that says "SQL" as "sequel", a policy that says text with it, and one that
    does not (the default)."""
    return documents_file(
        tmp_path / "policies.yaml",
        lexicon_document("tech", [{"grapheme": "SQL", "alias": "sequel"}]),
        policy_document("said", settings.bucket, settings.table, lexicons=["tech"]),
        policy_document("plain", settings.bucket, settings.table, retention="2h"),
    )


@pytest.fixture
def console_settings(tmp_path: Path, settings: ServiceSettings) -> ServiceSettings:
    return replace(
        settings,
        policy_source="file",
        policy_file=lexicon_file(tmp_path, settings),
        default_policy="default/plain",
    )


@pytest.fixture
def base(console_settings: ServiceSettings, store: AudioStore, piper: Any) -> Iterator[str]:
    """The service, with the real voice, on a loopback port."""
    with serving(create_app(console_settings, synth=piper, store=store)) as url:
        yield url
