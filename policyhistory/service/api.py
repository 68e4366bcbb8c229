"""The JSON API under /v1. Each route parses, makes the library call the CLI's command makes, and renders the
same record; errors become problem documents in problems.py."""

from __future__ import annotations

import json
from typing import Annotated, Any

import attrs
from litestar import Controller, Request, Response, delete, get, post
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.params import Parameter
from litestar.response import Stream

from .._calls import call_from_mapping
from .._convert import converter
from .._describe import rating_record, version_record
from .._errors import InvalidRecordsError, PolicyHistoryError
from .._explaining import CallExplanation
from .._instant import format_instant, to_instant
from .._store import Store
from .._timeline import HistoryEntry, PolicyChange, PolicySet
from .auth import require_token
from .explaining import explain_call, explain_job_call
from .job_table import job_paths, stream_records
from .job_uploads import BadUpload, TooLarge, receive
from .jobs import Jobs
from .problems import READS, WRITES, Missing, error_data, problem, problem_responses
from .settings import Settings
from .state import StoreHolder
from .uploads import catalog_from_body, facts_files


@attrs.define
class RateRequest:
    """`call`: the call's fields as `rate --call` takes them; `as_of` rates under another day's rules
    (what-if, default the call's start); `known_at` with what was known then (default now)."""

    call: dict[str, Any]
    as_of: str | None = None
    known_at: str | None = None


@attrs.define
class BatchRequest:
    """Calls rated together in start order (ties by call id), carrying their pools from call to call.
    `trace` false: the records without their trace (every other field the same), about three times smaller
    and cheaper to make."""

    calls: list[dict[str, Any]]
    as_of: str | None = None
    known_at: str | None = None
    trace: bool = True


@attrs.define
class ExplainRequest:
    """`call` (fields, with the tenant's `earlier` calls of the month), or `job` and `call_id` (the call and its
    tenant's calls taken from the job's uploaded files), or `call` and `job` (the call given, its tenant's
    calls from the job's files). With `billed_at` (or, for a call of a job's files that carry what was billed,
    the first day of the month after the call) also as known when billed, and what differs."""

    call: dict[str, Any] | None = None
    earlier: list[dict[str, Any]] = attrs.Factory(list)
    job: str | None = None
    call_id: str | None = None
    known_at: str | None = None
    billed_at: str | None = None
    billed: dict[str, Any] | None = None


@attrs.define
class FactsRequest:
    """Tenant facts and licenses as rows (the columns of the tenants and licenses files)."""

    tenants: list[dict[str, Any]] | None = None
    licenses: list[dict[str, Any]] | None = None


def store_of(request: Request[Any, Any, Any]) -> Store:
    holder: StoreHolder = request.app.state.holder
    return holder.current()


