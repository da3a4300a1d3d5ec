"""The schedules page: each schedule with its timing, state, next run and last run.

Runs in the Studio server; reads the schedules from the engine (`client.schedules`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tether.studio.state import Studio, studio_of


def routes(studio: Studio) -> list[Route]:
    """The schedules page's route."""
    return [Route("/schedules", schedules_page, methods=["GET"])]


async def schedules_page(request: Request) -> Response:
    """Every schedule of the namespace, with its next and last runs (links to the runs)."""
    studio = studio_of(request)
    found = await studio.client.schedules.list()
    return studio.page(request, "schedules.html", title="Schedules", nav="schedules", schedules=found)
