"""One student's browser tab without a browser: a session of Streamlit's own websocket protocol,
spoken as the browser speaks it (tests/e2e/test_classroom.py checks that against real Chromium).

A link is a `rerun_script` with its query string; a head change is the step view's report of its
view, a rerun of the step view's fragment; a sentence is a rerun with the sentence's widget state;
a lesson's answer is a rerun of the question's fragment with the answer control's state and the
Send button's trigger; and every message the tab already holds is named in
`cached_message_hashes`, so the server sends a reference instead. A tab whose websocket closes
reconnects as Streamlit's browser does (`Student.reconnect`).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput

from harness.files import get

RUN_TIMEOUT_S = 30.0  # a run longer than this counts as an error
UPSTREAM_HEADER = "X-Avi-Upstream"  # serve's nginx names the app process that answered (ui/serve.py)
# Streamlit 1.67's browser, when its websocket closes (WebsocketConnection, static/js/index.*.js): it
# waits a random delay from a window that doubles per attempt (0.25-0.5 s, 0.5-1 s, 1-2 s, then 2-4 s),
# then pings the server until it answers, and opens the websocket again.
RECONNECT_FIRST_S = (0.25, 0.5)
RECONNECT_MAX_S = 4.0
PING_PATHS = ("/_stcore/health", "/_stcore/host-config")  # both must answer 200 before the websocket
PING_RETRY_S = 0.1  # the first ping's retry; it doubles, jittered down by up to 30 %, to at most 4 s
WEBSOCKET_TIMEOUT_S = 15.0  # the browser's WEBSOCKET_TIMEOUT_MS
STEP_VIEW_KEY = "step_view"  # the step view's element key (ui/step_view.py)
TEXT_KEY = "text"  # the sentence's widget key (ui/sidebar.py)
SEND_KEY = "lesson_send"  # a following student's Send button, in the question's fragment (ui/lessons/panel.py)


def link_query(params: dict[str, object]) -> str:
    return urlencode({key: str(value) for key, value in params.items()}, quote_via=quote)


@dataclass
class ScriptRun:
    """One run of the script, as the client saw it."""

    seconds: float
    messages: list[ForwardMsg]
    status: int | None  # ScriptFinishedStatus; None when the run never finished

    @property
    def exceptions(self) -> list[str]:
        """Each exception the page shows, "Type: message" (students see the type alone: the app's
        `showErrorDetails = "type"` redacts the message)."""
        return [
            f"{message.delta.new_element.exception.type}: {message.delta.new_element.exception.message}"
            for message in self.messages
            if message.WhichOneof("type") == "delta"
            and message.delta.WhichOneof("type") == "new_element"
            and message.delta.new_element.WhichOneof("type") == "exception"
        ]

    def elements(self) -> list[str]:
        """The element types the run drew, in order ("block" for a container)."""
        kinds = []
        for message in self.messages:
            if message.WhichOneof("type") != "delta":
                continue
            delta = message.delta
            if delta.WhichOneof("type") == "new_element":
                kinds.append(delta.new_element.WhichOneof("type"))
            elif delta.WhichOneof("type") == "add_block":
                kinds.append("block")
        return kinds

    def texts(self) -> list[str]:
        """The words the run put on the page, in order: every Markdown (captions too) and alert body,
        which is where a page says a count or a verdict."""
        found = []
        for message in self.messages:
            if message.WhichOneof("type") == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                if element.WhichOneof("type") in ("markdown", "alert"):
                    found.append(getattr(element, element.WhichOneof("type")).body)
        return found

    def figures(self) -> list[dict[str, Any]]:
        """The Plotly figures the run drew, as the browser gets them (the figure's JSON)."""
        return [
            json.loads(message.delta.new_element.plotly_chart.spec)
            for message in self.messages
            if message.WhichOneof("type") == "delta"
            and message.delta.WhichOneof("type") == "new_element"
            and message.delta.new_element.WhichOneof("type") == "plotly_chart"
        ]

    def query_string(self) -> str | None:
        """The link the run set last (`st.query_params`), if it set one."""
        found = None
        for message in self.messages:
            if message.WhichOneof("type") == "page_info_changed":
                found = message.page_info_changed.query_string
        return found


@dataclass
class Student:
    """One browser tab's session: the websocket, and what the browser would remember."""

    websocket: websockets.ClientConnection
    query: str
    cookies: dict[str, str] = field(default_factory=dict)  # the browser's, sent with the websocket
    page_script_hash: str = ""
    cache: dict[str, ForwardMsg] = field(default_factory=dict)  # cacheable messages received, by hash
    widget_ids: dict[str, str] = field(default_factory=dict)  # user key -> widget id
    fragment_of: dict[str, str] = field(default_factory=dict)  # user key -> the fragment that drew it
    widgets: dict[str, Any] = field(default_factory=dict)  # user key -> the widget as last drawn (its options)
    payloads: list[bytes] = field(default_factory=list)  # the step view's payloads received
    auto_reruns: dict[str, float] = field(default_factory=dict)  # fragment -> seconds: what the browser's timers run

    @classmethod
    async def open(
        cls, base_url: str, params: dict[str, object], cookies: Mapping[str, str] | None = None
    ) -> tuple[Student, ScriptRun]:
        """A new tab on the link `params`: connect, and run the script as the browser's first message
        asks. `cookies` are the browser's (a first visit's, `harness.files.visit`): through nginx
        they keep the tab on the app process that served its page."""
        return await cls.connect(base_url, link_query(params), dict(cookies or {}))

    @classmethod
    async def connect(
        cls,
        base_url: str,
        query: str,
        cookies: dict[str, str],
        cache: dict[str, ForwardMsg] | None = None,
        timeout: float = RUN_TIMEOUT_S,
    ) -> tuple[Student, ScriptRun]:
        """A new session on the link `query`: the websocket, then the browser's first rerun, naming
        the messages the tab already holds (`cache`)."""
        ws_url = base_url.replace("http://", "ws://") + "/_stcore/stream"
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())} if cookies else None
        websocket = await websockets.connect(
            ws_url,
            subprotocols=["streamlit"],
            origin=base_url,
            additional_headers=headers,
            max_size=None,
            open_timeout=timeout,
        )
        student = cls(websocket, query, cookies, cache=cache if cache is not None else {})
        run = await student.rerun(BackMsg())
        return student, run

    async def reconnect(self, base_url: str, rng: random.Random) -> tuple[Student, ScriptRun, int]:
        """What Streamlit's browser does once this tab's websocket has closed: wait its backoff, ping
        `PING_PATHS` until both answer, open the websocket; again with the next, longer wait if that
        fails. A session lives in one app process: when that process died, the tab's new websocket
        starts a new session, which runs the tab's link (`query`) as `open` does; the tab keeps the
        messages it holds, as the browser's cache outlives its websocket. Returns the new tab, that
        run, and the attempts it took."""
        attempt = 0
        while True:
            attempt += 1
            high = min(RECONNECT_MAX_S, RECONNECT_FIRST_S[1] * 2 ** (attempt - 1))
            await asyncio.sleep(rng.uniform(RECONNECT_FIRST_S[0] if attempt == 1 else high / 2, high))
            await self._ping(base_url, rng)
            try:
                student, run = await Student.connect(
                    base_url, self.query, self.cookies, self.cache, timeout=WEBSOCKET_TIMEOUT_S
                )
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                continue
            return student, run, attempt

    async def _ping(self, base_url: str, rng: random.Random) -> None:
        """Ask `PING_PATHS` together until both answer 200, as the browser's DoInitPings does."""
        tries = 0
        while True:
            tries += 1
            try:
                answers = await asyncio.gather(*(get(base_url, path, self.cookies) for path in PING_PATHS))
                if all(answer.status == 200 for answer in answers):
                    return
            except (OSError, TimeoutError):
                pass
            wait = min(RECONNECT_MAX_S, PING_RETRY_S * 2 ** (tries - 1))
            await asyncio.sleep(wait if tries == 1 else wait * rng.uniform(0.7, 1.0))

    @property
    def upstream(self) -> str | None:
        """The app process that answered the websocket through nginx ("127.0.0.1:PORT"); None when
        the tab reached an app process directly. nginx lists every process it tried: the last answered."""
        response = self.websocket.response
        named = response.headers.get(UPSTREAM_HEADER) if response is not None else None
        return named.rsplit(",", 1)[-1].strip() if named else None

    async def close(self) -> None:
        await self.websocket.close()

    def _back_message(self, message: BackMsg) -> bytes:
        state = message.rerun_script
        state.query_string = self.query
        state.page_script_hash = self.page_script_hash
        state.cached_message_hashes.extend(sorted(self.cache))
        state.context_info.timezone = "UTC"
        state.context_info.locale = "en-US"
        return message.SerializeToString()

    async def rerun(self, message: BackMsg) -> ScriptRun:
        """Send a rerun request and read every message until the run has finished."""
        start = time.perf_counter()
        await self.websocket.send(self._back_message(message))
        messages: list[ForwardMsg] = []
        status = None
        async with asyncio.timeout(RUN_TIMEOUT_S):
            while status is None:
                frame = await self.websocket.recv()
                if isinstance(frame, str):
                    continue
                forward = ForwardMsg()
                forward.ParseFromString(frame)
                if forward.WhichOneof("type") == "ref_hash":  # a message this tab holds: the browser reuses it
                    forward = self.cache[forward.ref_hash]
                messages.append(forward)
                self._remember(forward)
                # A run that ends early for another (st.rerun) is not the end: the other run follows.
                if forward.WhichOneof("type") == "script_finished" and (
                    forward.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN
                ):
                    status = forward.script_finished
        return ScriptRun(time.perf_counter() - start, messages, status)

    def _remember(self, message: ForwardMsg) -> None:
        kind = message.WhichOneof("type")
        if message.metadata.cacheable and message.hash:
            self.cache[message.hash] = message
        if kind == "auto_rerun":
            self.auto_reruns[message.auto_rerun.fragment_id] = message.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            for fragment in message.stop_auto_rerun.fragment_ids:
                self.auto_reruns.pop(fragment, None)
        elif kind == "new_session":
            self.page_script_hash = message.new_session.page_script_hash
            # A run of the whole page: the browser drops every timer, and the run sets those it still
            # draws. A timer kept for a fragment the run no longer draws would get no answer at all
            # (the server ignores a rerun of a fragment it does not hold).
            if not message.metadata.run.fragment_ids:
                self.auto_reruns.clear()
        elif kind == "page_info_changed":
            self.query = message.page_info_changed.query_string
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            widget = getattr(element, element.WhichOneof("type"))
            widget_id = getattr(widget, "id", "")
            if widget_id.startswith("$$ID-"):
                key = widget_id.split("-", 2)[2]
                self.widget_ids[key] = widget_id
                self.fragment_of[key] = message.delta.fragment_id
                self.widgets[key] = widget
            if element.WhichOneof("type") == "bidi_component":
                self.payloads.append(element.bidi_component.bytes)

    def _widget_state(self, message: BackMsg, key: str) -> Any:
        """`message` carries the state of the widget with user key `key` too (the caller sets its value)."""
        widget = message.rerun_script.widget_states.widgets.add()
        widget.id = self.widget_ids[key]
        return widget

    def _widget_change(self, key: str) -> tuple[BackMsg, Any]:
        """A rerun request carrying the state of the widget with user key `key` (the caller sets its value)."""
        message = BackMsg()
        return message, self._widget_state(message, key)

    async def change_head(self, head: int, layer: int = 0) -> ScriptRun:
        """What the step view sends after a click on a head: its view, in a rerun of its fragment."""
        message, widget = self._widget_change(STEP_VIEW_KEY)
        widget.json_value = json.dumps({"view": {"layer": layer, "head": head, "query": 0, "step": 0}})
        message.rerun_script.fragment_id = self.fragment_of[STEP_VIEW_KEY]
        return await self.rerun(message)

    async def press(self, key: str) -> ScriptRun:
        """A click on the button with user key `key`."""
        message, widget = self._widget_change(key)
        widget.trigger_value = True
        return await self.rerun(message)

    async def answer(self, key: str, value: float, button: str = SEND_KEY) -> ScriptRun:
        """A click on Send after an answer: the browser's widget manager already holds the control's
        value, so the one rerun of the button's fragment carries both, the value and the trigger.

        `value` is what the student clicks or types: for a radio the option's position, sent as
        Streamlit 1.67's browser sends it (`string_value`, the option's label as drawn, which the
        server maps back to the option; not its index); for a number input the number
        (`double_value`, or `int_value` for an integer input). The picks in between, each a rerun of its own in a
        browser, are left out: the answer is what the benchmark times.
        """
        message = BackMsg()
        control = self._widget_state(message, key)
        drawn = self.widgets[key]
        kind = drawn.DESCRIPTOR.name
        if kind == "Radio":
            control.string_value = drawn.options[int(value)]
        elif kind == "NumberInput" and drawn.data_type == NumberInput.INT:
            control.int_value = int(value)
        elif kind == "NumberInput":
            control.double_value = float(value)
        else:
            raise ValueError(f"{key!r} is a {kind}; an answer is a Radio or a NumberInput")
        self._widget_state(message, button).trigger_value = True
        message.rerun_script.fragment_id = self.fragment_of[button]
        return await self.rerun(message)

    async def auto_rerun(self, fragment: str) -> ScriptRun:
        """What the browser's timer sends for a fragment with `run_every` (a class's check-ins)."""
        message = BackMsg()
        message.rerun_script.fragment_id = fragment
        return await self.rerun(message)

    async def type_sentence(self, text: str) -> ScriptRun:
        """What the sidebar's text box sends on Enter: a rerun with the sentence's new value."""
        message, widget = self._widget_change(TEXT_KEY)
        widget.string_value = text
        return await self.rerun(message)
