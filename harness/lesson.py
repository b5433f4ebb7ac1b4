"""The classroom lesson: what each student of a class does, and what it got wrong.

Each student (a) opens the teacher's shared link, (b) changes the head five times in the step
view, (c) types a sentence of their own (the encoder runs) and (d) opens a link with a new shape
(a new model), with a think time of 0-300 ms before each. Given the page's files
(`harness.files.record_page_files`), a student first fetches them as a browser does on a first
visit ("files"), and its tab keeps the cookies they set. Errors: an exception on the page, a step
view that shows another sentence or shape than asked, a link that does not follow a head change,
a file not served (not 200), a disconnect, a run or a first visit over 30 s. bench/classroom.py
times it; tests/e2e/test_classroom.py plays it with a small class.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import websockets

from encoder import tokenize
from harness.files import PageFiles, Visit, visit
from harness.student import RUN_TIMEOUT_S, ScriptRun, Student
from viz.step_view import decode_payload

THINK_S = (0.0, 0.3)  # a student's pause before each action
HEAD_CHANGES = 5
TEACHER_LINK = {"text": "the cat sat on the mat because the cat was tired", "layers": 2, "heads": 4}
FILES = "files"  # the first visit's files, before the websocket: a phase only when the lesson is given them
PHASES = ("open", "head", "sentence", "new shape")  # the websocket's phases
SENTENCES = tuple(
    f"{subject} {verb} the {thing}"
    for subject in ("the cat", "a dog", "my teacher", "我们", "she", "the model", "our class", "you", "they", "he")
    for verb, thing in (("saw", "mat"), ("likes", "sun"), ("reads", "book"), ("爱", "猫"), ("wants", "tea"))
)  # 50 distinct sentences
SHAPES = tuple(  # (d_model, heads, layers): 50 distinct shapes with the seed, each a new model
    (d_model, heads, layers) for d_model, heads in ((32, 2), (48, 4), (64, 8), (96, 4), (128, 8)) for layers in (1, 2)
)


@dataclass
class Report:
    """Every student's runs, by phase, and what went wrong."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {phase: [] for phase in (FILES, *PHASES)})
    errors: list[str] = field(default_factory=list)
    wire_bytes: list[int] = field(default_factory=list)  # each first visit's bytes over the wire

    def add_visit(self, visit: Visit, who: str) -> None:
        """Count a first visit; each file not served is an error."""
        self.seconds[FILES].append(visit.seconds)
        self.wire_bytes.append(visit.wire_bytes)
        self.errors.extend(f"{who} {FILES}: {error}" for error in visit.errors)

    def add(self, phase: str, run: ScriptRun, who: str, wrong: str | None = None) -> ScriptRun:
        """Count `run`; an exception on the page, or `wrong` (what the page got wrong), is an error."""
        self.seconds[phase].append(run.seconds)
        if run.exceptions:
            self.errors.append(f"{who} {phase}: exception on the page: {run.exceptions[0][:200]}")
        elif wrong:
            self.errors.append(f"{who} {phase}: {wrong}")
        return run


def wrong_view(student: Student, tokens: list[str], shape: tuple[int, int, int]) -> str | None:
    """What the step view's latest payload gets wrong about the run asked for, if anything."""
    if not student.payloads:
        return "no step view"
    header, _ = decode_payload(student.payloads[-1])
    got = (header["tokens"], (header["d_model"], header["n_heads"], header["n_layers"]))
    return None if got == (tokens, shape) else f"the step view shows {got}, not {(tokens, shape)}"


async def think(rng: random.Random) -> None:
    await asyncio.sleep(rng.uniform(*THINK_S))


async def lesson(base_url: str, index: int, report: Report, rng: random.Random, files: PageFiles | None = None) -> None:
    """One student's lesson; whatever breaks is an error of this student, and the others go on."""
    who = f"student {index}"
    cookies: dict[str, str] = {}
    try:
        await think(rng)
        if files is not None:
            first = await visit(base_url, files)
            report.add_visit(first, who)
            cookies = first.cookies
        student, run = await Student.open(base_url, TEACHER_LINK, cookies)
        teacher_shape = (64, int(TEACHER_LINK["heads"]), int(TEACHER_LINK["layers"]))
        report.add("open", run, who, wrong_view(student, tokenize(str(TEACHER_LINK["text"])), teacher_shape))
        for change in range(HEAD_CHANGES):
            await think(rng)
            head = (change + 1 + index) % teacher_shape[1]
            run = await student.change_head(head)
            link = parse_qs(student.query)  # the link as the server last set it: no head= means head 1
            wrong = None if link.get("head", ["1"]) == [str(head + 1)] else f"the link says head {link.get('head')}"
            report.add("head", run, who, wrong)
        await think(rng)
        sentence = SENTENCES[index % len(SENTENCES)]
        run = await student.type_sentence(sentence)
        report.add("sentence", run, who, wrong_view(student, tokenize(sentence), teacher_shape))
        await student.close()
        d_model, heads, layers = SHAPES[index % len(SHAPES)]
        link = {"text": sentence, "d_model": d_model, "heads": heads, "layers": layers, "seed": 1000 + index}
        await think(rng)
        other, run = await Student.open(base_url, link, cookies)
        report.add("new shape", run, who, wrong_view(other, tokenize(sentence), (d_model, heads, layers)))
        await other.close()
    except TimeoutError:
        report.errors.append(f"{who}: a run or the first visit took over {RUN_TIMEOUT_S:.0f} s")
    except websockets.ConnectionClosed as closed:
        report.errors.append(f"{who}: disconnected ({closed})")
    except OSError as error:
        report.errors.append(f"{who}: {error}")


async def classroom(base_url: str, students: int, seed: int = 0, files: PageFiles | None = None) -> Report:
    """`students` play the lesson at once; with `files`, each first fetches the page's files."""
    report = Report()
    rngs = [random.Random(seed * 1000 + index) for index in range(students)]
    await asyncio.gather(*(lesson(base_url, index, report, rngs[index], files) for index in range(students)))
    return report
