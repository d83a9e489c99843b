"""a2. The income-support e-service played as Open ePlatform (Nordic Peak's platform): REST XML and SOAP.

The same applications as ``/eservice`` (one municipality's sandbox plays both; a
municipality configures one), in the shapes of the real platform as Sundsvall's
integration uses it (github.com/Sundsvallskommun/api-service-oep-integrator)::

    GET  /oep/api/instanceapi/getinstances/family/{familyID}/{status}   <FlowInstances> (404 when none)
    GET  /oep/api/instanceapi/getinstance/{id}/xml                      <FlowInstance> (ISO-8859-1)
    GET  /oep/api/instanceapi/getstatus/{id}                            <Status>
    GET  /oep/api/fileuploadqueryapi/getfile/{id}/{queryID}/{fileID}    the file (a small PDF)
    GET  /oep/api/messageapi/getmessages/flowinstance/{id}              <Messages>
    POST /oep/api/callback   SOAP 1.1: setStatus, addMessage, confirmDelivery (faults: FlowInstanceNotFound,
                             StatusNotFound)

Flow instance ids are ``FLOW_ID_BASE + n`` for the n-th application; the form's query names
are those Ronney reads (``robots/ronney/oep.py``, ``FORM``). A complement request in the
JSON e-service is a case worker's message here, its arrival the applicant's answer with an
attachment. ``POST /admin/oep/instances/{id}/malformed`` makes one instance's XML
unreadable (for tests of a client that must lose nothing).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from defusedxml import ElementTree as SafeET
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from sandbox.state import TZ, SandboxState, get_state

__all__ = ["FAMILY_ID", "FLOW_ID_BASE", "OepStore", "mark_malformed", "router"]

SYSTEM = "oep"
FAMILY_ID = 4101
FLOW_ID = 9101
FLOW_ID_BASE = 100000
FLOWINSTANCE_NS = "http://www.oeplatform.org/version/2.0/schemas/flowinstance"
CALLBACK_NS = "http://www.oeplatform.org/version/1.0/schemas/integration/callback"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
ENCODING = "ISO-8859-1"
STATUSES = {
    "submitted": (5101, "Inskickat"),
    "awaiting_complement": (5102, "Väntar på komplettering"),
    "approved": (5103, "Beviljad"),
    "partially_approved": (5104, "Delvis beviljad"),
    "rejected": (5105, "Avslagen"),
}
_STATUS_BY_NAME = {name: (state, number) for state, (number, name) in STATUSES.items()}
_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@dataclass
class OepStore:
    """What was written through the callback: statuses, messages, deliveries; and planted faults."""

    statuses: dict[int, str] = field(default_factory=dict)  # flow instance → status name
    messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    deliveries: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    malformed: set[int] = field(default_factory=set)
    next_id: int = 1000


def _store(state: SandboxState) -> OepStore:
    return state.store(SYSTEM, OepStore)


def _apps(state: SandboxState) -> dict[int, dict[str, Any]]:
    index: dict[int, dict[str, Any]] = state.store(
        "oep.index", lambda: {FLOW_ID_BASE + n + 1: a for n, a in enumerate(state.data.applications)}
    )
    return index


def mark_malformed(state: SandboxState, flow_instance_id: int) -> None:
    """Serve a truncated XML for this flow instance from now on."""
    if flow_instance_id not in _apps(state):
        raise KeyError(flow_instance_id)
    _store(state).malformed.add(flow_instance_id)


def _oep_time(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(TZ).strftime("%Y-%m-%d %H:%M")


def _header_time(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(TZ).strftime("%Y-%m-%dT%H:%M:%S")


def _status_name(state: SandboxState, number: int, app: dict[str, Any]) -> str:
    own = _store(state).statuses.get(number)
    if own is not None:
        return own
    return STATUSES.get(app["status"], STATUSES["submitted"])[1]


def _xml(element: ET.Element) -> Response:
    body = ET.tostring(element, encoding=ENCODING, xml_declaration=True)
    return Response(body, media_type=f"text/xml; charset={ENCODING}")


def _sub(parent: ET.Element, name: str, value: Any = None, ns: str | None = None) -> ET.Element:
    node = ET.SubElement(parent, f"{{{ns}}}{name}" if ns else name)
    if value is not None:
        node.text = str(value)
    return node


def _not_found() -> Response:
    return Response("<error>Not found</error>", status_code=404, media_type=f"text/xml; charset={ENCODING}")


# --- the form --------------------------------------------------------------------------------


def _person(values: ET.Element, name: str, person: dict[str, Any], **extra: Any) -> ET.Element:
    n = FLOWINSTANCE_NS
    node = _sub(values, name, ns=n)
    _sub(node, "QueryID", zlib.crc32(name.encode()) % 90000 + 10000, n)
    _sub(node, "firstname", person.get("first_name", ""), n)
    _sub(node, "lastname", person.get("last_name", ""), n)
    _sub(node, "citizenIdentifier", str(person["personnummer"]).replace("-", ""), n)
    for key, value in extra.items():
        _sub(node, key, value, n)
    return node


def _value(values: ET.Element, name: str, value: Any, question: str) -> None:
    n = FLOWINSTANCE_NS
    node = _sub(values, name, ns=n)
    _sub(node, "Name", question, n)
    _sub(node, "Value", value, n)


def flow_instance(state: SandboxState, number: int, app: dict[str, Any]) -> ET.Element:
    """The application as Open ePlatform's export XML of its form."""
    n = FLOWINSTANCE_NS
    ET.register_namespace("", n)
    root = ET.Element(f"{{{n}}}FlowInstance")
    header = _sub(root, "Header", ns=n)
    flow = _sub(header, "Flow", ns=n)
    _sub(flow, "FamilyID", FAMILY_ID, n)
    _sub(flow, "Version", 1, n)
    _sub(flow, "FlowID", FLOW_ID, n)
    _sub(flow, "Name", "Ansökan om ekonomiskt bistånd", n)
    _sub(header, "FlowInstanceID", number, n)
    status = _sub(header, "Status", ns=n)
    name = _status_name(state, number, app)
    _sub(status, "ID", _STATUS_BY_NAME.get(name, ("", 0))[1], n)
    _sub(status, "Name", name, n)
    poster = _sub(header, "Poster", ns=n)
    _sub(poster, "Firstname", app["applicant"].get("first_name", ""), n)
    _sub(poster, "Lastname", app["applicant"].get("last_name", ""), n)
    _sub(poster, "Email", "", n)
    _sub(poster, "ID", number % 97 + 20000, n)
    _sub(header, "Posted", _header_time(app["submitted_at"]), n)
    _sub(header, "FirstSubmitted", _header_time(app["submitted_at"]), n)
    _sub(header, "LastSubmitted", _header_time(app["updated_at"]), n)
    values = _sub(root, "Values", ns=n)
    _value(values, "applicationMonth", app["month"], "Vilken månad ansöker du för?")
    _value(values, "applicationType", "Nyansökan" if app["kind"] == "new" else "Återansökan", "Typ av ansökan")
    period = _sub(values, "incomePeriod", ns=n)
    _sub(period, "Name", "Inkomstperiod", n)
    _sub(period, "Datum_fran", app["income_period"]["from"], n)
    _sub(period, "Datum_till", app["income_period"]["to"], n)
    address = app.get("address") or {}
    _person(
        values,
        "applicant",
        app["applicant"],
        address=address.get("street", ""),
        zipcode=address.get("postal_code", ""),
        postalAddress=address.get("city", ""),
    )
    if app.get("co_applicant"):
        _person(values, "coApplicant", app["co_applicant"])
    _value(values, "cohabiting", "Ja" if app["cohabiting"] else "Nej", "Är du sambo eller gift?")
    for i, c in enumerate(app["children"], start=1):
        _person(
            values,
            f"child{i}",
            c,
            lunchAtHome="Ja" if c.get("lunch_at_home") else "Nej",
            inSchool="Ja" if c.get("in_school") else "Nej",
        )
    _value(values, "otherHouseholdMembers", app.get("other_household_members", 0), "Andra i hushållet")
    for key, amount in app["costs"].items():
        if amount:
            _value(values, f"cost_{key}", amount, key)
    for i, income in enumerate(app["incomes"], start=1):
        node = _sub(values, f"income{i}", ns=n)
        _sub(node, "citizenIdentifier", str(income["personnummer"]).replace("-", ""), n)
        _sub(node, "type", income["type"], n)
        _sub(node, "amount", income["amount"], n)
        _sub(node, "payer", income.get("payer", ""), n)
    _value(values, "monthsOnSupport", app.get("months_on_support", 0), "Månader med bistånd")
    _value(values, "jobStimulus", "Ja" if app.get("job_stimulus_active") else "Nej", "Jobbstimulans")
    by_type: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for i, attachment in enumerate(app["attachments"], start=1):
        if attachment["type"] != "komplettering":
            by_type.setdefault(attachment["type"], []).append((i, attachment))
    for q, (kind, files) in enumerate(sorted(by_type.items()), start=1):
        node = _sub(values, f"attachment_{kind}", ns=n)
        _sub(node, "QueryID", 70000 + q, n)
        _sub(node, "Name", kind, n)
        box = _sub(node, "files", ns=n)
        for i, attachment in files:
            file = _sub(box, "file", ns=n)
            _sub(file, "ID", i, n)
            _sub(file, "Name", attachment.get("filename", ""), n)
            _sub(file, "Size", attachment.get("size_bytes", 0), n)
    return root


