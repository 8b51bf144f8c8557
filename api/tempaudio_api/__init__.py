"""The TempAudioPolicy API: its types, its parser and every rule about a policy (pure).

Both programs import this package and neither imports the other: the operator reconciles
what it parses, the service serves it, the cleanup program takes its rules. The schema is
declared once (``tempaudiopolicy.yaml``); ``make generate`` writes the CRD copies and the
chart's values schema from it (``generate.py``).
"""

GROUP = "tempaudio.dev"
VERSION = "v1alpha1"
PLURAL = "tempaudiopolicies"
KIND = "TempAudioPolicy"
