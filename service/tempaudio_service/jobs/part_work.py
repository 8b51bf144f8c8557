"""One part of a job, synthesized and stored: its PCM (16-bit mono at the voice's rate) and
its marks, at keys derived from the job and the part's number. A part that comes back
(its replica died before it said so) is written again at the same keys, once more at most,
and counted once (transitions.part_done).

Requests keep priority: the part is made sentence by sentence, and before each sentence it
waits while any request of ``/tts/sync``, ``/tts/stream`` or ``/v1`` is admitted to the
synthesis pool. The sentences are made on the jobs' own threads at the lowest CPU priority
(low_priority.py), with one onnxruntime thread, and are not counted as running syntheses: a
request that arrives while one is made takes the cores from it, and is served as it would be
on a quiet replica.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import anyio

from tempaudio_service.core.errors import NoSpeech
from tempaudio_service.jobs.engine import JobEngine, JobRequest, dumps, part_key
from tempaudio_service.jobs.low_priority import LowPriorityThreads
from tempaudio_service.speech.voices import Timing
from tempaudio_service.storage.store import AudioStore

logger = logging.getLogger(__name__)
# How often a part waiting for requests looks again.
GATE_SECONDS = 0.02
PCM_CONTENT_TYPE = "audio/L16"


@dataclass(frozen=True)
class MadePart:
    pcm: bytes
    timings: tuple[Timing, ...]

    @property
    def num_frames(self) -> int:
        return len(self.pcm) // 2


def timing_json(timing: Timing) -> list[object]:
    return [timing.kind, timing.frame, timing.start, timing.end, timing.name, timing.end_frame]


def timing_from_json(value: list[object]) -> Timing:
    kind, frame, start, end, name, end_frame = value
    return Timing(
        str(kind),
        int(frame),  # type: ignore[call-overload]
        int(start),  # type: ignore[call-overload]
        int(end),  # type: ignore[call-overload]
        None if name is None else str(name),
        None if end_frame is None else int(end_frame),  # type: ignore[call-overload]
    )


async def wait_for_requests(engine: JobEngine) -> None:
    """Return once no request waits for, or holds, a synthesis worker."""
    while engine.services.pool.admitted > 0:
        await anyio.sleep(GATE_SECONDS)


async def synthesize(
    engine: JobEngine, request: JobRequest, index: int, threads: LowPriorityThreads
) -> MadePart:
    """Part ``index``'s audio and marks, sentence by sentence, after the requests.

    A part with nothing to say (punctuation between two pauses) is silence; a refusal of
    the part's text (its audio over the per-request cap) is the job's failure."""
    tts = request.tts
    synth = engine.services.synth
    timings: list[Timing] = []
    pieces: Iterator[bytes] = synth.speak(
        request.parts[index].script,
        tts.voice,
        tts.options,
        timings=timings if tts.timed else None,
        background=True,
    )
    pcm = bytearray()
    try:
        while True:
            await wait_for_requests(engine)
            piece = await threads.run(next, pieces, None)
            if piece is None:
                break
            pcm.extend(piece)
    except NoSpeech:
        return MadePart(b"", ())
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            await threads.run(close)
    return MadePart(bytes(pcm), tuple(timings))


async def store_part(
    engine: JobEngine, store: AudioStore, folder: str, index: int, made: MadePart
) -> None:
    """The part's marks, then its PCM: a part whose PCM exists is whole."""
    marks = {"frames": made.num_frames, "timings": [timing_json(t) for t in made.timings]}
    put = store.put_audio
    await engine.call(put, part_key(folder, index, "marks.json"), dumps(marks), "application/json")
    await engine.call(put, part_key(folder, index, "pcm"), made.pcm, PCM_CONTENT_TYPE)


def read_marks(raw: bytes) -> tuple[int, list[Timing]]:
    value = json.loads(raw)
    return int(value["frames"]), [timing_from_json(t) for t in value["timings"]]
