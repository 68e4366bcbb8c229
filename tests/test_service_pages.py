"""The pages escape everything they show: `<script>` in call ids, tenant ids, UPNs and catalog notes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from .service_server import AUTH, FRANCE_CALL, Server, load_example_tenants, running, wait_for_job

EVIL = "<script>alert(1)</script>"
TENANT = f"t{EVIL}"
CALL_ID = f"call{EVIL}"
UPN = f"user{EVIL}@example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("pages") / "store.db"
    with running(db) as started:
        yield started


@pytest.fixture(scope="module")
def evil_job(server: Server) -> str:
    with server.client() as client:
        load_example_tenants(client)
        facts = {"tenants": [{"tenant_id": TENANT, "valid_from": "2018-01-22", "country": "US",
                              "communications_credits": "true"}],
                 "licenses": [{"tenant_id": TENANT, "valid_from": "2018-01-22", "sku": "MCOMEETADV",
                               "usage_location": "US", "purchased": "5", "assigned": "5"}]}
        assert client.post("/v1/tenants", json=facts, headers=AUTH).status_code == 200
        notes = {"id": "evil-notes", "key": "test.evil", "kind": "minute_rounding",
                 "valid_from": "2018-01-01T00:00:00Z", "recorded_at": "2018-01-01T00:00:00Z",
                 "params": {"unit_seconds": 60, "mode": "up"}, "notes": f"notes {EVIL}",
                 "source": {"document": f"doc {EVIL}", "section": EVIL, "quote": EVIL, "published": "2018-01-01",
                            "url": "javascript:alert(1)"}}
        assert client.post("/v1/versions", json=[notes], headers=AUTH).status_code == 200
        header = ("call_id,tenant_id,start,duration_seconds,call_type,organizer_id,organizer_usage_location,"
                  "organizer_licenses,destination,billed_outcome,billed_minutes,billed_charge,currency\n")
        rows = [f'"{CALL_ID}","{TENANT}",2018-09-15T09:00:00Z,900,conf_out,"{UPN}",US,MCOMEETADV,+33142685300,'
                "communications_credits,15,0.36,USD\n",
                f'"{CALL_ID}-2","{TENANT}",2018-09-16T09:00:00Z,60,conf_out,"{UPN}",US,MCOMEETADV,+33142685300,'
                "blocked,0,0,USD\n"]
        files = [("calls", (f"{EVIL}.csv", (header + "".join(rows)).encode(), "text/csv"))]
        response = client.post("/v1/jobs", files=files, data={"known_at": "2018-10-01"}, headers=AUTH)
        assert response.status_code == 202
        job = wait_for_job(client, response.json()["id"])
        assert job["state"] == "done", job
        assert job["counts"]["changed"] >= 1  # type: ignore[index]
        return str(job["id"])


def assert_escaped(page: httpx.Response, *shown: str) -> None:
    assert page.headers["content-type"].startswith("text/html"), page.text
    assert "<script" not in page.text.lower(), page.url
    assert "javascript:" not in page.text
    for text in shown:
        assert text.replace("<", "&lt;").replace(">", "&gt;") in page.text, (page.url, text)


def test_every_page_escapes_what_it_shows(server: Server, evil_job: str) -> None:
    with server.client() as client:
        call_page = f"/jobs/{evil_job}/call?call_id={quote(CALL_ID, safe='')}"
        pages = {
            "/": [],
            f"/jobs/{evil_job}": [CALL_ID, TENANT],
            f"/jobs/{evil_job}/report": [CALL_ID],
            f"/v1/jobs/{evil_job}/report": [CALL_ID],
            call_page: [CALL_ID, TENANT, UPN],
            f"{call_page}&billed_at=2018-10-01&known_at=2018-06-01": [CALL_ID, TENANT, UPN],
            "/policies?as_of=2018-09-15": [f"notes {EVIL}", f"doc {EVIL}"],
            "/timeline": [],
            "/dispute": [],
            "/dispute?call=" + quote(json.dumps({**FRANCE_CALL, "call_id": CALL_ID, "tenant_id": TENANT,
                                                 "user_id": UPN})): [CALL_ID, TENANT, UPN],
            "/dispute?call=" + quote(EVIL): [],  # not JSON: the error quotes it
        }
        for path, shown in pages.items():
            page = client.get(path)
            assert page.status_code in (200, 422), (path, page.status_code, page.text[:300])
            assert_escaped(page, *shown)
        posted = client.post("/v1/explain", json={"job": evil_job, "call_id": CALL_ID},
                             headers={"Accept": "text/html"})
        assert posted.status_code == 200
        assert_escaped(posted, CALL_ID, TENANT, UPN)
        record = client.post("/v1/explain", json={"job": evil_job, "call_id": CALL_ID}).json()
        assert record["now"]["rating"]["call_id"] == CALL_ID  # JSON carries the value itself


def test_the_job_page_shows_progress_then_totals(server: Server, evil_job: str) -> None:
    with server.client() as client:
        page = client.get(f"/jobs/{evil_job}").text
    assert '<progress id="progress" max="1" value="1">' in page
    assert 'http-equiv="refresh"' not in page  # it stops reloading once the job is done
    assert "The audit report" in page


def test_the_home_page_looks_a_call_up(server: Server, evil_job: str) -> None:
    with server.client() as client:
        found = client.get("/lookup", params={"job": evil_job, "call_id": CALL_ID}, follow_redirects=True)
        assert found.status_code == 200 and "Billed, then, now" in found.text
        missing = client.get("/lookup", params={"job": evil_job, "call_id": "nope"}, follow_redirects=True)
        assert missing.status_code == 404 and "is not in the job" in missing.text


def test_pages_print(server: Server, tmp_path: Path) -> None:
    with server.client() as client:
        page = client.get("/policies", params={"as_of": "2018-09-15"}).text
    assert "@media print" in page and "header, form, .no-print { display: none; }" in page
    assert "http://" not in page.replace('http-equiv', '') and "https://" not in page  # no CDN, nothing fetched
