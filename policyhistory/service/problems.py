"""Errors as RFC 9457 problem documents (application/problem+json), in one place: a library refusal is 422,
a missing thing 404, bad auth 401/403, too large 413; each carries the error's own data (file, line, record,
field, value) so that a program can point at what to fix."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import attrs
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from .._errors import InvalidRecordsError, PolicyHistoryError, UnknownPolicyKeyError

PROBLEM_JSON = "application/problem+json"
_DATA = ("file", "line", "record", "field", "value", "expected", "key", "record_id", "tenant_id", "call_id",
         "as_of", "known_at", "path", "why")
"""Attributes of our errors that a problem document carries when the error has them."""
_MISSING = (UnknownPolicyKeyError,)
log = logging.getLogger("policyhistory.service")


@attrs.define
class ProblemDocument:
    """RFC 9457: `type` names our error's class (urn:policyhistory:problem:NaiveDatetimeError) or is
    about:blank; further members carry the error's data: file, line, record, field, value, problems..."""

    type: str
    title: str
    status: int
    detail: str


_MEANING = {400: "the request is malformed", 401: "no bearer token", 403: "not this server's token",
            404: "no such thing", 409: "not in a state to answer that yet", 413: "too large",
            422: "the library refused it (the problem names what to fix)", 501: "not available in this version"}


def problem_responses(*codes: int) -> dict[int, ResponseSpec]:
    """The refusals a route documents in the OpenAPI document, each a problem document."""
    return {code: ResponseSpec(data_container=ProblemDocument, generate_examples=False, media_type=PROBLEM_JSON,
                               description=f"Problem document: {_MEANING[code]}") for code in codes}


READS = problem_responses(400, 404, 422)
WRITES = problem_responses(400, 401, 403, 404, 413, 422)


class Missing(NotFoundException):
    """A job, a call in a job's files, a route: 404."""


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def problem(status: int, detail: str, *, kind: str | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> Response[dict[str, Any]]:
    title = HTTPStatus(status).phrase
    body = {"type": f"urn:policyhistory:problem:{kind}" if kind else "about:blank", "title": title,
            "status": status, "detail": detail, **{k: _plain(v) if k != "problems" else v for k, v in extra.items()}}
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_data(error: BaseException) -> dict[str, Any]:
    data = {name: getattr(error, name) for name in _DATA if getattr(error, name, None) is not None}
    if isinstance(error, InvalidRecordsError):
        data["problems"] = [{"file": p.file, "line": p.line, "record": p.record, "field": p.field,
                             "message": p.message} for p in error.problems]
    return data


def library_error(request: Request[Any, Any, Any], error: PolicyHistoryError) -> Response[dict[str, Any]]:
    status = 404 if isinstance(error, _MISSING) else 422
    return problem(status, str(error), kind=type(error).__name__, **error_data(error))


def http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, Any]]:
    extra: dict[str, Any] = {}
    if isinstance(error, ValidationException) and error.extra:
        extra["errors"] = error.extra
    headers = dict(error.headers or {})
    return problem(error.status_code, error.detail, headers=headers or None, **extra)


def unexpected_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(500, "the server met an unexpected error; its log has the details")


HANDLERS: dict[type[Exception] | int, Any] = {
    PolicyHistoryError: library_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
