"""A job's script cut into parts (jobs/parts.py): nothing lost or said twice, cuts at
sentence ends within the size, never inside a phoneme block or a replaced stretch, and
offsets that still index the request."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tempaudio_service.jobs.parts import parts_from_json, parts_json, split
from tempaudio_service.speech.script import Pause, Said, Script, Source, plain


def said_texts(parts: list) -> str:  # type: ignore[type-arg]
    return "".join(item.text for part in parts for item in part.script if isinstance(item, Said))


def test_a_text_is_cut_at_sentence_ends_within_the_size() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    parts = split(plain(text), 300, len(text), 0.0)
    assert said_texts(parts) == text
    for part in parts[:-1]:
        (said,) = part.script
        assert len(said.text) <= 300
        assert said.text.endswith(". ")
    assert sum(part.characters for part in parts) == len(text)


def test_offsets_still_index_the_request() -> None:
    text = "Alpha beta. Gamma delta. " * 40
    for part in split(plain(text), 100, len(text), 0.0):
        for item in part.script:
            assert isinstance(item, Said)
            for source in item.sources:
                assert (
                    item.text[source.said_start : source.said_end]
                    == text[source.start : source.end]
                )


def test_a_phoneme_block_or_a_replaced_stretch_is_never_cut() -> None:
    block = "[[h ə l oʊ]] "
    text = block * 400
    parts = split(plain(text), 100, len(text), 0.0)
    for part in parts:
        (said,) = part.script
        assert said.text.count("[[") == said.text.count("]]")
    replaced = Said("one two three four", (Source(0, 18, 0, 3, replaced=True),))
    assert len(split((replaced,), 5, 3, 0.0)) == 1  # one written word: one part


def test_a_part_after_speech_starts_with_the_silence_between_sentences() -> None:
    text = "One. " * 100
    parts = split(plain(text), 50, len(text), 0.4)
    assert parts[0].script[0] == Said(parts[0].script[0].text, parts[0].script[0].sources)
    assert all(part.script[0] == Pause(0.4) for part in parts[1:])


def test_hostile_scripts_are_cut_in_one_pass() -> None:
    """200,000 characters of phoneme blocks, and a script of 20,000 replaced words: each
    took minutes when every cut looked at all the rest (a bug a probe found)."""
    text = "[[a]] " * 33_000
    assert said_texts(split(plain(text), 300, len(text), 0.0)) == text
    words = tuple(
        Said("zz zz zz ", (Source(0, 9, 3 * i, 3 * i + 2, replaced=True),)) for i in range(20_000)
    )
    parts = split(words, 300, 60_000, 0.0)
    assert sum(len(p.script) for p in parts) == 20_000


scripts = st.lists(
    st.one_of(
        st.builds(plain, st.text(alphabet="ab .!?\n[]", min_size=1, max_size=400)),
        st.builds(lambda s: (Pause(s),), st.floats(0, 2)),
    ),
    max_size=6,
).map(lambda chunks: tuple(item for chunk in chunks for item in chunk))


@settings(max_examples=200, deadline=None)
@given(scripts, st.integers(1, 120))
def test_nothing_is_lost_or_said_twice(script: Script, size: int) -> None:
    parts = split(script, size, 10_000, 0.0)
    assert said_texts(parts) == "".join(i.text for i in script if isinstance(i, Said))
    pauses = [i for p in parts for i in p.script if isinstance(i, Pause)]
    assert pauses == [i for i in script if isinstance(i, Pause)]
    assert parts_from_json(parts_json(parts)) == parts
