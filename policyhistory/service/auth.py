"""The bearer token that write routes (versions, tenants, jobs) need."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from .settings import Settings


def require_token(connection: ASGIConnection, handler: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    """401 without an `Authorization: Bearer` header, 403 with a wrong token or when the server has none."""
    settings: Settings = connection.app.state.settings
    header = connection.headers.get("authorization", "")
    scheme, _space, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise NotAuthorizedException("this route changes the store: send Authorization: Bearer <token>",
                                     headers={"WWW-Authenticate": 'Bearer realm="policyhistory"'})
    if settings.token is None:
        raise PermissionDeniedException("the server was started without a token (POLICYHISTORY_TOKEN or "
                                        "--token-file), so it takes no writes")
    if not hmac.compare_digest(given.strip().encode(), settings.token.encode()):
        raise PermissionDeniedException("the bearer token is not this server's")
