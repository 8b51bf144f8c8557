"""The format table against the codecs FFmpeg really has, and the encoders' contracts."""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import av
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from tempaudio_service.core.formats import FORMATS
from tempaudio_service.speech.encoders import open_encoder, wav_bytes, wav_sizes_fixed
from tests.conftest import decoded_seconds


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if f.codec])
def test_declared_rates_are_rates_the_codec_takes(name: str) -> None:
    fmt = FORMATS[name]
    assert fmt.codec is not None
    codec = av.codec.Codec(fmt.codec, "w")
    if fmt.sample_rates is not None and codec.audio_rates:
        assert set(fmt.sample_rates) <= set(codec.audio_rates)
    elif fmt.sample_rates is not None:  # a codec of any rate, kept to its standard's (G.711)
        assert fmt.name in {"ulaw", "alaw"}
    else:
        assert not codec.audio_rates  # any rate


@pytest.mark.parametrize(
    ("name", "voice_rate", "requested", "expected"),
    [
        ("wav", 22050, None, 22050),
        ("opus", 22050, None, 24000),  # Opus has no 22.05 kHz: the next rate up
        ("opus", 16000, None, 16000),
        ("opus", 96000, None, 48000),
        ("mp3", 22050, 16000, 16000),
    ],
)
def test_output_rate(name: str, voice_rate: int, requested: int | None, expected: int) -> None:
    assert FORMATS[name].output_rate(voice_rate, requested) == expected


def test_rate_problems_name_what_is_possible() -> None:
    assert FORMATS["wav"].rate_problem(44100) is None
    assert "between 8000 and 48000" in str(FORMATS["wav"].rate_problem(96000))
    assert "opus takes a 'sample_rate' of 8000, 12000" in str(FORMATS["opus"].rate_problem(22050))


def _tone(frames: int) -> bytes:
    return b"".join(struct.pack("<h", int(9000 * math.sin(i / 7))) for i in range(frames))


VOICE_RATE = 22050
THREE_SECONDS = [_tone(22050), _tone(11025), _tone(33075)]  # in three sentences


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=5))
def test_a_streamed_wav_with_its_sizes_fixed_is_the_whole_file(pieces: list[int]) -> None:
    pcm = [_tone(n) for n in pieces]
    stream = open_encoder("wav", 22050, 22050, streaming=True)
    streamed = b"".join(stream.write(p) for p in pcm) + stream.finish()
    assert wav_sizes_fixed(streamed) == wav_bytes(b"".join(pcm), 22050)


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("streaming", [False, True])
def test_every_encoder_keeps_the_duration(name: str, streaming: bool) -> None:
    pcm = [_tone(22050), _tone(11025), _tone(33075)]  # 3 s in three sentences
    rate = FORMATS[name].output_rate(22050, None)
    encoder = open_encoder(name, 22050, rate, streaming=streaming)
    out = b"".join(encoder.write(p) for p in pcm) + encoder.finish()
    encoder.close()
    if name == "wav" and streaming:
        out = wav_sizes_fixed(out)
    seconds, _ = decoded_seconds(out, name, rate=rate)
    assert seconds == pytest.approx(3.0, abs=0.1)


class ClosingSpy:
    """FFmpeg's container as ``av.open`` made it, counting the calls to its ``close``."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self.closes = 0

    def close(self) -> None:
        self.closes += 1
        self._container.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if f.codec])
def test_a_stream_cut_short_frees_its_encoder_without_finishing(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[ClosingSpy] = []
    real_open = av.open

    def spy_open(*args: Any, **kwargs: Any) -> ClosingSpy:
        opened.append(ClosingSpy(real_open(*args, **kwargs)))
        return opened[-1]

    monkeypatch.setattr(av, "open", spy_open)
    encoder = open_encoder(
        name, VOICE_RATE, FORMATS[name].output_rate(VOICE_RATE, None), streaming=True
    )
    encoder.write(_tone(22050))
    (container,) = opened
    assert container.closes == 0
    encoder.close()
    assert container.closes == 1  # FFmpeg's container, and the codec in it, are freed
    encoder.close()  # twice is harmless
    assert container.closes == 1
    # Freed FFmpeg state is never touched again: an error, not a crash of the process.
    with pytest.raises(ValueError, match="closed"):
        encoder.write(_tone(100))
    with pytest.raises(ValueError, match="closed"):
        encoder.finish()


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_a_streamed_flac_is_the_whole_file_sent_at_its_end(rate: int) -> None:
    """libsndfile needs STREAMINFO's sample count, which a FLAC cannot have while it streams."""
    stream = open_encoder("flac", VOICE_RATE, rate, streaming=True)
    sent = [stream.write(pcm) for pcm in THREE_SECONDS] + [stream.finish()]
    stream.close()
    samples, read_rate = soundfile.read(io.BytesIO(b"".join(sent)), dtype="int16")
    assert read_rate == rate
    assert len(samples) == 3 * rate
    assert sent[:-1] == [b"", b"", b""]  # nothing before the end
    whole = open_encoder("flac", VOICE_RATE, rate, streaming=False)
    for pcm in THREE_SECONDS:
        whole.write(pcm)
    assert sent[-1] == whole.finish()  # the stored file, byte for byte


