"""A classroom against one server: N students at once, each a session of Streamlit's own websocket
protocol (harness/student.py), playing the lesson (harness/lesson.py). No browser: the students'
browsers are their own machines; the server is what they share, and what this measures.

It reports, per phase, p50 / p95 / max: for the page's files (a first visit, as Chromium fetches
them: harness/files.py) from the first request to the last byte, and for the rest from sending the
message to the run's `script_finished`; the lesson's errors; and the server's CPU and RSS.
bench/README.md has the latest figures.

    python -m bench.classroom --students 30
    python -m bench.classroom --processes 2 --students 30 60 --baseline 30   # serve, and one plain process first
    python -m bench.classroom --processes 2 --kill 30   # SIGKILL one app process under a class following its teacher
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
import signal
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import websockets

from harness.cluster import Stack, served
from harness.files import PageFiles, document_path, record_page_files, visit
from harness.lesson import FILES, PHASES, SENTENCES, SHAPES, TEACHER_LINK, Report, classroom
from harness.server import ROOT, streamlit_server
from harness.student import RUN_TIMEOUT_S, SEND_KEY, ScriptRun, Student
from ui.i18n.en import STRINGS as EN
from ui.serve import healthy
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


def warm_up(app_urls: Sequence[str], files: PageFiles | None = None) -> None:
    """One student plays the lesson on each app process first: the models and traces later students
    share are built, and the page's files have been read once."""
    for url in app_urls:
        report = asyncio.run(classroom(url, 1, seed=99, files=files))
        if report.errors:
            raise RuntimeError(f"the warm-up lesson on {url} failed: {report.errors}")


