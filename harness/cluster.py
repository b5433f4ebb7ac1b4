"""The class server of `attention-visualizer serve` (ui/serve.py: Redis, several app processes,
nginx in front), started on a free loopback port for a benchmark or a test, its lines into a log
file. One implementation: what the tests and benchmarks run is what a teacher runs.

    python -m bench.classroom --processes 2        # the classroom bench against such a cluster
    python -m bench.classroom --processes 2 --kill 30   # one app process killed under a class
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ui.serve import RedisOnly, ServeError, Stack, free_port

__all__ = ["ServeError", "Stack", "cluster", "redis_server", "served"]


@contextmanager
def served(processes: int, log_path: Path | None = None) -> Iterator[Stack]:
    """`serve --processes N` on a free loopback port, supervised (a process that dies is restarted);
    yields the running `Stack`: nginx's `url`, and each app process (`apps`: its url, pid, restarts).
    Every process's lines go to `log_path`."""
    with _log(log_path) as out, Stack(processes, host="127.0.0.1", port=free_port(), out=out) as stack:
        stack.supervise_in_background()
        yield stack


@contextmanager
def cluster(processes: int, log_path: Path | None = None) -> Iterator[tuple[str, list[str]]]:
    """`served`, seen from outside: yields (nginx's URL, the app processes' URLs)."""
    with served(processes, log_path) as stack:
        yield stack.url, stack.app_urls


@contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a Unix socket, as `serve` starts it; yields its URL."""
    with _log(None) as out, RedisOnly(out=out) as redis:
        yield redis.redis_url


@contextmanager
def _log(path: Path | None) -> Iterator:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            yield out
    else:
        with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
            yield out
