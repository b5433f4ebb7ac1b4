"""What one page's websocket carries, read with Streamlit's own protobuf classes: the reruns the
browser asked for and the runs the server reported as ended. `harness.page` waits on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

if TYPE_CHECKING:
    from playwright.sync_api import Page, WebSocket


class ScriptRuns:
    """What one page's websocket carried: the reruns the browser asked for and the runs the server
    reported as ended (a `script_finished` ForwardMsg, read with Streamlit's own protobuf classes).

    The wire, not the DOM: `stApp`'s `data-test-script-state` can skip "running" altogether when
    the browser is busy drawing and React batches a short run's start and end into one render.
    """

    def __init__(self) -> None:
        self.requested = 0
        self.ended = 0
        self.frames = 0  # binary frames the page sent, whatever they were (heartbeats too)
        self.reruns: list[tuple[int, str]] = []  # per rerun asked for: (its frame's index, its fragment's id)
        self.requested_at_last_end = 0  # how many reruns had been asked for when the last run ended
        self.last = time.monotonic()  # when the last rerun was asked for or the last message came in

    @property
    def fragments(self) -> list[str]:
        """Per rerun asked for: its fragment's id, "" for the whole page."""
        return [fragment for _, fragment in self.reruns]

    def watch(self, websocket: WebSocket) -> None:
        websocket.on("framesent", self._sent)
        websocket.on("framereceived", self._received)

    def _sent(self, payload: bytes | str) -> None:
        if isinstance(payload, bytes):
            message = BackMsg()
            message.ParseFromString(payload)
            if message.WhichOneof("type") == "rerun_script":
                self.requested += 1
                self.reruns.append((self.frames, message.rerun_script.fragment_id))
                self.last = time.monotonic()
            self.frames += 1

    def _received(self, payload: bytes | str) -> None:
        if isinstance(payload, bytes):
            message = ForwardMsg()
            message.ParseFromString(payload)
            self.last = time.monotonic()
            # A run stopped early for a newer one is not the run a test waits for.
            if message.WhichOneof("type") == "script_finished" and (
                message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN
            ):
                self.ended += 1
                self.requested_at_last_end = self.requested


_RUNS: WeakKeyDictionary[Page, ScriptRuns] = WeakKeyDictionary()

# The page's own clock for `no_rerun`: when it sent each binary websocket frame (in the order the
# watcher sees them) and when each input event (a key, a pointer press or move, a select's change)
# came, with its type.
_PAGE_CLOCK_JS = """
(() => {
  window.__e2eSends = [];
  window.__e2eInputs = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data !== "string") window.__e2eSends.push(performance.now());
    return send.call(this, data);
  };
  for (const type of ["pointerdown", "pointermove", "keydown", "input", "change"]) {
    window.addEventListener(type, () => window.__e2eInputs.push([type, performance.now()]), true);
  }
})();
"""


def watch_runs(page: Page) -> ScriptRuns:
    """Start counting `page`'s script runs; call it before the page opens the app's websocket."""
    if page not in _RUNS:
        _RUNS[page] = ScriptRuns()
        page.on("websocket", _RUNS[page].watch)
        page.add_init_script(_PAGE_CLOCK_JS)
    return _RUNS[page]


@dataclass(frozen=True)
class RunMark:
    """How many runs a page had asked for and seen end at one moment."""

    requested: int
    ended: int


def runs_of(page: Page) -> ScriptRuns:
    if page not in _RUNS:
        raise RuntimeError("open the page with open_app() first: it watches the runs")
    return _RUNS[page]
