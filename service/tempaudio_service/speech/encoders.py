"""16-bit PCM in, a format's bytes out: one encoder per response, fed sentence by sentence.

``write`` takes the next PCM and returns the bytes ready to send now; ``finish`` returns the
rest. A streaming encoder gives out bytes as they are made; a whole-file encoder (for S3)
writes the file into an ``Output`` as it is made and seeks back to its first bytes at the
end, so a file that needs its length up front (WAV's sizes, MP3's gapless header, FLAC's
STREAMINFO) gets it; without an output it keeps the file in memory and ``finish`` returns
it. A streamed FLAC is a whole-file encoder
too (see ``STREAMED_WHOLE``). Compression and resampling are PyAV's (FFmpeg's libmp3lame,
libopus, aac, flac and libswresample).
"""

from __future__ import annotations

import io
import struct
import wave
from typing import Any, Protocol

from tempaudio_service.core.formats import FORMATS, AudioFormat

# Streamed Ogg pages hold at most this much audio (µs), so a sentence leaves as it is made.
STREAM_PAGE_MICROSECONDS = 100_000
# FFmpeg's write buffer for a stream: small, so bytes do not wait for 32 KiB to gather.
STREAM_BUFFER_BYTES = 4096
# RIFF and data sizes of a streamed WAV whose length is not known yet: the largest value,
# as FFmpeg, SoX and Piper's streaming clients write and read it.
UNKNOWN_SIZE = 0xFFFFFFFF
# Formats a stream sends whole, in one piece when its last sentence is encoded. FLAC's
# STREAMINFO, the first block of the file, holds the sample count; streamed, FFmpeg writes 0
# ("unknown", as the FLAC format allows) and cannot go back, and libsndfile (soundfile)
# reads such a file as one of endless length and fails. A streamed WAV's unknown sizes
# (0xFFFFFFFF) read fine, libsndfile included; MP3, AAC and Ogg need no length up front.
# The G.711 WAVs likewise: FFmpeg writes a WAV's sizes by seeking back once it is whole.
# Telephony prompts are short, and IVRs fetch a whole file from its URL anyway.
STREAMED_WHOLE = frozenset({"flac", "ulaw", "alaw"})


class Output(Protocol):
    """Where a whole file is written: appended to, and patched after a seek back (FFmpeg's
    muxers rewrite a header within the file's first kilobytes once the file is whole)."""

    def write(self, data: bytes) -> int: ...
    def seek(self, offset: int, whence: int = 0) -> int: ...
    def tell(self) -> int: ...


def _whole_file(output: Output) -> bytes:
    """What ``finish`` returns of a whole file: the file when the encoder kept it in memory,
    nothing when it went to the caller's output."""
    return output.getvalue() if isinstance(output, io.BytesIO) else b""


