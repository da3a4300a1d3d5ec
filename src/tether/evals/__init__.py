"""Evaluations: run a workflow over labelled cases under several model configurations, score and compare.

An app-level package (like the CLI and Studio): it drives runs through the client and reads
their histories; `tether eval` is its command and Studio's Evaluations page shows its reports.

Example:
    >>> from tether.evals import Fields, Schema, evaluate, load_cases
    >>> report = await evaluate(client, process_invoice, load_cases("examples/invoice_cases.jsonl"),
    ...                         name="invoices", scorers=[Fields(), Schema()],
    ...                         configs=[{"extract": "local:smollm2"}, {"extract": "scripted:reader"}])
"""

from tether.evals._dataset import Case, load_cases
from tether.evals._report import EVALS_DIR, CaseResult, ConfigSummary, EvalReport, load_report, regressions, to_csv
from tether.evals._runner import Config, evaluate, parse_config
from tether.evals._scorers import (
    Contains,
    Exact,
    Fields,
    Function,
    Judge,
    Numeric,
    Regex,
    Schema,
    Score,
    Scored,
    Scorer,
    parse_scorer,
)

__all__ = [
    "EVALS_DIR",
    "Case",
    "CaseResult",
    "Config",
    "ConfigSummary",
    "Contains",
    "EvalReport",
    "Exact",
    "Fields",
    "Function",
    "Judge",
    "Numeric",
    "Regex",
    "Schema",
    "Score",
    "Scored",
    "Scorer",
    "evaluate",
    "load_cases",
    "load_report",
    "parse_config",
    "parse_scorer",
    "regressions",
    "to_csv",
]
