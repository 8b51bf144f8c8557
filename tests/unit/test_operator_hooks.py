"""The chart hooks: accepted() after install and upgrade, retire() before uninstall."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from tempaudio_operator.hooks import accepted, retire, verdict


class Api:
    """Policies as the API server keeps them: gone after ``held`` reads (the finalizer)."""

    def __init__(self, held: int, exists: bool = True) -> None:
        self.held, self.exists, self.deleted = held, exists, 0

    def delete_namespaced_custom_object(self, *args: Any) -> None:
        if not self.exists:
            raise ApiException(status=404)
        self.deleted += 1

    def get_namespaced_custom_object(self, *args: Any) -> Any:
        if not self.exists or self.held <= 0:
            raise ApiException(status=404)
        self.held -= 1
        return {"metadata": {"name": args[-1], "finalizers": ["tempaudio.dev/lifecycle-rule"]}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_retire_waits_until_the_operator_has_let_the_policy_go() -> None:
    api, clock = Api(held=3), Clock()
    assert retire(api, "ns", "audio", timeout=60, sleep=clock.sleep, clock=lambda: clock.now)  # type: ignore[arg-type]
    assert api.deleted == 1
    assert clock.now == 3


def test_retire_gives_up_without_blocking_forever() -> None:
    api, clock = Api(held=1000), Clock()
    assert not retire(api, "ns", "audio", timeout=10, sleep=clock.sleep, clock=lambda: clock.now)  # type: ignore[arg-type]
    assert clock.now == 10


def test_a_policy_already_gone_is_retired() -> None:
    assert retire(Api(held=0, exists=False), "ns", "audio", timeout=1)  # type: ignore[arg-type]


def body(generation: int, observed: int | None, accepted_: int | None, reason: str = "") -> Any:
    status: dict[str, Any] = {"observedGeneration": observed, "acceptedGeneration": accepted_}
    if reason:
        status["conditions"] = [{"type": "Ready", "status": "False", "reason": reason,
                                 "message": "schedule too sparse"}]  # fmt: skip
    return {"metadata": {"generation": generation}, "status": status}


def test_the_verdict_is_the_operators_on_the_current_generation() -> None:
    assert verdict(body(2, 1, 1)) is None  # not looked at yet
    assert verdict(body(2, 2, 2)) == (True, "accepted")
    assert verdict(body(2, 2, 1, "InvalidSpec")) == (False, "InvalidSpec: schedule too sparse")


class Policies:
    """Reads of one policy: pending for ``pending`` reads, then ``then``."""

    def __init__(self, pending: int, then: Any) -> None:
        self.pending, self.then = pending, then

    def get_namespaced_custom_object(self, *args: Any) -> Any:
        if self.pending > 0:
            self.pending -= 1
            return body(2, 1, 1)
        return self.then


def test_accepted_waits_for_the_operator_and_reports_a_refusal() -> None:
    clock = Clock()
    api = Policies(2, body(2, 2, 1, "NotAllowed"))
    ok, why = accepted(api, "ns", "a", timeout=60, sleep=clock.sleep, clock=lambda: clock.now)  # type: ignore[arg-type]
    assert (ok, why, clock.now) == (False, "NotAllowed: schedule too sparse", 2)
    stuck = Policies(10**6, None)
    ok, why = accepted(stuck, "ns", "a", timeout=5, sleep=clock.sleep, clock=lambda: clock.now)  # type: ignore[arg-type]
    assert not ok
    assert "is it running?" in why
