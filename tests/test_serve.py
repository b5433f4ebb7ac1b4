"""`attention-visualizer serve` refuses what it cannot do before it starts anything, and says what to
change: a bad option, a busy port, a missing program. (Starting, stopping and surviving a crash:
tests/e2e/test_serve_e2e.py.)"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ui.serve import ServeError, find_program, main

ROOT = Path(__file__).resolve().parents[1]


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ui.serve ARGS`, as a user types it; what it printed and its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "ui.serve", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--processes", "0"], "--processes must be from 1 to 64, not 0"),
        (["--processes", "1000"], "--processes must be from 1 to 64, not 1000"),
        (["--port", "70000"], "--port must be from 1 to 65535, not 70000"),
        (["--host", "no-such-host.invalid"], "--host no-such-host.invalid is not an address of this machine"),
    ],
)
def test_a_bad_option_is_refused_with_what_to_change(args: list[str], said: str):
    done = serve(*args)
    assert done.returncode != 0
    assert said in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert "pid" not in done.stdout  # nothing was started


def test_an_option_that_is_not_a_number_gets_argparses_message():
    done = serve("--port", "eighty")
    assert done.returncode == 2 and "invalid int value: 'eighty'" in done.stderr


def test_a_busy_port_is_refused_before_anything_starts():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = serve("--host", "127.0.0.1", "--port", str(port))
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in done.stdout and "--port" in done.stdout
    assert "pid" not in done.stdout


def test_a_missing_program_says_what_to_install(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr("ui.serve.SYSTEM_DIRS", ())
    with pytest.raises(ServeError, match=r"nginx is not installed\. Install it: sudo apt-get install nginx"):
        find_program("nginx")
    with pytest.raises(ServeError, match=r"redis-server is not installed.*or name a running Redis with --redis-url"):
        find_program("redis-server")


def test_the_command_names_its_one_subcommand(capsys: pytest.CaptureFixture[str]):
    assert main([]) == 2 and main(["start"]) == 2
    assert "usage: attention-visualizer serve" in capsys.readouterr().err
