"""Human tasks in a run's history, as rows of `tether show` and Studio's run page.

Runs wherever a run is read (CLI, Studio, tests); needs no worker.
"""

from __future__ import annotations

from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import DataConverter

from tether.engine.converter import decode_for_display
from tether.engine.records import StepRecord
from tether.engine.tasks import HUMAN_TIMER, MEMO
from tether.human_tasks import HumanTask

_SHOWN_STATUS = {"open": "waiting", "answered": "answered", "expired": "expired",
                 "cancelled": "cancelled"}


async def is_human_timer(ev: HistoryEvent, conv: DataConverter) -> bool:
    """True for the timer that bounds a human task's wait (shown as the task, not a sleep)."""
    if not (ev.HasField("user_metadata") and ev.user_metadata.HasField("summary")):
        return False
    values = await decode_for_display(conv, [ev.user_metadata.summary])
    return bool(values) and isinstance(values[0], str) and values[0].startswith(HUMAN_TIMER)


async def record_tasks(ev: HistoryEvent, steps: list[StepRecord], conv: DataConverter) -> None:
    """Fold a memo change carrying task records into the run's steps (one row per task)."""
    memo = ev.workflow_properties_modified_event_attributes.upserted_memo.fields
    if MEMO not in memo:
        return
    values = await decode_for_display(conv, [memo[MEMO]])
    rows = {s.id: s for s in steps if s.kind == "human"}
    for raw in values[0] if values and isinstance(values[0], list) else []:
        task = HumanTask.model_validate(raw)
        row = rows.get(task.id)
        if row is None:
            row = StepRecord(kind="human", name="", id=task.id, status="", attempts=1,
                             scheduled_at=task.opened_at, input=[task.question])
            steps.append(row)
        by = f" (answered by {task.answerer})" if task.answered_by else ""
        row.name = f"task {task.id}: {_cut(task.question, 60)}{by}"
        row.status, row.ended_at, row.result = _SHOWN_STATUS[task.status], task.closed_at, task.answer
        row.error = "nobody answered in time" if task.status == "expired" else None


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
