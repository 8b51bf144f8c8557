"""``python -m tempaudio_operator.retire NAMESPACE NAME``: delete a policy and wait until the
operator has let it go (its finalizer schedules the final cleanup and removes the rule).

The chart runs it as a pre-delete hook, while the operator still runs: ``helm uninstall``
deleted the policy and the operator at once before, and the policy stayed Terminating
forever with nobody left to remove its finalizer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import GROUP, PLURAL, VERSION, kube


def retire(
    api: client.CustomObjectsApi,
    namespace: str,
    name: str,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """True once the policy is gone; False if it is still there after ``timeout``."""
    try:
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as error:
        if error.status != 404:
            raise
    deadline = clock() + timeout
    while True:
        if kube.get_policy(api, namespace, name) is None:
            return True
        if clock() >= deadline:
            return False
        sleep(1.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tempaudio_operator.retire",
        description="Delete a TempAudioPolicy and wait until the operator has let it go.",
    )
    parser.add_argument("namespace")
    parser.add_argument("name")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    args = parser.parse_args(argv)
    kube.load_config(os.environ)
    if retire(client.CustomObjectsApi(), args.namespace, args.name, timeout=args.timeout):
        print(f"policy {args.namespace}/{args.name} retired")
        return 0
    # Never block an uninstall: say what is left and how to let it go.
    print(
        f"policy {args.namespace}/{args.name} is still terminating after {args.timeout:g} s:"
        " is the operator running? README 'Operator' has the way out",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