class Encoder(Protocol):
    def write(self, pcm: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def close(self) -> None:
        """Free what the encoder holds; a stream cut short calls this without ``finish``."""


class _Sink:
    """A write-only file for FFmpeg: without ``seek``, the muxer streams."""

    def __init__(self) -> None:
        self._data = bytearray()

    def write(self, data: bytes) -> int:
        self._data += data
        return len(data)

    def drain(self) -> bytes:
        data = bytes(self._data)
        self._data.clear()
        return data


class Resampler:
    """16-bit mono PCM from one rate to another with libswresample (a no-op at equal rates)."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._in_rate = in_rate
        self._resampler: Any = None
        if in_rate != out_rate:  # PyAV (and FFmpeg's libraries) load only when needed
            import av

            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=out_rate)

    def resample(self, pcm: bytes) -> bytes:
        if self._resampler is None:
            return pcm
        return b"".join(
            _frame_bytes(frame) for frame in self._resampler.resample(_frame(pcm, self._in_rate))
        )

    def flush(self) -> bytes:
        if self._resampler is None:
            return b""
        return b"".join(_frame_bytes(frame) for frame in self._resampler.resample(None))


def _frame(pcm: bytes, rate: int, pts: int | None = None) -> Any:
    import av
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = rate
    frame.pts = pts
    return frame


def _frame_bytes(frame: Any) -> bytes:
    return bytes(frame.to_ndarray().astype("<i2", copy=False).tobytes())


class PcmEncoder:
    """Raw samples: nothing to wrap, streamed or whole (into ``output``)."""

    def __init__(
        self, in_rate: int, out_rate: int, *, streaming: bool, output: Output | None = None
    ) -> None:
        self._resampler = Resampler(in_rate, out_rate)
        self._output: Output | None = None if streaming else output or io.BytesIO()

    def write(self, pcm: bytes) -> bytes:
        out = self._resampler.resample(pcm)
        if self._output is None:
            return out
        self._output.write(out)
        return b""

    def finish(self) -> bytes:
        tail = self._resampler.flush()
        if self._output is None:
            return tail
        self._output.write(tail)
        return _whole_file(self._output)

    def close(self) -> None:
        self._output = None


class WavEncoder:
    """RIFF/WAVE, 16-bit mono; the header goes first with the sizes unknown (0xFFFFFFFF),
    then the samples as they come. Whole: the sizes are written into the header at the end."""

    def __init__(
        self, in_rate: int, out_rate: int, *, streaming: bool, output: Output | None = None
    ) -> None:
        self._output: Output | None = None if streaming else output or io.BytesIO()
        self._pcm = PcmEncoder(in_rate, out_rate, streaming=True)
        self._rate = out_rate
        self._header_sent = False

    def _bytes(self, out: bytes) -> bytes:
        if not self._header_sent:
            self._header_sent = True
            out = streaming_wav_header(self._rate) + out
        if self._output is None:
            return out
        self._output.write(out)
        return b""

    def write(self, pcm: bytes) -> bytes:
        return self._bytes(self._pcm.write(pcm))

    def finish(self) -> bytes:
        out = self._bytes(self._pcm.finish())
        if self._output is None:
            return out
        size = self._output.tell()
        for offset, value in wav_size_fields(size):
            self._output.seek(offset)
            self._output.write(value)
        self._output.seek(size)
        return _whole_file(self._output)

    def close(self) -> None:
        self._pcm.close()
        self._output = None


class AvEncoder:
    """A compressed format through PyAV: a codec in its container, written to memory."""

    def __init__(
        self,
        fmt: AudioFormat,
        in_rate: int,
        out_rate: int,
        *,
        streaming: bool,
        output: Output | None = None,
    ) -> None:
        import av

        assert fmt.container is not None
        assert fmt.codec is not None
        self._in_rate = in_rate
        self._streaming = streaming
        self._file: _Sink | Output = _Sink() if streaming else output or io.BytesIO()
        options = (
            {"flush_packets": "1", "page_duration": str(STREAM_PAGE_MICROSECONDS)}
            if streaming
            else {}
        )
        self._container = av.open(
            self._file,
            "w",
            format=fmt.container,
            container_options=options,
            buffer_size=STREAM_BUFFER_BYTES if streaming else 32768,
        )
        stream = self._container.add_stream(
            fmt.codec, rate=out_rate, layout="mono", options=dict(fmt.codec_options)
        )
        assert isinstance(stream, av.audio.stream.AudioStream)
        self._stream = stream
        if fmt.bit_rate is not None:
            self._stream.bit_rate = fmt.bit_rate
        self._resampler = av.AudioResampler(
            format=self._stream.codec_context.format, layout="mono", rate=out_rate
        )
        self._frames_in = 0
        self._closed = False

    def write(self, pcm: bytes) -> bytes:
        self._check_open()
        frame = _frame(pcm, self._in_rate, pts=self._frames_in)
        self._frames_in += len(pcm) // 2
        for resampled in self._resampler.resample(frame):
            self._container.mux(self._stream.encode(resampled))
        return self._ready()

    def finish(self) -> bytes:
        self._check_open()
        for resampled in self._resampler.resample(None):
            self._container.mux(self._stream.encode(resampled))
        self._container.mux(self._stream.encode(None))
        self.close()
        if isinstance(self._file, _Sink):
            return self._file.drain()
        return _whole_file(self._file)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()

    def _check_open(self) -> None:
        if self._closed:  # FFmpeg's state is freed: using it would crash, not raise
            raise ValueError("the encoder is closed")

    def _ready(self) -> bytes:
        return self._file.drain() if isinstance(self._file, _Sink) else b""


def open_encoder(
    name: str, in_rate: int, out_rate: int, *, streaming: bool, output: Output | None = None
) -> Encoder:
    """The encoder for format ``name``: the one place a new format or output plugs in. A
    whole file goes into ``output`` as it is made (in memory, returned by ``finish``, when
    there is none)."""
    fmt = FORMATS[name]
    if name in STREAMED_WHOLE:
        streaming = False  # ``write`` gives nothing; ``finish`` the whole file
    if name == "wav":
        return WavEncoder(in_rate, out_rate, streaming=streaming, output=output)
    if name == "pcm":
        return PcmEncoder(in_rate, out_rate, streaming=streaming, output=output)
    return AvEncoder(fmt, in_rate, out_rate, streaming=streaming, output=output)


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """A whole 16-bit mono WAV of ``pcm``, by the standard library's writer."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def streaming_wav_header(rate: int) -> bytes:
    """The 44-byte header of a 16-bit mono WAV of unknown length."""
    return (
        b"RIFF"
        + struct.pack("<I", UNKNOWN_SIZE)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", UNKNOWN_SIZE)
    )


WAV_HEADER_BYTES = 44


def wav_size_fields(size: int) -> tuple[tuple[int, bytes], ...]:
    """Where a WAV of ``size`` bytes (with the 44-byte header) holds its sizes, and their
    values: (offset, bytes) of the RIFF size and of the data size."""
    return ((4, struct.pack("<I", size - 8)), (40, struct.pack("<I", size - WAV_HEADER_BYTES)))


def wav_sizes_fixed(streamed: bytes) -> bytes:
    """A streamed WAV (sizes unknown) with its real RIFF and data sizes, once it is whole."""
    fixed = bytearray(streamed)
    for offset, value in wav_size_fields(len(streamed)):
        fixed[offset : offset + len(value)] = value
    return bytes(fixed)
