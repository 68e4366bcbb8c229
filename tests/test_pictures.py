"""The timeline and the audit report: self-contained HTML whose SVG structure tests can read back."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from policyhistory.cli import cli

SVG = "{http://www.w3.org/2000/svg}"
XHTML = "{http://www.w3.org/1999/xhtml}"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def render_timeline(tmp_path, known_at):
    out = tmp_path / "timeline.html"
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "timeline", "--output", str(out),
                                      "--known-at", known_at])
    assert 0 == result.exit_code, result.output
    return out.read_text(encoding="utf-8"), ET.parse(out).getroot()


def lane(root, key):
    [found] = [g for g in root.iter(f"{SVG}g") if g.get("data-key") == key]
    return found


def bars_of(root, key):
    return {rect.get("data-version"): rect for rect in lane(root, key).iter(f"{SVG}rect") if rect.get("data-version")}


def test_pictures_timeline_complimentary_period_two_beliefs(tmp_path):
    text, root = render_timeline(tmp_path, "2026-11-23")
    bars = bars_of(root, "audio_conferencing.complimentary_dial_out")
    first = bars["complimentary-dial-out-2018-first-belief"]
    later = bars["complimentary-dial-out-through-november-2019"]
    # Rows: one per recording date, 2017-11-28 (row 0), 2018-05-24 (row 1), ... 2021-04-07 (row 6).
    assert ("2018-01-22T00:00:00Z", "2018-07-01T00:00:00Z", "2018-05-24T00:00:00Z", "1") == (
        first.get("data-valid-from"), first.get("data-valid-to"), first.get("data-recorded-at"), first.get("data-row"))
    assert ("2019-12-01T00:00:00Z", "2021-04-07T00:00:00Z", "6") == (
        later.get("data-valid-to"), later.get("data-recorded-at"), later.get("data-row"))
    assert "bar overridden" == first.get("class") and "bar" == later.get("class")
    assert float(later.get("x")) == float(first.get("x"))  # same valid_from, drawn rows below
    assert float(later.get("width")) > float(first.get("width"))
    assert "overridden from 2021-04-07T00:00:00Z by complimentary-dial-out-through-november-2019" in first.find(
        f"{SVG}title").text
    labels = {t.get("data-label-of"): t.text for t in lane(root, "audio_conferencing.complimentary_dial_out")
              .iter(f"{SVG}text") if t.get("data-label-of")}
    assert "2018-05-24 complimentary, no cap" == labels["complimentary-dial-out-2018-first-belief"]
    assert labels["complimentary-dial-out-through-november-2019"].startswith(
        "2021-04-07 complimentary, 900 min/user")
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/", "")


def test_pictures_timeline_pale_only_over_the_overridden_span(tmp_path):
    # pool_alerts as first stated (2018-11-12, from the period's start, open) is restated by seed 002 from
    # 1 December 2019 only: before that, the 2018 version still answers and its bar stays solid.
    text, root = render_timeline(tmp_path, "2026-11-23")
    bar = bars_of(root, "pool_alerts")["pool-alerts-80-100-published-2018-11-12"]
    assert "bar partly-overridden" == bar.get("class")
    [span] = [r for r in lane(root, "pool_alerts").iter(f"{SVG}rect")
              if r.get("data-overridden-in") == "pool-alerts-80-100-published-2018-11-12"]
    assert ("2019-12-01T00:00:00Z", "") == (span.get("data-from"), span.get("data-to"))
    assert float(span.get("x")) > float(bar.get("x"))
    assert float(span.get("x")) + float(span.get("width")) == float(bar.get("x")) + float(bar.get("width"))
    assert "a later record answers over the hatched part" in text  # the legend


def test_pictures_timeline_as_known_in_2018_has_one_belief(tmp_path):
    _, root = render_timeline(tmp_path, "2018-06-01")
    keys = sorted(g.get("data-key") for g in root.iter(f"{SVG}g") if g.get("data-key"))
    assert ["audio_conferencing.complimentary_dial_out", "calling_plan.availability", "calling_plan.domestic",
            "calling_plan.domestic_120", "calling_plan.domestic_240", "calling_plan.international",
            "communications_credits", "dial_in", "minute_rounding", "zone_a"] == keys
    # One belief, as the English page stated it (2017-11-28) and restated by the French copy (2018-05-24) from
    # 2018-01-22 on.
    bars = bars_of(root, "audio_conferencing.complimentary_dial_out")
    assert {"complimentary-dial-out-through-june-2018-published-2017-11-28": "bar partly-overridden",
            "complimentary-dial-out-2018-first-belief": "bar"} == {k: v.get("class") for k, v in bars.items()}


def rerate_report(tmp_path):
    """The examples re-rated with --report: the report's path and its parsed page."""
    report = tmp_path / "report.html"
    result = CliRunner().invoke(cli, [
        "--db", str(tmp_path / "p.db"), "rerate", str(EXAMPLES / "PSTN.calls.2022-06-30.csv"),
        str(EXAMPLES / "calls.csv"), "--tenants", str(EXAMPLES / "tenants.csv"), "--licenses",
        str(EXAMPLES / "licenses.csv"), "--tenant", "contoso", "--report", str(report), "--known-at", "2026-11-23",
        "--output", str(tmp_path / "out.jsonl")])
    assert 0 == result.exit_code, result.output
    return report, ET.parse(report).getroot()


