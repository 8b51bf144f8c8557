"""The one error of reading a TempAudioPolicy's spec."""


class PolicyError(ValueError):
    """The spec cannot be served or reconciled; the message says why."""
