"""Microsoft Graph call records and the Direct Routing export, as input layouts.

- `graph`: the rows of callRecords getPstnCalls (pstnCallLogRow): the response itself (`{"value": [...],
  "@odata.nextLink": ...}`), a JSON array or JSON Lines of its rows, or CSV with its property names (as the
  Microsoft 365 CLI's `teams report pstncalls` and PowerShell's `Export-Csv` write them). Keyed on `id`.
- `graph_direct_routing`: the rows of getDirectRoutingCalls (directRoutingLogRow). Keyed on `id`.
- `direct_routing`: the admin center's Direct Routing export (`DirectRouting.calls.{date}.csv`). Keyed on
  its Correlation ID.
Direct Routing calls are carried by the customer's own carrier: rated `not_microsoft_billed` (see _exempt).

GRAPH_COLUMNS says which of our fields each property fills; the readers are pure functions of a row's values.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from ._layouts import CallFields, LayoutReader, UsageLayout, _text, teams_start
from ._tenants import SKU_ALIASES

GRAPH_COLUMNS = {
    # pstnCallLogRow property -> what we read it as (README: "Microsoft Graph call records").
    "id": "usage_id (the key: unique per row)",
    "callId": "call_id (not unique: a forwarded leg shares it)",
    "userPrincipalName": "user_id",
    "startDateTime": "start (UTC; 7-digit fractions read to the microsecond)",
    "duration": "duration_seconds",
    "charge": "billed charge (with connectionCharge)",
    "connectionCharge": "billed charge (added to charge)",
    "currency": "billed currency",
    "callType": "call_type",
    "calleeNumber": "destination",
    "usageCountryCode": "usage_location",
    "otherPartyCountryCode": "destination country when calleeNumber is masked",
    "destinationName": "destination country (exact name) when calleeNumber is masked and no country code",
    "destinationContext": "informational (Domestic / International)",
    "inventoryType": "number type when it names one (see _countries)",
    "licenseCapability": "licenses (the Capability) and billed outcome",
    "operator": "carrier: an operator other than Microsoft is Operator Connect",
    "callDurationSource": "carrier: `operator` is Operator Connect",
    "conferenceId": "informational",
}

GRAPH_DIRECT_ROUTING_COLUMNS = {
    "id": "usage_id (the key)",
    "correlationId": "call_id",
    "userPrincipalName": "user_id",
    "startDateTime": "start",
    "duration": "duration_seconds",
    "callType": "call_type (dr_* / Byot*: direct routing)",
    "calleeNumber": "destination",
}

DIRECT_ROUTING_COLUMNS = {
    # The admin center's Direct Routing export; names matched without regard to case.
    "Correlation ID": "call_id and usage_id (the key)",
    "Start time": "start",
    "Duration (seconds)": "duration_seconds (also: Duration)",
    "Call type": "call_type",
    "Callee Number": "destination",
    "UPN": "user_id (also: Username, User principal name)",
}

_URI_PARTS = re.compile(r"^(?:tel:|sip:)|[;@].*$", re.IGNORECASE)


def direct_routing_call_type(value: object) -> str:
    """Our call type for a Direct Routing call type: dr_in*, ByotIn* inbound; dr_out*, ByotOut* outbound;
    any emergency type an emergency call. Anything else is left for call_type to judge."""
    text = _text(value)
    lower = text.lower()
    if "emergency" in lower:
        return "emergency"
    if lower.startswith(("dr_in", "byotin")):
        return "pstn_inbound"
    if lower.startswith(("dr_out", "byotout")):
        return "pstn_outbound"
    return text


def direct_routing_number(value: object) -> str:
    """The number of a Direct Routing row: "E.164 format, but might include other data" (Graph), such as a
    tel: or sip: prefix, a ;ext= or @host suffix."""
    return _URI_PARTS.sub("", _text(value))


class GraphLayout(UsageLayout):
    """getPstnCalls rows (pstnCallLogRow); no tenant column."""

    roles: ClassVar[dict[str, str]] = {
        "number": "calleeNumber", "external_country": "otherPartyCountryCode", "dialed": "destinationName",
        "number_type": "inventoryType", "capability": "licenseCapability", "charge": "charge",
        "connection_fee": "connectionCharge", "currency": "currency", "operator": "operator",
        "duration_source": "callDurationSource"}
    names = tuple(GRAPH_COLUMNS)
    call_id_column = "callId"
    field_columns: ClassVar[dict[str, str]] = {
        "call_id": "callId", "usage_id": "id", "start": "startDateTime", "duration_seconds": "duration",
        "call_type": "callType", "destination": "calleeNumber", "usage_location": "usageCountryCode",
        "user_id": "userPrincipalName"}

    def read(self, values: list[Any], tenant_id: str | None) -> CallFields:
        at = self._at
        destination, capability, billed, carrier = self.usage(values)
        usage_id = _text(values[at["id"]]) or None
        location = _text(values[at["usageCountryCode"]]).upper()
        return (_text(values[at["callId"]]) or usage_id, tenant_id, teams_start(values[at["startDateTime"]]),
                values[at["duration"]], values[at["callType"]], destination,
                values[at["userPrincipalName"]] or "", location or None,
                (SKU_ALIASES[capability],) if capability in SKU_ALIASES else (), billed, capability, True,
                usage_id, carrier)


class GraphDirectRoutingLayout(LayoutReader):
    """getDirectRoutingCalls rows (directRoutingLogRow): calls through the customer's own carrier."""

    names = tuple(GRAPH_DIRECT_ROUTING_COLUMNS)
    call_id_column = "correlationId"
    needs_tenant = True
    field_columns: ClassVar[dict[str, str]] = {
        "call_id": "correlationId", "usage_id": "id", "start": "startDateTime", "duration_seconds": "duration",
        "call_type": "callType", "destination": "calleeNumber", "user_id": "userPrincipalName"}

    def read(self, values: list[Any], tenant_id: str | None) -> CallFields:
        at = self.at
        usage_id = _text(values[at("id")]) or None
        return (_text(values[at("correlationId")]) or usage_id, tenant_id,
                teams_start(values[at("startDateTime")]), values[at("duration")],
                direct_routing_call_type(values[at("callType")]), direct_routing_number(values[at("calleeNumber")]),
                values[at("userPrincipalName")] or "", None, (), None, None, False, usage_id, "direct_routing")


