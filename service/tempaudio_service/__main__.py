"""``tempaudio-service``: serve the HTTP API (embedded S3 + DynamoDB when no AWS is configured)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import replace

from .settings import ServiceSettings, SettingsError

logger = logging.getLogger("tempaudio_service")


def parse_args(argv: Sequence[str] | None, defaults: ServiceSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tempaudio-service",
        description="Text-to-speech to temporary S3 audio. Configure with TEMPAUDIO_* variables.",
    )
    parser.add_argument("--host", default=defaults.host, help="listen address (TEMPAUDIO_HOST)")
    parser.add_argument(
        "--port", type=int, default=defaults.port, help="listen port (TEMPAUDIO_PORT)"
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=defaults.log_format,
        help="log format (TEMPAUDIO_LOG_FORMAT)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = ServiceSettings.from_env(os.environ)
    except SettingsError as error:
        raise SystemExit(f"tempaudio-service: {error}") from None
    args = parse_args(argv, settings)
    settings = replace(settings, host=args.host, port=args.port, log_format=args.log_format)

    import uvicorn

    from .app import create_app
    from .logsetup import configure_logging
    from .store import AudioStore

    configure_logging(settings.log_format, settings.log_level)
    with contextlib.ExitStack() as stack:
        if settings.local_aws:
            from .local import LocalAws

            local = stack.enter_context(LocalAws(port=settings.local_aws_port))
            settings = settings.with_endpoint(local.endpoint_url)
            AudioStore.from_settings(settings).ensure_resources()
        logger.info("starting with %s", settings.describe())
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            timeout_graceful_shutdown=30,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
