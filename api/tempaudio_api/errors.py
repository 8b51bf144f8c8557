"""The errors of reading a TempAudioPolicy's, a TempAudioLexicon's or a TempAudioVoice's spec."""


class PolicyError(ValueError):
    """The spec cannot be served or reconciled; the message says why."""


class LexiconError(PolicyError):
    """A TempAudioLexicon's spec cannot be used, or a policy names lexicons wrongly."""


class VoiceError(PolicyError):
    """A TempAudioVoice's spec cannot be used, or a policy names voices wrongly."""
