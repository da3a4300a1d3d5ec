"""The worker's side of a llama.cpp child process: start it, talk to it, notice its crash.

Runs on workers. One long-lived process per model file runs `_llama_child.py`; it loads the
model once and answers one request at a time. When it dies (a segfault in libllama, the OOM
killer), the request it was answering fails with `Crashed` and the next request starts a
fresh process. Its stderr (llama.cpp's messages, grammar dumps) goes to the
`tether.llm.local` logger at DEBUG level, not to the worker's terminal.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("tether.llm.local")

CHILD = str(Path(__file__).with_name("_llama_child.py"))
STOP_GRACE = 2.0  # seconds a child gets to exit after its stdin closes


ILLEGAL_INSTRUCTION = (
    "this llama.cpp build uses CPU instructions this machine refuses (e.g. Intel AMX in a virtual machine): "
    "rebuild it without them, `CFLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' "
    "CXXFLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' pip install --force-reinstall --no-cache-dir "
    "llama-cpp-python` (scripts/test.sh and scripts/demo.sh build it so)")
"""Added to a crash by SIGILL: llama.cpp compiled for this CPU (-march=native) may use instructions
the CPU advertises but a virtual machine does not allow."""


class Crashed(Exception):
    """The process died while answering; the message says how (signal or exit code)."""


class LoadFailed(Exception):
    """The process could not load the model; the message is llama.cpp's reason."""


class Request:
    """One request to a model process; `cancel()` stops it (queued or running)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.cancelled = False


class LlamaProcess:
    """A child process serving one model file, started on first use and after each crash.

    Args:
        settings: `llama_cpp.Llama` keyword arguments (`model_path`, `n_ctx`, ...).
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.starts = 0
        """Processes started so far (1 while the first one lives; +1 per restart)."""
        self.served = 0
        """Requests answered (by all its processes)."""
        self._lock = threading.Lock()  # one request at a time: a llama.cpp context is not thread-safe
        self._proc: subprocess.Popen[str] | None = None
        self._running: Request | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=50)
        self._drain: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The live process's id (None before the first request and after a crash)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def busy(self) -> bool:
        """True while a request is being answered."""
        return self._running is not None

    def ask(self, request: Request, pieces: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Send `request` and wait for the reply (blocking; one request at a time); a streamed
        request's text is handed to `pieces` as it comes.

        Raises:
            Crashed: The process died before replying (it is restarted on the next request).
            LoadFailed: The model could not be loaded.
        """
        with self._lock:
            if request.cancelled:
                raise Crashed("cancelled before it started")
            proc = self._live()
            assert proc.stdin is not None and proc.stdout is not None
            self._running = request
            self._stderr.clear()  # a crash report quotes what this request made llama.cpp say
            try:
                proc.stdin.write(json.dumps(request.payload) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
                while line.startswith('{"delta"'):  # the reply's text while it is written
                    if pieces is not None:
                        pieces(json.loads(line)["delta"])
                    line = proc.stdout.readline()
            except OSError:  # the pipe broke: the process is gone
                line = ""
            finally:
                self._running = None
            if not line:
                raise Crashed(self._death(proc))
            self.served += 1
            return json.loads(line)  # type: ignore[no-any-return]

    def cancel(self, request: Request) -> None:
        """Stop `request`: skipped if still queued, or its process killed if it is running."""
        request.cancelled = True
        proc = self._proc
        if self._running is request and proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()

    def close(self) -> None:
        """Stop the process: close its stdin (it exits when idle), kill it if it does not."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _live(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        return self._proc

    def _start(self) -> subprocess.Popen[str]:
        # -P: the child's folder (tether/llm) must not shadow modules on sys.path
        proc = subprocess.Popen([sys.executable, "-P", CHILD, json.dumps(self.settings)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, encoding="utf-8", errors="replace")
        self.starts += 1
        self._stderr.clear()
        self._drain = threading.Thread(target=self._read_stderr, args=(proc.stderr,), daemon=True,
                                       name=f"llama-stderr-{proc.pid}")
        self._drain.start()
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if not first:
            raise Crashed(f"while loading the model: {self._death(proc)}")
        ready = json.loads(first)
        if "error" in ready:
            proc.wait()
            raise LoadFailed(ready["error"])
        return proc

    def _read_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            line = line.rstrip()
            if line:
                self._stderr.append(line)
                log.debug("llama.cpp: %s", line[:300])

    def _death(self, proc: subprocess.Popen[str]) -> str:
        """How `proc` died, with llama.cpp's last error message if it printed one."""
        try:
            code = proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:  # stdout closed but the process lingers: finish it
            proc.kill()
            code = proc.wait()
        if self._drain is not None:
            self._drain.join(STOP_GRACE)  # its last words may still be in the pipe
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        how = f"signal {_signal_name(-code)}" if code < 0 else f"exit code {code}"
        if code == -signal.SIGILL:
            how += f"; {ILLEGAL_INSTRUCTION}"
        said = [line for line in self._stderr if "error" in line.lower()]
        return f"{how}; it said: {said[-1][:200]}" if said else how


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
