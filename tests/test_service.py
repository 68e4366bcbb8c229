"""The service through a real uvicorn on 127.0.0.1 and httpx: every route, against the CLI's answers."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from policyhistory import Store
from policyhistory.cli import cli

from .service_server import AUTH, EXAMPLES, FRANCE_CALL, Server, load_example_tenants, running, wait_for_job

EXAMPLE_FILES = ("PSTN.calls.2022-06-30.csv", "calls.csv")
DISPUTED = "00000000-0000-0000-0000-000000000004"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("service") / "store.db"
    with running(db, "--max-batch", "50", "--max-upload", "20000000") as started:
        with started.client() as client:
            load_example_tenants(client)
        yield started


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as opened:
        yield opened


def cli_json(db: Path, *args: str) -> object:
    done = subprocess.run([sys.executable, "-m", "policyhistory.cli", "--db", str(db), *args], capture_output=True,
                          check=True, cwd=EXAMPLES)
    return json.loads(done.stdout)


def _run_id(text: str, fmt: str) -> str:
    if fmt == "jsonl":
        return str(json.loads(text.splitlines()[0])["run_id"])
    rows = list(csv.reader(io.StringIO(text)))
    return rows[1][rows[0].index("run_id")]


def _without_run_id(text: str, fmt: str) -> list[object]:
    """The records as text, each with its run_id taken out (jsonl: key order kept; csv: the column emptied)."""
    if fmt == "jsonl":
        return [json.dumps({k: v for k, v in json.loads(line).items() if k != "run_id"}) for line in text.splitlines()]
    rows = list(csv.reader(io.StringIO(text)))
    at = rows[0].index("run_id")
    return [row[:at] + row[at + 1:] for row in rows]


def example_job(client: httpx.Client, **fields: str) -> dict[str, object]:
    files = [("calls", (name, (EXAMPLES / name).read_bytes(), "text/csv")) for name in EXAMPLE_FILES]
    response = client.post("/v1/jobs", files=files, data={"tenant": "contoso", **fields}, headers=AUTH)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] in ("queued", "running", "done")
    return wait_for_job(client, str(job["id"]))


def test_rate_the_september_2018_france_call_with_both_beliefs(server: Server, client: httpx.Client) -> None:
    then = client.post("/v1/rate", json={"call": FRANCE_CALL, "known_at": "2018-06-01"})
    now = client.post("/v1/rate", json={"call": FRANCE_CALL})
    assert then.status_code == now.status_code == 200
    # As first published, complimentary dial-out ended with June 2018; the later belief runs it to Nov 2019.
    assert then.json()["outcome"] == "communications_credits"
    assert then.json()["credit_minutes"] == 15
    assert now.json()["outcome"] == "complimentary"
    assert now.json()["pool_capacity"] == 9000
    # The same record as the CLI's, for the same call and belief.
    call = json.dumps(FRANCE_CALL)
    assert then.json() == cli_json(server.db, "rate", "--call", call, "--known-at", "2018-06-01", "--json")
    expected = cli_json(server.db, "rate", "--call", call, "--json")
    assert isinstance(expected, dict)
    assert {**now.json(), "known_at": None} == {**expected, "known_at": None}  # "now" is read at each call


def test_rate_what_if_and_refusals_are_problem_documents(client: httpx.Client) -> None:
    what_if = client.post("/v1/rate", json={"call": FRANCE_CALL, "as_of": "2018-05-01", "known_at": "2018-06-01"})
    assert what_if.json()["outcome"] == "complimentary"
    naive = client.post("/v1/rate", json={"call": {**FRANCE_CALL, "start": "2018-09-15T09:00:00"}})
    assert naive.status_code == 422
    assert naive.headers["content-type"] == "application/problem+json"
    problem = naive.json()
    assert problem["status"] == 422 and problem["field"] == "start" and problem["value"] == "2018-09-15T09:00:00"
    assert problem["type"].endswith("NaiveDatetimeError")
    unknown = client.post("/v1/rate", json={"call": {**FRANCE_CALL, "tenant_id": "nobody"}})
    assert unknown.status_code == 422 and unknown.json()["tenant_id"] == "nobody"
    malformed = client.post("/v1/rate", json={"cal": {}})
    assert malformed.status_code == 400 and malformed.headers["content-type"] == "application/problem+json"


def test_rate_reads_a_calls_json_numbers_as_their_text_as_a_call_file_does(server: Server,
                                                                          client: httpx.Client) -> None:
    """`"call_id": 0.10` is the call id "0.10" (Litestar's decoder, like json, made it 0.1, so that 0.1 and 0.10
    were one call in a batch); a duration 9e2 is refused quoting 9e2 (it was read as 900.0), as in a call file
    and in `rate --call`."""
    def body(**numbers: str) -> str:
        text = json.dumps({"call": {**FRANCE_CALL, "call_id": "ID", "duration_seconds": "SECONDS"}})
        return text.replace('"ID"', numbers.get("call_id", '"c1"')).replace('"SECONDS"', numbers.get("seconds", "900"))

    headers = {"content-type": "application/json"}
    rated = client.post("/v1/rate", content=body(call_id="0.10"), headers=headers)
    assert 200 == rated.status_code and "0.10" == rated.json()["call_id"]
    call = json.loads(body(call_id='"0.10"'))["call"]
    assert {**rated.json(), "known_at": None} == {**cli_json(server.db, "rate", "--call", body(call_id="0.10")[9:-1],
                                                              "--json"), "known_at": None}
    assert call["call_id"] == cli_json(server.db, "rate", "--call", json.dumps(call), "--json")["call_id"]  # type: ignore[index]
    refused = client.post("/v1/rate", content=body(seconds="9e2"), headers=headers)
    assert 422 == refused.status_code and ("duration_seconds", "9e2") == (refused.json()["field"],
                                                                          refused.json()["value"])
    batch = '{"calls": [' + body(call_id="0.1")[9:-1] + ", " + body(call_id="0.10")[9:-1] + '], "trace": false}'
    both = client.post("/v1/rate/batch", content=batch, headers=headers)
    assert 200 == both.status_code and ["0.1", "0.10"] == [record["call_id"] for record in both.json()["records"]]
    explained = client.post("/v1/explain", content=body(call_id="0.10"), headers=headers)
    assert 200 == explained.status_code and "0.10" == explained.json()["rating"]["call_id"]


def test_rate_batch_carries_pools_in_start_order(client: httpx.Client) -> None:
    calls = [{**FRANCE_CALL, "call_id": f"c{index}", "start": f"2018-09-{20 - index:02d}T09:00:00Z"}
             for index in range(3)]
    response = client.post("/v1/rate/batch", json={"calls": calls})
    assert response.status_code == 200
    records = response.json()["records"]
    assert [r["call_id"] for r in records] == ["c0", "c1", "c2"]  # in the order given
    # c2 is the earliest: it draws first, then c1, then c0.
    assert [r["pool_used_before"] for r in records] == [30, 15, 0]
    bad = client.post("/v1/rate/batch", json={"calls": [FRANCE_CALL, {**FRANCE_CALL, "duration_seconds": "long"}]})
    assert bad.status_code == 422
    assert (bad.json()["index"], bad.json()["field"], bad.json()["value"]) == (1, "duration_seconds", "long")
    assert bad.json()["detail"].startswith("calls[1]: ")
    too_many = client.post("/v1/rate/batch", json={"calls": [FRANCE_CALL] * 51})
    assert too_many.status_code == 413 and "at most 50" in too_many.json()["detail"]
    # Without the trace: every other field the same, in the same order.
    untraced = client.post("/v1/rate/batch", json={"calls": calls, "known_at": "2026-01-01", "trace": False})
    traced = client.post("/v1/rate/batch", json={"calls": calls, "known_at": "2026-01-01"})
    assert untraced.status_code == traced.status_code == 200
    assert [{k: v for k, v in r.items() if k != "trace"} for r in traced.json()["records"]] == \
        untraced.json()["records"]
    assert list(untraced.json()["records"][0]) == [k for k in traced.json()["records"][0] if k != "trace"]


def test_rate_batch_names_the_call_the_rules_refuse_and_counts_per_user_plans(client: httpx.Client) -> None:
    """MCOPSTN8 (120 minutes counted per user) through the batch, traced and not; a call of it naming no user is
    refused, and the problem says which call of the batch it was, not only the field."""
    def plan_call(call_id: str, user: str, seconds: int) -> dict[str, object]:
        return {"call_id": call_id, "tenant_id": "contoso", "start": f"2022-03-10T1{call_id[-1]}:00:00Z",
                "duration_seconds": seconds, "call_type": "user_out", "destination": "+14165550123",
                "organizer_id": user, "organizer_usage_location": "US", "organizer_licenses": "MCOPSTN8;MCOPSTNC"}

    calls = [plan_call("m1", "ann", 6000), plan_call("m2", "Bob", 600), plan_call("m3", "ANN ", 1800)]
    for trace in (True, False):
        records = client.post("/v1/rate/batch", json={"calls": calls, "trace": trace}).json()["records"]
        assert [(r["pool"], r["pool_minutes"], r["credit_minutes"]) for r in records] == [
            ("calling_plan.domestic_120_user:US:ann", 100, 0), ("calling_plan.domestic_120_user:US:bob", 10, 0),
            ("calling_plan.domestic_120_user:US:ann", 20, 10)]
        refused = client.post("/v1/rate/batch", json={"calls": [*calls, plan_call("m4", "", 60)], "trace": trace})
        assert refused.status_code == 422
        problem = refused.json()
        assert (problem["index"], problem["call_id"], problem["field"]) == (3, "m4", "user_id")
        assert problem["detail"].startswith("calls[3] ('m4'): ")


def test_a_json_key_given_twice_is_refused_as_the_cli_refuses_it(client: httpx.Client) -> None:
    """json (and msgspec) keep the last of two equal keys; which value was meant is ambiguous: 400, naming it."""
    body = json.dumps({"call": FRANCE_CALL})[:-2] + ', "duration_seconds": 90000}}'
    for route in ("/v1/rate", "/v1/explain"):
        refused = client.post(route, content=body, headers={"content-type": "application/json"})
        assert refused.status_code == 400, (route, refused.text)
        assert "the key 'duration_seconds' is given twice" in refused.json()["detail"]
    batch = json.dumps({"calls": [FRANCE_CALL]})[:-3] + ', "call_id": "c2"}]}'
    refused = client.post("/v1/rate/batch", content=batch, headers={"content-type": "application/json"})
    assert refused.status_code == 400 and "the key 'call_id' is given twice" in refused.json()["detail"]


def test_policies_history_diff_match_the_cli(server: Server, client: httpx.Client) -> None:
    answer = client.get("/v1/policies", params={"as_of": "2018-09-15", "known_at": "2018-06-01"})
    assert answer.json() == cli_json(server.db, "policies", "--as-of", "2018-09-15", "--known-at", "2018-06-01",
                                     "--json")
    key = "audio_conferencing.complimentary_dial_out"
    history = client.get(f"/v1/policies/{key}/history")
    assert history.json() == cli_json(server.db, "history", key, "--json")
    assert len(history.json()) >= 2
    diff = client.get("/v1/diff", params=[("known_at", "2018-06-01"), ("known_at", "2021-05-01")])
    assert diff.json() == cli_json(server.db, "diff", "--known-at", "2018-06-01", "--known-at", "2021-05-01", "--json")
    assert diff.json()
    missing = client.get("/v1/policies/no.such.key/history")
    assert missing.status_code == 404 and missing.json()["key"] == "no.such.key"
    bad = client.get("/v1/policies", params={"as_of": "yesterday"})
    assert bad.status_code == 422 and bad.json()["field"] == "as_of" and bad.json()["value"] == "yesterday"
    assert client.get("/v1/diff", params={"as_of": "2018-01-01"}).status_code == 400


def test_explain_a_call_with_both_beliefs(client: httpx.Client) -> None:
    then = client.post("/v1/explain", json={"call": FRANCE_CALL, "known_at": "2018-06-01"}).json()
    now = client.post("/v1/explain", json={"call": FRANCE_CALL}).json()
    assert then["rating"]["outcome"] == "communications_credits"
    assert now["rating"]["outcome"] == "complimentary"
    assert "audio-conferencing-complimentary-dial-out" in " ".join(v["id"] for v in now["versions"]) or now["versions"]
    compared = client.post("/v1/explain", json={"call": FRANCE_CALL, "billed_at": "2018-06-01"}).json()
    assert compared["changed"] is True
    assert compared["then"]["rating"]["outcome"] == "communications_credits"
    assert compared["now"]["rating"]["outcome"] == "complimentary"
    assert compared["changed_by"]
    page = client.post("/v1/explain", json={"call": FRANCE_CALL, "billed_at": "2018-06-01"},
                       headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "Billed, then, now" in page.text and "communications_credits" in page.text
    # Billed in June 2018: "through June 2019" (published 2018-11-12) first gave today's answer.
    assert compared["first_changed_by"] == ["complimentary-dial-out-through-june-2019-900-published-2018-11-12"]
    assert "first changed by complimentary-dial-out-through-june-2019-900-published-2018-11-12" in page.text
    assert "@media print" in page.text


def test_a_job_on_the_examples_gives_the_records_rerate_prints(server: Server, client: httpx.Client) -> None:
    job = example_job(client, known_at="2018-10-01")
    assert job["state"] == "done", job
    assert job["counts"] == {"rows": 21, "rated": 21, "rejected": 0, "changed": 6}
    assert job["rows_read"] == job["rows_rated"] == 21
    assert job["files"] == list(EXAMPLE_FILES)
    listed = client.get("/v1/jobs", params={"limit": 1000}).json()["jobs"]
    assert job["id"] in [entry["id"] for entry in listed]  # newest first, each as GET /v1/jobs/{id} gives it
    assert next(entry for entry in listed if entry["id"] == job["id"]) == job
    assert [entry["created_at"] for entry in listed] == sorted((e["created_at"] for e in listed), reverse=True)
    assert len(client.get("/v1/jobs", params={"limit": 1}).json()["jobs"]) == 1
    assert client.get("/v1/jobs", params={"limit": 0}).status_code == 400
    errors = job["errors"]
    # As known 2018-10-01 every example row is rated now that the catalog dates dial-in and Calling Plans
    # from 2017 (the catalog branch); the job's errors list its rejected rows, so it is empty here.
    assert errors == []
    base = ["--db", str(server.db), "rerate", *EXAMPLE_FILES, "--tenant", "contoso", "--known-at", "2018-10-01"]
    for fmt in ("jsonl", "csv"):
        expected = subprocess.run([sys.executable, "-m", "policyhistory.cli", *base, "--format", fmt],
                                  capture_output=True, cwd=EXAMPLES).stdout
        records = client.get(f"/v1/jobs/{job['id']}/records", params={"format": fmt})
        assert records.status_code == 200
        # Byte for byte but for run_id, which names each run (the job's id; a new one for the CLI's run).
        assert _without_run_id(records.text, fmt) == _without_run_id(expected.decode(), fmt)
        assert len(records.content) - len(expected) == 21 * (len(job["id"]) - len(_run_id(expected.decode(), fmt)))
    changed = client.get(f"/v1/jobs/{job['id']}/records", params={"changed_only": "true"}).text.splitlines()
    assert len(changed) == 6 and all(json.loads(line)["changed"] for line in changed)
    report = client.get(f"/v1/jobs/{job['id']}/report")
    assert report.status_code == 200 and "Re-rating audit report" in report.text
    # The dispute of one of its calls, from the job's files, as `explain --json` gives it.
    explained = client.post("/v1/explain", json={"job": job["id"], "call_id": DISPUTED, "billed_at": "2018-10-01"})
    done = subprocess.run([sys.executable, "-m", "policyhistory.cli", "--db", str(server.db), "explain", DISPUTED,
                           *[f"--calls={name}" for name in EXAMPLE_FILES], "--tenant", "contoso",
                           "--billed-at", "2018-10-01", "--json"], capture_output=True, cwd=EXAMPLES, check=True)
    expected_record = json.loads(done.stdout)
    got = explained.json()
    for side in ("then", "now"):
        for record in (got, expected_record):  # "now" is read at each call
            record[side].pop("known_at")
            record[side]["rating"].pop("known_at")
    for record in (got, expected_record):
        record["dispute"].pop("now_known_at")
    assert got == expected_record
    assert client.post("/v1/explain", json={"job": job["id"], "call_id": "nope"}).status_code == 404
    # A call given by its fields, its tenant's earlier calls of the month taken from the job's files.
    may = {**FRANCE_CALL, "call_id": "later", "start": "2018-05-28T15:00:00Z", "organizer_licenses": "MCOMEETADD"}
    alone = client.post("/v1/explain", json={"call": may}).json()
    after = client.post("/v1/explain", json={"call": may, "job": job["id"]}).json()
    assert alone["earlier_in_pool"] == 0 and alone["rating"]["pool_used_before"] == 0
    assert after["rating"]["pool_used_before"] == 30  # the 30-minute call of 2018-05-28 14:00 in the export
    assert after["earlier_in_pool"] == 1
    assert client.get("/v1/jobs/nope").status_code == 404


def test_a_job_lists_its_rejected_rows(client: httpx.Client) -> None:
    header = (EXAMPLES / "calls.csv").read_text(encoding="utf-8").splitlines()[0]
    good = "ok-1,contoso,2020-10-22T09:00:00Z,130,conf_out,alice,GB,MCOMEETADD;MCOPSTNC,+33142685300,,,,"
    bad = "bad-1,contoso,2020-10-22T09:00:00Z,ninety,conf_out,alice,GB,MCOMEETADD;MCOPSTNC,+33142685300,,,,"
    text = "\n".join([header, good, bad]) + "\n"
    response = client.post("/v1/jobs", files=[("calls", ("two.csv", text.encode(), "text/csv"))],
                           data={"tenant": "contoso"}, headers=AUTH)
    assert response.status_code == 202, response.text
    job = wait_for_job(client, str(response.json()["id"]))
    assert job["state"] == "done", job
    assert job["counts"] == {"rows": 2, "rated": 1, "rejected": 1, "changed": 0}
    errors = job["errors"]
    assert isinstance(errors, list) and 1 == len(errors)
    assert {"file", "line", "call_id", "error"} == set(errors[0])
    assert (3, "bad-1") == (errors[0]["line"], errors[0]["call_id"]) and "duration" in errors[0]["error"]


def test_job_cancel_and_delete(client: httpx.Client) -> None:
    job = example_job(client)
    assert job["state"] == "done"
    options = job["options"]
    assert isinstance(options, dict) and options["known_at_given"] is False
    assert options["known_at"] >= str(job["created_at"])[:10]  # what it knew: now, as of its start
    deleted = client.delete(f"/v1/jobs/{job['id']}", headers=AUTH)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
    no_files = client.post("/v1/jobs", files=[("other", ("x.csv", b"a,b\n"))], headers=AUTH)
    assert no_files.status_code == 400 and no_files.headers["content-type"] == "application/problem+json"


def test_a_refused_catalog_upload_changes_nothing(server: Server, client: httpx.Client) -> None:
    before = client.get("/v1/verify").json()
    policies = client.get("/v1/policies", params={"as_of": "2020-06-01", "known_at": "2030-01-01"}).json()
    body = (
        '[[version]]\nid = "good-one"\nkey = "test.key"\nkind = "minute_rounding"\n'
        'valid_from = 2020-01-01T00:00:00Z\nrecorded_at = 2020-01-01T00:00:00Z\n'
        '[version.params]\nunit_seconds = 60\nmode = "up"\n'
        '[version.source]\ndocument = "t.md"\nsection = "s"\nquote = "q"\n\n'
        '[[version]]\nid = "bad-one"\nkey = "test.key"\nkind = "minute_rounding"\n'
        'valid_from = 2020-01-01\nrecorded_at = 2020-02-01T00:00:00Z\n'
        '[version.params]\nunit_seconds = 60\nmode = "up"\n'
        '[version.source]\ndocument = "t.md"\nsection = "s"\nquote = "q"\n')
    refused = client.post("/v1/versions", content=body, headers={**AUTH, "Content-Type": "application/toml"})
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["problems"] == [{"file": "request body", "line": 19, "record": "bad-one", "field": "valid_from",
                                    "message": problem["problems"][0]["message"]}]
    assert "has no time" in problem["problems"][0]["message"]
    assert client.get("/v1/verify").json() == before
    assert client.get("/v1/policies", params={"as_of": "2020-06-01", "known_at": "2030-01-01"}).json() == policies
    json_refused = client.post("/v1/versions", json={"version": [{"id": "x", "key": "test.key"}]}, headers=AUTH)
    assert json_refused.status_code == 422
    assert {p["field"] for p in json_refused.json()["problems"]} >= {"kind", "valid_from", "recorded_at", "source"}
    assert client.get("/v1/verify").json() == before


def test_a_catalog_upload_appends_and_is_idempotent(client: httpx.Client) -> None:
    record = {"id": "service-test-rounding", "key": "test.service", "kind": "minute_rounding",
              "valid_from": "2020-01-01T00:00:00Z", "recorded_at": "2020-01-01T00:00:00Z",
              "params": {"unit_seconds": 60, "mode": "up"},
              "source": {"document": "t.md", "section": "s", "quote": "q", "published": "2020-01-01"}}
    def policy_ids() -> list[str]:
        answer = client.get("/v1/policies", params={"as_of": "2020-06-01"}).json()
        return [policy["id"] for policy in answer["policies"]]

    before = policy_ids()
    assert "service-test-rounding" not in before and policy_ids() == before  # asked twice: the same answer
    first = client.post("/v1/versions", json={"version": [record]}, headers=AUTH)
    assert first.status_code == 200 and first.json() == {"added": ["service-test-rounding"], "unchanged": []}
    assert "service-test-rounding" in policy_ids()  # the version just loaded is in force at once
    again = client.post("/v1/versions", json=[record], headers=AUTH)
    assert again.json() == {"added": [], "unchanged": ["service-test-rounding"]}
    changed = client.post("/v1/versions", json=[{**record, "notes": "other"}], headers=AUTH)
    assert changed.status_code == 422 and changed.json()["record_id"] == "service-test-rounding"
    history = client.get("/v1/policies/test.service/history").json()
    assert [entry["id"] for entry in history] == ["service-test-rounding"]


def test_write_routes_need_the_token(client: httpx.Client) -> None:
    for method, path in (("POST", "/v1/versions"), ("POST", "/v1/tenants"), ("POST", "/v1/jobs"),
                         ("DELETE", "/v1/jobs/x")):
        missing = client.request(method, path, content=b"{}")
        assert missing.status_code == 401, path
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.headers["content-type"] == "application/problem+json"
        wrong = client.request(method, path, content=b"{}", headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 403, path
    assert client.get("/v1/verify").status_code == 200  # reads need none


def test_verify_and_digest(server: Server, client: httpx.Client) -> None:
    verified = client.get("/v1/verify").json()
    assert verified["ok"] is True and verified["first_break"] is None
    assert verified["rows_checked"]["tenant_facts"] == 2
    digest = client.get("/v1/digest")
    if hasattr(Store, "digest"):
        assert digest.status_code == 200
        store = Store.open(server.db)
        try:
            assert {**digest.json(), "at": None} == {**json.loads(json.dumps(store.digest(), default=str)), "at": None}
        finally:
            store.close()
    else:
        assert digest.status_code == 501 and digest.headers["content-type"] == "application/problem+json"


def test_serve_refuses_a_non_loopback_host_without_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLICYHISTORY_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "not a loopback address" in result.output


def test_openapi_document(client: httpx.Client) -> None:
    schema = client.get("/schema/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/v1/policies", "/v1/policies/{key}/history", "/v1/diff", "/v1/rate", "/v1/rate/batch", "/v1/explain",
            "/v1/versions", "/v1/tenants", "/v1/verify", "/v1/digest", "/v1/jobs", "/v1/jobs/{job_id}",
            "/v1/jobs/{job_id}/records", "/v1/jobs/{job_id}/report"} <= paths
    assert "RateRequest" in schema["components"]["schemas"]
    assert client.get("/schema").json() == schema  # the document itself, no viewer fetching scripts


def test_too_large_is_413_and_leaves_nothing(server: Server, client: httpx.Client) -> None:
    jobs_root = server.db.with_name(server.db.name + ".jobs")
    before = set(jobs_root.iterdir())
    big = b"call_id,tenant_id\n" + b"x,y\n" * 5_100_000  # 20.4 MB, past this server's --max-upload 20000000
    refused = client.post("/v1/jobs", files=[("calls", ("big.csv", big, "text/csv"))], headers=AUTH)
    assert refused.status_code == 413 and refused.headers["content-type"] == "application/problem+json"
    assert "20000000 bytes" in refused.json()["detail"]
    assert set(jobs_root.iterdir()) == before  # its folder and partial file removed
    # JSON bodies stop at 10 MB, whatever the upload limit (here twice that).
    huge = client.post("/v1/rate", content=b'{"call": {"x": "' + b"y" * 10_100_000 + b'"}}',
                       headers={"Content-Type": "application/json"})
    assert huge.status_code == 413 and huge.headers["content-type"] == "application/problem+json"


def test_the_token_file_gives_the_token(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-the-file\nignored second line\n")
    with running(tmp_path / "s.db", "--token-file", str(secret), token=None) as other, other.client() as client:
        facts = {"tenants": [{"tenant_id": "t1", "valid_from": "2018-01-22", "country": "US",
                              "communications_credits": "true"}]}
        assert client.post("/v1/tenants", json=facts, headers={"Authorization": "Bearer from-the-file"}
                           ).status_code == 200
        assert client.post("/v1/tenants", json=facts, headers=AUTH).status_code == 403
    from policyhistory.service.serve import Settings, check

    check(Settings(db=tmp_path / "s.db", token="t"), "0.0.0.0")  # a token: any address
    with pytest.raises(ValueError, match="not a loopback address"):
        check(Settings(db=tmp_path / "s.db"), "192.168.1.10")
    check(Settings(db=tmp_path / "s.db"), "::1")


def test_a_job_the_run_refuses_fails_with_its_reason(server: Server, client: httpx.Client) -> None:
    name = "PSTN.calls.2022-06-30.csv"  # a Teams export has no tenant column, and the store knows two tenants
    files = [("calls", (name, (EXAMPLES / name).read_bytes(), "text/csv"))]
    response = client.post("/v1/jobs", files=files, headers=AUTH)
    assert response.status_code == 202
    job = wait_for_job(client, response.json()["id"])
    assert job["state"] == "failed"
    assert "has no tenant column and the store knows" in str(job["error"])
    assert not (server.db.with_name(server.db.name + ".jobs") / str(job["id"])).exists()
    assert client.get(f"/v1/jobs/{job['id']}/report").status_code == 409
