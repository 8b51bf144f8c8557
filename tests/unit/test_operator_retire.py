"""The pre-delete hook's retire(): delete, then wait for the operator to let the policy go."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from tempaudio_operator.retire import retire


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
