"""Regenerate the example data: `python examples/make_examples.py` (deterministic).

A fictitious tenant, Contoso (US, Communications Credits set up), exported by the Teams PSTN usage report
(20-column layout), and Seoul Trading (KR, no credits: they cannot be set up there) in our own layout.
Calls span every policy era. What was billed (Charge, billed_*) is what an invoice issued on the first
day of the following month would have said with what was known then: for 2018 and 2019 calls, the
first belief about the complimentary period. Charges use an illustrative 0.024 USD per minute: no
per-minute rate is published in the sources, and this is not a Microsoft price.
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pendulum

import policyhistory
from policyhistory import Call, invoice_date
from policyhistory._layouts import OWN_COLUMNS, teams_row

HERE = Path(__file__).resolve().parent
RATE_PER_MINUTE = 0.024
TEAMS_COLUMNS = ["UsageId", "Call ID", "Conference ID", "User Location", "AAD ObjectId", "UPN", "User Display Name",
                 "Caller ID", "Call Type", "Number Type", "Domestic/International", "Destination Dialed",
                 "Destination Number", "Start Time", "End Time", "Duration Seconds", "Connection Fee", "Charge",
                 "Currency", "Capability"]

TENANTS = [
    ("contoso", "2018-01-22", "US", "true"),
    ("seoul", "2018-01-22", "KR", "false"),
]
LICENSES = [
    # tenant, valid_from, sku, usage location, purchased, assigned
    ("contoso", "2018-01-22", "MCOMEETADV", "US", 12, 4),
    ("contoso", "2018-01-22", "MCOMEETADV", "GB", 0, 5),
    ("contoso", "2018-01-22", "MCOMEETADV", "ZW", 0, 1),
    ("contoso", "2018-01-22", "MCOPSTNC", "US", 4, 4),
    ("contoso", "2018-01-22", "MCOPSTNC", "GB", 5, 5),
    ("contoso", "2018-01-22", "MCOPSTNC", "ZW", 1, 1),
    ("contoso", "2018-01-22", "MCOMEETACPEA", "DE", 2, 2),
    ("contoso", "2018-01-22", "MCOPSTNC", "DE", 2, 2),
    ("contoso", "2020-09-16", "MCOMEETADD_DIALOUT_US", "US", 2, 2),
    ("contoso", "2021-01-01", "MCOPSTN1", "US", 3, 3),
    ("contoso", "2021-01-01", "MCOPSTN1", "PR", 1, 1),
    ("seoul", "2018-01-22", "MCOMEETADV", "KR", 20, 20),
]

# (start, minutes, Teams call type, user location, capability, destination number, note)
CONTOSO_CALLS = [
    ("2018-05-28T14:00:00Z", 30, "conf_out", "US", "MCOMEETADD", "+33142685300", "complimentary, first belief"),
    ("2018-06-30T23:55:00Z", 5, "conf_out", "GB", "MCOMEETADD", "+442071234567", "last evening of June 2018"),
    ("2018-07-01T09:00:00Z", 15, "conf_out", "US", "MCOMEETADD", "+33142685300", "first day of 'standard terms'"),
    ("2018-09-15T09:00:00Z", 15, "conf_out", "US", "MCOMEETADD", "+33142685300", "the September 2018 dispute"),
    ("2019-06-12T16:00:00Z", 20, "conf_out", "US", "MCOMEETADD", "+263242700000", "Zimbabwe: credits always"),
    ("2019-11-30T23:30:00Z", 10, "conf_out", "GB", "MCOMEETADD", "+4930901820", "last complimentary day"),
    ("2019-12-01T00:10:00Z", 10, "conf_out", "GB", "MCOMEETADD", "+4930901820", "first day of the 60-minute pool"),
    ("2020-02-10T10:00:00Z", 4, "conf_out", "US", "MCOMEETADD", "+449012345678", "premium: never a pool"),
    ("2020-10-20T08:00:00Z", 480, "conf_out", "US", "MCOMEETADD", "+33142685300", "a day-long bridge"),
    ("2020-10-22T09:00:00Z", 180, "conf_out", "GB", "MCOMEETADD", "+442071234567", "after the basis switch"),
    ("2021-02-03T15:00:00Z", 60, "conf_out", "US", "MCOMEETADD_DIALOUT_US", "+14165550123", "US/CA add-on"),
    ("2021-03-09T11:00:00Z", 10, "conf_out", "ZW", "MCOMEETADD", "+14155552671", "Zimbabwe organizer, US number"),
    ("2021-04-10T12:00:00Z", 20, "conf_out", "DE", "MCOMEETACPEA", "+33142685300", "pay-per-minute organizer"),
    ("2021-05-05T13:00:00Z", 45, "conf_in", "US", "MCOMEETADD", "+12065550100", "dial-in to a toll number"),
    ("2021-06-15T10:00:00Z", 12, "conf_out", "US", "MCOMEETADD", "+33 1 ** ** ** **", "masked number"),
    ("2021-06-20T10:00:00Z", 3, "conf_out", "US", "MCOMEETADD", "+18005551234", "toll-free dial-out"),
    ("2022-03-10T17:00:00Z", 25, "user_out", "US", "MCOPSTN1", "+17875551234", "Calling Plan, US to PR"),
    ("2022-03-11T17:00:00Z", 10, "user_out", "US", "MCOPSTN1", "+33142685300", "Domestic plan calling abroad"),
]

# (start, minutes, destination, note)
SEOUL_CALLS = [
    ("2019-03-05T01:00:00Z", 30, "+33142685300", "complimentary period, as later known"),
    ("2020-06-15T02:00:00Z", 40, "+442071234567", "RU/KR/TW exception, unknown at invoice time"),
    ("2021-06-15T02:00:00Z", 25, "+14155552671", "the exception, known"),
]


def billed(store: policyhistory.Store, calls: list[Call]) -> list[policyhistory.Rating]:
    """Rate month by month, each month with what was known on its invoice date."""
    ratings: dict[str, policyhistory.Rating] = {}
    months: dict[str, list[Call]] = {}
    for call in calls:
        months.setdefault(call.start.format("YYYY-MM"), []).append(call)
    for month_calls in months.values():
        rater = store.rater(known_at=invoice_date(month_calls[0].start))
        for call, rating in zip(month_calls, rater.rate_all(month_calls), strict=True):
            ratings[call.call_id] = rating
    return [ratings[call.call_id] for call in calls]


def main() -> None:
    with (HERE / "tenants.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tenant_id", "valid_from", "country", "communications_credits"])
        writer.writerows(TENANTS)
    with (HERE / "licenses.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tenant_id", "valid_from", "sku", "usage_location", "purchased", "assigned"])
        writer.writerows(LICENSES)
    store = policyhistory.open()
    store.load_tenant_facts(HERE / "tenants.csv", HERE / "licenses.csv")
    from policyhistory._rerate import infer_licenses

    teams_rows = []
    contoso_calls = []
    for index, (start, minutes, call_type, location, capability, number, note) in enumerate(CONTOSO_CALLS):
        call_id = str(uuid.UUID(int=index + 1))
        row = {"UsageId": str(uuid.UUID(int=1000 + index)), "Call ID": call_id, "Conference ID": "",
               "User Location": location, "AAD ObjectId": str(uuid.UUID(int=5000 + index)),
               "UPN": f"user{index}@contoso.example", "User Display Name": note, "Caller ID": "+14255550100",
               "Call Type": call_type, "Number Type": "", "Domestic/International": "",
               "Destination Dialed": "France" if "*" in number else "", "Destination Number": number,
               "Start Time": start, "End Time": pendulum.parse(start).add(minutes=minutes).to_iso8601_string(),
               "Duration Seconds": minutes * 60, "Connection Fee": "0", "Capability": capability}
        parsed = teams_row(row, "contoso")
        call = Call(**parsed.fields)
        snapshot = store.tenant_index.snapshot("contoso", call.start)
        contoso_calls.append(Call(**{**parsed.fields, "licenses": infer_licenses(
            snapshot, call.usage_location, call.licenses, parsed.capability)}))
        teams_rows.append(row)
    for row, rating in zip(teams_rows, billed(store, contoso_calls), strict=True):
        row["Charge"] = f"{rating.credit_minutes * RATE_PER_MINUTE:.3f}"
        row["Currency"] = "USD"
    with (HERE / "PSTN.calls.2022-06-30.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=TEAMS_COLUMNS)
        writer.writeheader()
        writer.writerows(teams_rows)

    seoul_calls = [Call(call_id=f"seoul-{index + 1}", tenant_id="seoul", start=start, duration_seconds=minutes * 60,
                        call_type="conference_dial_out", destination=number, user_id="organizer@seoul.example",
                        usage_location="KR", licenses=("audio_conferencing",))
                   for index, (start, minutes, number, _) in enumerate(SEOUL_CALLS)]
    with (HERE / "calls.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=OWN_COLUMNS)
        writer.writeheader()
        for call, rating in zip(seoul_calls, billed(store, seoul_calls), strict=True):
            writer.writerow({"call_id": call.call_id, "tenant_id": call.tenant_id,
                             "start": call.start.to_iso8601_string(), "duration_seconds": call.duration_seconds,
                             "call_type": call.call_type, "organizer_id": call.user_id,
                             "organizer_usage_location": call.usage_location,
                             "organizer_licenses": ";".join(call.licenses), "destination": call.destination,
                             "billed_outcome": rating.outcome, "billed_minutes": rating.credit_minutes,
                             "billed_charge": f"{rating.credit_minutes * RATE_PER_MINUTE:.3f}", "currency": "USD"})


if __name__ == "__main__":
    main()
