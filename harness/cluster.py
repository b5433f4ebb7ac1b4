"""Several app processes behind nginx, sharing their classes through Redis: a classroom server
that uses more than one core (one Python process uses one).

What runs (each on loopback, stopped together):

- `redis-server` on a Unix socket, no persistence: the classes (`REDIS_URL`, ui.classes);
- N × `streamlit run app.py`, each with `REDIS_URL` set;
- `nginx` in front. It proxies the websocket (`Upgrade`), serves Streamlit's static files
  itself (a first visit fetches ~110 of them, 10 MB; nginx sends them from disk without
  touching Python), and keeps each browser on one app process: a session lives in the
  process its websocket reached, and a reconnect or a file upload must reach the same one.
  Open-source nginx has no `sticky` directive, so the first response sets a cookie naming a
  random route and `hash $route consistent` keeps every later request of that browser on the
  same process. Clients without cookies (the load client) are spread per connection.

    python -m harness.cluster --processes 2        # serve until Ctrl-C or SIGTERM; prints the URL
    python -m bench.classroom --processes 2        # the classroom bench against such a cluster

Needs Debian's `nginx` and `redis-server` (`bash .ci/setup --test` installs them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import streamlit

from harness.server import ROOT, free_port, healthy, streamlit_server

STATIC = Path(streamlit.__file__).parent / "static"

NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    include {mime_types};
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 200m;  # an uploaded model (Streamlit's own limit is 200 MB)

    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
    # A browser's route: its cookie, or on its first request a new random one.
    map $cookie_avi_route $route {{ "" $request_id; default $cookie_avi_route; }}

    upstream app {{
        hash $route consistent;
{servers}
    }}

    server {{
        listen 127.0.0.1:{port};
        add_header Set-Cookie "avi_route=$route; Path=/; HttpOnly; SameSite=Lax" always;

        location /static/ {{  # Streamlit's own bundle, straight from disk
            alias {static}/static/;
            expires 1h;
        }}
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 1d;  # a class's websockets stay open for the lesson
            proxy_buffering off;
        }}
    }}
}}
"""


def require(program: str) -> str:
    path = shutil.which(program) or (f"/usr/sbin/{program}" if Path(f"/usr/sbin/{program}").exists() else None)
    if path is None:
        raise FileNotFoundError(f"{program} is not installed: `bash .ci/setup --test` installs it (Debian's package)")
    return path


def _wait_for(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.1)


@contextmanager
def _process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A private `redis-server` on a Unix socket in `folder`; yields its URL."""
    socket = folder / "redis.sock"
    command = [require("redis-server"), "--port", "0", "--unixsocket", str(socket), "--save", "", "--appendonly", "no"]
    with _process(command, folder / "redis.log") as process:
        _wait_for(lambda: socket.exists() or process.poll() is not None, "redis-server")
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(folder / 'redis.log').read_text()[-2000:]}")
        yield f"unix://{socket}"


@contextmanager
def nginx(folder: Path, upstreams: list[str]) -> Iterator[str]:
    """nginx on a free loopback port in front of `upstreams` (base URLs); yields its URL."""
    port = free_port()
    servers = "\n".join(f"        server {url.removeprefix('http://')};" for url in upstreams)
    conf = folder / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            # Started as root, nginx would run its workers as `nobody`, who may not read the
            # checkout's static files; they run as whoever started it, like the app processes.
            user="user root;" if os.geteuid() == 0 else "",
            dir=folder,
            port=port,
            servers=servers,
            static=STATIC,
            mime_types="/etc/nginx/mime.types",
        )
    )
    url = f"http://127.0.0.1:{port}"
    with _process([require("nginx"), "-c", str(conf), "-p", str(folder)], folder / "nginx.log") as process:
        _wait_for(lambda: healthy(url) or process.poll() is not None, "nginx")
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(folder / 'nginx-error.log').read_text()[-2000:]}")
        yield url


@contextmanager
def cluster(processes: int) -> Iterator[tuple[str, list[str]]]:
    """Redis, `processes` app processes and nginx; yields (nginx's URL, the app processes' URLs)."""
    with tempfile.TemporaryDirectory(prefix="avi-cluster-") as name, ExitStack() as stack:
        folder = Path(name)
        redis_url = stack.enter_context(redis_server(folder))
        apps = [
            stack.enter_context(
                streamlit_server(ROOT / "app.py", env={"REDIS_URL": redis_url}, log_path=folder / f"app{i}.log")
            )
            for i in range(processes)
        ]
        yield stack.enter_context(nginx(folder, apps)), apps


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the children as Ctrl-C does: they run in sessions of their own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    with suppress(KeyboardInterrupt), cluster(args.processes) as (url, apps):
        print(f"serving {url} (app processes: {', '.join(apps)}); Ctrl-C or SIGTERM stops", flush=True)
        signal.pause()


if __name__ == "__main__":
    main()
