import pytest

from tempaudio_operator.settings import OperatorSettings


@pytest.mark.parametrize(
    ("env", "flags", "all_namespaces", "expected"),
    [
        ({}, None, False, ()),
        ({"TEMPAUDIO_OPERATOR_NAMESPACES": "a, b"}, None, False, ("a", "b")),
        # Flags replace the environment's list; they were merged into it before.
        ({"TEMPAUDIO_OPERATOR_NAMESPACES": "a"}, ["x"], False, ("x",)),
        ({"TEMPAUDIO_OPERATOR_NAMESPACES": "a"}, None, True, ()),
    ],
)
def test_flags_override_the_environment(
    env: dict[str, str], flags: list[str] | None, all_namespaces: bool, expected: tuple[str, ...]
) -> None:
    settings = OperatorSettings.from_env(env).with_scope(flags, all_namespaces=all_namespaces)
    assert settings.namespaces == expected


@pytest.mark.parametrize(
    ("patterns", "namespace", "watched", "plain"),
    [
        ((), "anything", True, True),
        (("team-a",), "team-a", True, True),
        (("team-a",), "team-b", False, True),
        (("t-*",), "t-123", True, False),
        (("t-*",), "p-123", False, False),
    ],
)
def test_scope(patterns: tuple[str, ...], namespace: str, watched: bool, plain: bool) -> None:
    settings = OperatorSettings(namespaces=patterns)
    assert settings.watches(namespace) is watched
    assert settings.plain_namespaces is plain


def test_one_boolean_vocabulary_across_programs() -> None:
    # tempaudio_api.values.parse_bool is both programs' rule.
    assert OperatorSettings.from_env({"TEMPAUDIO_OPERATOR_MANAGE_AWS": "off"}).manage_aws is False
