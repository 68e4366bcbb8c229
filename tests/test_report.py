"""The audit report a finance team prints: manifest header, money totals, rejected rows grouped by reason with
the fix, implied-rate anomalies, and pool charts on a continuous month axis with a legend."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from policyhistory.cli import cli

SVG = "{http://www.w3.org/2000/svg}"
XHTML = "{http://www.w3.org/1999/xhtml}"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def report(tmp_path, calls, rates=True):
    db = str(tmp_path / "p.db")
    if rates:
        assert 0 == CliRunner().invoke(cli, ["--db", db, "load", "--rates", str(EXAMPLES / "ratecard.csv")]).exit_code
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--db", db, "rerate", str(EXAMPLES / "PSTN.calls.2022-06-30.csv"), str(calls),
                                      "--tenants", str(EXAMPLES / "tenants.csv"), "--licenses",
                                      str(EXAMPLES / "licenses.csv"), "--tenant", "contoso", "--known-at",
                                      "2026-11-23", "--report", str(out), "--output", str(tmp_path / "out.jsonl")])
    assert result.exit_code in (0, 3), result.output
    return ET.parse(out).getroot()


def section(root, heading):
    """The elements between the h2 of that text and the next h2."""
    found, inside = [], False
    for element in root.find(f"{XHTML}body"):
        if element.tag == f"{XHTML}h2":
            if inside:
                break
            inside = (element.text or "").startswith(heading)
        elif inside:
            found.append(element)
    return found


def rows(table):
    return [["".join(td.itertext()) for td in tr.iter(f"{XHTML}td")] for tr in table.iter(f"{XHTML}tr")][1:]


def test_report_groups_rejected_rows_by_reason_with_the_fix(tmp_path):
    calls = tmp_path / "calls.csv"
    lines = (EXAMPLES / "calls.csv").read_text(encoding="utf-8").splitlines()
    lines += [f"broken-{n},nobody,2020-06-1{n}T02:00:00Z,60,conference_dial_out,o,KR,audio_conferencing,FR,,,,"
              for n in range(7)]
    lines.append("naive-1,seoul,2020-06-15T02:00:00,60,conference_dial_out,o,KR,audio_conferencing,FR,,,,")
    calls.write_text("\n".join(lines) + "\n", encoding="utf-8")
    root = report(tmp_path, calls)
    [table] = [e for e in section(root, "Rejected rows by reason (8)") if e.tag == f"{XHTML}table"]
    groups = rows(table)
    assert ["7", "no tenant facts for '...' in force at <instant>"] == groups[0][:2]
    assert groups[0][2].startswith("Load the tenant's facts (policyhistory load --tenants T --licenses L)")
    first = [div.text for div in table.iter(f"{XHTML}div")][:5]
    assert 5 == len(first) and first[0].startswith("calls.csv:5 broken-0: no tenant facts for 'nobody'")
    assert "1" == groups[1][0] and "Give the start a UTC offset" in groups[1][2]


def test_report_money_manifest_and_continuous_month_axis(tmp_path):
    root = report(tmp_path, EXAMPLES / "calls.csv")
    manifest = {tr.find(f"{XHTML}th").text: tr.find(f"{XHTML}td").text
                for tr in root.find(f"{XHTML}body").find(f"{XHTML}table").iter(f"{XHTML}tr")}
    assert "2026-11-23T00:00:00Z" == manifest["known at"] and manifest["run"]
    [currency] = [e for e in section(root, "Money per currency") if e.tag == f"{XHTML}table"]
    assert [["USD", "3.936", "21", "0.696", "20", "2.76", "20", "1"]] == rows(currency)
    [tenant_months] = [e for e in section(root, "Money per tenant and month") if e.tag == f"{XHTML}table"]
    assert ["contoso", "2021-04", "USD", "1", "0.48", "0.4", "0.08", "0", "0"] in rows(tenant_months)
    [top] = [e for e in section(root, "Calls with the largest charge differences") if e.tag == f"{XHTML}table"]
    assert ("00000000-0000-0000-0000-00000000000a", "1.44 USD") == (rows(top)[0][0], rows(top)[0][6])
    # Months on a continuous axis: the dial-out pool's months 2019-12 .. 2021-06, those without calls empty.
    [chart] = [svg for svg in root.iter(f"{SVG}svg") if svg.get("data-pool") == "audio_conferencing.dial_out_pool"]
    months = [(rect.get("data-month"), rect.get("data-empty") == "true") for rect in chart.iter(f"{SVG}rect")
              if rect.get("data-month")]
    assert 19 == len(months)
    assert ("2019-12", False) == months[0] and ("2020-01", True) == months[1] and ("2020-10", False) == months[10]
    assert 15 == sum(empty for _, empty in months)
    legend = "".join(root.find(f"{XHTML}body").find(f".//{XHTML}div[@class='legend-box']").itertext())
    for words in ("below capacity", "at or over capacity (hatched)", "month without calls", "80 % of capacity",
                  "100 % of capacity"):
        assert words in legend
