"""What the operator writes in a policy's status as plain dicts: its conditions and its last
cleanup, from the Job's outcome and the cleanup's summary line (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .desired import SUMMARY_EVENT


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    *,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Conditions with one set; lastTransitionTime moves only when the status flips."""
    wanted = "True" if status else "False"
    previous = next((c for c in conditions if c.get("type") == type_), None)
    transition = (
        previous["lastTransitionTime"]
        if previous and previous.get("status") == wanted and previous.get("lastTransitionTime")
        else now.isoformat().replace("+00:00", "Z")
    )
    condition = {
        "type": type_,
        "status": wanted,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return [dict(c) for c in conditions if c.get("type") != type_] + [condition]


def parse_cleanup_summary(text: str | None) -> dict[str, Any] | None:
    """The counters of tempaudio-cleanup's summary line, from a termination message or log."""
    for line in reversed((text or "").strip().splitlines()):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("event") == SUMMARY_EVENT:
            return entry
    return None


def job_outcome(job: Mapping[str, Any]) -> dict[str, Any] | None:
    """A finished Job's result for status.lastCleanup; None while it runs."""
    status = job.get("status") or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    if "Complete" in conditions:
        finished, succeeded = conditions["Complete"], True
    elif "Failed" in conditions:
        finished, succeeded = conditions["Failed"], False
    else:
        return None
    return {
        "jobName": job.get("metadata", {}).get("name"),
        "completionTime": status.get("completionTime") or finished.get("lastTransitionTime"),
        "succeeded": succeeded,
    }


def last_cleanup(outcome: Mapping[str, Any], summary: Mapping[str, Any] | None) -> dict[str, Any]:
    result = dict(outcome)
    if summary:
        for key in ("scanned", "expired", "deleted", "bytes", "errors"):
            if isinstance(summary.get(key), int):
                result[key] = summary[key]
        if isinstance(summary.get("dry_run"), bool):
            result["dryRun"] = summary["dry_run"]
    return result
