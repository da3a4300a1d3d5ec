"""Replay before deploy: run recorded histories against the current workflow code, offline.

Runs in CI or on a developer's machine (no worker, no effects: steps are not executed, their
recorded results are fed back). Uses Temporal's own replayer, so "compatible" means exactly
what a worker deploying this code would find.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter, DefaultFailureConverter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tether.engine.app import App
from tether.engine.client import Client, _quote
from tether.engine.codec import build_codec, keyring_from_env
from tether.engine.converter import data_converter
from tether.engine.sandbox import sandbox_runner
from tether.errors import RunNotFound, TetherError, UsageError

PATCH_HINT = ("keep old runs on the old path with `if tether.patched(\"my-change\"): <new code> else: "
              "<old code>`, or let them finish before deploying")


@dataclass(frozen=True)
class ReplayOutcome:
    """How one run's history replayed against the current code."""

    run_id: str
    workflow: str
    compatible: bool
    diverged_at: str | None = None  # "step 1 'load'": the first recorded step the code no longer schedules there
    reason: str | None = None  # the replayer's own words

    def line(self) -> str:
        """One line for the terminal: `ok    RUN (workflow)` or `FAIL  RUN (workflow) diverges at …: why`."""
        if self.compatible:
            return f"ok    {self.run_id} ({self.workflow})"
        where = f" at {self.diverged_at}" if self.diverged_at else ""
        return f"FAIL  {self.run_id} ({self.workflow}) diverges{where}: {self.reason}"


@dataclass
class ReplayReport:
    """The outcome of replaying some histories: compatible when every one replayed."""

    outcomes: list[ReplayOutcome] = field(default_factory=list)

    @property
    def compatible(self) -> bool:
        """True when every history replayed against the current code."""
        return all(o.compatible for o in self.outcomes)

    @property
    def incompatible(self) -> list[ReplayOutcome]:
        """The runs whose history the current code cannot continue."""
        return [o for o in self.outcomes if not o.compatible]

    def summary(self) -> str:
        """One line: how many replayed, and what to do about the rest."""
        bad = self.incompatible
        if not bad:
            return f"{len(self.outcomes)} run(s) replay with the current code: safe to deploy"
        names = ", ".join(o.run_id for o in bad)
        return (f"{len(bad)} of {len(self.outcomes)} run(s) cannot continue with the current code ({names}); "
                + PATCH_HINT)


class ReplayIncompatible(TetherError):
    """Recorded runs cannot continue with the current workflow code (raised by `tether.testing.replay`)."""

    def __init__(self, report: ReplayReport) -> None:
        lines = [o.line() for o in report.incompatible]
        super().__init__(f"{report.summary()}: " + "; ".join(lines))
        self.report = report


async def replay(app: App, histories: Sequence[WorkflowHistory], *,
                 converter: DataConverter | None = None) -> ReplayReport:
    """Replay `histories` against the workflows `app` defines now.

    Args:
        app: The loaded app (`tether.engine.app.load_app`).
        histories: Recorded runs (`fetch_histories`, `read_history_file`).
        converter: Decodes payloads (default: this process's keys, as workers find them).
    """
    replayer = Replayer(
        workflows=[wf.defn for wf in app.workflows.values()] + list(app.temporal_workflows),
        workflow_runner=sandbox_runner(m for wf in app.workflows.values() for m in wf.passthrough),
        data_converter=_readable_failures(converter or _fixture_converter()),
        runtime=_quiet_runtime())
    async def each() -> AsyncIterator[WorkflowHistory]:
        for h in histories:
            yield h

    report = ReplayReport()
    results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
    for history in histories:
        report.outcomes.append(_outcome(history, results.replay_failures.get(history.run_id)))
    return report


def _outcome(history: WorkflowHistory, failure: Exception | None) -> ReplayOutcome:
    workflow = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
    if failure is None:
        return ReplayOutcome(history.workflow_id, workflow, True)
    reason = _reason(failure)
    where = _divergence(history, failure) if isinstance(failure, NondeterminismError) else None
    return ReplayOutcome(history.workflow_id, workflow, False, where, reason)


_runtime: Runtime | None = None