def _messages(state: SandboxState, number: int, app: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    attachments = {a["id"]: a for a in app["attachments"]}
    for k, request in enumerate(app["complement_requests"], start=1):
        out.append(
            {
                "messageID": number * 10 + k,
                "message": f"Begäran om komplettering: {request['what']}\nSkicka in det senast {request['due']}.\n"
                f"Handläggare: {request['requested_by']}",
                "postedByManager": True,
                "added": request["requested_at"],
                "attachments": [],
            }
        )
        if request.get("arrived_at"):
            attachment = attachments.get(request.get("attachment_id") or "") or {}
            out.append(
                {
                    "messageID": number * 10 + k + 5,
                    "message": "Här är kompletteringen.",
                    "postedByManager": False,
                    "added": request["arrived_at"],
                    "attachments": [
                        {
                            "attachmentID": k,
                            "filename": attachment.get("filename", "komplettering.pdf"),
                            "size": attachment.get("size_bytes", 0),
                        }
                    ],
                }
            )
    out += _store(state).messages.get(number, [])
    return sorted(out, key=lambda m: (m["added"], m["messageID"]))


# --- REST --------------------------------------------------------------------------------------

router = APIRouter(prefix="/oep", tags=["e-service as Open ePlatform (REST XML, SOAP)"])


@router.get("/api/instanceapi/getinstances/family/{family_id}/{status}")
async def get_instances(
    family_id: int,
    status: str,
    state: SandboxState = Depends(get_state),
    fromDate: str | None = None,
    toDate: str | None = None,
) -> Response:
    """The family's flow instances in a status (by name), optionally first submitted in a date range."""
    if family_id != FAMILY_ID:
        return _not_found()
    root = ET.Element("FlowInstances")
    for number, app in _apps(state).items():
        if _status_name(state, number, app) != status:
            continue
        day = app["submitted_at"][:10]
        if (fromDate and day < fromDate) or (toDate and day > toDate):
            continue
        node = _sub(root, "FlowInstance")
        _sub(node, "flowInstanceID", number)
        _sub(node, "added", _oep_time(app["submitted_at"]))
        _sub(node, "firstSubmitted", _oep_time(app["submitted_at"]))
        _sub(node, "fullyPopulated", "true")
        _sub(node, "lastStatusChange", _oep_time(app["updated_at"]))
        _sub(node, "profileID", 1)
    if not len(root):
        return _not_found()
    return _xml(root)


@router.get("/api/instanceapi/getinstance/{number}/xml")
async def get_instance(number: int, state: SandboxState = Depends(get_state)) -> Response:
    """The flow instance's form as XML."""
    app = _apps(state).get(number)
    if app is None:
        return _not_found()
    body = ET.tostring(flow_instance(state, number, app), encoding=ENCODING, xml_declaration=True)
    if number in _store(state).malformed:
        body = body[: len(body) // 2]  # cut off mid-document, as a broken export would be
    return Response(body, media_type=f"text/xml; charset={ENCODING}")


@router.get("/api/instanceapi/getstatus/{number}")
async def get_status(number: int, state: SandboxState = Depends(get_state)) -> Response:
    """The flow instance's status."""
    app = _apps(state).get(number)
    if app is None:
        return _not_found()
    name = _status_name(state, number, app)
    root = ET.Element("Status")
    _sub(root, "statusID", _STATUS_BY_NAME.get(name, ("", 0))[1])
    _sub(root, "name", name)
    _sub(root, "newExternalMessagesDisallowed", "false")
    _sub(root, "contentType", "SUBMITTED" if name == STATUSES["submitted"][1] else "WAITING_FOR_COMPLETION")
    return _xml(root)


@router.get("/api/fileuploadqueryapi/getfile/{number}/{query_id}/{file_id}")
async def get_file(number: int, query_id: int, file_id: int, state: SandboxState = Depends(get_state)) -> Response:
    """A file uploaded in the form."""
    app = _apps(state).get(number)
    if app is None or not 1 <= file_id <= len(app["attachments"]):
        return _not_found()
    return Response(_PDF, media_type="application/pdf")


@router.get("/api/messageapi/getmessages/flowinstance/{number}")
async def get_messages(
    number: int,
    state: SandboxState = Depends(get_state),
    fromDate: str | None = None,
    toDate: str | None = None,
) -> Response:
    """The flow instance's messages, oldest first."""
    app = _apps(state).get(number)
    if app is None:
        return _not_found()
    root = ET.Element("Messages")
    for m in _messages(state, number, app):
        node = _sub(root, "ExternalMessage")
        _sub(node, "postedByManager", "true" if m["postedByManager"] else "false")
        _sub(node, "systemMessage", "false")
        _sub(node, "readReceiptEnabled", "false")
        _sub(node, "messageID", m["messageID"])
        _sub(node, "message", m["message"])
        if m["attachments"]:
            box = _sub(node, "attachments")
            for a in m["attachments"]:
                item = _sub(box, "ExternalMessageAttachment")
                _sub(item, "attachmentID", a["attachmentID"])
                _sub(item, "filename", a["filename"])
                _sub(item, "size", a["size"])
                _sub(item, "added", _oep_time(m["added"]))
        _sub(node, "added", _oep_time(m["added"]))
        _sub(node, "flowInstanceID", number)
    return _xml(root)


# --- SOAP callback -------------------------------------------------------------------------------


def _soap(answer: ET.Element, status: int = 200) -> Response:
    ET.register_namespace("S", SOAP_NS)
    envelope = ET.Element(f"{{{SOAP_NS}}}Envelope")
    body = ET.SubElement(envelope, f"{{{SOAP_NS}}}Body")
    body.append(answer)
    xml = ET.tostring(envelope, encoding="utf-8", xml_declaration=True)
    return Response(xml, status_code=status, media_type="text/xml; charset=UTF-8")


def _fault(kind: str, text: str) -> Response:
    fault = ET.Element(f"{{{SOAP_NS}}}Fault")
    _sub(fault, "faultcode", "S:Server")
    _sub(fault, "faultstring", text)
    detail = _sub(fault, "detail")
    ET.SubElement(detail, f"{{{CALLBACK_NS}}}{kind}")
    return _soap(fault, 500)


def _field(element: ET.Element, *path: str) -> str:
    node: ET.Element | None = element
    for name in path:
        node = node.find(f"{{{CALLBACK_NS}}}{name}") if node is not None else None
    return (node.text or "").strip() if node is not None else ""


@router.post("/api/callback")
async def callback(request: Request, state: SandboxState = Depends(get_state)) -> Response:
    """The integration callback (SOAP 1.1, document/literal): setStatus, addMessage, confirmDelivery."""
    try:
        envelope = SafeET.fromstring(await request.body(), forbid_dtd=True)
        body = envelope.find(f"{{{SOAP_NS}}}Body")
        operation = body[0] if body is not None and len(body) else None
    except Exception:
        operation = None
    if operation is None:
        return _fault("InvalidRequest", "the request is not a SOAP envelope with an operation")
    name = operation.tag.rsplit("}", 1)[-1]
    raw_id = _field(operation, "flowInstanceID")
    number = int(raw_id) if raw_id.isdigit() else -1
    app = _apps(state).get(number)
    if app is None:
        return _fault("FlowInstanceNotFoundFault", "flow instance not found")
    store = _store(state)
    answer = ET.Element(f"{{{CALLBACK_NS}}}{name}Response")
    if name == "setStatus":
        alias = _field(operation, "statusAlias")
        if alias not in _STATUS_BY_NAME:
            return _fault("StatusNotFoundFault", "status not found")
        store.statuses[number] = alias
        store.next_id += 1
        state.log.record(SYSTEM, "status.set", str(number), {"status": alias})
        _sub(answer, "eventID", store.next_id, CALLBACK_NS)
    elif name == "addMessage":
        text = _field(operation, "message", "message")
        if not text:
            return _fault("InvalidRequest", "a message needs a text")
        store.next_id += 1
        store.messages.setdefault(number, []).append(
            {
                "messageID": store.next_id,
                "message": text,
                "postedByManager": True,
                "added": state.now_iso(),
                "attachments": [],
            }
        )
        state.log.record(SYSTEM, "message.added", str(number), {"message_id": store.next_id})
        _sub(answer, "messageID", store.next_id, CALLBACK_NS)
    elif name == "confirmDelivery":
        store.deliveries.setdefault(number, []).append(
            {
                "delivered": _field(operation, "delivered") == "true",
                "external_id": _field(operation, "externalID", "ID"),
                "system": _field(operation, "externalID", "System"),
                "log_message": _field(operation, "logMessage"),
            }
        )
        state.log.record(SYSTEM, "delivery.confirmed", str(number), store.deliveries[number][-1])
    else:
        return _fault("UnsupportedOperation", f"operation {name} is not played by the sandbox")
    return _soap(answer)


def inspect(state: SandboxState) -> dict[str, Any]:
    """Admin view: statuses set, messages added and deliveries confirmed per flow instance."""
    store = _store(state)
    return {
        "family_id": FAMILY_ID,
        "flow_instances": {str(n): a["id"] for n, a in _apps(state).items()},
        "statuses": {str(k): v for k, v in store.statuses.items()},
        "messages": {str(k): v for k, v in store.messages.items()},
        "deliveries": {str(k): v for k, v in store.deliveries.items()},
        "malformed": sorted(store.malformed),
    }
