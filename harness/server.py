"""Serve the app with `streamlit run` on a free loopback port, the way Streamlit's own e2e suite
starts it, and wait until `/_stcore/health` says `ok`. Stopped on exit, failure included, with its
whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from ui.serve import free_port, healthy, streamlit_command

ROOT = Path(__file__).resolve().parents[1]  # the checkout: app.py, bench/, tests/


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's own process group (it was started in a new session), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def streamlit_server(
    script: Path,
    *,
    cwd: Path = ROOT,
    start_timeout: float = 90.0,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Serve `script` on a free loopback port and yield its base URL; stop it on exit, even on failure.

    The server's output (tracebacks included) goes to `log_path`, or to a temporary file. `env`
    adds to the environment it runs in (REDIS_URL, say).
    """
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w+b") if log_path is not None else tempfile.TemporaryFile() as log:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            streamlit_command(script, port),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        try:
            deadline = time.monotonic() + start_timeout
            while not healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-3000:]
                    state = (
                        f"exited with {process.returncode}" if process.poll() is not None else "never became healthy"
                    )
                    raise RuntimeError(f"`streamlit run {script.name}` {state} within {start_timeout:.0f} s:\n{tail}")
                time.sleep(0.2)
            yield url
        finally:
            _stop(process)
