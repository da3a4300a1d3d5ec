"""What every Studio page is given: the `Studio` (client, workflows, span store, sessions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from tether.engine.recent_runs import RecentRuns
from tether.observe._store import SpanStore
from tether.studio import render, security
from tether.studio.security import Sessions

if TYPE_CHECKING:
    from tether.engine.client import Client
    from tether.workflow import Workflow


@dataclass
class Studio:
    """What every page needs: the client, the app's workflows, the span store, links, sessions.

    Attributes:
        client: A connected `tether.Client` (its codec decrypts what pages show).
        workflows: The workflows of the app Studio was started with (the start-a-run page).
        store: The local span store (tool calls, egress blocks, metrics), if any.
        temporal_ui: Base URL of the Temporal Web UI, for links to raw histories.
        sessions: Login sessions (and the token, when one is required).
        evals: The folder of evaluation reports (`.tether/evals/`), if any.
        recent: The runs page's listings, kept between requests (made from the client).
    """

    client: Client
    workflows: dict[str, Workflow[Any, Any]] = field(default_factory=dict)
    store: SpanStore | None = None
    temporal_ui: str | None = None
    sessions: Sessions = field(default_factory=lambda: Sessions(None))
    env: Environment = field(default_factory=render.environment)
    evals: Path | None = None
    recent: RecentRuns = field(init=False)

    def __post_init__(self) -> None:
        self.recent = RecentRuns(self.client)

    def page(self, request: Request, template: str, *, status: int = 200, **ctx: Any) -> HTMLResponse:
        """Render a page (or a fragment: templates starting with "_") with the CSRF token in place."""
        csrf, new = security.csrf_token(request)
        html = self.env.get_template(template).render(request=request, csrf=csrf, studio=self, **ctx)
        response = HTMLResponse(html, status_code=status)
        if new:
            security.set_csrf_cookie(response, csrf, secure=request.url.scheme == "https")
        return response

    async def form(self, request: Request) -> dict[str, str] | Response:
        """The submitted form, or a 403 page when its CSRF token does not match this browser's."""
        form = await request.form()
        if not security.csrf_ok(request, form):
            return self.page(request, "error.html", status=403, title="Form expired",
                             message="This form was not sent from this Studio page (or it is too old). "
                                     "Reload the page and send it again.")
        return security.form_dict(form)

    def temporal_link(self, run_id: str) -> str | None:
        """The run in the Temporal Web UI, when its address is known."""
        if not self.temporal_ui:
            return None
        return f"{self.temporal_ui.rstrip('/')}/namespaces/{self.client.connection.namespace}/workflows/{run_id}"

    @property
    def login_required(self) -> bool:
        """True when a token is set (pages need a session)."""
        return self.sessions.token is not None


def studio_of(request: Request) -> Studio:
    """The Studio serving `request`."""
    studio: Studio = request.app.state.studio
    return studio
