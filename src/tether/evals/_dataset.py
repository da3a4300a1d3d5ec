"""Evaluation cases: an input for the workflow and the output expected of it, read from JSONL or CSV.

Runs in the process that drives an evaluation (the CLI, a test, a script); no server needed.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tether.errors import UsageError


class Case(BaseModel):
    """One labelled case: the workflow's input and the output expected of it.

    Attributes:
        id: A name unique in the dataset (its line number when the file gives none); it is part
            of the case's run id, so it must stay the same for a resumed evaluation.
        input: The workflow's input, as JSON-like data.
        expected: The output expected (None: only scorers that need no answer apply).
    """

    id: str
    input: Any
    expected: Any = None


_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def load_cases(path: str | Path) -> list[Case]:
    """The cases of a `.jsonl` (one `{"id", "input", "expected"}` object per line) or `.csv` file.

    CSV columns: `id` (optional), `input` (a JSON cell) or one column per input field, and
    `expected` (a JSON cell) or `expected.FIELD` columns. Cells of field columns are read as
    JSON when they parse (`12.5`, `true`, `["a"]`), else as text.

    Raises:
        UsageError: The file cannot be read, a line is malformed, or two cases share an id.

    Example:
        >>> cases = load_cases("examples/invoice_cases.jsonl")
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read dataset {str(p)!r}: {exc.strerror}") from None
    if p.suffix.lower() == ".csv":
        cases = _from_csv(text, p)
    elif p.suffix.lower() in (".jsonl", ".ndjson"):
        cases = _from_jsonl(text, p)
    else:
        raise UsageError(f"dataset {str(p)!r}: expected a .jsonl or .csv file")
    if not cases:
        raise UsageError(f"dataset {str(p)!r} has no cases")
    seen: set[str] = set()
    for c in cases:
        if c.id in seen:
            raise UsageError(f"dataset {str(p)!r}: two cases have the id {c.id!r}; ids must be unique")
        seen.add(c.id)
    return cases


def _from_jsonl(text: str, p: Path) -> list[Case]:
    cases = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{p}:{n}: not valid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(row, dict) or "input" not in row:
            raise UsageError(f'{p}:{n}: expected an object with "input" (and "expected", "id")')
        unknown = set(row) - {"id", "input", "expected"}
        if unknown:
            raise UsageError(f"{p}:{n}: unknown key {sorted(unknown)[0]!r}; a case has id, input and expected")
        cases.append(Case(id=_case_id(row.get("id"), n), input=row["input"], expected=row.get("expected")))
    return cases


def _from_csv(text: str, p: Path) -> list[Case]:
    rows = list(csv.DictReader(text.splitlines()))
    cases = []
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        inp: Any = _cell(row["input"], p, n, "input") if "input" in row else {}
        exp: Any = _cell(row["expected"], p, n, "expected") if "expected" in row else None
        for col, raw in row.items():
            if col in ("id", "input", "expected") or col is None:
                continue
            if col.startswith("expected."):
                exp = exp if isinstance(exp, dict) else {}
                exp[col.removeprefix("expected.")] = _value(raw)
            elif isinstance(inp, dict):
                inp[col] = _value(raw)
        cases.append(Case(id=_case_id(row.get("id"), n), input=inp, expected=exp))
    return cases


def _cell(raw: str, p: Path, n: int, col: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{p}:{n}: column {col!r} is not valid JSON: {exc.msg}") from None


def _value(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _case_id(given: Any, line: int) -> str:
    if given is None or str(given).strip() == "":
        return f"line{line}"
    return _ID.sub("-", str(given).strip())[:64]
