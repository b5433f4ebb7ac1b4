"""A classroom against one server: N students at once, each a session of Streamlit's own websocket
protocol (harness/student.py), playing the lesson (harness/lesson.py). No browser: the students'
browsers are their own machines; the server is what they share, and what this measures.

It reports, per phase, p50 / p95 / max from sending the message to the run's `script_finished`;
the lesson's errors; and the server's RSS before, at its peak and after. bench/README.md has
the latest figures.

    python -m bench.classroom --students 30
    python -m bench.classroom --soak 1000     # one session, 1,000 reruns over 50 sentences and shapes
    python -m bench.classroom --largest 30    # the largest allowed shape open in 30 sessions at once
    python -m bench.classroom --processes 2   # two app processes behind nginx (harness/cluster.py)
    python -m bench.classroom --follow 30     # 30 students follow a teacher who changes the head
    python -m bench.classroom --lesson 30     # 30 students answer a lesson's question; the teacher counts, reveals
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import websockets

from harness.cluster import cluster
from harness.lesson import PHASES, SENTENCES, SHAPES, TEACHER_LINK, Report, classroom
from harness.server import ROOT, streamlit_server
from harness.student import RUN_TIMEOUT_S, SEND_KEY, ScriptRun, Student
from ui.i18n.en import STRINGS as EN
from viz.lesson import RIGHT_MARK

LARGEST_LINK = {  # the largest shape a link may ask for: 128 tokens, d_model 1024, 16 heads, 12 layers
    "text": " ".join(f"w{i}" for i in range(128)),
    "d_model": 1024,
    "heads": 16,
    "layers": 12,
    "ff": 4,
}


def server_pid(base_url: str) -> int:
    """The pid of the `streamlit run` serving `base_url` (the harness starts it in a new session)."""
    port = base_url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(command) and port.encode() in command:
                return int(entry.name)
    raise RuntimeError(f"no streamlit process serves {base_url}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextmanager
def rss_peak(pids: Sequence[int], every_s: float = 0.05) -> Iterator[list[float]]:
    """Sample the app processes' RSS (summed) in a thread; the list holds [peak] when the block ends."""
    peak = [total(rss_mb, pids)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            peak[0] = max(peak[0], total(rss_mb, pids))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary_line(phase: str, values: Sequence[float]) -> str:
    if not values:
        return f"  {phase:<10} no runs"
    p50, p95 = statistics.median(values), percentile(values, 0.95)
    times = f"p50 {p50 * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms   max {max(values) * 1000:7.0f} ms"
    return f"  {phase:<10} n={len(values):<4} {times}"


def warm_up(app_urls: Sequence[str]) -> None:
    """One student plays the lesson on each app process first: the models and traces later students share are built."""
    for url in app_urls:
        report = asyncio.run(classroom(url, 1, seed=99))
        if report.errors:
            raise RuntimeError(f"the warm-up lesson on {url} failed: {report.errors}")


def total(measure, pids: Sequence[int]) -> float:
    return sum(measure(pid) for pid in pids)


def run_classroom(base_url: str, students: int, app_urls: Sequence[str]) -> Report:
    """A class of `students` against `base_url` (one app, or nginx in front of `app_urls`)."""
    pids = [server_pid(url) for url in app_urls]
    warm_up(app_urls)
    before, cpu_before = total(rss_mb, pids), total(cpu_seconds, pids)
    start = time.perf_counter()
    with rss_peak(pids) as peak:
        report = asyncio.run(classroom(base_url, students))
    wall = time.perf_counter() - start
    processes = f" on {len(pids)} app processes" if len(pids) > 1 else ""
    print(f"N = {students}{processes}: {wall:.1f} s wall, server CPU {total(cpu_seconds, pids) - cpu_before:.1f} s")
    for phase in PHASES:
        print(summary_line(phase, report.seconds[phase]))
    print(f"  errors     {len(report.errors)}" + "".join(f"\n    {error}" for error in report.errors[:10]))
    print(f"  server RSS before {before:.0f} MB, peak {peak[0]:.0f} MB, after {total(rss_mb, pids):.0f} MB")
    return report


async def soak(base_url: str, reruns: int, pid: int, every: int = 100) -> list[float]:
    """One session, `reruns` runs over 50 sentences and 50 shapes; RSS after every `every`."""
    student, _ = await Student.open(base_url, TEACHER_LINK)
    samples = []
    try:
        for index in range(reruns):
            if index % 2:
                run = await student.type_sentence(SENTENCES[index // 2 % len(SENTENCES)])
            else:
                await student.close()
                d_model, heads, layers = SHAPES[index // 2 % len(SHAPES)]
                seed = index // 2 // len(SHAPES) % 5  # 10 shapes x 5 seeds: 50 models
                link = {
                    "text": SENTENCES[index % 7],
                    "d_model": d_model,
                    "heads": heads,
                    "layers": layers,
                    "seed": seed,
                }
                student, run = await Student.open(base_url, link)
            if run.exceptions:
                raise RuntimeError(f"rerun {index}: {run.exceptions[0]}")
            if (index + 1) % every == 0:
                samples.append(rss_mb(pid))
                print(f"  after {index + 1:>5} reruns: RSS {samples[-1]:.0f} MB", flush=True)
    finally:
        await student.close()
    return samples


@dataclass
class Timers:
    """A page's fragment timers, run as its browser runs them: each fragment on its own `run_every`,
    due again one interval after it was last due. The page's `auto_reruns` says which timers it
    has now (a run of the whole page sets them anew); one it gained starts one interval from now.
    A page's runs follow one another, so a timer that falls due during a run fires when it ends."""

    student: Student
    due: dict[str, float] = field(default_factory=dict)  # fragment -> when its timer fires next (perf_counter)

    async def tick(self, before: float = math.inf) -> ScriptRun | None:
        """Wait for the next timer and run its fragment; or, when `before` comes first, wait until then
        and run nothing (None): the page has something else to send."""
        now = time.perf_counter()
        timers = self.student.auto_reruns
        self.due = {fragment: self.due.get(fragment, now + every) for fragment, every in timers.items()}
        if not self.due:
            raise ValueError("the page has no fragment timers to check in on")
        fragment = min(self.due, key=self.due.__getitem__)
        if self.due[fragment] > before:
            await asyncio.sleep(max(0.0, before - now))
            return None
        await asyncio.sleep(max(0.0, self.due[fragment] - now))
        self.due[fragment] += timers[fragment]
        return await self.student.auto_rerun(fragment)


@dataclass
class Follow:
    """A class following its teacher: how long each student took to show each change, and the
    server's CPU while the class only waits."""

    latencies: list[float] = field(default_factory=list)  # teacher's change published -> student's page shows it
    errors: list[str] = field(default_factory=list)
    idle_cpu: float = 0.0  # server CPU seconds per second while every student only checks in


async def follow_class(base_url: str, students: int, pid: int, changes: int = 5, every_s: float = 2.0) -> Follow:
    """A teacher starts a class and `students` follow it; the teacher changes the head `changes`
    times, `every_s` apart. Each student's page checks in as its browser would (the fragment's
    `run_every` timer), and the latency is from the teacher's run that published the change to
    the end of the student's run that shows it."""
    result = Follow()
    teacher, _ = await Student.open(base_url, TEACHER_LINK)
    await teacher.press("class_start")
    code = parse_qs(teacher.query)["class"][0]
    opened = await asyncio.gather(*(Student.open(base_url, {"class": code}) for _ in range(students)))
    followers = [student for student, _ in opened]
    published: dict[tuple[int, int], float] = {}  # (layer, head) -> when the teacher's run that published it ended
    stop = asyncio.Event()

    async def check_in(index: int, student: Student) -> None:
        seen: set[tuple[int, int]] = set()
        timers = Timers(student)
        while not stop.is_set():
            try:
                run = await timers.tick()
            except (TimeoutError, ValueError) as error:
                result.errors.append(f"student {index}: {error!r}")
                return
            if run.exceptions:
                result.errors.append(f"student {index}: {run.exceptions[0][:200]}")
            link = parse_qs(student.query)
            view = (int(link.get("layer", ["1"])[0]) - 1, int(link.get("head", ["1"])[0]) - 1)
            if view in published and view not in seen:
                seen.add(view)
                result.latencies.append(time.perf_counter() - published[view])

    tasks = [asyncio.create_task(check_in(index, student)) for index, student in enumerate(followers)]
    await asyncio.sleep(every_s)
    cpu = cpu_seconds(pid)
    await asyncio.sleep(every_s)
    result.idle_cpu = (cpu_seconds(pid) - cpu) / every_s
    n_heads = int(TEACHER_LINK["heads"])
    for change in range(changes):  # every change a new (layer, head): the first is (0, 1)
        view = divmod(change + 1, n_heads)
        await teacher.change_head(view[1], layer=view[0])
        published[view] = time.perf_counter()
        await asyncio.sleep(every_s)
    stop.set()
    await asyncio.gather(*tasks)
    missing = students * changes - len(result.latencies)
    if missing:
        result.errors.append(f"{missing} of {students * changes} changes never reached a student")
    for student in (teacher, *followers):
        await student.close()
    return result


def run_follow(base_url: str, students: int) -> None:
    pid = server_pid(base_url)
    warm_up([base_url])
    result = asyncio.run(follow_class(base_url, students, pid))
    print(f"a class of {students} following its teacher: {len(result.errors)} errors")
    print(summary_line("follow", result.latencies))
    print(f"  server CPU while the class waits: {result.idle_cpu:.2f} s per second")
    for error in result.errors[:10]:
        print(f"    {error}")


LESSON_STOP = 3  # the "attention" lesson's stop (1-based) that asks a key question (ui/lessons/attention.toml)
ANSWER_KEY = f"lesson_answer_attention_{LESSON_STOP}"  # its answer control's key (ui/lessons/panel.py)
ANSWER_MIX = (0, 0, 0, 1, 1, 2)  # student i picks option ANSWER_MIX[i % 6]: 3:2:1, so two bars swapped would show
ANSWER_WINDOW_S = 3.0  # every answer comes at a random moment of a window this long
ANSWER_LEAD_S = 1.0  # the window opens this long after the last page shows the question: every page has seen it
VERDICT_WAIT_S = 5.0  # after the reveal, a page's verdict is missing after this long (it checks every second)
COUNT_TEXT = re.compile(re.escape(EN["lesson_answered"]).replace(re.escape("{n}"), r"(\d+)"))
VERDICTS = {EN["lesson_right"]: True, EN["lesson_wrong"]: False, EN["lesson_no_answer"]: None}


@dataclass
class Answering:
    """A class answering a lesson's question: each answer's time, what the teacher's page counted
    and published, and what each student's page said of their answer."""

    latencies: list[float] = field(default_factory=list)  # Send pressed -> the end of its run
    last_answer: float = 0.0  # when the last answer's run ended (perf_counter)
    counts: list[tuple[float, int]] = field(default_factory=list)  # the teacher's count: (its run's end, n shown)
    sent: dict[str, int] = field(default_factory=dict)  # option label -> answers sent
    bars: dict[str, int] = field(default_factory=dict)  # option label -> the count the reveal published
    right: set[str] = field(default_factory=set)  # the labels the reveal marked right
    verdicts: int = 0  # students whose page judged their answer as the reveal's right answer says
    check_ins: list[float] = field(default_factory=list)  # the students' timer runs while they answer
    cpu: float = 0.0  # server CPU seconds per second while the class answers
    errors: list[str] = field(default_factory=list)

    def count_delay(self, students: int) -> float | None:
        """From the last answer's run's end to the teacher's count first showing every answer."""
        complete = [at for at, n in self.counts if n == students]
        return complete[0] - self.last_answer if complete else None


def at_question(student: Student) -> bool:
    """Whether the page shows the lesson's question: the link is at its stop, and Send is drawn."""
    return parse_qs(student.query).get("stop") == [str(LESSON_STOP)] and SEND_KEY in student.widget_ids


async def answer_question(base_url: str, students: int, pid: int, seed: int = 0) -> Answering:
    """A teacher starts a class and the "attention" lesson and moves to its key question; `students`
    follow, checking in on their pages' timers as their browsers would, and once every page shows
    the question each answers (Send) at a random moment of `ANSWER_WINDOW_S`, with the mix
    `ANSWER_MIX`. The teacher's page counts on its own timer meanwhile, then reveals; each
    student's next check-in shows their verdict. Every count the pages show is checked against
    the answers sent."""
    result = Answering()
    teacher, _ = await Student.open(base_url, TEACHER_LINK)
    for key in ("class_start", "lesson_start", "lesson_next", "lesson_next"):
        run = await teacher.press(key)
        if run.exceptions:
            raise RuntimeError(f"the teacher's {key}: {run.exceptions[0][:200]}")
    if parse_qs(teacher.query).get("stop") != [str(LESSON_STOP)] or "lesson_reveal" not in teacher.widget_ids:
        raise RuntimeError(f"the teacher's page is not at the lesson's question: {teacher.query}")
    code = parse_qs(teacher.query)["class"][0]
    opened = await asyncio.gather(*(Student.open(base_url, {"class": code}) for _ in range(students)))
    followers = [student for student, _ in opened]
    rng = random.Random(seed)
    offsets = [rng.uniform(0.0, ANSWER_WINDOW_S) for _ in range(students)]
    window_start = math.inf  # when the answers may come (perf_counter), once every page shows the question
    ready, answered, judged = (asyncio.Event() for _ in range(3))  # every page: at the question, answered, judged
    waiting = {"ready": set(range(students)), "answered": set(range(students)), "judged": set(range(students))}
    revealed, counted, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
    said: dict[int, tuple[str | None, str]] = {}  # student -> (the label they sent, the verdict their page showed)

    def done(what: str, index: int, event: asyncio.Event) -> None:
        nonlocal window_start
        waiting[what].discard(index)
        if not waiting[what] and not event.is_set():
            event.set()
            if what == "ready":
                window_start = time.perf_counter() + ANSWER_LEAD_S

    def given_up(index: int) -> None:  # a page that failed waits for nothing, and holds no one up
        for what, event in (("ready", ready), ("answered", answered), ("judged", judged)):
            done(what, index, event)

    async def student_answers(index: int, student: Student) -> None:
        who = f"student {index}"
        timers = Timers(student)
        option = ANSWER_MIX[index % len(ANSWER_MIX)]
        label = None
        try:
            while not stop.is_set():
                run = await timers.tick(before=window_start + offsets[index] if label is None else math.inf)
                if run is None:  # the answer's moment: Send
                    label = student.widgets[ANSWER_KEY].options[option]
                    run = await student.answer(ANSWER_KEY, option)
                    result.latencies.append(run.seconds)
                    result.last_answer = max(result.last_answer, time.perf_counter())
                    result.sent[label] = result.sent.get(label, 0) + 1
                    if EN["lesson_sent"].format(answer=label) not in run.texts():
                        result.errors.append(f"{who}: the page does not say the answer {label!r} is in: {run.texts()}")
                    done("answered", index, answered)
                elif ready.is_set() and not answered.is_set():
                    result.check_ins.append(run.seconds)
                if run.exceptions:
                    result.errors.append(f"{who}: {run.exceptions[0][:200]}")
                if at_question(student):
                    done("ready", index, ready)
                verdict = [text for text in run.texts() if text in VERDICTS]
                if verdict and index in waiting["judged"]:
                    if not revealed.is_set():
                        result.errors.append(f"{who}: a verdict before the reveal: {verdict[0]!r}")
                    said[index] = (label, verdict[0])
                    done("judged", index, judged)
        except (TimeoutError, ValueError, websockets.ConnectionClosed) as error:
            result.errors.append(f"{who}: {error!r}")
        given_up(index)

    async def teacher_counts() -> None:
        timers = Timers(teacher)
        while not revealed.is_set():
            try:
                run = await timers.tick()
            except (TimeoutError, ValueError, websockets.ConnectionClosed) as error:
                result.errors.append(f"the teacher's count: {error!r}")
                return
            if run.exceptions:
                result.errors.append(f"the teacher's count: {run.exceptions[0][:200]}")
            for text in run.texts():
                if match := COUNT_TEXT.fullmatch(text):
                    result.counts.append((time.perf_counter(), int(match[1])))
                    if int(match[1]) == students:
                        counted.set()

    async def wait(event: asyncio.Event, seconds: float, what: str) -> None:
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            result.errors.append(f"{what} not within {seconds:.0f} s")

    tasks = [asyncio.create_task(student_answers(index, student)) for index, student in enumerate(followers)]
    counting = asyncio.create_task(teacher_counts())
    await wait(ready, RUN_TIMEOUT_S, "every page at the question")
    cpu, start = cpu_seconds(pid), time.perf_counter()
    await wait(answered, ANSWER_LEAD_S + ANSWER_WINDOW_S + RUN_TIMEOUT_S, "every answer sent")
    result.cpu = (cpu_seconds(pid) - cpu) / (time.perf_counter() - start)
    await wait(counted, VERDICT_WAIT_S, f"the teacher's count at {students}")
    revealed.set()  # the teacher's timers stop, and its page takes the click
    await counting
    run = await teacher.press("lesson_reveal")
    figures = [figure for figure in run.figures() if figure["data"] and figure["data"][0].get("type") == "bar"]
    if run.exceptions or len(figures) != 1:
        result.errors.append(f"the reveal drew {len(figures)} bar charts: {run.exceptions[:1]}")
    for bar in figures[0]["data"] if figures else []:
        for label, count in zip(bar["y"], bar["text"], strict=True):
            result.bars[label.removeprefix(RIGHT_MARK)] = int(count)
            if label.startswith(RIGHT_MARK):
                result.right.add(label.removeprefix(RIGHT_MARK))
    await wait(judged, VERDICT_WAIT_S, "every student's verdict")
    stop.set()
    await asyncio.gather(*tasks)
    for index, (label, verdict) in sorted(said.items()):
        if VERDICTS[verdict] is not None and VERDICTS[verdict] == (label in result.right):
            result.verdicts += 1
        else:
            result.errors.append(f"student {index} sent {label!r}, the reveal's right {result.right}: {verdict!r}")
    for student in (teacher, *followers):
        await student.close()
    last = result.counts[-1][1] if result.counts else None
    if last != students:
        result.errors.append(f"the teacher's last count before the reveal: {last}, not {students}")
    if any(n > students for _, n in result.counts):
        result.errors.append(f"the teacher's count went over {students}: {max(n for _, n in result.counts)}")
    if {label: n for label, n in result.bars.items() if n} != result.sent:
        result.errors.append(f"the reveal's bars {result.bars} are not the answers sent {result.sent}")
    return result


def run_lesson(base_url: str, students: int) -> None:
    pid = server_pid(base_url)
    warm_up([base_url])
    result = asyncio.run(answer_question(base_url, students, pid))
    print(f"a class of {students} answering a lesson's question: {len(result.errors)} errors")
    print(summary_line("answer", result.latencies) + "   (Send -> its run's end)")
    print(summary_line("check-in", result.check_ins) + "   (the students' timers, while they answer)")
    last = result.counts[-1][1] if result.counts else 0
    delay = result.count_delay(students)
    when = "never" if delay is None else f"{delay * 1000:.0f} ms after the last answer's run ended"
    print(f"  count      the teacher's page showed {last} answered (of {sum(result.sent.values())} sent): {when}")
    bars = ", ".join(f"{RIGHT_MARK if label in result.right else ''}{label} {n}" for label, n in result.bars.items())
    sent = "as sent" if {label: n for label, n in result.bars.items() if n} == result.sent else f"sent {result.sent}"
    print(f"  bars       {bars}: {sent}")
    print(f"  verdicts   {result.verdicts} of {students} pages judged their answer as the reveal says")
    print(f"  server CPU while the class answers: {result.cpu:.2f} s per second")
    for error in result.errors[:10]:
        print(f"    {error}")


async def crowd(base_url: str, students: int, link: dict[str, object]) -> tuple[list[Student], list[ScriptRun]]:
    """`students` tabs open on one link at once, and left open (as a class leaves its tabs)."""
    opened = await asyncio.gather(*(Student.open(base_url, link) for _ in range(students)))
    return [student for student, _ in opened], [run for _, run in opened]


def run_largest(base_url: str, students: int) -> None:
    """The largest allowed shape open in `students` sessions at once: the server's RSS, held."""
    pid = server_pid(base_url)
    before = rss_mb(pid)

    async def hold() -> list[ScriptRun]:
        first, runs = await crowd(base_url, 1, LARGEST_LINK)  # the model and trace are built once
        rest, more = await crowd(base_url, students - 1, LARGEST_LINK)
        for student in first + rest:
            await student.close()
        return runs + more

    with rss_peak([pid]) as peak:
        runs = asyncio.run(hold())
    errors = [error for run in runs for error in run.exceptions]
    seconds = [run.seconds for run in runs[1:]]
    print(f"largest shape open in {students} sessions: {len(errors)} errors")
    print(summary_line("open", seconds) + f"   (the first, which builds the model: {runs[0].seconds:.1f} s)")
    print(f"  server RSS before {before:.0f} MB, peak {peak[0]:.0f} MB, after {rss_mb(pid):.0f} MB")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 10, 30], help="class sizes to play in turn")
    parser.add_argument("--processes", type=int, default=1, help="app processes behind nginx (harness/cluster.py)")
    parser.add_argument("--soak", type=int, default=0, help="instead: one session, this many reruns")
    parser.add_argument("--largest", type=int, default=0, help="instead: the largest shape open in this many sessions")
    parser.add_argument("--follow", type=int, default=0, help="instead: a class of this many following its teacher")
    parser.add_argument("--lesson", type=int, default=0, help="instead: a class of this many answering a question")
    args = parser.parse_args(argv)
    if args.processes > 1:
        with cluster(args.processes) as (base_url, apps):
            for students in args.students:
                run_classroom(base_url, students, apps)
        return
    with streamlit_server(ROOT / "app.py") as base_url:
        if args.largest:
            run_largest(base_url, args.largest)
            return
        if args.follow:
            run_follow(base_url, args.follow)
            return
        if args.lesson:
            run_lesson(base_url, args.lesson)
            return
        if args.soak:
            pid = server_pid(base_url)
            warm_up([base_url])
            print(f"soak: {args.soak} reruns; RSS at start {rss_mb(pid):.0f} MB")
            samples = asyncio.run(soak(base_url, args.soak, pid))
            first, last = samples[0], samples[-1]
            print(f"RSS growth after the first {100} reruns: {100 * (last - first) / first:+.1f} %")
            return
        for students in args.students:
            run_classroom(base_url, students, [base_url])


if __name__ == "__main__":
    main()
