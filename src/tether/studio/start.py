"""Start a run: pick one of the app's workflows, fill a form generated from its input schema.

Runs in the Studio server. The input is validated against the workflow's input type
before anything starts (every error shown next to its field); a valid one starts the
run and opens its page.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.studio import forms
from tether.studio.state import Studio, studio_of
from tether.workflow import Workflow


def routes(studio: Studio) -> list[Route]:
    """The start-a-run pages' routes."""
    return [
        Route("/start", start_index, methods=["GET"]),
        Route("/start/{workflow}", start_form, methods=["GET", "POST"]),
    ]


async def start_index(request: Request) -> Response:
    """The app's workflows, each with a link to its form."""
    studio = studio_of(request)
    items = [(name, (wf.__doc__ or "").strip().splitlines()[0] if wf.__doc__ else "")
             for name, wf in sorted(studio.workflows.items())]
    return studio.page(request, "start.html", title="Start a run", nav="start", items=items)


async def start_form(request: Request) -> Response:
    """The input form of one workflow (GET), or starting a run with the submitted input (POST)."""
    studio = studio_of(request)
    name = request.path_params["workflow"]
    wf = studio.workflows.get(name)
    if wf is None:
        known = ", ".join(sorted(studio.workflows)) or "none (start Studio with an APP)"
        return studio.page(request, "error.html", status=404, title="No such workflow",
                           message=f"workflow {name!r} is not in this Studio's app; known: {known}", back="/start")
    schema = wf.input_schema()
    if request.method == "GET":
        return _form(request, studio, wf, forms.fields(schema))
    got = await studio.form(request)
    if isinstance(got, Response):
        return got
    run_id = (got.pop("run_id", "") or "").strip() or None
    value, errors = forms.parse(schema, got)
    if not errors:
        errors = _validate(wf, value)
    if errors:
        shown = forms.fields(schema, values=forms.submitted_values(schema, got), errors=errors)
        return _form(request, studio, wf, shown, problem="The input is not valid; nothing was started.",
                     run_id=run_id or "", status=422)
    try:
        run = await studio.client.start(wf, value if wf.input_name is not None else None, id=run_id)
    except Exception as exc:  # e.g. a run with this id is already open
        shown = forms.fields(schema, values=forms.submitted_values(schema, got))
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _form(request, studio, wf, shown, problem=f"Nothing was started: {message}",
                     run_id=run_id or "", status=409)
    return RedirectResponse(f"/runs/{run.id}?flash=started", status_code=303)


def _validate(wf: Workflow[Any, Any], value: Any) -> dict[str, str]:
    """Every problem of the input by field path (empty when valid)."""
    if wf.input_name is None:
        return {}
    try:
        TypeAdapter(wf.input_type).validate_python(value)
    except ValidationError as exc:
        out: dict[str, str] = {}
        for err in exc.errors():
            out.setdefault(".".join(str(p) for p in err["loc"]), err["msg"])
        return out
    return {}


def _form(request: Request, studio: Studio, wf: Workflow[Any, Any], fields: list[forms.Field], *,
          problem: str | None = None, run_id: str = "", status: int = 200) -> Response:
    return studio.page(request, "start_form.html", status=status, title=f"Start {wf.name}", nav="start", wf=wf,
                       fields=fields, problem=problem, run_id=run_id)
