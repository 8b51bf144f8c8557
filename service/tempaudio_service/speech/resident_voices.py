"""Declared voices loaded on first use, at most ``TEMPAUDIO_MAX_RESIDENT_VOICES`` at once.

The first request for a declared voice fetches its model and config into the voice cache
(``<cache>/<sha256>.onnx`` and ``.onnx.json``; the chart mounts an ``emptyDir`` with a size
limit there), the model's bytes hashed as they arrive and kept only if they match the
declared ``sha256``; then it is prepared for word timings (prepared_models.py) and its
sessions made. Requests that ask for it meanwhile wait for that one load. A voice of the
mounted volume is hashed where it lies.

The least recently used declared voice goes when one more is loaded: its sessions and
mapped weights are freed once the syntheses that hold them end. Its files stay in the
cache, so it comes back without a fetch. The bundled voice and the volume's are loaded at
start and never go.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tempaudio_service.core.declared_voices import (
    CONFIG_INVALID,
    HASH_MISMATCH,
    OBJECT_MISSING,
    UNREADABLE,
    DeclaredVoice,
    ModelFetcher,
    VolumeSource,
)
from tempaudio_service.core.errors import VoiceNotReady
from tempaudio_service.speech.prepared_models import file_sha256

logger = logging.getLogger(__name__)
# How long a voice that failed to load is refused before it is tried again.
FAILURE_SECONDS = 30.0


@dataclass
class Loaded:
    """A voice's sessions, as the synthesizer uses them (built by ``load``)."""

    voice: Any  # what the synthesizer made of it: its sessions and description
    version: str | None


Load = Callable[[str, Path, Path], Loaded]


