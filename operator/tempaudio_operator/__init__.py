"""tempaudio control plane: a kopf operator reconciling TempAudioPolicy resources (whose API
is tempaudio_api's)."""

__version__ = "0.1.0"
