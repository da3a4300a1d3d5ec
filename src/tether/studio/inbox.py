"""The inbox: open human tasks, and a task's page with a form generated from its answer schema.

Runs in the Studio server. The run validates each answer (the same check as the CLI
and the API); a refused answer comes back with its message next to the field it names,
what was typed is kept, and the task stays open.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.errors import InvalidAnswer, NoWorker, RunStuck, TaskClosed, TaskNotFound, UsageError
from tether.human_tasks import HumanTask
from tether.studio import forms
from tether.studio.security import identity
from tether.studio.state import Studio, studio_of

WHO_FIELD = "answered_by"
"""The form field where someone may name who they answer for (kept as `claimed_by`)."""


def routes(studio: Studio) -> list[Route]:
    """The inbox pages' routes."""
    return [
        Route("/inbox", inbox_page, methods=["GET"]),
        Route("/inbox/{task_id:path}", task_page, methods=["GET", "POST"]),
    ]


async def inbox_page(request: Request) -> Response:
    """Open tasks, oldest first, optionally for one assignee."""
    studio = studio_of(request)
    assignee = request.query_params.get("assignee", "").strip()
    run_id = request.query_params.get("run", "").strip()
    tasks = await studio.client.tasks.list(assignee=assignee or None, run_id=run_id or None)
    assignees = sorted({t.assignee for t in tasks if t.assignee})
    return studio.page(request, "inbox.html", title="Inbox", nav="inbox", tasks=list(tasks),
                       unreadable=tasks.unreadable, assignee=assignee, assignees=assignees, run_id=run_id)


async def task_page(request: Request) -> Response:
    """A task: question, context, and its answer form (GET), or an answer to it (POST)."""
    studio = studio_of(request)
    task_id = request.path_params["task_id"]
    try:
        task = await studio.client.tasks.get(task_id)
    except (TaskNotFound, UsageError) as exc:
        return studio.page(request, "error.html", status=404, title="No such task", message=str(exc))
    if request.method == "GET":
        flash = request.query_params.get("flash")
        return _task(request, studio, task, fields=forms.fields(task.answer_schema), flash=flash)
    got = await studio.form(request)
    if isinstance(got, Response):
        return got
    return await _answer(request, studio, task, got)


async def _answer(request: Request, studio: Studio, task: HumanTask, form: dict[str, str]) -> Response:
    typed = (form.pop(WHO_FIELD, "") or "").strip()[:200]
    value, errors = forms.parse(task.answer_schema, form)
    problem: str | None = None
    status = 422
    if not errors:
        try:
            await studio.client.tasks.answer(task.id, value, by=identity(request), claimed_by=typed or None)
            return RedirectResponse(f"/inbox/{task.id}?flash=answered", status_code=303)
        except InvalidAnswer as exc:
            errors = {exc.field: _short(exc)}
            problem = "The run refused this answer; nothing was changed and the task is still open."
        except TaskClosed as exc:
            problem, status = str(exc), 409
        except (NoWorker, RunStuck) as exc:
            problem, status = str(exc), 503
    else:
        problem = "Some fields could not be read; nothing was sent."
    shown = forms.fields(task.answer_schema, values=forms.submitted_values(task.answer_schema, form),
                         errors=errors)
    return _task(request, studio, task, fields=shown, problem=problem, who=typed, status=status)


def _short(exc: InvalidAnswer) -> str:
    """The validation message without the task id and field name (the field shows them)."""
    text = str(exc)
    for marker in (f"field '{exc.field}': ", f"field {exc.field!r}: "):
        if marker in text:
            return text.split(marker, 1)[1]
    return text.split(": ", 1)[1] if text.startswith("invalid answer for task") and ": " in text else text


def _task(request: Request, studio: Studio, task: HumanTask, *, fields: list[forms.Field],
          problem: str | None = None, who: str = "", flash: str | None = None, status: int = 200) -> Response:
    ctx: dict[str, Any] = {"title": f"Task {task.id}", "nav": "inbox", "t": task, "fields": fields,
                           "problem": problem, "who": who, "flash": flash}
    return studio.page(request, "task.html", status=status if problem else 200, **ctx)
