"""Open ePlatform (Nordic Peak's e-service platform, "OEP"): its REST XML API and its SOAP callback.

What a municipality's integration uses, as Sundsvall's ``api-service-oep-integrator``
calls it (github.com/Sundsvallskommun/api-service-oep-integrator: ``OpeneRestClient``,
``OpeneSoapClient``, ``callback.wsdl``/``callback.xsd``)::

    GET  api/instanceapi/getinstances/family/{familyID}/{status}?fromDate=&toDate=   <FlowInstances>
    GET  api/instanceapi/getinstance/{flowInstanceID}/xml                            <FlowInstance> (the form)
    GET  api/instanceapi/getstatus/{flowInstanceID}                                  <Status>
    GET  api/fileuploadqueryapi/getfile/{flowInstanceID}/{queryID}/{fileID}          the file's bytes
    GET  api/messageapi/getmessages/flowinstance/{flowInstanceID}?fromDate=&toDate=  <Messages>
    POST api/callback   SOAP 1.1, namespace http://www.oeplatform.org/version/1.0/schemas/integration/callback:
                        setStatus, addMessage, confirmDelivery

Answers are XML in ISO-8859-1 (or UTF-8); they are parsed with ``defusedxml`` (no DTDs,
no entity expansion, no external references: an answer is untrusted input). SOAP bodies
are built with the standard library's ElementTree from the callback XSD's element names.
zeep is not used: three document/literal operations do not need a WSDL engine, and every
request must go through :class:`connectors.http.HttpConnector` (retries, circuit breaker,
dry-run refusal of writes, audit of reads and writes), which zeep's own transport would
bypass.

Errors: :class:`OepMalformedXml` (an answer that is not the XML expected: names the call,
never a value), :class:`OepFault` (a SOAP fault: ``FlowInstanceNotFound``,
``StatusNotFound``, ``AccessDenied``), and the HTTP connector's own.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET  # building only: answers are parsed with defusedxml
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from pydantic import Field, field_validator

from connectors.base import require_section, validate_settings
from connectors.http import HttpConnector, HttpSettings, UnsafePath
from core.errors import ConnectorError
from core.interfaces import ConnectorContext
from core.settings import SecretRef

__all__ = [
    "CALLBACK_NS",
    "FLOWINSTANCE_NS",
    "FlowInstanceSummary",
    "Message",
    "OepFault",
    "OepMalformedXml",
    "OpenEPlatform",
    "OpenEPlatformSettings",
    "parse_xml",
    "soap_envelope",
]

CALLBACK_NS = "http://www.oeplatform.org/version/1.0/schemas/integration/callback"
FLOWINSTANCE_NS = "http://www.oeplatform.org/version/2.0/schemas/flowinstance"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
#: The statuses a case goes through, as Ronney names them, and their usual names in an OEP flow.
DEFAULT_STATUSES = {
    "submitted": "Inskickat",
    "awaiting_complement": "Väntar på komplettering",
    "approved": "Beviljad",
    "partially_approved": "Delvis beviljad",
    "rejected": "Avslagen",
}


class OepMalformedXml(ConnectorError):
    """Open ePlatform answered with XML that cannot be read, or is not the element expected."""

    code = "oep_malformed_xml"
    retryable = False  # the same answer comes again: a person must look at it


class OepFault(ConnectorError):
    """Open ePlatform's callback answered with a SOAP fault (e.g. the flow instance or status not found)."""

    code = "oep_fault"
    retryable = False


