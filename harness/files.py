"""A student's first visit to the page, without a browser: the files Chromium fetched before it
opened the websocket, recorded once in Chromium (`record_page_files`), then fetched as Chromium
fetches them on a first visit (`visit`): the document, then the rest in Chromium's order over six
keep-alive HTTP/1.1 connections (Chromium's limit per host), gzip accepted, every byte read, the
cookies the responses set kept for the websocket (nginx's `avi_route` keeps a browser on one app
process). bench/classroom.py times a visit as the lesson's "files" phase.

The HTTP runs on asyncio's streams: the students' visits share one event loop with their websockets,
as the bench's clock does.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

from harness.chromium import CHROMIUM_ARGS, INSTALL_HINT, app_context, find_chromium

CONNECTIONS = 6  # Chromium's connections per host over HTTP/1.1
ACCEPT_ENCODING = "gzip"  # what nginx's gzip_static and Streamlit's own middleware answer to
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) attention-visualizer-classroom"
VISIT_TIMEOUT_S = 30.0  # a first visit longer than this is an error, as a run is (harness.student)
REQUEST_TIMEOUT_S = 15.0  # Streamlit's browser gives up a health ping after this (its PING_TIMEOUT_MS)
# Left out of what Chromium fetched: the websocket (the lesson opens it), and what the page's first run
# made (`/media/`: a session's own files, fetched once the run has sent them, after the websocket).
LEFT_OUT = ("/_stcore/stream", "/media/")


@dataclass(frozen=True)
class PageFiles:
    """What a first visit fetches: the document, then every other file, in the order Chromium asked."""

    paths: tuple[str, ...]  # path and query, relative to the server: the document first
    decoded_bytes: int = 0  # their bodies as Chromium decoded them (uncompressed)


@dataclass
class Response:
    status: int
    body: bytes
    cookies: dict[str, str]  # what its Set-Cookie headers set


@dataclass
class Visit:
    """One first visit: first request to last byte, what came over the wire, and what went wrong."""

    seconds: float = 0.0
    wire_bytes: int = 0  # the bodies as sent (gzip where the server compressed)
    cookies: dict[str, str] = field(default_factory=dict)  # the browser's cookies afterwards
    errors: list[str] = field(default_factory=list)  # a response other than 200


def record_page_files(base_url: str, params: Mapping[str, object]) -> PageFiles:
    """Open the link `params` in headless Chromium, a first visit with an empty cache, and keep every
    same-origin GET it made, in order, except `LEFT_OUT`. Playwright's sync API: call it outside an
    event loop."""
    from playwright.sync_api import sync_playwright

    from harness.page import open_app

    origin = urlsplit(base_url).netloc
    with sync_playwright() as playwright:
        executable = find_chromium(playwright)
        if executable is None:
            raise RuntimeError(f"no Chromium to record the page's files with: {INSTALL_HINT}")
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = app_context(browser, base_url).new_page()
            requests = []
            page.on("request", lambda request: requests.append(request))
            open_app(page, params, step_view=True)
            page.wait_for_load_state("networkidle")
            paths, decoded = [], 0
            for request in requests:
                url = urlsplit(request.url)
                path = url.path + (f"?{url.query}" if url.query else "")
                if request.method != "GET" or url.scheme != "http" or url.netloc != origin:
                    continue  # blob: URLs and the like
                if path.startswith(LEFT_OUT) or path in paths:
                    continue
                response = request.response()
                if response is None or response.status != 200:
                    raise RuntimeError(f"Chromium's first visit got {response and response.status} for {path}")
                paths.append(path)
                decoded += len(response.body())
        finally:
            browser.close()
    return PageFiles(tuple(paths), decoded)


def document_path(params: Mapping[str, object]) -> str:
    """The document's path for the link `params`, as the browser asks for it."""
    return "/?" + urlencode({key: str(value) for key, value in params.items()}, quote_via=quote)


class Connection:
    """One keep-alive HTTP/1.1 connection, as a browser holds one: requests go one after another.
    It reads just what nginx and Streamlit send (a length, chunks, or up to the close): with h11,
    a general parser, the load client spent 30 ms of CPU a visit here, 7 ms with this, on the two
    cores the servers share."""

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        self.host, self.port, self.netloc = url.hostname or "127.0.0.1", url.port or 80, url.netloc
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, cookies: Mapping[str, str]) -> Response:
        """GET `path` with the browser's `cookies`, and read the whole body."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.netloc}", f"User-Agent: {USER_AGENT}", "Accept: */*",
                 f"Accept-Encoding: {ACCEPT_ENCODING}"]  # fmt: skip
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{name}={value}" for name, value in cookies.items()))
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            await self._writer.drain()
            status_line, *header_lines = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            headers, set_cookies = {}, {}
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.lower() == "set-cookie":
                    cookie, _, cookie_value = value.split(";", 1)[0].partition("=")
                    set_cookies[cookie.strip()] = cookie_value.strip()
                elif name:
                    headers[name.lower()] = value.strip()
            closes = headers.get("connection", "").lower() == "close"
            if status in (204, 304):
                body = b""
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                body = await self._chunked()
            elif "content-length" in headers:
                body = await self._reader.readexactly(int(headers["content-length"]))
            else:
                body, closes = await self._reader.read(), True
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as error:
            await self.close()
            raise ConnectionError(f"GET {path}: {error!r}") from error
        if closes:
            await self.close()  # the server will not keep it: the next request opens another
        return Response(status, body, set_cookies)

    async def _chunked(self) -> bytes:
        chunks = []
        while size := int((await self._reader.readuntil(b"\r\n")).split(b";", 1)[0], 16):
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
        while await self._reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
            pass
        return b"".join(chunks)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with suppress(OSError):  # already reset by the server
                await self._writer.wait_closed()
        self._reader, self._writer = None, None


async def get(base_url: str, path: str, cookies: Mapping[str, str]) -> Response:
    """One GET on a connection of its own, bounded by `REQUEST_TIMEOUT_S` (a browser's health ping)."""
    connection = Connection(base_url)
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            return await connection.get(path, cookies)
    finally:
        await connection.close()


async def visit(base_url: str, files: PageFiles, connections: int = CONNECTIONS) -> Visit:
    """A first visit: the document, then every other file over `connections` connections, each
    taking the next file Chromium asked for as soon as it is free. Times from the first request to
    the last byte; a response other than 200 is an error. Raises `TimeoutError` past
    `VISIT_TIMEOUT_S`, `OSError` when the server cannot be reached."""
    result = Visit()
    pool = [Connection(base_url) for _ in range(connections)]

    def count(path: str, response: Response) -> None:
        result.wire_bytes += len(response.body)
        result.cookies.update(response.cookies)
        if response.status != 200:
            result.errors.append(f"GET {path}: HTTP {response.status}")

    async def fetch(connection: Connection, waiting: deque[str]) -> None:
        while waiting:
            path = waiting.popleft()
            count(path, await connection.get(path, result.cookies))

    start = time.perf_counter()
    try:
        async with asyncio.timeout(VISIT_TIMEOUT_S):
            document, *rest = files.paths
            count(document, await pool[0].get(document, result.cookies))
            waiting = deque(rest)
            await asyncio.gather(*(fetch(connection, waiting) for connection in pool))
    finally:
        result.seconds = time.perf_counter() - start
        await asyncio.gather(*(connection.close() for connection in pool))
    return result
