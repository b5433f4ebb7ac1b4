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
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from harness.cluster import cluster
from harness.lesson import PHASES, SENTENCES, SHAPES, TEACHER_LINK, Report, classroom
from harness.server import ROOT, streamlit_server
from harness.student import ScriptRun, Student

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
        due = {fragment: time.perf_counter() + every for fragment, every in student.auto_reruns.items()}
        while not stop.is_set():  # as the browser's timers do: each fragment on its own interval
            fragment = min(due, key=due.get)
            await asyncio.sleep(max(0.0, due[fragment] - time.perf_counter()))
            due[fragment] += student.auto_reruns[fragment]
            try:
                run = await student.auto_rerun(fragment)
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
