"""A request's audio: the synthesizer's PCM through the format's encoder.

Everything here runs on a synthesis worker thread; a stream runs one step per call, so the
event loop sends each sentence while the next one is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .encoders import Encoder, open_encoder, wav_sizes_fixed
from .tts_request import TtsRequest
from .voices import Synthesizer, Timing


@dataclass(frozen=True)
class Rendered:
    audio: bytes
    # Frames at the voice's rate: the exact duration, whatever the output rate.
    num_frames: int
    voice_rate: int
    # Speech marks as found (requests with speech marks or captions).
    timings: tuple[Timing, ...] = field(default=())

    @property
    def duration_seconds(self) -> float:
        return self.num_frames / self.voice_rate


def render_whole(synth: Synthesizer, tts: TtsRequest) -> Rendered:
    """The whole file, as stored in S3."""
    voice_rate = synth.voices[tts.voice].sample_rate
    encoder = open_encoder(tts.format, voice_rate, tts.sample_rate, streaming=False)
    timings: list[Timing] | None = [] if tts.timed else None
    try:
        frames = 0
        for pcm in synth.speak(tts.spoken(), tts.voice, tts.options, timings=timings):
            frames += len(pcm) // 2
            encoder.write(pcm)
        return Rendered(encoder.finish(), frames, voice_rate, tuple(timings or ()))
    finally:
        encoder.close()


class RenderStream:
    """One stream's steps: ``step()`` returns the next bytes to send, or None when done.

    With ``keep``, every byte sent is kept as well, so the stored object is exactly the
    stream (a WAV gets its real sizes). The first sentence's first words are sent ahead of
    the rest of it. ``timings`` grows as marks are found (requests with speech marks). Not
    thread-safe: one step at a time.
    """

    def __init__(self, synth: Synthesizer, tts: TtsRequest, *, keep: bool) -> None:
        self.voice_rate = synth.voices[tts.voice].sample_rate
        self.num_frames = 0
        self._format = tts.format
        self.timings: list[Timing] = []
        self._sentences: Iterator[bytes] = synth.speak(
            tts.spoken(), tts.voice, tts.options, timings=self.timings if tts.timed else None,
            early=True,
        )  # fmt: skip
        self._encoder: Encoder = open_encoder(
            tts.format, self.voice_rate, tts.sample_rate, streaming=True
        )
        self._kept: bytearray | None = bytearray() if keep else None
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
            self._kept += out
        return out

    @property
    def duration_seconds(self) -> float:
        return self.num_frames / self.voice_rate

    def kept(self) -> bytes:
        """The whole stream as a file (after the last step)."""
        assert self._kept is not None
        assert self._done
        data = bytes(self._kept)
        return wav_sizes_fixed(data) if self._format == "wav" else data

    def close(self) -> None:
        """Stop: the synthesizer lets go of its voice, the encoder of FFmpeg's state."""
        close = getattr(self._sentences, "close", None)
        if close is not None:
            close()
        self._encoder.close()
        self._kept = None