_DIRECT_ROUTING_ALIASES = {
    "Correlation ID": ("correlation id",),
    "Start time": ("start time", "start time (utc)"),
    "Duration (seconds)": ("duration (seconds)", "duration seconds", "duration"),
    "Call type": ("call type",),
    "Callee Number": ("callee number",),
    "UPN": ("upn", "username", "user principal name", "user name"),
}


class DirectRoutingLayout(LayoutReader):
    """The admin center's Direct Routing export (DirectRouting.calls.{date}.csv); no tenant column."""

    names = tuple(DIRECT_ROUTING_COLUMNS)
    call_id_column = "Correlation ID"
    needs_tenant = True
    field_columns: ClassVar[dict[str, str]] = {
        "call_id": "Correlation ID", "start": "Start time", "duration_seconds": "Duration (seconds)",
        "call_type": "Call type", "destination": "Callee Number", "user_id": "UPN"}

    def __init__(self, columns: list[str] | None = None) -> None:
        super().__init__(columns)
        lower = {column.strip().lower(): index for index, column in reversed(list(enumerate(self.columns)))}
        self._at = {name: next((lower[alias] for alias in aliases if alias in lower), self._width)
                    for name, aliases in _DIRECT_ROUTING_ALIASES.items()}
        self.call_id_index = self._at["Correlation ID"]

    def read(self, values: list[Any], tenant_id: str | None) -> CallFields:
        at = self._at
        key = _text(values[at["Correlation ID"]]) or None
        return (key, tenant_id, teams_start(values[at["Start time"]]), values[at["Duration (seconds)"]],
                direct_routing_call_type(values[at["Call type"]]), direct_routing_number(values[at["Callee Number"]]),
                values[at["UPN"]] or "", None, (), None, None, False, key, "direct_routing")


def is_direct_routing_header(names: set[str]) -> bool:
    """The Direct Routing export's header: a Correlation ID and a SIP code or SBC column, and no Charge."""
    lower = {name.strip().lower() for name in names}
    return "correlation id" in lower and "charge" not in lower and \
        bool(lower & {"sbc fqdn", "final sip code", "final sip phrase", "callee number"})
