"""tether Studio: the web app to watch runs, read a run's reasoning, answer people's tasks and
follow the numbers; it also serves the JSON API of `tether serve` under `/api/`.

Start it with `tether studio [APP]` (or `tether dev APP`, which starts it too), or embed it:

    >>> from tether.studio import create_studio
    >>> app = create_studio(client, workflows=loaded.workflows, store=".tether/traces.db")
"""

from tether.studio.app import DEFAULT_PORT, create_studio, serve, start_background
from tether.studio.state import Studio

__all__ = ["DEFAULT_PORT", "Studio", "create_studio", "serve", "start_background"]
