"""tempaudio control plane: a kopf operator reconciling TempAudioPolicy resources."""

__version__ = "0.1.0"

GROUP = "tempaudio.dev"
VERSION = "v1alpha1"
PLURAL = "tempaudiopolicies"
KIND = "TempAudioPolicy"
