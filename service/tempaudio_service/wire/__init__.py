"""Request and response bodies as declared (pydantic): what /tts and /v1 take and answer, and OpenAI's event stream."""
