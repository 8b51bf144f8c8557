"""The retention the cleanup enforces while retention changes: no URL ever outlives its audio."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempaudio_operator.enforcement import Period, enforce, immediate, record

T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
LAG = timedelta(minutes=10)


def history(*edits: tuple[timedelta, timedelta]) -> tuple[Period, ...]:
    """(retention, offset from T0) in order."""
    found: tuple[Period, ...] = ()
    for retention, offset in edits:
        found = record(found, retention, T0 + offset)
    return found


@pytest.mark.parametrize(
    ("edits", "at", "enforced", "until"),
    [
        # Unchanged: the current retention, for good.
        ([(24 * H, 0 * H)], 5 * H, 24 * H, None),
        # Shrunk 24h -> 1h at T0+10h: 24h until T0+10h+lag+24h, then 1h.
        ([(24 * H, 0 * H), (1 * H, 10 * H)], 11 * H, 24 * H, 34 * H + LAG),
        ([(24 * H, 0 * H), (1 * H, 10 * H)], 34 * H + LAG - timedelta(seconds=1), 24 * H,
         34 * H + LAG),
        ([(24 * H, 0 * H), (1 * H, 10 * H)], 34 * H + LAG, 1 * H, None),
        # Grown: the new retention at once (older audio simply lives a little longer).
        ([(1 * H, 0 * H), (24 * H, 2 * H)], 2 * H, 24 * H, None),
        # Shrunk twice: the largest live promise rules, until it runs out.
        ([(48 * H, 0 * H), (24 * H, 1 * H), (1 * H, 2 * H)], 3 * H, 48 * H, 49 * H + LAG),
        ([(48 * H, 0 * H), (24 * H, 1 * H), (1 * H, 2 * H)], 50 * H, 1 * H, None),
        # Shrunk then grown back within the window: still the largest.
        ([(24 * H, 0 * H), (1 * H, 1 * H), (12 * H, 2 * H)], 3 * H, 24 * H, 25 * H + LAG),
    ],
)  # fmt: skip
def test_enforced_retention(
    edits: list[tuple[timedelta, timedelta]], at: timedelta, enforced: timedelta,
    until: timedelta | None,
) -> None:  # fmt: skip
    result = enforce(history(*edits), T0 + at, LAG)
    assert result.retention == enforced
    assert result.until == (None if until is None else T0 + until)


def test_history_keeps_only_what_still_matters() -> None:
    edits = history((24 * H, 0 * H), (1 * H, 10 * H))
    assert len(enforce(edits, T0 + 11 * H, LAG).history) == 2
    later = enforce(edits, T0 + 40 * H, LAG)
    assert [p.retention for p in later.history] == [1 * H]
    # Deciding again from the kept history gives the same answer.
    assert enforce(later.history, T0 + 41 * H, LAG).retention == 1 * H


def test_an_unchanged_retention_is_not_a_new_period() -> None:
    edits = history((24 * H, 0 * H))
    assert record(edits, 24 * H, T0 + 5 * H) == edits


def test_immediate_shrink_drops_earlier_promises() -> None:
    assert immediate(1 * H, T0).retention == 1 * H
    assert immediate(1 * H, T0).until is None


retentions = st.sampled_from([timedelta(minutes=m) for m in (1, 5, 30, 60, 240, 1440, 2880)])
gaps = st.integers(min_value=0, max_value=3 * 24 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(st.tuples(retentions, gaps), min_size=1, max_size=6),
    created_after=gaps,
    lag_minutes=st.integers(min_value=0, max_value=30),
    checks=st.lists(gaps, min_size=1, max_size=8),
)
def test_no_schedule_of_edits_deletes_audio_a_url_still_promises(
    edits: list[tuple[timedelta, timedelta]], created_after: timedelta, lag_minutes: int,
    checks: list[timedelta],
) -> None:  # fmt: skip
    """An object created at any moment, under whichever retention the service may still
    have been using then (up to ``lag`` behind the operator), survives every cleanup run
    until its promise ends, whatever edits came before or after."""
    lag = timedelta(minutes=lag_minutes)
    periods: tuple[Period, ...] = ()
    when = T0
    for retention, gap in edits:
        when += gap
        periods = record(periods, retention, when)
    created = T0 + created_after
    # Retentions the service may have signed with at `created`: in force then, or replaced
    # less than `lag` before.
    promised = [
        p.retention for p in periods
        if p.since <= created and (p.ended is None or created < p.ended + lag)
    ]  # fmt: skip
    if not promised:
        return
    kept = periods
    for offset in sorted(checks):
        now = created + offset
        decision = enforce(kept, now, lag)
        kept = decision.history  # what the status carries to the next reconcile
        age = now - created
        for retention in promised:
            if age < retention:  # still promised: the cleanup must not take it
                assert age < decision.retention
