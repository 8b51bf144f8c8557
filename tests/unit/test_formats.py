"""The format table against the codecs FFmpeg really has, and the encoders' contracts."""

from __future__ import annotations

import math
import struct

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempaudio_service.encoders import open_encoder, wav_bytes, wav_sizes_fixed
from tempaudio_service.formats import FORMATS
from tests.conftest import decoded_seconds


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if f.codec])
def test_declared_rates_are_rates_the_codec_takes(name: str) -> None:
    fmt = FORMATS[name]
    assert fmt.codec is not None
    codec = av.codec.Codec(fmt.codec, "w")
    if fmt.sample_rates is not None:
        assert set(fmt.sample_rates) <= set(codec.audio_rates or ())
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


def test_a_stream_cut_short_frees_its_encoder_without_finishing() -> None:
    encoder = open_encoder("opus", 22050, 24000, streaming=True)
    encoder.write(_tone(22050))
    encoder.close()
    encoder.close()  # twice is harmless
