"""Five-field cron schedules (as Kubernetes CronJobs read them) and their longest gap (pure)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
# Eight years from a leap year: long enough for schedules such as "0 0 29 2 *".
_HORIZON_START = date(2024, 1, 1)
_HORIZON_DAYS = 8 * 366


class CronError(ValueError):
    pass


def _value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text.upper()) if names else None
    if value is None:
        if not text.isdigit():
            raise CronError(f"{text!r} is not a number")
        value = int(text)
    if not low <= value <= high:
        raise CronError(f"{value} is outside {low}-{high}")
    return value


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = _value(step_text, 1, 10**6, {}) if step_text else 1
        if step > high - low:
            # Kubernetes runs */90 in the minutes hourly; the CRD refuses it with these words.
            raise CronError(
                f"step {step} is longer than its field ({low}-{high}): it runs once per hour"
                " or day; write that schedule instead"
            )
        if body in {"*", "?"}:
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, low, high, names or {}), _value(last, low, high, names or {})
            if start > end:
                raise CronError(f"range {body!r} runs backwards")
        else:
            start = _value(body, low, high, names or {})
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def longest_gap(schedule: str) -> timedelta:
    """The longest time between two runs of ``schedule``; raises CronError if invalid."""
    expression = DESCRIPTORS.get(schedule.strip(), schedule.strip())
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(f"schedule {schedule!r} needs five fields or a descriptor like @daily")
    try:
        minutes = _field(fields[0], 0, 59)
        hours = _field(fields[1], 0, 23)
        days_of_month = _field(fields[2], 1, 31)
        months = _field(fields[3], 1, 12, _MONTHS)
        days_of_week = frozenset(d % 7 for d in _field(fields[4], 0, 7, _DAYS))
    except CronError as error:
        raise CronError(f"schedule {schedule!r}: {error}") from None
    # Cron's rule: when both day fields are restricted, either one matching is enough.
    dom_any = fields[2] in {"*", "?"}
    dow_any = fields[4] in {"*", "?"}
    times = sorted(h * 60 + m for h in hours for m in minutes)
    run_days = []
    for offset in range(_HORIZON_DAYS):
        day = _HORIZON_START + timedelta(days=offset)
        if day.month not in months:
            continue
        dom_hit = day.day in days_of_month
        dow_hit = (day.isoweekday() % 7) in days_of_week
        if dom_any or dow_any:
            matches = (dom_any or dom_hit) and (dow_any or dow_hit)
        else:
            matches = dom_hit or dow_hit
        if matches:
            run_days.append(offset)
    if len(run_days) < 2:
        raise CronError(f"schedule {schedule!r} (almost) never runs")
    gap = max((b - a for a, b in itertools.pairwise(times)), default=0)
    for first, second in itertools.pairwise(run_days):
        gap = max(gap, (second - first) * 1440 - times[-1] + times[0])
    return timedelta(minutes=gap)
