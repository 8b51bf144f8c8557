"""A request's audio: the synthesizer's PCM through the format's encoder.

Everything here runs on a synthesis worker thread; a stream runs one step per call, so the
event loop sends each sentence while the next one is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from tempaudio_service.speech.encoders import Encoder, Output, open_encoder, wav_size_fields
from tempaudio_service.speech.voices import Synthesizer, Timing
from tempaudio_service.wire.tts_request import TtsRequest


@dataclass(frozen=True)
class Rendered:
    """What was made into an output: how long it is, and its marks."""

    # Frames at the voice's rate: the exact duration, whatever the output rate.
    num_frames: int
    voice_rate: int
    # Speech marks as found (requests with speech marks or captions).
    timings: tuple[Timing, ...] = field(default=())

    @property
    def duration_seconds(self) -> float:
        return self.num_frames / self.voice_rate


def render_whole(synth: Synthesizer, tts: TtsRequest, output: Output) -> Rendered:
    """The whole file, as stored in S3, written into ``output`` as it is made."""
    voice_rate = synth.voices[tts.voice].sample_rate
    encoder = open_encoder(tts.format, voice_rate, tts.sample_rate, streaming=False, output=output)
    timings: list[Timing] | None = [] if tts.timed else None
    try:
        frames = 0
        for pcm in synth.speak(tts.spoken(), tts.voice, tts.options, timings=timings):
            frames += len(pcm) // 2
            encoder.write(pcm)
        encoder.finish()
        return Rendered(frames, voice_rate, tuple(timings or ()))
    finally:
        encoder.close()


class RenderStream:
    """One stream's steps: ``step()`` returns the next bytes to send, or None when done.

    With ``keep``, every byte sent is written there as well, so the stored object is exactly
    the stream (a WAV gets its real sizes at the end). The first sentence's first words are sent ahead of
    the rest of it. ``timings`` grows as marks are found (requests with speech marks). Not
    thread-safe: one step at a time.
    """

    def __init__(self, synth: Synthesizer, tts: TtsRequest, *, keep: Output | None) -> None:
        self.voice_rate = synth.voices[tts.voice].sample_rate
        self.num_frames = 0
        self._format = tts.format
        self.timings: list[Timing] = []
        self._sentences: Iterator[bytes] = synth.speak(
            tts.spoken(),
            tts.voice,
            tts.options,
            timings=self.timings if tts.timed else None,
            early=True,
        )
        self._encoder: Encoder = open_encoder(
            tts.format, self.voice_rate, tts.sample_rate, streaming=True
        )
        self._kept = keep
        self._done = False

    def step(self) -> bytes | None:
        """The bytes of the next sentence (maybe empty while an encoder fills a frame)."""
        if self._done:
            return None
        pcm = next(self._sentences, None)
        if pcm is None:
            self._done = True
            out = self._encoder.finish()
        else:
            self.num_frames += len(pcm) // 2
            out = self._encoder.write(pcm)
        if self._kept is not None:
            self._kept.write(out)
            if self._done and self._format == "wav":
                self._fix_wav_sizes(self._kept)
        return out

    @staticmethod
    def _fix_wav_sizes(kept: Output) -> None:
        size = kept.tell()
        for offset, value in wav_size_fields(size):
            kept.seek(offset)
            kept.write(value)
        kept.seek(size)

    @property
    def duration_seconds(self) -> float:
        return self.num_frames / self.voice_rate

    @property
    def done(self) -> bool:
        """The last step is taken: what ``keep`` holds is the whole file."""
        return self._done

    def close(self) -> None:
        """Stop: the synthesizer lets go of its voice, the encoder of FFmpeg's state."""
        close = getattr(self._sentences, "close", None)
        if close is not None:
            close()
        self._encoder.close()
        self._kept = None