class OpenEPlatformSettings(HttpSettings):
    """``connectors.eservice`` when the municipality's e-service is Open ePlatform (``api = "open_eplatform"``)."""

    api: Literal["open_eplatform"] = Field(description='Selects this connector: "open_eplatform".')
    family_id: int = Field(gt=0, description="The flow family ID (FamilyID) of the income-support e-service.")
    username: str | None = Field(default=None, description="User of the integration account (HTTP Basic).")
    password: SecretRef | None = Field(default=None, description="Its password, by reference.")
    rest_prefix: str = Field(default="api/", description="Path of the REST API under base_url.")
    callback_path: str = Field(default="api/callback", description="Path of the SOAP callback under base_url.")
    external_system: str = Field(
        default="Kollega", max_length=100, description="System name in confirmDelivery's externalID."
    )
    principal: str = Field(
        default="Kollega", max_length=100, description="Principal name setStatus is made in (shown in the case log)."
    )
    message_user: str = Field(
        default="kollega", max_length=100, description="userID of messages added through the callback."
    )
    statuses: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_STATUSES),
        description="Case state (submitted, awaiting_complement, approved, partially_approved, rejected) → the "
        "flow's status name (statusAlias), as the municipality set up its flow.",
    )

    @field_validator("statuses")
    @classmethod
    def _all_states(cls, value: dict[str, str]) -> dict[str, str]:
        merged = {**DEFAULT_STATUSES, **value}
        unknown = sorted(set(value) - set(DEFAULT_STATUSES))
        if unknown:
            raise ValueError(f"unknown case state(s) {unknown}; the states are {sorted(DEFAULT_STATUSES)}")
        if any(not name.strip() for name in merged.values()):
            raise ValueError("a status name must not be blank")
        return merged

    @field_validator("rest_prefix", "callback_path")
    @classmethod
    def _relative(cls, value: str) -> str:
        value = value.strip().lstrip("/")
        if "://" in value or ".." in value.split("/"):
            raise ValueError("must be a path under base_url")
        return value


# --- XML -----------------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_xml(data: bytes, what: str, root: str | None = None) -> ET.Element:
    """Parse an answer safely; OepMalformedXml (naming ``what``, never content) when it is not ``root``."""
    try:
        element: ET.Element = SafeET.fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise OepMalformedXml(
            f"Open ePlatform's {what} is not well-formed XML ({type(exc).__name__})", system="eservice"
        ) from None
    if root is not None and _local(element.tag) != root:
        raise OepMalformedXml(
            f"Open ePlatform's {what} is a <{_local(element.tag)}>, not a <{root}>", system="eservice"
        )
    return element


def child(element: ET.Element, name: str) -> ET.Element | None:
    """The first child named ``name`` in any namespace."""
    for node in element:
        if _local(node.tag) == name:
            return node
    return None


def children(element: ET.Element, name: str) -> list[ET.Element]:
    """Every child named ``name`` in any namespace."""
    return [node for node in element if _local(node.tag) == name]


def text(element: ET.Element | None, name: str | None = None, default: str = "") -> str:
    """The stripped text of ``element`` (or of its child ``name``)."""
    node = element if name is None or element is None else child(element, name)
    if node is None or node.text is None:
        return default
    return node.text.strip()


def soap_envelope(operation: str, fields: list[tuple[str, Any]]) -> bytes:
    """A SOAP 1.1 request for a callback ``operation``; a field's value may be a nested list of fields."""
    envelope = ET.Element(f"{{{SOAP_NS}}}Envelope")
    ET.SubElement(envelope, f"{{{SOAP_NS}}}Header")
    body = ET.SubElement(envelope, f"{{{SOAP_NS}}}Body")
    op = ET.SubElement(body, f"{{{CALLBACK_NS}}}{operation}")

    def add(parent: ET.Element, items: list[tuple[str, Any]]) -> None:
        for name, value in items:
            if value is None:
                continue
            node = ET.SubElement(parent, f"{{{CALLBACK_NS}}}{name}")
            if isinstance(value, list):
                add(node, value)
            elif isinstance(value, bool):
                node.text = "true" if value else "false"
            else:
                node.text = str(value)

    add(op, fields)
    xml: bytes = ET.tostring(envelope, encoding="utf-8", xml_declaration=True)
    return xml


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowInstanceSummary:
    """One row of ``getinstances``: no personal data."""

    flow_instance_id: str
    added: str = ""
    first_submitted: str = ""
    last_status_change: str = ""


@dataclass(frozen=True)
class Message:
    """One message of a flow instance (``getmessages``)."""

    message_id: str
    text: str
    posted_by_manager: bool
    added: str
    attachments: tuple[dict[str, str], ...] = field(default_factory=tuple)


# --- the client --------------------------------------------------------------------------------


