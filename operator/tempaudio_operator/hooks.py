"""The chart's hooks: ``python -m tempaudio_operator.hooks {accepted,retire} NAMESPACE NAME``.

``accepted`` (post-install, post-upgrade): wait until the operator has looked at the
policy's current generation; fail with its reason when it refused it. ``helm install`` of
a policy the operator calls InvalidSpec or NotAllowed succeeded before, and the service
then refused every request with policy_not_ready.

``retire`` (pre-delete): delete the policy and wait until the operator has let it go (its
finalizer schedules the final cleanup and removes the rule). ``helm uninstall`` deleted
the policy and the operator at once before, and the policy stayed Terminating forever with
nobody left to remove its finalizer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tempaudio_api import GROUP, PLURAL, VERSION

from . import kube

Sleep = Callable[[float], None]
Clock = Callable[[], float]


def verdict(body: Mapping[str, Any]) -> tuple[bool, str] | None:
    """(accepted, why) once the operator has looked at the current generation, else None."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    generation = meta.get("generation")
    if status.get("observedGeneration") != generation:
        return None
    if status.get("acceptedGeneration") == generation:
        return True, "accepted"
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            return False, f"{condition.get('reason')}: {condition.get('message')}"
    return False, "refused"


def accepted(
    api: client.CustomObjectsApi,
    namespace: str,
    name: str,
    *,
    timeout: float,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> tuple[bool, str]:
    deadline = clock() + timeout
    while True:
        body = kube.get_policy(api, namespace, name)
        decided = verdict(body) if body is not None else (False, "the policy does not exist")
        if decided is not None:
            return decided
        if clock() >= deadline:
            return False, f"the operator did not look at it within {timeout:g} s: is it running?"
        sleep(1.0)


def retire(
    api: client.CustomObjectsApi,
    namespace: str,
    name: str,
    *,
    timeout: float,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
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
        prog="python -m tempaudio_operator.hooks",
        description="The chart's hooks around a TempAudioPolicy and its operator.",
    )
    parser.add_argument("hook", choices=["accepted", "retire"])
    parser.add_argument("namespace")
    parser.add_argument("name")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    args = parser.parse_args(argv)
    kube.load_config(os.environ)
    api, where = client.CustomObjectsApi(), f"{args.namespace}/{args.name}"
    if args.hook == "accepted":
        ok, why = accepted(api, args.namespace, args.name, timeout=args.timeout)
        print(f"policy {where}: {why}", file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    if retire(api, args.namespace, args.name, timeout=args.timeout):
        print(f"policy {where} retired")
        return 0
    # Never block an uninstall: say what is left and how to let it go.
    print(
        f"policy {where} is still terminating after {args.timeout:g} s: is the operator"
        " running? docs/operations/troubleshooting.md has the way out",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
