"""The audio formats tempaudio answers and stores (pure: names, types, limits).

A new format is one entry here plus, when it is compressed, nothing else: encoders.py
reads the container and codec from the entry.
"""

from __future__ import annotations

from dataclasses import dataclass

# Lowest and highest output sample rate a request may ask for.
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000


@dataclass(frozen=True)
class AudioFormat:
    name: str
    extension: str
    content_type: str
    # PyAV's container and codec; None for the two formats written without a codec.
    container: str | None = None
    codec: str | None = None
    bit_rate: int | None = None
    # The rates the codec takes; None: any in MIN..MAX_SAMPLE_RATE.
    sample_rates: tuple[int, ...] | None = None
    description: str = ""

    def output_rate(self, voice_rate: int, requested: int | None) -> int:
        """The rate the audio is encoded at: the request's, else the voice's if the codec
        takes it, else the codec's next rate up (Opus has no 22.05 kHz)."""
        if requested is not None:
            return requested
        if self.sample_rates is None or voice_rate in self.sample_rates:
            return voice_rate
        higher = [rate for rate in sorted(self.sample_rates) if rate >= voice_rate]
        return higher[0] if higher else max(self.sample_rates)

    def rate_problem(self, rate: int) -> str | None:
        """Why this format cannot be encoded at ``rate``, or None."""
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            return (
                f"'sample_rate' must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE}, got {rate}"
            )
        if self.sample_rates is not None and rate not in self.sample_rates:
            rates = ", ".join(str(r) for r in sorted(self.sample_rates))
            return f"{self.name} takes a 'sample_rate' of {rates}; got {rate}"
        return None


# The rates libmp3lame and FFmpeg's aac both take, up to MAX_SAMPLE_RATE.
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
FORMATS: dict[str, AudioFormat] = {
    fmt.name: fmt
    for fmt in (
        AudioFormat(
            "wav", "wav", "audio/wav", description="16-bit PCM in RIFF/WAVE (the default)."
        ),
        AudioFormat("mp3", "mp3", "audio/mpeg", "mp3", "libmp3lame", 64_000, _MP3_RATES),
        AudioFormat(
            "opus",
            "ogg",
            "audio/ogg",
            "ogg",
            "libopus",
            32_000,
            (8000, 12000, 16000, 24000, 48000),
            "Opus in Ogg.",
        ),
        AudioFormat(
            "aac", "aac", "audio/aac", "adts", "aac", 64_000, _MP3_RATES, "AAC-LC in ADTS."
        ),
        AudioFormat("flac", "flac", "audio/flac", "flac", "flac"),
        AudioFormat(
            "pcm", "pcm", "audio/pcm", description="Raw 16-bit signed little-endian mono samples."
        ),
    )
}
DEFAULT_FORMAT = "wav"


def format_names() -> list[str]:
    return list(FORMATS)