class OpenEPlatform:
    """Open ePlatform for one run: the REST XML reads and the SOAP callback writes."""

    def __init__(self, ctx: ConnectorContext, settings: OpenEPlatformSettings, system: str = "eservice") -> None:
        self.ctx = ctx
        self.settings = settings
        self.system = system
        key = f"http:{system}"
        existing = ctx.resources.get(key)
        if isinstance(existing, HttpConnector) and isinstance(existing.settings, OpenEPlatformSettings):
            self.api = existing
        else:
            self.api = HttpConnector(ctx, system, settings)
            if settings.username and settings.password is not None:
                self.api.client.auth = httpx.BasicAuth(settings.username, settings.password.resolve())
            ctx.resources[key] = self.api

    @classmethod
    def for_run(cls, ctx: ConnectorContext, system: str = "eservice") -> OpenEPlatform:
        """The run's client, from the municipality's ``connectors.<system>`` section."""
        return cls(ctx, validate_settings(OpenEPlatformSettings, require_section(ctx, system), system), system)

    def _rest(self, path: str) -> str:
        return f"{self.settings.rest_prefix}{path}"

    async def _xml(
        self,
        path: str,
        what: str,
        root: str,
        *,
        params: dict[str, str] | None = None,
        subject: str | None = None,
        purpose: str | None = None,
        allow_status: tuple[int, ...] = (),
    ) -> ET.Element | None:
        response = await self.api.get(
            self._rest(path), params=params, subject=subject, purpose=purpose, allow_status=allow_status
        )
        if response.status_code in allow_status:
            return None
        return parse_xml(response.content, what, root)

    async def instances(
        self, status: str, *, from_date: date | None = None, to_date: date | None = None
    ) -> list[FlowInstanceSummary]:
        """The family's flow instances in ``status`` (a status name), optionally submitted in a date range."""
        params = {k: v.isoformat() for k, v in (("fromDate", from_date), ("toDate", to_date)) if v is not None}
        root = await self._xml(
            f"instanceapi/getinstances/family/{self.settings.family_id}/{quote(status, safe='')}",
            "list of flow instances",
            "FlowInstances",
            params=params or None,
            allow_status=(404,),
        )
        if root is None:  # OEP answers 404 when the family has no instance in the status
            return []
        out = []
        for node in children(root, "FlowInstance"):
            number = text(node, "flowInstanceID")
            if not number.isdigit():
                raise OepMalformedXml(
                    "a flow instance in Open ePlatform's list has no flowInstanceID", system=self.system
                )
            out.append(
                FlowInstanceSummary(
                    number, text(node, "added"), text(node, "firstSubmitted"), text(node, "lastStatusChange")
                )
            )
        return out

    async def instance(self, flow_instance_id: str, *, subject: str | None, purpose: str) -> ET.Element | None:
        """The flow instance's form as XML (``<FlowInstance>``), or None when it does not exist (404)."""
        return await self._xml(
            f"instanceapi/getinstance/{_id(flow_instance_id)}/xml",
            "flow instance",
            "FlowInstance",
            subject=subject,
            purpose=purpose,
            allow_status=(404,),
        )

    async def status(self, flow_instance_id: str) -> str | None:
        """The flow instance's current status name, or None when it does not exist."""
        root = await self._xml(
            f"instanceapi/getstatus/{_id(flow_instance_id)}", "status", "Status", allow_status=(404,)
        )
        return None if root is None else text(root, "name")

    async def file(
        self, flow_instance_id: str, query_id: str, file_id: str, *, subject: str | None, purpose: str
    ) -> bytes:
        """A file uploaded in the form (a file-upload query)."""
        response = await self.api.get(
            self._rest(f"fileuploadqueryapi/getfile/{_id(flow_instance_id)}/{_id(query_id)}/{_id(file_id)}"),
            subject=subject,
            purpose=purpose,
        )
        return response.content

    async def messages(self, flow_instance_id: str, *, subject: str | None, purpose: str) -> list[Message]:
        """The flow instance's messages between the applicant and the case workers, oldest first."""
        root = await self._xml(
            f"messageapi/getmessages/flowinstance/{_id(flow_instance_id)}",
            "messages",
            "Messages",
            subject=subject,
            purpose=purpose,
            allow_status=(404,),
        )
        if root is None:
            return []
        out = []
        for node in children(root, "ExternalMessage"):
            files = child(node, "attachments")
            out.append(
                Message(
                    message_id=text(node, "messageID"),
                    text=text(node, "message"),
                    posted_by_manager=text(node, "postedByManager") == "true",
                    added=text(node, "added"),
                    attachments=tuple(
                        {"id": text(a, "attachmentID"), "filename": text(a, "filename"), "added": text(a, "added")}
                        for a in (children(files, "ExternalMessageAttachment") if files is not None else [])
                    ),
                )
            )
        return out

    # -- the SOAP callback -----------------------------------------------------------------
    async def _call(
        self, operation: str, fields: list[tuple[str, Any]], *, what: str, subject: str | None, purpose: str | None
    ) -> ET.Element:
        response = await self.api.request(
            "POST",
            self.settings.callback_path,
            content=soap_envelope(operation, fields),
            headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": f'"{operation}"'},
            subject=subject,
            purpose=purpose,
            what=what,
            allow_status=(500,),  # a SOAP fault comes with 500
        )
        envelope = parse_xml(response.content, f"answer to {operation}", "Envelope")
        body = child(envelope, "Body")
        answer = body[0] if body is not None and len(body) else None
        if answer is None:
            raise OepMalformedXml(f"Open ePlatform's answer to {operation} has an empty body", system=self.system)
        if _local(answer.tag) == "Fault":
            detail = child(answer, "detail")
            kind = _local(detail[0].tag) if detail is not None and len(detail) else text(answer, "faultstring")
            raise OepFault(f"Open ePlatform refused {operation}: {kind}", system=self.system, fault=kind)
        if _local(answer.tag) != f"{operation}Response":
            raise OepMalformedXml(
                f"Open ePlatform answered {operation} with <{_local(answer.tag)}>", system=self.system
            )
        return answer

    async def set_status(self, flow_instance_id: str, status: str, *, subject: str | None, purpose: str) -> str:
        """``setStatus`` by status name (statusAlias); returns the event ID."""
        answer = await self._call(
            "setStatus",
            [
                ("flowInstanceID", int(_id(flow_instance_id))),
                ("statusAlias", status),
                ("principal", [("name", self.settings.principal), ("userID", self.settings.message_user)]),
            ],
            what=f"status of flow instance {flow_instance_id}",
            subject=subject,
            purpose=purpose,
        )
        return text(answer, "eventID")

    async def add_message(
        self,
        flow_instance_id: str,
        message: str,
        *,
        added: datetime,
        subject: str | None,
        purpose: str,
        attachments: list[tuple[str, bytes]] | None = None,
    ) -> str:
        """``addMessage``: a message to the applicant (as the integration user); returns the message ID."""
        files = [
            (
                "attachments",
                [("encodedData", base64.b64encode(data).decode()), ("filename", name), ("size", len(data))],
            )
            for name, data in attachments or []
        ]
        answer = await self._call(
            "addMessage",
            [
                ("flowInstanceID", int(_id(flow_instance_id))),
                (
                    "message",
                    [
                        ("added", added.isoformat(timespec="seconds")),
                        *files,
                        ("message", message),
                        ("userID", self.settings.message_user),
                        ("readReceiptEnabled", False),
                    ],
                ),
            ],
            what=f"message to flow instance {flow_instance_id}",
            subject=subject,
            purpose=purpose,
        )
        return text(answer, "messageID")

    async def confirm_delivery(
        self, flow_instance_id: str, *, external_id: str, delivered: bool = True, log_message: str | None = None
    ) -> None:
        """``confirmDelivery``: the flow instance has reached (or failed to reach) the receiving system."""
        await self._call(
            "confirmDelivery",
            [
                ("flowInstanceID", int(_id(flow_instance_id))),
                ("externalID", [("ID", external_id), ("System", self.settings.external_system)]),
                ("delivered", delivered),
                ("logMessage", log_message),
            ],
            what=f"delivery of flow instance {flow_instance_id}",
            subject=None,
            purpose=None,
        )


def _id(value: str) -> str:
    value = str(value).strip()
    if not value.isdigit():
        raise UnsafePath("an Open ePlatform id must be digits: refused, nothing sent", system="eservice")
    return value
