"""The Evaluations pages: the reports `tether eval` kept, and one report with its model configurations
side by side, a comparison chart and a link to every case's run.

Runs in the Studio server; reads the report files under the state dir (`.tether/evals/`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tether.errors import UsageError
from tether.evals import EvalReport, load_report
from tether.studio import charts, render
from tether.studio.state import Studio, studio_of

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def routes(studio: Studio) -> list[Route]:
    """The evaluations pages' routes."""
    return [Route("/evals", evals_page, methods=["GET"]), Route("/evals/{name}", eval_page, methods=["GET"])]


def _reports(folder: Path | None) -> list[tuple[Path, EvalReport]]:
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            found.append((path, load_report(path)))
        except UsageError:  # a file that is not a report: not listed
            continue
    return found


async def evals_page(request: Request) -> Response:
    """Every evaluation kept under the state dir, newest first."""
    studio = studio_of(request)
    rows = [{"name": r.name, "workflow": r.workflow, "dataset": r.dataset, "created": r.created_at,
             "cases": len({c.case for c in r.cases}), "configs": r.configs,
             "best": max(r.configs, key=lambda c: c.score) if r.configs else None}
            for _, r in _reports(studio.evals)]
    return studio.page(request, "evals.html", title="Evaluations", nav="evals", rows=rows,
                       where=str(studio.evals) if studio.evals else None)


async def eval_page(request: Request) -> Response:
    """One evaluation: figures per configuration, a chart of each scorer per configuration, each case."""
    studio = studio_of(request)
    name = request.path_params["name"]
    path = studio.evals / f"{name}.json" if studio.evals is not None and _NAME.match(name) else None
    if path is None or not path.is_file():
        return studio.page(request, "error.html", status=404, title="No such evaluation",
                           message=f"No evaluation named {name!r} here; `tether eval` keeps them in "
                                   f"{studio.evals or '<state dir>/evals'}.")
    report = load_report(path)
    scorers = list(dict.fromkeys(k for c in report.configs for k in c.scores))
    ctx: dict[str, Any] = {
        "score_chart": charts.bars([charts.Bar(c.config, [c.scores.get(s, 0.0) for s in scorers])
                                    for c in report.configs], series=scorers, fmt=render.pct, label_width=240),
        "cost_chart": charts.bars([charts.Bar(c.config, [c.cost]) for c in report.configs], series=["cost"],
                                  fmt=render.usd, label_width=240),
        "latency_chart": charts.bars([charts.Bar(c.config, [c.latency_p50, c.latency_p95]) for c in report.configs],
                                     series=["p50", "p95"], fmt=render.secs, label_width=240),
    }
    fields = list(dict.fromkeys(k for c in report.configs for k in c.fields))
    by_case: dict[str, dict[str, Any]] = {}
    for r in report.cases:
        got = [v for v in r.scores.values() if v is not None]
        by_case.setdefault(r.case, {})[r.config] = {"result": r, "score": sum(got) / len(got) if got else None}
    return studio.page(request, "eval.html", title=f"Evaluation {report.name}", nav="evals", report=report,
                       scorers=scorers, fields=fields, by_case=by_case, **ctx)
