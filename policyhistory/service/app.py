"""The Litestar application: `create_app(settings)` for a program, `from_environment()` for uvicorn's
workers (started by import string, they read the settings `serve` put in the environment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from .. import __name__ as package_name
from .._rows import DuplicateKeyError, json_refusal, loads_as_written
from .api import V1
from .jobs import Jobs
from .pages import PAGES
from .problems import HANDLERS
from .settings import MAX_JSON_BODY, Settings
from .state import StoreHolder


async def refuse_duplicate_keys(request: Request[Any, Any, Any]) -> None:
    """A JSON body naming a key twice in one object is refused (400), as `rate --call` and the call files
    refuse it: Litestar's decoder, like json, would keep the last value, and which was meant is ambiguous.
    Checked with json's own decoder (about 1 us a call of a batch) before the route decodes the body; what it
    reads, numbers as their text, is kept for the routes that take calls (see api.as_written)."""
    if request.method != "POST" or "json" not in request.headers.get("content-type", ""):
        return
    body = await request.body()
    try:
        request.state.written = loads_as_written(body)
    except DuplicateKeyError as error:
        raise ValidationException(f"the request body is not readable JSON: {json_refusal(error)}") from None
    except (ValueError, RecursionError):
        return  # not JSON, or too deep: the route's own decoder says so, as before


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
        before_request=refuse_duplicate_keys,
        request_max_body_size=MAX_JSON_BODY,  # POST /v1/jobs has its own limit, --max-upload
        openapi_config=OpenAPIConfig(title=package_name, version=version(package_name), path="/schema",
                                     # The document itself at /schema: no viewer page, which would load its
                                     # scripts from a CDN.
                                     render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])]),
        debug=False,
    )


def from_environment() -> Litestar:
    return create_app(Settings.from_environment())

