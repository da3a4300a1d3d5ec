"""A run's notes and decisions as its history records them (memo upserts), for `tether show`.

Runs wherever a run is read (CLI, Studio, tests); needs no worker and no trace backend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tether.engine.converter import decode_for_display
from tether.engine.records import StepRecord
from tether.observe._notes import NOTE_MEMO_PREFIX


async def record_notes(ev: Any, steps: list[Any], conv: Any) -> None:
    """Append the notes and decisions a memo change carries to a run's step records, in order."""
    fields = ev.workflow_properties_modified_event_attributes.upserted_memo.fields
    keys = sorted(k for k in fields if k.startswith(NOTE_MEMO_PREFIX))
    if not keys:
        return
    values = await decode_for_display(conv, [fields[k] for k in keys])
    for key, value in zip(keys, values, strict=False):
        if not isinstance(value, dict):
            continue
        when = _when(value.get("at")) or (ev.event_time.ToDatetime() if ev.HasField("event_time") else None)
        steps.append(StepRecord(kind="note", name=note_label(value), id=key, status="noted",
                                scheduled_at=when, result=value.get("facts")))


def note_label(value: dict[str, Any]) -> str:
    """How a note reads in `tether show`: "decision: high_risk = True (risk=0.91, limit=0.8)"."""
    facts = value.get("facts") or {}
    shown = f" ({', '.join(f'{k}={v}' for k, v in facts.items())})" if facts else ""
    return f"{value.get('kind', 'note')}: {value.get('text', '')}{shown}"


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
