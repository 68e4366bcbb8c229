"""The Litestar application: `create_app(settings)` for a program, `from_environment()` for uvicorn's
workers (started by import string, they read the settings `serve` put in the environment)."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from .. import __name__ as package_name
from .api import V1
from .jobs import Jobs
from .pages import PAGES
from .problems import HANDLERS
from .settings import MAX_JSON_BODY, Settings
from .state import StoreHolder


def create_app(settings: Settings | str | Path) -> Litestar:
    """The service over the store at `settings.db` (a path alone takes the default limits and no token)."""
    if not isinstance(settings, Settings):
        settings = Settings(db=Path(settings).resolve())
    state = State({"settings": settings})

    def startup(app: Litestar) -> None:
        holder = StoreHolder(settings.db)
        app.state.holder = holder
        app.state.jobs = Jobs(settings.db, settings.job_root)
        app.state.jobs.recover(holder.store.db)

    def shutdown(app: Litestar) -> None:
        app.state.jobs.shutdown()
        app.state.holder.close()

    from importlib.metadata import version

    return Litestar(
        route_handlers=[V1, *PAGES],
        state=state,
        on_startup=[startup],
        on_shutdown=[shutdown],
        exception_handlers=HANDLERS,
        request_max_body_size=MAX_JSON_BODY,  # POST /v1/jobs has its own limit, --max-upload
        openapi_config=OpenAPIConfig(title=package_name, version=version(package_name), path="/schema",
                                     # The document itself at /schema: no viewer page, which would load its
                                     # scripts from a CDN.
                                     render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])]),
        debug=False,
    )


def from_environment() -> Litestar:
    return create_app(Settings.from_environment())

