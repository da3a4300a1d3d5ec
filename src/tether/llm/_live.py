"""A model reply's text streamed out of its step while the model writes it.

Runs on workers, inside a model step attempt. Text is handed to the runtime in pieces (the
engine's heartbeats carry them to `Run.events()` watchers, at most every 0.1 s); the step's
durable result is unchanged. A reply that carries a sensitive value the attempt revealed is
withheld from the stream from that point on, with a note naming the value's label.

Streaming costs the worker CPU: the provider's SDK parses every chunk (about 0.25-0.45 ms each
for an OpenAI-compatible stream, once tether's client builds chunks with pydantic's validator
instead of the SDK's `construct_type`; 0.4-0.6 ms before, under the same load), where a reply not
streamed is parsed once. So a worker process streams at most `TETHER_STREAM_MAX` calls at once
(default 8); its other calls are not streamed, and their watchers get the text when the call
completes.
"""

from __future__ import annotations

import threading

from tether import _runtime, settings
from tether._sensitive import stream_cut

_streaming = 0
_lock = threading.Lock()


def _take_slot() -> bool:
    global _streaming
    with _lock:
        if _streaming >= settings.current().stream_max:
            return False
        _streaming += 1
        return True


def _give_slot() -> None:
    global _streaming
    with _lock:
        _streaming -= 1


class LiveText:
    """The streamed part of one model reply: `add()` each piece, `close()` at the end.

    Used as a context manager around the call: `on` says whether to stream it (inside a step
    attempt, with streaming on and a free streaming slot in this process).
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.text = ""
        self.sent = 0
        self.withheld: str | None = None
        self._rt = _runtime.current()
        self.on = False

    def __enter__(self) -> LiveText:
        self.on = self._rt.streams() and _take_slot()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.on:
            self.on = False
            _give_slot()

    def add(self, piece: str) -> None:
        """Add the next piece of the reply; publish what may leave the zone."""
        if not piece or not self.on:
            return
        self.text += piece
        self._send(final=False)

    def close(self) -> None:
        """The reply is complete: publish what was held back (unless withheld)."""
        if self.on:
            self._send(final=True)

    def _send(self, *, final: bool) -> None:
        if self.withheld is not None:
            return
        upto, label = stream_cut(self.text, final=final)
        if label is not None:
            self.withheld = label
            self._rt.publish("withheld", {"label": label})
            return
        if upto > self.sent:
            self._rt.publish("tokens", {"text": self.text[self.sent:upto], "model": self.model,
                                        "restart": self.sent == 0})
            self.sent = upto
