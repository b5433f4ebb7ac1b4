"""`attention-visualizer serve`, the console script a teacher runs, with real Chromium: it serves the
page through nginx (its static files from disk, gzipped, cached for a year); an app process killed
mid-class is restarted, and a student whose process it was reconnects and follows the teacher again;
SIGTERM stops everything, leaving no process, socket or file behind. (Options refused before
anything starts: tests/test_serve.py.)"""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import streamlit
from playwright.sync_api import Browser, expect

from harness.chromium import app_context
from harness.page import open_app, view_text, wait_for_app
from harness.runs import runs_of, watch_runs
from tests.e2e.pages import start_class, wait_until
from ui.i18n import texts
from ui.serve import free_port, healthy

COMMAND = Path(sys.executable).parent / "attention-visualizer"  # the console script pip installed
STARTED = re.compile(r"^serve +\| (\w+) pid (\d+)(?: on (\S+))?$")


@dataclass
class Served:
    """The running command: its process, its lines as they come, and what they say it started."""

    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    def started(self) -> dict[str, tuple[int, str | None]]:
        """name -> (pid, URL) of each process, the latest start of each."""
        found = {}
        for line in list(self.lines):
            if match := STARTED.match(line):
                found[match[1]] = (int(match[2]), match[3])
        return found

    def folder(self) -> Path:
        [line] = [line for line in self.lines if "working folder" in line]
        return Path(line.split("working folder ", 1)[1].split(" ", 1)[0])

    def wait_for(self, pattern: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        tail = "\n".join(self.lines[-30:])
        raise AssertionError(f"serve never printed /{pattern}/:\n{tail}")


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    if not COMMAND.is_file():
        pytest.fail(f"{COMMAND} is missing: `pip install -e .` installs the console script", pytrace=False)
    port = free_port()
    command = [str(COMMAND), "serve", "--host", "127.0.0.1", "--port", str(port), "--processes", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    served = Served(process, f"http://127.0.0.1:{port}")
    reader = threading.Thread(target=lambda: served.lines.extend(line.rstrip("\n") for line in process.stdout))
    reader.start()
    try:
        served.wait_for(r"^serve +\| serving ")
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        reader.join(timeout=10)


def test_serve_serves_the_page_and_streamlits_files_from_disk_compressed(served: Served):
    assert healthy(served.url)
    with urllib.request.urlopen(f"{served.url}/") as response:
        page = response.read().decode()
        assert "avi_route=" in response.headers["Set-Cookie"]  # what keeps a browser on one process
    script = re.search(r'src="\.?(/static/js/[^"]+\.js)"', page)[1]
    asked = urllib.request.Request(f"{served.url}{script}", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(asked) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert "immutable" in response.headers["Cache-Control"]
        assert "X-Avi-Upstream" not in response.headers  # nginx itself, not an app process
        packed = response.read()
    on_disk = (Path(streamlit.__file__).parent / "static" / script.lstrip("/")).read_bytes()
    assert gzip.decompress(packed) == on_disk and len(packed) < len(on_disk)


def test_a_killed_app_process_is_restarted_and_its_student_follows_the_teacher_again(served: Served, browser: Browser):
    t = texts("en")
    apps = {name: value for name, value in served.started().items() if name.startswith("app")}
    assert len(apps) == 2
    student_context = app_context(browser, served.url)  # through nginx, as a student's phone comes
    teacher_context = None
    try:
        student = student_context.new_page()
        watch_runs(student)
        answered = student.goto("/")
        victim_url = "http://" + answered.headers["x-avi-upstream"]
        [victim] = [name for name, (_, url) in apps.items() if url == victim_url]
        [other] = [name for name in apps if name != victim]
        # The teacher on the other process (directly: the kill must not take the teacher's page).
        teacher_context = app_context(browser, apps[other][1])
        teacher = teacher_context.new_page()
        open_app(teacher, {"text": "the cat sat", "heads": 4}, step_view=True)
        code = re.search(r"class=(\w+)", start_class(teacher, t))[1]
        student.goto(f"/?class={code}")
        wait_for_app(student, step_view=True)
        expect(student.get_by_role("button", name=t["class_explore"], exact=True)).to_be_visible()

        # The student's browser cannot reach the server for a while (its health checks fail), so that
        # the teacher moves on before it reconnects: its new session starts on the teacher's new head.
        for path in ("**/_stcore/health", "**/_stcore/host-config"):
            student_context.route(path, lambda route: route.abort())
        os.kill(apps[victim][0], signal.SIGKILL)
        served.wait_for(rf"^serve +\| {victim} exited with code -9: restarting it")
        served.wait_for(rf"^serve +\| {victim} pid (?!{apps[victim][0]}\b)\d+ on ")
        heads = teacher.get_by_test_id("step-view").get_by_role("radiogroup", name=t["head"])
        heads.get_by_role("radio", name="3", exact=True).click()
        teacher.wait_for_function("() => new URLSearchParams(location.search).get('head') === '3'")  # published
        # Then it reconnects (Streamlit's client does) through nginx to a live process, and its page,
        # whose link names the class, follows the teacher again.
        student_context.unroute_all()
        expect(student.get_by_test_id("step-view")).to_have_attribute(
            "data-ready", view_text(1, 3, 1, 1), timeout=60_000
        )
        expect(student.get_by_role("button", name=t["class_explore"], exact=True)).to_be_visible()

        # Then the teacher's process dies: the teacher's browser reconnects to it, restarted, and is
        # the teacher again (a cookie of its own; the address bar the projector shows has no secret).
        sockets: list[object] = []
        teacher.on("websocket", lambda socket: sockets.append(socket))
        os.kill(apps[other][0], signal.SIGKILL)
        served.wait_for(rf"^serve +\| {other} exited with code -9: restarting it")
        wait_until(teacher, lambda: sockets, "the teacher's page reconnected", timeout=60)
        ended = runs_of(teacher).ended
        wait_until(teacher, lambda: runs_of(teacher).ended > ended, "a run on the new connection", timeout=60)
        assert "teach=" not in teacher.url
        heads.get_by_role("radio", name="2", exact=True).click()
        teacher.wait_for_function("() => new URLSearchParams(location.search).get('head') === '2'")
        expect(student.get_by_test_id("step-view")).to_have_attribute(
            "data-ready", view_text(1, 2, 1, 1), timeout=30_000
        )  # published: only the teacher's page publishes
        assert served.process.poll() is None
    finally:
        student_context.close()
        if teacher_context is not None:
            teacher_context.close()


def test_sigterm_stops_everything_and_leaves_nothing_behind(served: Served):
    pids = [int(pid) for pid in re.findall(r"^serve +\| \w+ pid (\d+)", "\n".join(served.lines), re.M)]
    assert len(pids) >= 4  # redis, two app processes, nginx (and a restarted one)
    folder = served.folder()
    assert folder.is_dir()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=60) == 0
    served.wait_for(r"^serve +\| stopped$", timeout=5)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not folder.exists()  # the Redis socket, nginx's files and the gzipped copies with it
    assert not healthy(served.url)
