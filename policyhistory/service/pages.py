"""Pages for people: server-rendered with Jinja2 (autoescape on: every value a page shows is escaped), no
script, no network, readable printed. Each page makes the library call its API route makes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from litestar import Request, Response, get
from litestar.response import Redirect

from .._describe import describe_params, source_text
from .._errors import PolicyHistoryError
from .._explain import BUCKETS, Comparison, Explanation
from .._explaining import CallExplanation
from .._instant import format_instant
from .._pictures import timeline_html
from .._policy import PolicyVersion
from .._rows import loads_as_written
from .job_table import FINISHED, job_paths
from .problems import Missing

templates = Environment(loader=PackageLoader("policyhistory.service", "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True))
HTML = "text/html"


def render(name: str, status: int = 200, **values: Any) -> Response[str]:
    return Response(templates.get_template(name).render(**values), media_type=HTML, status_code=status)


def _version_view(version: PolicyVersion) -> dict[str, Any]:
    source = version.source
    url = source.url if source.url and source.url.startswith(("https://", "http://")) else None
    return {"id": version.id, "key": version.key, "valid": version.interval_text(),
            "recorded": format_instant(version.recorded_at), "decides": describe_params(version),
            "document": source.document, "published": source.published.isoformat() if source.published else "undated",
            "seed": source.seed, "section": source.section, "quote": source.quote, "url": url, "notes": version.notes,
            "source": source_text(version)}


def _explanation_view(e: Explanation) -> dict[str, Any]:
    rating = e.rating
    pool = None
    if rating.pool is not None:
        p = rating.pool
        pool = {"name": p.key.pool, "counter": p.key.counter, "month": p.key.month, "capacity": p.capacity,
                "used_before": p.used_before, "used_after": p.used_after, "basis": p.basis,
                "licensed_users": p.licensed_users, "minutes_per_user": p.minutes_per_user}
    return {"known_at": format_instant(e.known_at), "as_of": format_instant(rating.as_of or e.call.start),
            "rating": rating, "pool": pool, "earlier_in_pool": e.earlier_in_pool, "steps": rating.trace,
            "versions": [_version_view(v) for v in e.versions]}


def _billed_cell(billed: dict[str, Any] | None, bucket: str) -> Any:
    if not billed:
        return "-"
    value = {"outcome": billed.get("outcome"), "credit_minutes": billed.get("minutes")}.get(bucket)
    return "-" if value is None else value


def dispute_values(explained: CallExplanation) -> dict[str, Any]:
    result = explained.result
    now = result.now if isinstance(result, Comparison) else result
    values: dict[str, Any] = {"call": now.call, "placed": format_instant(now.call.start), "now": _explanation_view(now),
                              "text": explained.text(), "then": None,
                              "dispute": None if explained.dispute is None else explained.dispute.record()}
    if isinstance(result, Comparison):
        values.update(
            then=_explanation_view(result.then), differences=result.differences, money=result.money,
            changed_by=[_version_view(v) for v in result.changed_by],
            first_changed_by=[_version_view(v) for v in result.first_changed_by],
            replaced=[_version_view(v) for v in result.replaced],
            buckets=[{"name": bucket, "billed": _billed_cell(result.billed, bucket),
                      "then": getattr(result.then.rating, bucket), "now": getattr(result.now.rating, bucket)}
                     for bucket in BUCKETS])
    return values


def dispute_page(request: Request[Any, Any, Any], result: CallExplanation, **form: Any) -> Response[str]:
    return render("dispute.html", **dispute_values(result), **form)


def _store(request: Request[Any, Any, Any]) -> Any:
    from .api import store_of

    return store_of(request)


@get("/", include_in_schema=False, sync_to_thread=False)
def home(request: Request[Any, Any, Any]) -> Response[str]:
    return render("home.html", jobs=request.app.state.jobs.recent(_store(request).db))


@get("/lookup", include_in_schema=False, sync_to_thread=False)
def lookup(job: str, call_id: str, billed_at: str | None = None) -> Redirect:
    target = f"/jobs/{quote(job.strip(), safe='')}/call?call_id={quote(call_id.strip(), safe='')}"
    return Redirect(target + (f"&billed_at={quote(billed_at)}" if billed_at else ""))


@get("/dispute", include_in_schema=False, sync_to_thread=False)
def dispute(request: Request[Any, Any, Any], call: str | None = None, known_at: str | None = None,
            billed_at: str | None = None) -> Response[str]:
    """The dispute form; with a call, its explanation (and, with billed_at, billed vs then vs now)."""
    from .explaining import explain_call

    form: dict[str, Any] = {"call_text": call, "known_at": known_at, "billed_at": billed_at}
    if not call:
        return render("dispute.html", call=None, **form)
    try:
        fields = loads_as_written(call)  # numbers as their text, as rate --call reads them
        if not isinstance(fields, dict):
            raise ValueError("expected a JSON object of the call's fields")
        result = explain_call(_store(request), fields, known_at=known_at or None, billed_at=billed_at or None)
    except (ValueError, PolicyHistoryError) as error:
        return render("dispute.html", status=422, call=None, error=str(error), **form)
    return dispute_page(request, result, **form)


@get("/jobs/{job_id:str}/call", include_in_schema=False)
async def job_call(request: Request[Any, Any, Any], job_id: str, call_id: str, known_at: str | None = None,
             billed_at: str | None = None) -> Response[str]:
    """The dispute page of one call of a job: its files give the call and its tenant's earlier calls. The call
    id is a query parameter: ids may hold a slash."""
    from .explaining import explain_job_call

    store = _store(request)
    form: dict[str, Any] = {"known_at": known_at, "billed_at": billed_at}
    try:
        row = request.app.state.jobs.row(store.db, job_id)
        tenant = json.loads(row["options"] or "{}").get("tenant")
        result = await explain_job_call(request.app.state.settings.db, job_paths(row), call_id,
                                        known_at=known_at or None, billed_at=billed_at or None, tenant=tenant)
    except Missing as error:
        return render("home.html", status=404, jobs=[], error=error.detail, job=job_id, call_id=call_id)
    except PolicyHistoryError as error:
        return render("dispute.html", status=422, call=None, error=str(error), **form)
    return dispute_page(request, result, **form)


@get("/policies", include_in_schema=False, sync_to_thread=False)
def policies(request: Request[Any, Any, Any], as_of: str | None = None, known_at: str | None = None) -> Response[str]:
    from .api import policies_record

    store = _store(request)
    as_of = as_of or format_instant(store.now()).split("T")[0]
    try:
        record = policies_record(store, as_of, known_at or None)
    except PolicyHistoryError as error:
        return render("policies.html", status=422, as_of=as_of, known_at_given=known_at, error=str(error))
    versions = [_version_view(v) for v in store.policies(record["as_of"], record["known_at"])]
    return render("policies.html", as_of=as_of, known_at=record["known_at"], known_at_given=known_at,
                  versions=versions)


@get("/timeline", include_in_schema=False, sync_to_thread=False)
def timeline(request: Request[Any, Any, Any], known_at: str | None = None) -> Response[str]:
    from .api import instant

    store = _store(request)
    page = timeline_html(store.timeline, instant(known_at or None, "known_at") or store.now())
    return Response(page, media_type=HTML)


@get("/jobs/{job_id:str}", include_in_schema=False, sync_to_thread=False)
def job(request: Request[Any, Any, Any], job_id: str) -> Response[str]:
    """A job's progress (a bar, reloaded every second until the job ends), then its totals and changed calls."""
    jobs = request.app.state.jobs
    record = jobs.get(_store(request).db, job_id)
    total = record["rows_total"] or 0
    if record["state"] == "done":
        bar_max, bar_value = 1, 1
    elif total:
        bar_max, bar_value = total, record["rows_rated"]
    else:
        bar_max, bar_value = 1, 0
    changed: list[dict[str, Any]] = []
    path = jobs.folder(job_id) / "records.jsonl"
    if record["state"] == "done" and path.is_file():
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if '"changed": true' in line:
                    changed.append(json.loads(line))
                    if len(changed) == 100:
                        break
    return render("job.html", job=record, bar_max=bar_max, bar_value=bar_value,
                  percent=round(100 * bar_value / bar_max), changed=changed, finished=record["state"] in FINISHED)


@get("/jobs/{job_id:str}/report", include_in_schema=False, sync_to_thread=False)
def job_report_page(request: Request[Any, Any, Any], job_id: str) -> Response[Any]:
    from .api import report_response

    return report_response(request, job_id)


PAGES = [home, lookup, dispute, job_call, policies, timeline, job, job_report_page]
