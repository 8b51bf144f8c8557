import numpy as np
import pytest

from tempaudio_service.speech.chunking import int16_frames


def _int16_frames(audio: np.ndarray) -> bytes:
    return int16_frames(audio)[0]


@pytest.mark.parametrize("seed", range(50))
def test_a_sentence_is_normalized_to_exactly_full_scale(seed: int) -> None:
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal(1000) * rng.uniform(0.1, 3)).astype(np.float32)
    samples = np.frombuffer(_int16_frames(audio), "<i2")
    assert samples.size == audio.size
    assert int(np.max(np.abs(samples))) == 32767


def test_silence_stays_silent() -> None:
    assert _int16_frames(np.zeros(4, dtype=np.float32)) == bytes(8)