def machine_seconds() -> tuple[float, float]:
    """All cores' busy and stolen CPU seconds so far (/proc/stat): steal is time the host gave this
    virtual machine's cores to someone else."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def total(measure, pids: Sequence[int]) -> float:
    return sum(measure(pid) for pid in pids)


def with_children(pid: int) -> list[int]:
    """`pid` and its child processes (nginx's master and its workers)."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def describe_files(files: PageFiles) -> str:
    return (
        f"the page's files, as Chromium fetched them on a first visit: {len(files.paths)} "
        f"(the document, then {len(files.paths) - 1} more), {files.decoded_bytes / 2**20:.1f} MiB uncompressed"
    )


def run_classroom(
    base_url: str,
    students: int,
    app_urls: Sequence[str],
    files: PageFiles | None = None,
    proxy_pid: int | None = None,
) -> Report:
    """A class of `students` against `base_url` (one app, or nginx, `proxy_pid`, in front of `app_urls`)."""
    pids = [server_pid(url) for url in app_urls]
    proxy = with_children(proxy_pid) if proxy_pid else []
    warm_up(app_urls, files)
    before, cpu_before, proxy_before = total(rss_mb, pids), total(cpu_seconds, pids), total(cpu_seconds, proxy)
    start, client_before, (busy_before, steal_before) = time.perf_counter(), time.process_time(), machine_seconds()
    with rss_peak(pids) as peak:
        report = asyncio.run(classroom(base_url, students, files=files))
    wall, client = time.perf_counter() - start, time.process_time() - client_before
    busy, steal = (after - before for after, before in zip(machine_seconds(), (busy_before, steal_before), strict=True))
    where = f"{len(pids)} app processes behind nginx" if proxy_pid else "one plain `streamlit run`"
    cpu = f"server CPU {total(cpu_seconds, pids) - cpu_before:.1f} s"
    if proxy:
        cpu += f" (app processes), nginx {total(cpu_seconds, proxy) - proxy_before:.1f} s"
    print(f"N = {students} on {where}: {wall:.1f} s wall, {cpu}, the load client {client:.1f} s")
    cores = os.cpu_count() or 1
    print(f"  machine    {cores} cores busy {busy:.1f} of {cores * wall:.1f} s, stolen by the host {steal:.1f} s")
    for phase in (FILES, *PHASES) if files else PHASES:
        print(summary_line(phase, report.seconds[phase]))
    if report.wire_bytes:
        print(f"  {'':<10} each first visit: {statistics.mean(report.wire_bytes) / 2**20:.2f} MiB over the wire")
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


KILL_BEFORE = (0, 1)  # (layer, head) the teacher shows before the kill; every page follows it first
KILL_AFTER = (0, 2)  # the head the teacher changes to after the kill
KILL_CHANGE_S = 1.0  # the teacher changes head this long after the kill
KILL_WAIT_S = 30.0  # how long the class has, after the kill, to follow the change before a page counts as lost
KILL_TAIL_S = 3.0  # the class checks in this much longer once it all follows: the others must see nothing wrong
FOLLOWING_AGAIN_S = 10.0  # issue 22: each student of the killed process follows again this soon after the kill


@dataclass
class Recovery:
    """One app process killed (SIGKILL) under a class following its teacher: when it answered its
    health check again, when each of its students was back, and what the students of the others saw."""

    homes: dict[int, str] = field(default_factory=dict)  # student -> the app process it followed on ("HOST:PORT")
    teacher: str = ""  # the teacher's app process, which is not killed
    killed: str = ""
    healthy: float | None = None  # kill -> /_stcore/health on the killed process's URL says ok again
    restarts: int = 0  # serve's restarts of it
    closed: dict[int, float] = field(default_factory=dict)  # kill -> the student's websocket closed
    reconnected: dict[int, float] = field(default_factory=dict)  # kill -> its new session's first run ended
    attempts: dict[int, int] = field(default_factory=dict)  # websockets opened to get there (the browser's backoff)
    landed: dict[int, str] = field(default_factory=dict)  # the app process the new websocket reached
    shown: dict[int, float] = field(default_factory=dict)  # when the student's page first showed KILL_AFTER
    changed: float = 0.0  # kill -> the teacher's run that published KILL_AFTER ended
    errors: list[str] = field(default_factory=list)  # what the teacher and the other processes' students saw
    killed_errors: list[str] = field(default_factory=list)  # what the killed process's students saw

    def of_killed(self) -> list[int]:
        return [index for index, home in self.homes.items() if home == self.killed]

    def of_others(self) -> list[int]:
        return [index for index, home in self.homes.items() if home != self.killed]


def link_view(student: Student) -> tuple[int, int]:
    """The (layer, head) a page's link shows, 0-based (no layer= or head= means the first)."""
    link = parse_qs(student.query)
    return int(link.get("layer", ["1"])[0]) - 1, int(link.get("head", ["1"])[0]) - 1


async def next_run(timers: Timers) -> ScriptRun | None:
    """The page's next timer run, or None as soon as its websocket closes: a browser hears the close
    at once, not at its next message."""
    tick = asyncio.ensure_future(timers.tick())
    closed = asyncio.ensure_future(timers.student.websocket.wait_closed())
    try:
        await asyncio.wait({tick, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
    if not tick.done():
        tick.cancel()
        with suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await tick
        return None
    try:
        return tick.result()
    except websockets.ConnectionClosed:
        return None


async def back_up(stack: Stack, address: str, pid: int, since: float) -> float:
    """Seconds from `since` until the app process at `address`, restarted by serve (a new pid), says ok."""
    app = next(app for app in stack.apps if app.url == f"http://{address}")
    while app.pid == pid or not await asyncio.to_thread(healthy, app.url):
        await asyncio.sleep(0.05)
    return time.perf_counter() - since


async def kill_class(stack: Stack, students: int, seed: int = 0) -> Recovery:
    """A teacher starts a class on `stack` (serve, through nginx) and `students` follow it, each in a
    browser that first fetched the class link's document (its cookies keep it on one app process).
    The teacher shows `KILL_BEFORE`; once every page follows, one app process other than the
    teacher's is killed with SIGKILL, and `KILL_CHANGE_S` later the teacher shows `KILL_AFTER`.
    Every page checks in on its browser's timers; a page whose websocket closes reconnects as
    Streamlit's browser does (`Student.reconnect`) and starts a new session on its link."""
    result = Recovery()
    rng = random.Random(seed)
    teacher, _ = await Student.open(stack.url, TEACHER_LINK)
    await teacher.press("class_start")
    link = {"class": parse_qs(teacher.query)["class"][0]}
    result.teacher = teacher.upstream or ""

    async def join() -> Student:
        first = await visit(stack.url, PageFiles((document_path(link),)))
        student, _ = await Student.open(stack.url, link, first.cookies)
        return student

    followers = list(await asyncio.gather(*(join() for _ in range(students))))
    result.homes = {index: student.upstream or "" for index, student in enumerate(followers)}
    others = [home for home in result.homes.values() if home != result.teacher]
    if not others:
        raise RuntimeError(f"every student follows on the teacher's app process {result.teacher}: none to kill")
    result.killed = max(set(others), key=others.count)
    killed_at = math.inf  # perf_counter
    everyone = {view: asyncio.Event() for view in (KILL_BEFORE, KILL_AFTER)}
    seen: dict[tuple[int, int], set[int]] = {view: set() for view in everyone}
    stop = asyncio.Event()

    async def follow(index: int, student: Student) -> None:
        who = f"student {index} (on {result.homes[index]})"
        mine = result.errors if result.homes[index] != result.killed else result.killed_errors
        timers = Timers(student)
        try:
            while not stop.is_set():
                run = await next_run(timers)
                if run is None and stop.is_set():
                    return
                if run is None:
                    if result.homes[index] != result.killed or killed_at == math.inf:
                        result.errors.append(f"{who}: its websocket closed")
                        return
                    result.closed[index] = time.perf_counter() - killed_at
                    async with asyncio.timeout(KILL_WAIT_S):
                        student, run, result.attempts[index] = await student.reconnect(stack.url, rng)
                    followers[index] = student
                    result.reconnected[index] = time.perf_counter() - killed_at
                    result.landed[index] = student.upstream or ""
                    timers = Timers(student)
                if run.exceptions:
                    mine.append(f"{who}: {run.exceptions[0][:200]}")
                view = link_view(student)
                if view in seen and index not in seen[view]:
                    seen[view].add(index)
                    if view == KILL_AFTER:
                        result.shown[index] = time.perf_counter()
                    if len(seen[view]) == students:
                        everyone[view].set()
        except (TimeoutError, ValueError, OSError, websockets.ConnectionClosed) as error:
            mine.append(f"{who}: {error!r}")

    tasks = [asyncio.create_task(follow(index, student)) for index, student in enumerate(followers)]
    await teacher.change_head(KILL_BEFORE[1], layer=KILL_BEFORE[0])
    try:
        await asyncio.wait_for(everyone[KILL_BEFORE].wait(), RUN_TIMEOUT_S)
    except TimeoutError:
        raise RuntimeError(f"the class did not follow before the kill: {result.errors}") from None
    app = next(app for app in stack.apps if app.url == f"http://{result.killed}")
    pid, restarts = app.pid, app.restarts
    os.kill(pid, signal.SIGKILL)
    killed_at = time.perf_counter()
    health = asyncio.create_task(back_up(stack, result.killed, pid, killed_at))
    await asyncio.sleep(KILL_CHANGE_S)
    run = await teacher.change_head(KILL_AFTER[1], layer=KILL_AFTER[0])
    result.changed = time.perf_counter() - killed_at
    if run.exceptions:
        result.errors.append(f"the teacher's change: {run.exceptions[0][:200]}")
    with suppress(TimeoutError):  # a page that never follows is counted below
        await asyncio.wait_for(everyone[KILL_AFTER].wait(), KILL_WAIT_S)
    try:
        result.healthy = await asyncio.wait_for(health, KILL_WAIT_S)
    except TimeoutError:
        result.errors.append(f"{result.killed} not healthy again within {KILL_WAIT_S:.0f} s of the kill")
    result.restarts = app.restarts - restarts
    await asyncio.sleep(KILL_TAIL_S)
    stop.set()
    await asyncio.gather(*tasks)
    for student in (teacher, *followers):
        await student.close()
    for index in result.homes:
        if index not in result.shown:
            mine = result.killed_errors if result.homes[index] == result.killed else result.errors
            mine.append(f"student {index}: never showed the teacher's head after the kill")
    result.shown = {index: at - killed_at for index, at in result.shown.items()}
    return result


def run_kill(stack: Stack, students: int) -> Recovery:
    warm_up(stack.app_urls)
    result = asyncio.run(kill_class(stack, students))
    killed, others = result.of_killed(), result.of_others()
    print(f"a class of {students} following its teacher through nginx, {len(stack.apps)} app processes; "
          f"{result.killed} (not the teacher's) killed with SIGKILL")  # fmt: skip
    counts = ", ".join(f"{sum(home == address for home in result.homes.values())} on {address}"
                       for address in sorted(set(result.homes.values())))  # fmt: skip
    print(f"  students before the kill: {counts}; the teacher on {result.teacher}")
    back = "never" if result.healthy is None else f"{result.healthy:.2f} s after the kill"
    print(f"  {result.killed} healthy again: {back} (serve restarted it {result.restarts} time(s))")
    print(f"  the teacher's change after the kill published {result.changed:.2f} s after it")
    print(f"  the killed process's {len(killed)} students, seconds from the kill:")
    print(summary_line("closed", [result.closed[index] for index in killed if index in result.closed]))
    print(summary_line("reconnect", list(result.reconnected.values())) + "   (the new session's first run ended)")
    following = [result.shown[index] for index in killed if index in result.shown]
    print(summary_line("following", following) + "   (the first run showing the teacher's head after the kill)")
    within = sum(seconds <= FOLLOWING_AGAIN_S for seconds in following)
    attempts = sorted(result.attempts.values())
    landed = ", ".join(f"{list(result.landed.values()).count(address)} on {address}"
                       for address in sorted(set(result.landed.values())))  # fmt: skip
    print(
        f"  {'':<10} {within} of {len(killed)} following again within {FOLLOWING_AGAIN_S:.0f} s; websockets opened "
        f"{attempts[0] if attempts else 0}-{attempts[-1] if attempts else 0} times each; reconnected to {landed}"
    )
    print(f"  the other processes' {len(others)} students, from the teacher's change to their page showing it:")
    shown = [result.shown[index] - result.changed for index in others if index in result.shown]
    print(summary_line("following", shown))
    print(f"  errors on the other processes: {len(result.errors)}" + "".join(f"\n    {e}" for e in result.errors[:10]))
    print(
        f"  errors of the killed process's students: {len(result.killed_errors)}"
        + "".join(f"\n    {error}" for error in result.killed_errors[:10])
    )
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 10, 30], help="class sizes to play in turn")
    parser.add_argument("--processes", type=int, default=1, help="app processes behind nginx (serve)")
    parser.add_argument("--baseline", type=int, default=0, help="with --processes: first this many on one process")
    parser.add_argument("--kill", type=int, default=0, help="with --processes: SIGKILL one under a class of this many")
    parser.add_argument("--soak", type=int, default=0, help="instead: one session, this many reruns")
    parser.add_argument("--largest", type=int, default=0, help="instead: the largest shape open in this many sessions")
    parser.add_argument("--follow", type=int, default=0, help="instead: a class of this many following its teacher")
    parser.add_argument("--lesson", type=int, default=0, help="instead: a class of this many answering a question")
    args = parser.parse_args(argv)
    if (args.baseline or args.kill) and args.processes < 2:
        parser.error("--baseline and --kill go with --processes 2 or more")
    if args.kill:
        with served(args.processes) as stack:
            run_kill(stack, args.kill)
        return
    if args.processes > 1:
        files = None
        if args.baseline:
            with streamlit_server(ROOT / "app.py") as base_url:
                files = record_page_files(base_url, TEACHER_LINK)
                print(describe_files(files))
                run_classroom(base_url, args.baseline, [base_url], files)
        with served(args.processes) as stack:
            if files is None:
                files = record_page_files(stack.url, TEACHER_LINK)
                print(describe_files(files))
            nginx = next(child for child in stack.children if child.name == "nginx")
            for students in args.students:
                run_classroom(stack.url, students, stack.app_urls, files, proxy_pid=nginx.pid)
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
        files = record_page_files(base_url, TEACHER_LINK)
        print(describe_files(files))
        for students in args.students:
            run_classroom(base_url, students, [base_url], files)


if __name__ == "__main__":
    main()
