"""`attention-visualizer serve`: the app for a whole class, in one command.

One Python process runs one script at a time on one core, and serves every static file too: on
its own it keeps thirty students waiting seconds for a first picture. `serve` starts, on this
machine:

- `redis-server` on a Unix socket, without persistence, unless `--redis-url` names one: the
  classes (code, teacher's secret, settings, answers) that every app process shares
  (`REDIS_URL`, ui.classes), so a class survives the crash of any one process;
- `--processes` app processes (`streamlit run app.py`, one per core by default), each on a
  loopback port of its own;
- `nginx` in front, on `--host`:`--port`. It passes the websockets, keeps each browser on one
  app process (a session lives in the process its websocket reached; open-source nginx has no
  `sticky`, so the first response sets a cookie naming a random route and `hash $route
  consistent` keeps that browser's requests on one process; a process that is down is skipped,
  so its browsers reconnect to another), and serves Streamlit's static files itself, from disk,
  gzip-compressed ahead of time and cached by browsers for a year (their names carry a hash of
  their content).

It runs in the foreground, and every line any of them logs is printed with its name in front. It
checks each app process's health every second and restarts one that exits or stops answering
(nginx and redis-server too, if they exit). SIGINT (Ctrl-C) or SIGTERM stops everything and
removes the sockets and files it made. A missing program, a busy port or a bad option is said
before anything starts.

    attention-visualizer serve                      # every interface, port 8501, one process per core
    python -m ui.serve --processes 2 --port 8080    # the same, as a module

`Stack` is the same thing inside Python, which the benchmarks and tests use (harness/cluster.py).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]  # the checkout: app.py and .streamlit/config.toml
APP = ROOT / "app.py"
DEFAULT_PORT = 8501
MAX_PROCESSES = 64
HEALTH_EVERY_S = 1.0  # how often each app process's /_stcore/health is asked
HEALTH_TIMEOUT_S = 2.0
UNHEALTHY_CHECKS = 15  # failed health checks in a row (a process that hangs) before it is restarted
START_TIMEOUT_S = 90.0  # an app process that is not healthy this long after its start is restarted
STOP_TIMEOUT_S = 10.0  # after SIGTERM, this long before SIGKILL
QUICK_EXIT_S = 10.0  # a process that exits this soon after its start is restarted after a pause that grows
COMPRESSED = {".js", ".css", ".svg", ".json", ".map", ".txt", ".html", ".ttf", ".otf", ".eot"}
SYSTEM_DIRS = ("/usr/sbin", "/usr/bin")  # looked in after PATH
INSTALL = {  # what to install, said when a program is missing
    "nginx": "sudo apt-get install nginx (Debian, Ubuntu), brew install nginx (macOS)",
    "redis-server": "sudo apt-get install redis-server (Debian, Ubuntu), brew install redis (macOS); "
    "or name a running Redis with --redis-url",
}

NGINX_CONF = """\
{user}
worker_processes auto;
daemon off;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    include {mime_types};
    default_type application/octet-stream;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 200m;  # an uploaded model (Streamlit's own limit is 200 MB)
    sendfile on;
    tcp_nopush on;

    # What the app processes send (the page, the step view's code) is compressed on the way.
    gzip on;
    gzip_proxied any;
    gzip_min_length 1024;
    gzip_types text/css application/javascript text/javascript application/json image/svg+xml text/plain;

    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
    # A browser's route: its cookie, or on its first request a new random one.
    map $cookie_avi_route $route {{ "" $request_id; default $cookie_avi_route; }}

    upstream app {{
        hash $route consistent;
{servers}
    }}

    server {{
        listen {listen};

        location /static/ {{  # Streamlit's own bundle: from disk, gzipped ahead of time, names hashed
            root {www};
            gzip_static on;
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
        location / {{
            add_header Set-Cookie "avi_route=$route; Path=/; HttpOnly; SameSite=Lax" always;
            add_header X-Avi-Upstream $upstream_addr always;  # which app process answered (the tests ask)
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_next_upstream error timeout;  # a process that is down: the next one
            proxy_connect_timeout 2s;
            proxy_read_timeout 1d;  # a class's websockets stay open for the lesson
            proxy_buffering off;
        }}
    }}
}}
"""


class ServeError(Exception):
    """Why `serve` cannot start, in words that say what to install or change."""


def find_program(name: str) -> str:
    """The path of `name` (Debian puts nginx in /usr/sbin, often outside a user's PATH)."""
    places = (Path(folder) / name for folder in SYSTEM_DIRS)
    found = shutil.which(name) or next((str(place) for place in places if place.is_file()), None)
    if found is None:
        raise ServeError(f"{name} is not installed. Install it: {INSTALL.get(name, name)}.")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    """Refuse a port something already listens on (a second `serve`, another server), before starting."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as nginx binds: a closed socket's TIME_WAIT is no obstacle
        try:
            sock.bind((host, port))
        except PermissionError as error:
            raise ServeError(f"port {port} needs root on this machine: choose one above 1023 with --port.") from error
        except OSError as error:
            raise ServeError(
                f"port {port} on {host} is in use (another server, or a serve already running): "
                f"stop it, or choose another port with --port."
            ) from error


def healthy(url: str, timeout: float = HEALTH_TIMEOUT_S) -> bool:
    """Whether the Streamlit server (or nginx in front of one) at `url` answers its health check with `ok`."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=timeout) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def streamlit_static() -> Path:
    """Streamlit's built front end (index.html, static/js, static/css...), found without importing it."""
    spec = importlib.util.find_spec("streamlit")
    if spec is None or spec.origin is None:
        raise ServeError("Streamlit is not installed in this Python: pip install -e . installs it.")
    return Path(spec.origin).parent / "static"


def precompress(static: Path, www: Path) -> int:
    """Mirror Streamlit's `static/static` into `www/static`: a link to each file, and a `.gz` beside
    each text file (nginx's `gzip_static` sends it to a browser that accepts gzip). Returns the bytes
    saved. Plotly's bundle alone goes from 4.7 MB to 1.4 MB."""
    saved = 0
    for source in (static / "static").rglob("*"):
        if not source.is_file():
            continue
        target = www / "static" / source.relative_to(static / "static")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)
        if source.suffix in COMPRESSED and source.stat().st_size >= 1024:
            data = source.read_bytes()
            packed = gzip.compress(data, compresslevel=9, mtime=0)
            if len(packed) < len(data):
                Path(f"{target}.gz").write_bytes(packed)
                saved += len(data) - len(packed)
    return saved


