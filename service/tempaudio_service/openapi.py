"""The OpenAPI document served at /openapi.json (pure)."""

from __future__ import annotations

from typing import Any

from . import __version__
from .tts_request import KNOB_RANGES, MAX_POLICY_CHARS


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _knob_schema(name: str, description: str) -> dict[str, Any]:
    low, high = KNOB_RANGES[name]
    return {"type": "number", "minimum": low, "maximum": high, "description": description}


def openapi_document(*, max_text_chars: int, default_voice: str) -> dict[str, Any]:
    tts_item = {
        "type": "object",
        "required": [
            "audio_id",
            "s3_url",
            "duration",
            "text",
            "voice_id",
            "expires_at",
            "audio_expires_at",
            "date",
        ],
        "properties": {
            "audio_id": {"type": "string", "format": "uuid"},
            "s3_url": {
                "type": "string",
                "description": (
                    "Presigned GET URL, valid until expires_at: never past the audio's own "
                    "expiry, and at most 7 days (SigV4's cap)."
                ),
            },
            "duration": {"type": "number", "description": "Audio length in seconds."},
            "text": {"type": "string"},
            "voice_id": {"type": "string"},
            "expires_at": {
                "type": "string",
                "format": "date-time",
                "description": "When s3_url stops working: the audio's expiry, capped at 7 days.",
            },
            "audio_expires_at": {
                "type": "string",
                "format": "date-time",
                "description": (
                    "When the audio is deleted (the item's ttl). Until then "
                    "GET /tts/{date}/{audio_id} signs a fresh URL."
                ),
            },
            "date": {"type": "string", "format": "date"},
            "policy": {
                "type": "string",
                "description": "The TempAudioPolicy the audio is stored under (its name).",
            },
        },
    }
    unavailable = _error(
        "overloaded (queue full), storage_unavailable (names S3 or DynamoDB), shutting_down "
        "(this replica is draining), policy_not_ready (the operator has not accepted the "
        "policy) or policy_stale (no current view of the policies); see Retry-After."
    )
    policy_parameter = {
        "name": "policy",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "The policy the audio was stored under; default: the default policy.",
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "tempaudio",
            "version": __version__,
            "description": "Text to a short-lived WAV in S3, answered with a presigned URL.",
        },
        "paths": {
            "/tts/sync": {
                "post": {
                    "summary": "Synthesize text, store the WAV and return a presigned URL.",
                    "operationId": "synthesize",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/TtsRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Stored audio.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/TtsItem"}
                                }
                            },
                        },
                        "400": _error("The body is not valid JSON."),
                        "408": _error("body_timeout: the body did not arrive in time."),
                        "413": _error("The body is larger than the configured limit."),
                        "422": _error(
                            "invalid_request, text_too_long, unknown_voice, unknown_policy; "
                            "no_speech (nothing to say); audio_too_long (over the per-request "
                            "audio cap)."
                        ),
                        "503": unavailable,
                    },
                }
            },
            "/tts/{date}/{audio_id}": {
                "get": {
                    "summary": "Look up stored audio and sign a fresh URL.",
                    "operationId": "getAudio",
                    "parameters": [
                        {
                            "name": "date",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "format": "date"},
                        },
                        {
                            "name": "audio_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "format": "uuid"},
                        },
                        policy_parameter,
                    ],
                    "responses": {
                        "200": {
                            "description": "The audio, with a freshly signed URL.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/TtsItem"}
                                }
                            },
                        },
                        "404": _error("Unknown, malformed or expired audio."),
                        "422": _error("unknown_policy: the service serves no such policy."),
                        "503": unavailable,
                    },
                }
            },
            "/voices": {
                "get": {
                    "summary": "Voices this service can speak with.",
                    "operationId": "listVoices",
                    "responses": {
                        "200": {
                            "description": "Loaded voices.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["default", "voices"],
                                        "properties": {
                                            "default": {"type": "string"},
                                            "voices": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Voice"},
                                            },
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/policies": {
                "get": {
                    "summary": "The TempAudioPolicies this service serves, with their retention.",
                    "operationId": "listPolicies",
                    "responses": {
                        "200": {
                            "description": "Every policy known, served or not (with why not).",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["default", "policies"],
                                        "properties": {
                                            "default": {"type": "string", "nullable": True},
                                            "policies": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Policy"},
                                            },
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: the process serves requests.",
                    "operationId": "healthz",
                    "responses": {"200": {"description": "Alive."}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: voices loaded, bucket and table reachable.",
                    "operationId": "readyz",
                    "responses": {
                        "200": {"description": "Ready."},
                        "503": {"description": "Not ready; the body names the failing dependency."},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics.",
                    "operationId": "metrics",
                    "responses": {"200": {"description": "Text exposition format."}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "operationId": "openapi",
                    "responses": {"200": {"description": "OpenAPI 3 document."}},
                }
            },
        },
        "components": {
            "schemas": {
                "TtsRequest": {
                    "type": "object",
                    "required": ["text"],
                    "additionalProperties": False,
                    "properties": {
                        "text": {"type": "string", "minLength": 1, "maxLength": max_text_chars},
                        "voice": {"type": "string", "default": default_voice},
                        "policy": {
                            "type": "string",
                            "maxLength": MAX_POLICY_CHARS,
                            "description": (
                                "TempAudioPolicy to store under: name or namespace/name "
                                "(GET /policies); default: the service's default policy."
                            ),
                        },
                        "speaker": {
                            "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
                            "description": "Speaker id or name (multi-speaker voices).",
                        },
                        "length_scale": _knob_schema(
                            "length_scale", "Speed: >1 slower, <1 faster."
                        ),
                        "noise_scale": _knob_schema("noise_scale", "Generator noise."),
                        "noise_w": _knob_schema("noise_w", "Phoneme width noise."),
                        "sentence_silence": _knob_schema(
                            "sentence_silence", "Seconds of silence between sentences."
                        ),
                    },
                },
                "TtsItem": tts_item,
                "Policy": {
                    "type": "object",
                    "required": ["name", "namespace", "ready", "default"],
                    "properties": {
                        "name": {"type": "string"},
                        "namespace": {"type": "string"},
                        "ready": {"type": "boolean"},
                        "default": {"type": "boolean"},
                        "retention": {
                            "type": "string",
                            "description": "What new audio is promised, e.g. 24h.",
                        },
                        "bucket": {"type": "string"},
                        "prefix": {"type": "string"},
                        "table": {"type": "string"},
                        "ttl_attribute": {"type": "string"},
                        "generation": {"type": "integer", "nullable": True},
                        "reason": {"type": "string", "description": "Why it is not ready."},
                        "message": {"type": "string"},
                    },
                },
                "Voice": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "sample_rate": {"type": "integer"},
                        "language": {"type": "string"},
                        "quality": {"type": "string", "nullable": True},
                        "num_speakers": {"type": "integer"},
                        "speakers": {"type": "object", "additionalProperties": {"type": "integer"}},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "description": "Machine-readable code."},
                        "message": {"type": "string"},
                    },
                },
            }
        },
    }
