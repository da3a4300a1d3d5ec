"""The runs page (filters, search, live refresh) and the run page (story of one run, cancel).

Runs in the Studio server. Live parts are fragments (`/runs/rows`, `/runs/{id}/live`)
that `static/studio.js` re-fetches every two seconds while something is running.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.errors import RunNotFound, UsageError
from tether.studio import charts, data
from tether.studio.state import Studio, studio_of

STATUSES = ["running", "completed", "failed", "cancelled", "terminated", "timed out"]
PAGE = 100
MAX_LIMIT = 2000


def routes(studio: Studio) -> list[Route]:
    """The runs pages' routes."""
    return [
        Route("/runs", runs_page, methods=["GET"]),
        Route("/runs/rows", runs_rows, methods=["GET"]),
        Route("/runs/{run_id:path}/live", run_live, methods=["GET"]),
        Route("/runs/{run_id:path}/cancel", cancel_run, methods=["POST"]),
        Route("/runs/{run_id:path}", run_page, methods=["GET"]),
    ]


async def _rows(request: Request) -> tuple[dict[str, str], list[data.RunRow], str | None]:
    studio = studio_of(request)
    q = request.query_params
    filters = {"workflow": q.get("workflow", "").strip(), "status": q.get("status", "").strip(),
               "q": q.get("q", "").strip(), "limit": q.get("limit", str(PAGE))}
    try:
        limit = max(1, min(int(filters["limit"]), MAX_LIMIT))
    except ValueError:
        limit = PAGE
    filters["limit"] = str(limit)
    try:
        rows = await data.list_runs(studio.recent, studio.store, workflow=filters["workflow"],
                                    status=filters["status"], search=filters["q"], limit=limit)
    except UsageError as exc:  # e.g. an unknown status
        return filters, [], str(exc)
    return filters, rows, None


async def runs_page(request: Request) -> Response:
    """Recent runs: workflow, status, start, duration, cost, open tasks; filters and search."""
    studio = studio_of(request)
    filters, rows, error = await _rows(request)
    if filters["q"] and len(rows) == 1 and rows[0].run.id == filters["q"]:
        return RedirectResponse(f"/runs/{rows[0].run.id}", status_code=303)  # an exact id: open it
    known = sorted(set(studio.workflows) | {r.run.workflow for r in rows} | ({filters["workflow"]} - {""}))
    return studio.page(request, "runs.html", title="Runs", nav="runs", rows=rows, filters=filters, error=error,
                       workflows=known, statuses=STATUSES, live=any(r.run.status == "running" for r in rows),
                       page=PAGE, query=_query(filters))


async def runs_rows(request: Request) -> Response:
    """The runs table's body alone (live refresh)."""
    studio = studio_of(request)
    _, rows, error = await _rows(request)
    return studio.page(request, "_runs_rows.html", rows=rows, error=error,
                       live=any(r.run.status == "running" for r in rows))


def _query(filters: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in filters.items() if v and k != "limit"})


async def run_page(request: Request) -> Response:
    """One run: input, result, steps, model calls with prompts, decisions, tasks, tools, children."""
    studio = studio_of(request)
    run_id = request.path_params["run_id"]
    try:
        view = await data.run_view(studio.client, studio.store, run_id)
    except RunNotFound as exc:
        return studio.page(request, "error.html", status=404, title="No such run", message=str(exc))
    return studio.page(request, "run.html", title=f"Run {run_id}", nav="runs", v=view, d=view.detail,
                       live=view.detail.status == "running", bar=charts.span_bar,
                       temporal=studio.temporal_link(run_id), flash=request.query_params.get("flash"))


async def run_live(request: Request) -> Response:
    """The live part of the run page (status, timeline, model calls), re-fetched while it runs."""
    studio = studio_of(request)
    run_id = request.path_params["run_id"]
    try:
        view = await data.run_view(studio.client, studio.store, run_id)
    except RunNotFound as exc:
        return studio.page(request, "error.html", status=404, title="No such run", message=str(exc))
    return studio.page(request, "_run_live.html", v=view, d=view.detail, live=view.detail.status == "running",
                       bar=charts.span_bar, temporal=studio.temporal_link(run_id))


async def cancel_run(request: Request) -> Response:
    """Ask the run to stop (steps in flight are cancelled) and go back to its page."""
    studio = studio_of(request)
    got = await studio.form(request)
    if isinstance(got, Response):
        return got
    run_id = request.path_params["run_id"]
    try:
        await studio.client.get(run_id).cancel()
    except RunNotFound as exc:
        return studio.page(request, "error.html", status=404, title="No such run", message=str(exc))
    except Exception as exc:  # e.g. the run has already ended: say so rather than fail the page
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return studio.page(request, "error.html", status=409, title="Cannot cancel this run",
                           message=f"run {run_id}: {message}", back=f"/runs/{run_id}")
    return RedirectResponse(f"/runs/{run_id}?flash=cancel", status_code=303)
