"""``tempaudio-operator``: run the kopf operator for TempAudioPolicy resources."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from .settings import OperatorSettings, SettingsError

logger = logging.getLogger("tempaudio_operator")


def build_parser(settings: OperatorSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tempaudio-operator",
        description="Reconcile TempAudioPolicy resources into cleanup CronJobs and DynamoDB TTL.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=None,
        help="watch this namespace or glob (repeatable); replaces TEMPAUDIO_OPERATOR_NAMESPACES"
        " (comma-separated)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)"
    )
    parser.add_argument(
        "--peering",
        default=os.environ.get("TEMPAUDIO_OPERATOR_PEERING") or None,
        help="kopf peering name for several replicas; default: standalone (run one replica)",
    )
    parser.add_argument(
        "--liveness",
        default=os.environ.get("TEMPAUDIO_OPERATOR_LIVENESS", "http://0.0.0.0:8080/healthz"),
        help="liveness endpoint URL (TEMPAUDIO_OPERATOR_LIVENESS); empty to disable",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=os.environ.get("TEMPAUDIO_LOG_FORMAT", "text"),
        help="log format",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = OperatorSettings.from_env(os.environ)
    except SettingsError as error:
        raise SystemExit(f"tempaudio-operator: {error}") from None
    args = build_parser(settings).parse_args(argv)
    # One settings object for the whole program, flags over env, handed to the handlers.
    settings = settings.with_scope(args.namespace, all_namespaces=args.all_namespaces)

    import kopf

    from . import handlers  # noqa: F401  (registers the handlers)

    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
    )
    namespaces = list(settings.namespaces)
    logger.info(
        "starting: namespaces=%s peering=%s liveness=%s settings=%s",
        namespaces or "all",
        args.peering or "standalone",
        args.liveness or "off",
        settings,
    )
    kopf.run(
        standalone=args.peering is None,
        peering_name=args.peering,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness or None,
        memo=kopf.Memo(settings=settings),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
