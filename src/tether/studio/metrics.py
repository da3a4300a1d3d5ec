"""The metrics page: retry rate per step, model latency p50/p95, tokens and cost per workflow per
day, human intervention rate, with small SVG charts.

Runs in the Studio server; reads the local span store (the figures of `tether stats`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tether.studio import charts, data, render
from tether.studio.state import Studio, studio_of

WINDOWS = {"1": "24 hours", "7": "7 days", "30": "30 days"}


def routes(studio: Studio) -> list[Route]:
    """The metrics page's route."""
    return [Route("/metrics", metrics_page, methods=["GET"])]


async def metrics_page(request: Request) -> Response:
    """Figures over the runs of the last day, week or month (`?days=`)."""
    studio = studio_of(request)
    days = request.query_params.get("days", "7")
    days = days if days in WINDOWS else "7"
    if studio.store is None or not studio.store.exists:
        where = str(studio.store.path) if studio.store is not None else None
        return studio.page(request, "metrics.html", title="Metrics", nav="metrics", f=None, where=where,
                           days=days, windows=WINDOWS)
    figures = data.figures(studio.store, days=int(days))
    st = figures.stats
    steps = [charts.Bar(s.step, [s.retry_rate]) for s in st.steps]
    models = [charts.Bar(m.model, [m.percentile(50), m.percentile(95)]) for m in st.models]
    per_day = figures.per_day
    shown_days = per_day.days[-min(len(per_day.days), 14):]
    cut = len(per_day.days) - len(shown_days)
    ctx: dict[str, Any] = {
        "retry_chart": charts.bars(steps, series=["retry rate"], fmt=render.pct),
        "latency_chart": charts.bars(models, series=["p50", "p95"], fmt=render.secs),
        "tokens_chart": charts.columns(shown_days, {k: v[cut:] for k, v in per_day.tokens.items()},
                                       fmt=lambda x: f"{x:,.0f}"),
        "cost_chart": charts.columns(shown_days, {k: v[cut:] for k, v in per_day.cost.items()}, fmt=render.usd),
        "human_gauge": charts.gauge(st.human.intervention_rate),
    }
    return studio.page(request, "metrics.html", title="Metrics", nav="metrics", f=figures, st=st, days=days,
                       windows=WINDOWS, where=str(studio.store.path), **ctx)
