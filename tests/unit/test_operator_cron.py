from datetime import timedelta

import pytest

from tempaudio_api.cron import CronError, longest_gap


@pytest.mark.parametrize(
    ("schedule", "gap"),
    [
        ("*/15 * * * *", timedelta(minutes=15)),
        ("* * * * *", timedelta(minutes=1)),
        ("0 * * * *", timedelta(hours=1)),
        ("@hourly", timedelta(hours=1)),
        ("30 3 * * *", timedelta(days=1)),
        ("@daily", timedelta(days=1)),
        ("0 */6 * * *", timedelta(hours=6)),
        ("0 9,17 * * *", timedelta(hours=16)),
        ("0 9-17 * * MON-FRI", timedelta(days=2, hours=16)),
        ("0 0 * * 0", timedelta(days=7)),
        ("@weekly", timedelta(days=7)),
        ("0 0 1 * *", timedelta(days=31)),
        ("0 0 1,15 * *", timedelta(days=17)),
        ("0 0 29 2 *", timedelta(days=4 * 365 + 1)),
        ("0 12 1 * 1", timedelta(days=7)),  # day-of-month OR day-of-week
        ("5-10/5 * * * *", timedelta(minutes=55)),
    ],
)
def test_longest_gap(schedule: str, gap: timedelta) -> None:
    assert longest_gap(schedule) == gap


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("", "five fields"),
        ("* * * *", "five fields"),
        ("61 * * * *", "outside 0-59"),
        ("* 24 * * *", "outside 0-23"),
        ("x * * * *", "not a number"),
        ("10-5 * * * *", "backwards"),
        ("0 0 30 2 *", "never runs"),
        ("*/0 * * * *", "outside"),
    ],
)
def test_invalid_schedules(schedule: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        longest_gap(schedule)


@pytest.mark.parametrize("schedule", ["*/90 * * * *", "0 */30 * * *", "*/60 * * * *"])
def test_a_step_longer_than_its_field_is_refused_as_the_crd_does(schedule: str) -> None:
    # Kubernetes runs "*/90" in the minutes hourly, the CRD read it as 90 minutes: one rule now.
    with pytest.raises(CronError, match="longer than its field"):
        longest_gap(schedule)


def test_the_longest_steps_that_fit_still_work() -> None:
    assert longest_gap("*/59 * * * *") == timedelta(minutes=59)
    assert longest_gap("0 */23 * * *") == timedelta(hours=23)
