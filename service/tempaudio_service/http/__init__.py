"""The HTTP face: routes by family, middleware, the connection layer, streamed answers, admission and audit, the console, the OpenAPI document."""