def table_after(root, heading):
    """The first table after the h2 of that text."""
    body = root.find(f"{XHTML}body")
    seen = False
    for element in body:
        if element.tag == f"{XHTML}h2":
            seen = element.text == heading
        elif seen and element.tag == f"{XHTML}table":
            return element
    raise AssertionError(f"no table after {heading!r}")


def test_pictures_rerate_report(tmp_path):
    report, root = rerate_report(tmp_path)
    charts = {(svg.get("data-tenant"), svg.get("data-pool")): svg for svg in root.iter(f"{SVG}svg")}
    october = [rect for rect in charts[("contoso", "audio_conferencing.dial_out_pool")].iter(f"{SVG}rect")
               if rect.get("data-month") == "2020-10"]
    assert [("720", "660")] == [(rect.get("data-capacity"), rect.get("data-used")) for rect in october]
    marks = [line.get("data-percent") for line in charts[("contoso", "audio_conferencing.dial_out_pool")]
             .iter(f"{SVG}line")]
    assert ["80", "100"] == marks
    text = report.read_text(encoding="utf-8")
    assert "Changed calls (7)" in text
    assert "billed charge 0.36 USD; now complimentary, 15 pool min, 0 credit min" in text


def test_pictures_timeline_before_anything_was_known(tmp_path):
    out = tmp_path / "timeline.html"
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "timeline", "--output", str(out),
                                      "--known-at", "2017-11-01"])
    assert 1 == result.exit_code
    assert ("no policy version was known at 2017-11-01T00:00:00Z; the first was recorded at 2017-11-28T22:11:00Z"
            in result.output)
    assert not out.exists()


def test_pictures_timeline_counts_the_keys_known_then(tmp_path):
    early = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "timeline", "--output",
                                     str(tmp_path / "a.html"), "--known-at", "2018-06-01"])
    late = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "timeline", "--output",
                                    str(tmp_path / "b.html"), "--known-at", "2026-11-23"])
    early_keys = int(early.output.split("timeline of ")[1].split()[0])
    late_keys = int(late.output.split("timeline of ")[1].split()[0])
    assert 0 < early_keys < late_keys
    assert "known at 2018-06-01T00:00:00Z" in early.output


def test_pictures_rerate_report_lists_the_first_changed_calls_and_counts_them_all(tmp_path, monkeypatch):
    """A large run's report keeps a bounded number of changed calls (memory, and a page a browser opens)
    and counts every change by kind."""
    monkeypatch.setattr("policyhistory._cli_rerate._REPORT_CHANGED_CALLS", 2)
    report, root = rerate_report(tmp_path)
    headings = [h.text for h in root.iter(f"{XHTML}h2")]
    # Issue 16 added the money, rejected-rows and anomaly sections.
    assert ["Totals", "Money per currency", "Money per tenant and month", "Calls with the largest charge differences",
            "Changes by kind", "Changed calls (7)", "Rejected rows by reason (0)", "Implied-rate anomalies",
            "Pools per tenant and month"] == headings
    kinds = [[td.text for td in tr.iter(f"{XHTML}td")] for tr in table_after(root, "Changes by kind").iter(
        f"{XHTML}tr")][1:]
    assert [["billed charged -> now complimentary", "3"], ["billed blocked -> now complimentary", "2"],
            ["billed charged -> now dial_out_pool", "2"]] == kinds
    listed = [row[2] for row in [[td.text for td in tr.iter(f"{XHTML}td")]
                                 for tr in table_after(root, "Changed calls (7)").iter(f"{XHTML}tr")][1:]]
    assert ["00000000-0000-0000-0000-000000000003", "00000000-0000-0000-0000-000000000004"] == listed
    assert 'The first 2 in input order; the output has every one ("changed": true).' in report.read_text(
        encoding="utf-8")