def settings_of(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def jobs_of(request: Request[Any, Any, Any]) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


def instant(value: str | None, name: str) -> Any:
    return None if value is None else to_instant(value, name)


_SET_RECORDS: dict[int, tuple[PolicySet, list[dict[str, Any]]]] = {}


def set_records(policy_set: PolicySet) -> list[dict[str, Any]]:
    """`version_record` of each version of a policy set, made once per set: a set and its versions are
    immutable, and a timeline gives one object for equal sets, so that every request for any instant of one
    stretch of time (known_at defaults to now: a new instant each time) meets the same set. Keyed by the
    set's identity, the set kept alive beside its records; the records are shared, never changed."""
    found = _SET_RECORDS.get(id(policy_set))
    if found is None or found[0] is not policy_set:
        if len(_SET_RECORDS) >= 10_000:  # sets of timelines since replaced by a load
            _SET_RECORDS.clear()
        found = _SET_RECORDS[id(policy_set)] = (policy_set, [version_record(version) for version in policy_set])
    return list(found[1])


def policies_record(store: Store, as_of: str, known_at: str | None) -> dict[str, Any]:
    at = to_instant(as_of, "as_of")
    known = instant(known_at, "known_at") or store.now()
    policy_set = store.policies(at, known)
    return {"as_of": format_instant(at), "known_at": format_instant(known), "policies": set_records(policy_set)}


def history_record(entry: HistoryEntry) -> dict[str, Any]:
    overrides = [{"by": o.by, "from_recorded_at": format_instant(o.from_recorded_at),
                  "valid_from": format_instant(o.valid_from),
                  "valid_to": format_instant(o.valid_to) if o.valid_to else None} for o in entry.overridden_by]
    return {**version_record(entry.version), "overridden_by": overrides}


def change_record(c: PolicyChange) -> dict[str, Any]:
    return {"key": c.key, "change": c.change,
            "valid_from": format_instant(c.valid_from) if c.valid_from else None,
            "valid_to": format_instant(c.valid_to) if c.valid_to else None,
            "before": version_record(c.before) if c.before else None,
            "after": version_record(c.after) if c.after else None}


def as_written(request: Request[Any, Any, Any], name: str, decoded: Any) -> Any:
    """The body's `name` (a call's fields, or a list of calls) with its numbers as their text, as `rate
    --call` and a call file read them (`"call_id": 0.10` is "0.10", not 0.1; a duration 9e2 is refused quoting
    9e2), where the body was read so (app.refuse_duplicate_keys); else as Litestar decoded it."""
    written = getattr(request.state, "written", None)
    return written[name] if isinstance(written, dict) and name in written else decoded


async def explanation_for(request: Request[Any, Any, Any], data: ExplainRequest) -> CallExplanation:
    store = store_of(request)
    data = attrs.evolve(data, call=as_written(request, "call", data.call),
                        earlier=as_written(request, "earlier", data.earlier))
    if data.job is not None:
        if data.call_id is None and data.call is None:
            raise ValidationException("give call_id with job (the call to look up in the job's files), or call")
        row = jobs_of(request).row(store.db, data.job)
        options = json.loads(row["options"] or "{}")
        return await explain_job_call(settings_of(request).db, job_paths(row), data.call_id, call=data.call,
                                      known_at=data.known_at, billed_at=data.billed_at, billed=data.billed,
                                      tenant=options.get("tenant"))
    if data.call is None:
        raise ValidationException("give call (its fields) or job and call_id")
    return explain_call(store, data.call, data.earlier, known_at=data.known_at, billed_at=data.billed_at,
                        billed=data.billed)


def report_response(request: Request[Any, Any, Any], job_id: str) -> Response[Any]:
    jobs = jobs_of(request)
    row = jobs.row(store_of(request).db, job_id)
    path = jobs.folder(job_id) / "report.html"
    if row["state"] != "done":
        return problem(409, f"job {job_id} is {row['state']}: its report exists once it is done",
                       kind="JobNotDone", state=row["state"])
    if not path.is_file():
        raise Missing(f"the report of job {job_id} was removed")
    return Response(path.read_text(encoding="utf-8"), media_type="text/html")


class V1(Controller):
    path = "/v1"
    tags = ["v1"]  # noqa: RUF012  (Litestar reads it as a class attribute)

    @get("/policies", sync_to_thread=False, responses=READS)
    def policies(self, request: Request[Any, Any, Any], as_of: str,
                 known_at: str | None = None) -> dict[str, Any]:
        """The policy versions in force at `as_of`, as known at `known_at` (default now): `policies --json`."""
        return policies_record(store_of(request), as_of, known_at)

    @get("/policies/{key:str}/history", sync_to_thread=False, responses=READS)
    def history(self, request: Request[Any, Any, Any], key: str) -> list[dict[str, Any]]:
        """Every version of one policy key and what overrides it: `history KEY --json`."""
        return [history_record(entry) for entry in store_of(request).history(key)]

    @get("/diff", sync_to_thread=False, responses=READS)
    def diff(self, request: Request[Any, Any, Any],
             as_of: Annotated[list[str] | None, Parameter(description="Two valid dates, or one")] = None,
             known_at: Annotated[list[str] | None, Parameter(description="Two knowledge dates, or one")] = None,
             ) -> list[dict[str, Any]]:
        """Which policies appear, end or change between two valid dates or two knowledge dates: `diff --json`."""
        as_of, known_at = as_of or [], known_at or []
        if len(as_of) == 2 and len(known_at) <= 1:
            at: str | None
            axis, first, second, at = "as_of", as_of[0], as_of[1], (known_at[0] if known_at else None)
        elif len(known_at) == 2 and len(as_of) <= 1:
            axis, first, second, at = "known_at", known_at[0], known_at[1], (as_of[0] if as_of else None)
        else:
            raise ValidationException("give two as_of (and at most one known_at) or two known_at (and at most "
                                      "one as_of)")
        return [change_record(c) for c in store_of(request).diff(first, second, axis=axis, at=at)]

    @post("/rate", status_code=200, sync_to_thread=False, responses=READS)
    def rate(self, request: Request[Any, Any, Any], data: RateRequest) -> dict[str, Any]:
        """Rate one call and return its rating with its trace: `rate --call ... --json`."""
        rating = store_of(request).rate(as_written(request, "call", data.call), as_of=instant(data.as_of, "as_of"),
                                        known_at=instant(data.known_at, "known_at"))
        return rating_record(rating)

    @post("/rate/batch", status_code=200, sync_to_thread=False, responses=problem_responses(400, 413, 422))
    def rate_batch(self, request: Request[Any, Any, Any], data: BatchRequest) -> Any:
        """Rate up to the server's batch limit of calls in start order, pools carried from call to call; the
        records come back in the order given, each with its trace unless `trace` is false."""
        limit = settings_of(request).max_batch
        if len(data.calls) > limit:
            raise HTTPException(status_code=413, detail=f"{len(data.calls)} calls: this server rates at most {limit} "
                                "per batch (POST /v1/jobs takes any number)")
        calls = []
        for index, fields in enumerate(as_written(request, "calls", data.calls)):
            try:
                calls.append(call_from_mapping(fields))
            except PolicyHistoryError as error:  # say which call, then what the error says
                return problem(422, f"calls[{index}]: {error}", kind=type(error).__name__, index=index,
                               **error_data(error))
        rater = store_of(request).rater(instant(data.as_of, "as_of"), instant(data.known_at, "known_at"))
        try:
            return {"records": rater.records(calls, trace=data.trace)}
        except PolicyHistoryError as error:  # a call the rules refuse: which one, then why
            if error.batch_index is None:
                raise
            return problem(422, f"calls[{error.batch_index}] ({error.batch_call_id!r}): {error}",
                           kind=type(error).__name__,
                           **{**error_data(error), "index": error.batch_index, "call_id": error.batch_call_id})

    @post("/explain", status_code=200, responses=READS)
    async def explain(self, request: Request[Any, Any, Any], data: ExplainRequest) -> Any:
        """The explanation of one call (`explain --json`); with `Accept: text/html`, the printable dispute page."""
        result = await explanation_for(request, data)
        if request.accept.best_match(["application/json", "text/html"], "application/json") == "text/html":
            from .pages import dispute_page

            return dispute_page(request, result)
        return result.record()

    @post("/versions", status_code=200, guards=[require_token], responses=WRITES)
    async def versions(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Append catalog records (a TOML catalog file, or JSON with Content-Type application/json), all or
        nothing, with the checks of `load`."""
        body = await request.body()
        located = catalog_from_body(body, request.headers.get("content-type", ""))
        store = store_of(request)
        report = store.load_versions(located)  # one write transaction: the store waits its turn
        return {"added": list(report.added), "unchanged": list(report.unchanged)}

    @post("/tenants", status_code=200, guards=[require_token], sync_to_thread=False, responses=WRITES)
    def tenants(self, request: Request[Any, Any, Any], data: FactsRequest) -> dict[str, Any]:
        """Append tenant facts and licenses, all or nothing, with the checks of `load --tenants --licenses`."""
        with facts_files(data.tenants, data.licenses) as (tenants, licenses):
            store = store_of(request)
            try:
                report = store.load_tenant_facts(tenants, licenses)
            except InvalidRecordsError as error:
                named = {str(tenants): "tenants", str(licenses): "licenses"}
                raise InvalidRecordsError([attrs.evolve(p, file=named.get(str(p.file), p.file))
                                           for p in error.problems]) from None
        return {"added": list(report.added), "unchanged": list(report.unchanged)}

    @get("/verify", sync_to_thread=False, responses=READS)
    def verify(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Recompute every hash chain: `verify`."""
        report = store_of(request).verify()
        broken = report.first_break
        return {"ok": report.ok, "rows_checked": report.rows_checked,
                "first_break": attrs.asdict(broken) if broken else None}

    @get("/digest", sync_to_thread=False, responses=problem_responses(400, 501))
    def digest(self, request: Request[Any, Any, Any]) -> Any:
        """The head of every hash chain, to compare two copies of a store or to notarise one."""
        digest = getattr(store_of(request), "digest", None)
        if digest is None:
            return problem(501, "this version of the store has no digest", kind="NotImplemented")
        return json.loads(json.dumps(converter.unstructure(digest()), default=str))

    # ---- jobs ------------------------------------------------------------------------------------------

    @post("/jobs", status_code=202, guards=[require_token], request_max_body_size=None, responses=WRITES)
    async def create_job(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Start a re-rating job: multipart/form-data with one or more `calls` files, optional `tenants` and
        `licenses` files, and fields `known_at`, `as_of`, `tenant` (the options of `rerate`). 202 with the job."""
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
            raise ClientException("send multipart/form-data with one or more `calls` files")
        boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
        jobs = jobs_of(request)
        store = store_of(request)
        job_id, folder = jobs.new_folder()
        try:
            try:
                upload = await receive(request.stream(), boundary, folder / "in",
                                       settings_of(request).max_upload_bytes)
            except TooLarge as error:
                raise HTTPException(status_code=413, detail=str(error)) from None
            except BadUpload as error:
                raise ClientException(str(error)) from None
            if not upload.calls:
                raise ClientException("no `calls` file in the upload")
            options = {name: upload.fields.get(name) or None for name in ("known_at", "as_of", "tenant")}
            for name in ("known_at", "as_of"):
                if options[name]:
                    options[name] = format_instant(to_instant(options[name], name))
            if upload.tenants or upload.licenses:
                store.load_tenant_facts(upload.tenants, upload.licenses)
            return jobs.create(store.db, job_id, upload, options)
        except BaseException:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            raise

    @get("/jobs", sync_to_thread=False, responses=READS)
    def jobs(self, request: Request[Any, Any, Any],
             limit: Annotated[int, Parameter(ge=1, le=1000, description="How many, newest first")] = 20,
             ) -> dict[str, Any]:
        """The most recent jobs, newest first, each as `GET /v1/jobs/{id}` gives it (the home page's list)."""
        return {"jobs": jobs_of(request).recent(store_of(request).db, limit)}

    @get("/jobs/{job_id:str}", sync_to_thread=False, responses=READS)
    def job(self, request: Request[Any, Any, Any], job_id: str) -> dict[str, Any]:
        """A job's state, rows read and rated, counts and summary once done, error if it failed."""
        return jobs_of(request).get(store_of(request).db, job_id)

    @get("/jobs/{job_id:str}/records", sync_to_thread=False, responses=problem_responses(400, 404, 409))
    def job_records(self, request: Request[Any, Any, Any], job_id: str, changed_only: bool = False,
                    format: Annotated[str, Parameter(pattern="^(jsonl|csv)$")] = "jsonl") -> Response[Any]:
        """A done job's records in input order, streamed: JSON lines (what `rerate` prints) or CSV."""
        jobs = jobs_of(request)
        row = jobs.row(store_of(request).db, job_id)
        if row["state"] != "done":
            return problem(409, f"job {job_id} is {row['state']}: its records exist once it is done",
                           kind="JobNotDone", state=row["state"])
        path = jobs.folder(job_id) / "records.jsonl"
        if not path.is_file():
            raise Missing(f"the records of job {job_id} were removed")
        media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
        return Stream(stream_records(path, changed_only, format), media_type=media)

    @get("/jobs/{job_id:str}/report", sync_to_thread=False, media_type="text/html",
         responses=problem_responses(400, 404, 409))
    def job_report(self, request: Request[Any, Any, Any], job_id: str) -> Response[Any]:
        """A done job's audit report (the HTML `rerate --report` writes)."""
        return report_response(request, job_id)

    @delete("/jobs/{job_id:str}", status_code=200, guards=[require_token], sync_to_thread=False, responses=WRITES)
    def cancel_job(self, request: Request[Any, Any, Any], job_id: str) -> dict[str, Any]:
        """Cancel an unfinished job (its files are removed); remove a finished one and its files."""
        return jobs_of(request).cancel(store_of(request).db, job_id)
