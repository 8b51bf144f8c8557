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
    # Codec options: the faster encoder settings, which cost no audible quality for speech
    # at these bit rates and halve the encode time or better (BENCHMARKS.md "Formats").
    codec_options: tuple[tuple[str, str], ...] = ()

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
        AudioFormat(
            "mp3", "mp3", "audio/mpeg", container="mp3", codec="libmp3lame", bit_rate=64_000,
            sample_rates=_MP3_RATES, codec_options=(("compression_level", "7"),),  # lame -q 7
        ),
        AudioFormat(
            "opus", "ogg", "audio/ogg", container="ogg", codec="libopus", bit_rate=32_000,
            sample_rates=(8000, 12000, 16000, 24000, 48000), description="Opus in Ogg.",
            codec_options=(("compression_level", "5"),),  # complexity 5 of 10
        ),
        AudioFormat(
            "aac", "aac", "audio/aac", container="adts", codec="aac", bit_rate=64_000,
            sample_rates=_MP3_RATES, description="AAC-LC in ADTS.",
            codec_options=(("aac_coder", "fast"),),
        ),
        AudioFormat("flac", "flac", "audio/flac", container="flac", codec="flac"),
        AudioFormat(
            "pcm", "pcm", "audio/pcm", description="Raw 16-bit signed little-endian mono samples."
        ),
        # Telephony (Asterisk, Amazon Connect, Twilio <Play>): G.711 at 8 kHz in WAV, format
        # tags 7 (mu-law) and 6 (A-law).
        AudioFormat(
            "ulaw", "wav", "audio/wav", container="wav", codec="pcm_mulaw", sample_rates=(8000,),
            description="G.711 mu-law at 8 kHz in WAV (format tag 7), for telephony.",
        ),
        AudioFormat(
            "alaw", "wav", "audio/wav", container="wav", codec="pcm_alaw", sample_rates=(8000,),
            description="G.711 A-law at 8 kHz in WAV (format tag 6), for telephony.",
        ),
    )
}  # fmt: skip
DEFAULT_FORMAT = "wav"


def format_names() -> list[str]:
    return list(FORMATS)
