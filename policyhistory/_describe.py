"""Plain words for policy versions: what a table cell, an explanation or a diff says about one version."""

from __future__ import annotations

from typing import Any

from . import _records
from ._convert import converter
from ._instant import format_instant
from ._policy import (
    CallingPlanAvailabilityParams,
    CallingPlanParams,
    CommunicationsCreditsParams,
    ComplimentaryDialOutParams,
    CountryListParams,
    DialInParams,
    DialOutPoolParams,
    MinuteRoundingParams,
    NumberTypeWarningParams,
    PolicyVersion,
    PoolAlertsParams,
    RatingBasisParams,
    UsCaDialOutParams,
)
from ._rating import Rating


def _premium(allowed: bool) -> str:
    return "premium numbers included" if allowed else "non-premium numbers only"


def describe_params(version: PolicyVersion) -> str:
    """One line saying what the version decides, with its numbers."""
    p = version.params
    if not version.in_force:
        return "not in force (retraction)"
    match p:
        case CountryListParams():
            return f"{len(p.countries)} countries: {' '.join(p.countries)}"
        case ComplimentaryDialOutParams():
            cap = (f"{p.minutes_per_user} min/user/month pooled per tenant on {p.pool_basis} licenses"
                   if p.minutes_per_user is not None else "no minute cap")
            who = f"; tenants in {', '.join(p.tenant_countries)} only" if p.tenant_countries else ""
            return f"complimentary dial-out to {p.destinations}, {cap}, {_premium(p.premium_numbers)}, " \
                   f"licenses {', '.join(p.licenses)}{who}"
        case DialOutPoolParams():
            return f"dial-out pool {p.minutes_per_user} min/user/month to {p.destinations}, pool basis " \
                   f"{p.pool_basis} licenses, {_premium(p.premium_numbers)}, licenses {', '.join(p.licenses)}"
        case UsCaDialOutParams():
            return f"unlimited (fair use) dial-out to {', '.join(p.countries)} with {p.license}, no pool; needs " \
                   f"one of {', '.join(p.prerequisite_licenses)}"
        case CallingPlanParams():
            minutes = "; ".join(
                f"{'/'.join(a.countries)}: {a.domestic_minutes} domestic"
                + (f" or {a.international_minutes} international" if a.international_minutes else "")
                for a in p.allowances
            )
            where = f"; sold where {p.availability} says ('*': every other such country)" if p.availability else ""
            border = "; domestic across " + ", ".join("/".join(g) for g in p.domestic_groups) if p.domestic_groups \
                else ""
            special = f"; {'/'.join(p.special_number_types)} numbers {p.special_numbers_default}" + "".join(
                f", {'/'.join(r.countries)} {'/'.join(r.number_types)} {r.treatment}" for r in p.special_numbers)
            pooled = f"pooled per usage location on {p.pool_basis} licenses" if p.pooled else "not pooled (per user)"
            return f"{p.license} ({p.scope}), per user per month {minutes}; {pooled}{where}{border}{special}"
        case CallingPlanAvailabilityParams():
            return "Calling Plans sold in " + "; ".join(
                f"{' '.join(entry.countries)} from {entry.since.isoformat()}" for entry in p.sold)
        case CommunicationsCreditsParams():
            setup = "tenant set-up and " if p.tenant_setup_required else ""
            return f"per-minute billing; needs {setup}the {p.license} license, otherwise the call is blocked"
        case MinuteRoundingParams():
            return f"each call rounded {p.mode} to {p.unit_seconds} s"
        case PoolAlertsParams():
            return "alerts at " + ", ".join(f"{t} %" for t in p.thresholds_percent)
        case NumberTypeWarningParams():
            return f"warning on {', '.join(p.call_types)} to {', '.join(p.number_types)}: {p.warning}"
        case RatingBasisParams():
            return f"rated by {p.basis}"
        case DialInParams():
            return f"dial-in free on toll numbers; {', '.join(p.credit_number_types)} on Communications Credits"
    return str(p)


def short_description(version: PolicyVersion) -> str:
    """A few words saying what the version decides, for a bar's label in the timeline."""
    p = version.params
    if not version.in_force:
        return "withdrawn: not in force"
    match p:
        case ComplimentaryDialOutParams():
            cap = "no cap" if p.minutes_per_user is None else f"{p.minutes_per_user} min/user pool, {p.pool_basis}"
            who = f", {'/'.join(p.tenant_countries)} tenants" if p.tenant_countries else ""
            return f"complimentary, {cap}{who}"
        case DialOutPoolParams():
            premium = "" if not p.premium_numbers else ", premium too"
            return f"{p.minutes_per_user} min/user pool, {p.pool_basis}{premium}"
        case UsCaDialOutParams():
            return f"unlimited to {'/'.join(p.countries)}"
        case CallingPlanParams():
            minutes = ", ".join(
                f"{'elsewhere' if a.countries == ('*',) else '/'.join(a.countries)} {a.domestic_minutes}"
                + (f"|{a.international_minutes}" if a.international_minutes else "") for a in p.allowances)
            return minutes + ("" if p.pooled else ", per user")
        case CallingPlanAvailabilityParams():
            newest = p.sold[-1]
            return f"sold in {len(p.countries())} countries (+{'/'.join(newest.countries)} {newest.since})"
        case CommunicationsCreditsParams():
            return "per minute on credits"
        case MinuteRoundingParams():
            return f"round {p.mode} to {p.unit_seconds} s"
        case PoolAlertsParams():
            return "alerts at " + "/".join(str(t) for t in p.thresholds_percent) + " %"
        case CountryListParams():
            return f"{len(p.countries)} countries"
        case NumberTypeWarningParams():
            return f"warning: {'/'.join(p.number_types)}"
        case RatingBasisParams():
            return f"rated by {p.basis}"
        case DialInParams():
            return f"dial-in free; {'/'.join(p.credit_number_types)} on credits"
    return describe_params(version)


def version_record(version: PolicyVersion) -> dict[str, Any]:
    """A version as plain JSON-ready data (the same shape the catalog files use)."""
    record: dict[str, Any] = converter.unstructure(version)
    record["valid_from"] = format_instant(version.valid_from)
    record["valid_to"] = format_instant(version.valid_to) if version.valid_to else None
    return record


def source_text(version: PolicyVersion) -> str:
    source = version.source
    published = source.published.isoformat() if source.published else "undated"
    return f"{source.document}, {published}" + (f", seed {source.seed}" if source.seed else "")


def catalog_markdown(versions: list[PolicyVersion]) -> str:
    """policies/README.md: every record with its valid interval, recorded date and source, by key."""
    lines = [
        "# The bundled catalog",
        "",
        "Generated by `policyhistory catalog --output policies/README.md` from the TOML files in this folder;",
        "a test fails when it is stale. One row per version; a later-recorded version of a key overrides",
        "earlier ones over the valid time it covers, from its recorded date on.",
        "",
    ]
    for key in sorted({version.key for version in versions}):
        lines += [f"## `{key}`", "", "| version | valid from | valid to | recorded | decides | source |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for v in sorted((v for v in versions if v.key == key), key=lambda v: (v.recorded_at, v.valid_from, v.id)):
            cells = [f"`{v.id}`", v.valid_from.to_date_string(),
                     v.valid_to.to_date_string() if v.valid_to else "open", v.recorded_at.to_date_string(),
                     describe_params(v), source_text(v)]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def rating_record(rating: Rating) -> dict[str, Any]:
    """A rating as the one output record (see _records): the fields of a re-rating's record, then as_of,
    known_at and the trace."""
    return _records.rating_record(rating)