def _quiet_runtime() -> Runtime:
    """An SDK core runtime that keeps its warning about each diverging run off the terminal
    (the report says it in one line). Not the workers' log-forwarding runtime: a forwarded
    line late in a script's life holds up interpreter exit."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
            filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
    return _runtime


def _fixture_converter() -> DataConverter:
    # replay runs no step and sends nothing anywhere: a fixture recorded without keys (CI) replays
    # on a machine that holds keys, and encrypted ones decrypt with them
    return data_converter(build_codec(keyring_from_env(), require_encryption=False))


def _readable_failures(converter: DataConverter) -> DataConverter:
    # failures replay raises stay in this process: keep their messages readable (workers encrypt
    # them for the server); payloads still decode with the converter's keys
    return dataclasses.replace(converter, failure_converter_class=DefaultFailureConverter)


_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')
_CODE = re.compile(r"^\[TMPRL\d+\]\s*")


def _reason(failure: Exception) -> str:
    """The replayer's reason in one line: the core's message without its wrapping."""
    text = str(failure)
    found = _CORE_MESSAGE.search(text)
    line = found.group(1) if found else (text.splitlines() or [type(failure).__name__])[0]
    return _CODE.sub("", line)


def _divergence(history: WorkflowHistory, failure: NondeterminismError) -> str | None:
    """The first recorded step the current code no longer schedules, counted from 1.

    Temporal's error says which recorded command it expected; the step's position in the
    run makes it findable in `tether show`.
    """
    text = str(failure)
    expected = _EXPECTED.search(text)  # the core names the recorded step it expected there
    scheduled = (e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    for position, event in enumerate(scheduled, 1):
        name = event.activity_task_scheduled_event_attributes.activity_type.name
        if (expected.group(1) == name) if expected else f"'{name}'" in text:
            return f"step {position} '{name}'"  # a step name used twice: its first use
    return None


_EXPECTED = re.compile(r"scheduled event '([^']+)'")


def read_history_file(path: str | Path) -> WorkflowHistory:
    """A history exported with `tether history export` (or Temporal's own JSON export).

    Raises:
        UsageError: The file is missing or is not a workflow history.
    """
    p = Path(path)
    try:
        text = p.read_text()
        data = json.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read history file {str(p)!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{p} is not JSON ({exc.msg}); make one with `tether history export RUN_ID > {p.name}`") \
            from None
    if not isinstance(data, dict) or not data.get("events"):
        raise UsageError(f"{p} holds no workflow history events; make one with "
                         f"`tether history export RUN_ID > {p.name}`")
    run_id = str(data.get("tether_run_id") or p.stem)
    return WorkflowHistory.from_json(run_id, {"events": data["events"]})


async def export_history(client: Client, run_id: str) -> str:
    """The history of run `run_id` as JSON for a replay fixture (payloads stay encrypted).

    Raises:
        RunNotFound: No run has this id.
    """
    history = await _fetch(client, run_id)
    data = json.loads(history.to_json())
    return json.dumps({"tether_run_id": run_id, **data}, indent=1)


async def _fetch(client: Client, run_id: str) -> WorkflowHistory:
    try:
        return await client.temporal.get_workflow_handle(run_id).fetch_history()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise RunNotFound(run_id) from None
        raise


async def fetch_histories(client: Client, app: App, *, since: timedelta | None = None,
                          run_id: str | None = None, limit: int = 200) -> list[WorkflowHistory]:
    """Histories to replay: one run, or the app's runs (closed and running) started within `since`.

    Raises:
        RunNotFound: `run_id` names no run.
        UsageError: The app defines no workflows.
    """
    if run_id is not None:
        return [await _fetch(client, run_id)]
    if not app.workflows and not app.temporal_workflows:
        raise UsageError(f"app {app.spec!r} defines no workflows to replay")
    names = [*app.workflows, *(getattr(w, "__temporal_workflow_definition").name for w in app.temporal_workflows)]
    types = " OR ".join(f"WorkflowType = '{_quote(n)}'" for n in names)
    start = datetime.now(UTC) - (since or timedelta(days=1))
    query = f"({types}) AND StartTime >= '{start.strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    found: list[WorkflowHistory] = []
    async for ex in client.temporal.list_workflows(query, limit=limit):
        found.append(await client.temporal.get_workflow_handle(ex.id, run_id=ex.run_id).fetch_history())
    return found


__all__ = ["ReplayIncompatible", "ReplayOutcome", "ReplayReport", "export_history", "fetch_histories",
           "read_history_file", "replay"]