# The rates docs/api/tts.md, "Formats" gives the extra duration at, and the formats libsndfile reads
# (1.2 has no AAC; raw PCM has no header).
DURATION_RATES = (8000, 11025, 16000, 22050, 24000, 44100, 48000)
SOUNDFILE_READS = {"wav", "mp3", "opus", "flac", "ulaw", "alaw"}


def most_extra_samples(name: str, rate: int, *, streaming: bool) -> int:
    """The most samples a decoder gives beyond the audio, at the output rate: the encoder's
    priming and last-frame padding that the file cannot tell the decoder to drop."""
    if name == "aac":  # ADTS has no edit list: 1024 of priming, under 1024 of padding
        return 1024 + 1023
    if name == "mp3" and streaming:
        # No LAME header: LAME's delay of 576, and its end padding of 576 up to 575 + a
        # frame (1152 samples in MPEG-1, 32 kHz and up; 576 in MPEG-2 and 2.5, below).
        frame = 1152 if rate >= 32000 else 576
        return 576 + 575 + frame
    if name == "mp3":  # the LAME header trims both, FFmpeg's to within 576 - 529
        return 576 - 529
    return 0  # WAV, PCM and FLAC hold the samples; Ogg trims Opus's pre-skip and end


@pytest.mark.parametrize(
    ("name", "rate"),
    [(n, r) for n in sorted(FORMATS) for r in DURATION_RATES if not FORMATS[n].rate_problem(r)],
)
@pytest.mark.parametrize("streaming", [False, True])
def test_decoders_read_the_duration_plus_at_most_what_the_codec_adds(
    name: str, rate: int, streaming: bool
) -> None:
    encoder = open_encoder(name, VOICE_RATE, rate, streaming=streaming)
    out = b"".join(encoder.write(pcm) for pcm in THREE_SECONDS) + encoder.finish()
    encoder.close()
    one_sample = 1 / rate  # resampling rounds
    least, most = (
        3.0 - one_sample,
        3.0 + (most_extra_samples(name, rate, streaming=streaming) + 1) / rate,
    )
    seconds, _ = decoded_seconds(out, name, rate=rate)  # FFmpeg's decoders
    assert least <= seconds <= most
    if name in SOUNDFILE_READS:  # libsndfile's (mpg123 for MP3)
        samples, read_rate = soundfile.read(io.BytesIO(out), dtype="int16")
        assert least <= len(samples) / read_rate <= most


@pytest.mark.parametrize(("name", "tag"), [("ulaw", 7), ("alaw", 6)])
@pytest.mark.parametrize("streaming", [False, True])
def test_telephony_formats_are_g711_wavs_at_8_khz_that_libsndfile_reads(
    name: str, tag: int, streaming: bool
) -> None:
    rate = FORMATS[name].output_rate(VOICE_RATE, None)
    assert rate == 8000  # whatever the voice's rate
    encoder = open_encoder(name, VOICE_RATE, rate, streaming=streaming)
    out = b"".join(encoder.write(pcm) for pcm in THREE_SECONDS) + encoder.finish()
    encoder.close()
    assert out[:4] == b"RIFF"
    assert out[8:12] == b"WAVE"
    assert int.from_bytes(out[20:22], "little") == tag  # WAVE_FORMAT_MULAW / _ALAW
    info = soundfile.info(io.BytesIO(out))
    assert (info.samplerate, info.channels) == (8000, 1)
    assert info.subtype == ("ULAW" if name == "ulaw" else "ALAW")
    assert info.frames == pytest.approx(3 * 8000, abs=2)