class ResidentVoices:
    def __init__(
        self,
        *,
        cache: Path,
        fetcher: ModelFetcher | None,
        volume: Path | None,
        most: int,
        load: Load,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache = cache
        self.fetcher = fetcher
        self._volume = volume
        self._most = max(1, most)
        self._load = load
        self._clock = clock
        self._resident: OrderedDict[str, Loaded] = OrderedDict()
        self._loading: dict[str, threading.Event] = {}
        # A failed load, and when: told to every request for a while, not tried again for
        # each (a tampered voice would be fetched whole every time).
        self._failed: dict[str, tuple[VoiceNotReady, float]] = {}
        self._lock = threading.Lock()
        self.fetches = 0  # models fetched (tests and the benchmark count them)

    @property
    def models(self) -> Path:
        """Where declared voices are prepared for word timings (prepared_models.py)."""
        return self._cache / "models"

    def resident(self) -> set[str]:
        with self._lock:
            return set(self._resident)

    def prune(self, declared: set[str]) -> None:
        """Delete the cached files of every hash no voice is declared with now: the cache
        holds the declared voices' models and no more (a pod that saw many versions does
        not fill its volume). A voice loaded now keeps its mapped files until it goes."""
        with self._lock:
            if self._loading:
                return  # a fetch writes into the cache: prune at the next change
            kept = declared | {v.version for v in self._resident.values() if v.version}
        for path in [*self._cache.glob("*.onnx"), *self._cache.glob("*.onnx.json")]:
            sha256 = path.name.split(".", 1)[0]
            if sha256 not in kept:
                path.unlink(missing_ok=True)
        for entry in self.models.glob("*-v*") if self.models.is_dir() else ():
            if entry.name.split("-v", 1)[0] not in kept:
                shutil.rmtree(entry, ignore_errors=True)

    def failed(self) -> dict[str, VoiceNotReady]:
        """The voices whose last load failed, while they are refused for it."""
        now = self._clock()
        with self._lock:
            return {
                key: error
                for key, (error, at) in self._failed.items()
                if now - at < FAILURE_SECONDS
            }

    def forget(self, keep: Callable[[str, str | None], bool]) -> None:
        """Drop the resident voices (and remembered failures) ``keep`` rejects: a voice no
        longer declared, or declared with another hash."""
        with self._lock:
            for key in [k for k, v in self._resident.items() if not keep(k, v.version)]:
                del self._resident[key]
            self._failed.clear()

    def get(self, declared: DeclaredVoice) -> Loaded:
        """The voice's sessions, loaded now if they are not (once, however many ask)."""
        key = declared.key
        while True:
            with self._lock:
                found = self._resident.get(key)
                if found is not None and found.version == declared.version:
                    self._resident.move_to_end(key)
                    return found
                failed = self._failed.get(key)
                if failed is not None and self._clock() - failed[1] < FAILURE_SECONDS:
                    raise failed[0]
                waiting = self._loading.get(key)
                if waiting is None:
                    self._loading[key] = threading.Event()
                    break
            waiting.wait()
        try:
            loaded = self._fetch_and_load(declared)
        except VoiceNotReady as error:
            with self._lock:
                self._failed[key] = (error, self._clock())
            raise
        finally:
            with self._lock:
                self._loading.pop(key).set()
        with self._lock:
            self._failed.pop(key, None)
            self._resident[key] = loaded
            self._resident.move_to_end(key)
            while len(self._resident) > self._most:
                gone, _ = self._resident.popitem(last=False)
                logger.info("voice %s is no longer resident (at most %d)", gone, self._most)
        return loaded

    def _fetch_and_load(self, declared: DeclaredVoice) -> Loaded:
        model, config = self._files(declared)
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise VoiceNotReady(
                f"voice {declared.key}: its config is not JSON ({error})", CONFIG_INVALID
            ) from None
        try:
            loaded = self._load(declared.key, model, config)
        except (KeyError, TypeError, ValueError) as error:
            raise VoiceNotReady(
                f"voice {declared.key}: its config does not describe a Piper voice ({error})",
                CONFIG_INVALID,
            ) from None
        loaded.version = declared.version
        return loaded

    def _files(self, declared: DeclaredVoice) -> tuple[Path, Path]:
        if isinstance(declared.source, VolumeSource):
            return self._volume_files(declared, declared.source)
        model = self._cache / f"{declared.sha256}.onnx"
        config = self._cache / f"{declared.sha256}.onnx.json"
        if model.is_file() and config.is_file():
            return model, config  # kept by hash: fetched and checked before
        if self.fetcher is None:
            raise VoiceNotReady(
                f"voice {declared.key}: no object store to fetch it from", UNREADABLE
            )
        self._cache.mkdir(parents=True, exist_ok=True)
        partial = f".{os.getpid()}-{threading.get_ident()}.partial"
        model_part, config_part = Path(f"{model}{partial}"), Path(f"{config}{partial}")
        try:
            self.fetches += 1
            self.fetcher.fetch(declared, model_part, config_part)
            config_part.replace(config)
            model_part.replace(model)  # last: a model in the cache means both are whole
        finally:
            model_part.unlink(missing_ok=True)
            config_part.unlink(missing_ok=True)
        logger.info("fetched voice %s (%s)", declared.key, declared.sha256[:12])
        return model, config

    def _volume_files(self, declared: DeclaredVoice, source: VolumeSource) -> tuple[Path, Path]:
        if self._volume is None:
            raise VoiceNotReady(
                f"voice {declared.key} is in the voices volume, and none is mounted"
                " (TEMPAUDIO_VOICES_DIR)",
                OBJECT_MISSING,
            )
        model = self._volume / source.path
        config = Path(f"{model}.json")
        if not model.is_file() or not config.is_file():
            raise VoiceNotReady(
                f"voice {declared.key}: {source.path} or its .json is not in the voices volume",
                OBJECT_MISSING,
            )
        try:
            found = file_sha256(model)
        except OSError as error:
            raise VoiceNotReady(f"voice {declared.key}: {error}", UNREADABLE) from None
        if found != declared.sha256:
            raise VoiceNotReady(
                f"voice {declared.key}: {source.path} has SHA-256 {found[:12]}…, not the"
                f" declared {declared.sha256[:12]}…",
                HASH_MISMATCH,
            )
        return model, config