def streamlit_command(app: Path, port: int) -> list[str]:
    """One app process on a loopback port, as Streamlit's own e2e suite starts one: no browser opened,
    no usage statistics, no file watching (the code does not change under a running server)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip


def display_url(host: str, port: int) -> str:
    """The address to open: a wildcard host is reached on loopback from this machine."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def lan_addresses() -> list[str]:
    """This machine's addresses on its networks, for the students' devices (no packet is sent)."""
    found = []
    for probe in ("10.255.255.255", "192.168.255.255"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((probe, 1))
                address = sock.getsockname()[0]
            except OSError:
                continue
        if not ipaddress.ip_address(address).is_loopback and address not in found:
            found.append(address)
    return found


class Log:
    """Every child's lines, each with its name in front, onto one stream (stdout for `serve`)."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        with self._lock:
            self._out.write(f"{name:<7}| {text.rstrip()}\n")
            self._out.flush()

    def follow(self, name: str, stream: IO[bytes]) -> threading.Thread:
        def pump() -> None:
            with stream:
                for raw in stream:
                    self.line(name, raw.decode(errors="replace"))

        thread = threading.Thread(target=pump, name=f"log-{name}", daemon=True)
        thread.start()
        return thread


@dataclass
class Child:
    """One process `serve` keeps running: started in a session of its own (a Ctrl-C in the terminal
    reaches `serve`, which stops its children in order), its output into the log, restarted when
    it exits."""

    name: str
    command: list[str]
    log: Log
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    url: str | None = None  # an app process's address, whose health is checked
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_exits: int = 0  # exits soon after a start, in a row: the pause before the next start doubles
    failed_checks: int = 0
    ever_healthy: bool = False
    restarts: int = 0
    _pump: threading.Thread | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started = time.monotonic()
        self.failed_checks, self.ever_healthy = 0, False
        self._pump = self.log.follow(self.name, self.process.stdout)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def exited(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        """SIGTERM its whole process group, SIGKILL after `STOP_TIMEOUT_S`, and wait for it."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=STOP_TIMEOUT_S)
            except ProcessLookupError:
                pass  # it ended on its own meanwhile
            except subprocess.TimeoutExpired:
                self.log.line("serve", f"{self.name} did not stop within {STOP_TIMEOUT_S:.0f} s: killed")
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if self._pump is not None:
            self._pump.join(timeout=2)


class Stack:
    """Redis, the app processes and nginx (see the module's docstring), started together and stopped
    together. `start` raises `ServeError` with nothing left running when any of them cannot start;
    `supervise` keeps them running until `stop`."""

    def __init__(
        self,
        processes: int,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        redis_url: str | None = None,
        out: IO[str] | None = None,
        app: Path = APP,
    ) -> None:
        if not 1 <= processes <= MAX_PROCESSES:
            raise ServeError(f"--processes must be from 1 to {MAX_PROCESSES}, not {processes}.")
        if not 1 <= port <= 65535:
            raise ServeError(f"--port must be from 1 to 65535, not {port}.")
        self.processes, self.host, self.port, self.app = processes, host, port, app
        self.redis_url = redis_url
        self.log = Log(out if out is not None else sys.stdout)
        self.children: list[Child] = []
        self.apps: list[Child] = []
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return display_url(self.host, self.port)

    @property
    def app_urls(self) -> list[str]:
        return [child.url for child in self.apps if child.url]

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        nginx = find_program("nginx")
        redis = None if self.redis_url else find_program("redis-server")
        if importlib.util.find_spec("redis") is None:
            raise ServeError('the app processes need the redis package to share classes: pip install -e ".[redis]".')
        if not self.app.is_file():
            raise ServeError(f"{self.app} is missing: serve runs from a checkout of the project (pip install -e .).")
        try:
            socket.getaddrinfo(self.host, self.port)
        except socket.gaierror as error:
            raise ServeError(f"--host {self.host} is not an address of this machine ({error}).") from error
        check_port_free(self.host, self.port)
        self._folder = tempfile.TemporaryDirectory(prefix="avi-serve-")
        folder = Path(self._folder.name)
        self.log.line("serve", f"working folder {folder} (its sockets and files, removed on stop)")
        try:
            if redis is not None:
                self.redis_url = self._start_redis(redis, folder / "redis.sock")
            for index in range(1, self.processes + 1):
                self.apps.append(self._add(self._app_child(index, free_port())))
            for child in self.apps:
                self._wait(lambda child=child: healthy(child.url), child, f"app process {child.name}")
                child.ever_healthy = True
            saved = precompress(streamlit_static(), folder / "www")
            self.log.line("serve", f"Streamlit's static files gzipped ahead of time: {saved / 2**20:.1f} MB saved")
            conf = folder / "nginx.conf"
            conf.write_text(self._nginx_conf(folder))
            self._add(Child("nginx", [nginx, "-c", str(conf), "-p", str(folder)], self.log))
            self._wait(lambda: healthy(display_url(self.host, self.port)), self.children[-1], "nginx")
        except BaseException:
            self.stop()
            raise

    def _start_redis(self, program: str, sock: Path) -> str:
        """redis-server on a Unix socket only this user may open, without persistence: a class is a
        lesson's worth of state. Returns its URL."""
        command = [program, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
                   "--save", "", "--appendonly", "no"]  # fmt: skip
        child = self._add(Child("redis", command, self.log))
        self._wait(sock.exists, child, "redis-server")
        return f"unix://{sock}"

    def _app_child(self, index: int, port: int) -> Child:
        command = streamlit_command(self.app, port)
        env = {"REDIS_URL": self.redis_url or "", "PYTHONUNBUFFERED": "1"}
        return Child(f"app{index}", command, self.log, env=env, cwd=self.app.parent, url=f"http://127.0.0.1:{port}")

    def _add(self, child: Child) -> Child:
        self.children.append(child)
        child.start()
        self.log.line("serve", f"{child.name} pid {child.pid}" + (f" on {child.url}" if child.url else ""))
        return child

    def _wait(self, ready, child: Child, what: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            code = child.exited()
            if code is not None:
                raise ServeError(f"{what} exited with code {code} as it started: its lines above say why.")
            if time.monotonic() > deadline:
                raise ServeError(f"{what} did not start within {timeout:.0f} s: its lines above say why.")
            time.sleep(0.1)

    def _nginx_conf(self, folder: Path) -> str:
        listen = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        servers = "\n".join(f"        server {child.url.removeprefix('http://')};" for child in self.apps)
        return NGINX_CONF.format(
            # Started as root, nginx would run its workers as `nobody`, who may not read the static
            # files in the checkout's virtualenv; they run as whoever started serve, as the apps do.
            user="user root;" if os.geteuid() == 0 else "",
            dir=folder,
            listen=listen,
            servers=servers,
            www=folder / "www",
            mime_types="/etc/nginx/mime.types" if Path("/etc/nginx/mime.types").is_file() else "mime.types",
        )

    def check(self) -> list[str]:
        """One round of supervision: restart what has exited, and an app process that stopped
        answering. Returns what it did, for the log and the tests."""
        done = []
        now = time.monotonic()
        for child in self.children:
            if self._stopping.is_set():
                break
            code = child.exited()
            if code is None and child.url is not None:
                if healthy(child.url):
                    child.failed_checks, child.ever_healthy = 0, True
                    child.quick_exits = 0 if now - child.started > QUICK_EXIT_S else child.quick_exits
                    continue
                child.failed_checks += 1
                hung = child.ever_healthy and child.failed_checks >= UNHEALTHY_CHECKS
                late = not child.ever_healthy and now - child.started > START_TIMEOUT_S
                if not (hung or late):
                    continue
                self.log.line("serve", f"{child.name} stopped answering its health check: restarting it")
                child.stop()
            elif code is None:
                continue
            else:
                self.log.line("serve", f"{child.name} exited with code {code}: restarting it")
            if now - child.started < QUICK_EXIT_S:
                child.quick_exits += 1
                pause = min(30.0, 2.0 ** (child.quick_exits - 1))
                self.log.line("serve", f"{child.name} exited soon after its start: waiting {pause:.0f} s first")
                if self._stopping.wait(pause):
                    break
            child.restarts += 1
            child.start()
            self.log.line("serve", f"{child.name} pid {child.pid}" + (f" on {child.url}" if child.url else ""))
            done.append(child.name)
        return done

    def supervise(self) -> None:
        """Check every `HEALTH_EVERY_S` until `stop`."""
        while not self._stopping.wait(HEALTH_EVERY_S):
            self.check()

    def supervise_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.supervise, name="serve-supervisor", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """nginx first (no new requests), then the app processes, then Redis; then the folder, its
        sockets and files with it."""
        self._stopping.set()
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


class RedisOnly(Stack):
    """Just the redis-server `Stack` starts, for the tests of the class store: `redis_url` once started."""

    def __init__(self, out: IO[str] | None = None) -> None:
        super().__init__(1, out=out)

    def start(self) -> None:
        program = find_program("redis-server")
        self._folder = tempfile.TemporaryDirectory(prefix="avi-redis-")
        try:
            self.redis_url = self._start_redis(program, Path(self._folder.name) / "redis.sock")
        except BaseException:
            self.stop()
            raise


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops everything as Ctrl-C does


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attention-visualizer serve",
        description="Serve the app for a class: several app processes behind nginx, sharing classes in Redis.",
    )
    parser.add_argument("--host", default="0.0.0.0", help="the address to listen on (default: every interface)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the port (default: {DEFAULT_PORT})")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="app processes (default: one per core)"
    )
    parser.add_argument("--redis-url", help="a running Redis to keep the classes in (default: start redis-server)")
    return parser


def serve(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    log = Log(sys.stdout)
    try:
        stack = Stack(args.processes, host=args.host, port=args.port, redis_url=args.redis_url)
    except ServeError as error:
        log.line("serve", f"cannot serve: {error}")
        return 2
    try:
        stack.start()
        addresses = [display_url(args.host, args.port)]
        if args.host in ("0.0.0.0", "::"):
            addresses += [display_url(address, args.port) for address in lan_addresses()]
        log.line("serve", f"serving {' and '.join(addresses)} with {args.processes} app processes; Ctrl-C stops")
        stack.supervise()
    except ServeError as error:
        log.line("serve", f"cannot serve: {error}")
        return 1
    except KeyboardInterrupt:
        log.line("serve", "stopping")
    finally:
        stack.stop()
    log.line("serve", "stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `attention-visualizer` command; its one subcommand is `serve`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "serve":
        print("usage: attention-visualizer serve [--host HOST] [--port PORT] [--processes N] [--redis-url URL]",
              file=sys.stderr)  # fmt: skip
        return 2
    return serve(args[1:])


if __name__ == "__main__":
    sys.exit(serve())
