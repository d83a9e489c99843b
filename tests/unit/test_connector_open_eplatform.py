"""The Open ePlatform connector on stand-ins: safe XML, the SOAP callback's shapes and faults, settings."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from connectors.base import validate_settings
from connectors.http import BreakerRegistry, HttpConnector, TokenCache, UnsafePath
from connectors.open_eplatform import (
    CALLBACK_NS,
    OepFault,
    OepMalformedXml,
    OpenEPlatform,
    OpenEPlatformSettings,
    parse_xml,
    soap_envelope,
)
from core.errors import ConfigError, DryRunRefusal
from core.testing import RecordingContext
from robots.ronney.application import parse_application
from robots.ronney.oep import application_from_xml

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"

# The shape of Open ePlatform's export XML (as in Sundsvall's api-service-oep-integrator test data),
# with the query names of Ronney's income-support flow; ISO-8859-1 like the platform's answers.
CASE = """<?xml version="1.0" encoding="ISO-8859-1" standalone="no"?>
<FlowInstance xmlns="http://www.oeplatform.org/version/2.0/schemas/flowinstance">
  <Header>
    <Flow><FamilyID>4101</FamilyID><Version>1</Version><FlowID>9101</FlowID><Name><![CDATA[Ansökan]]></Name></Flow>
    <FlowInstanceID>235212</FlowInstanceID>
    <Status><ID>5101</ID><Name><![CDATA[Inskickat]]></Name></Status>
    <Posted>2026-11-12T07:41:00</Posted>
    <FirstSubmitted>2026-11-12T07:41:00</FirstSubmitted>
    <LastSubmitted>2026-11-14T10:00:00</LastSubmitted>
  </Header>
  <Values>
    <applicationMonth><QueryID>1</QueryID><Name><![CDATA[Månad]]></Name><Value>2026-12</Value></applicationMonth>
    <applicationType><Value>Återansökan</Value></applicationType>
    <incomePeriod><Datum_fran>2026-11-01</Datum_fran><Datum_till>2026-11-30</Datum_till></incomePeriod>
    <applicant><firstname><![CDATA[Tolvan]]></firstname><lastname><![CDATA[Tolvansson]]></lastname>
      <citizenIdentifier>191212121212</citizenIdentifier><address>Storgatan 1</address><zipcode>372 30</zipcode>
      <postalAddress>Ronneby</postalAddress></applicant>
    <cohabiting><Value>Nej</Value></cohabiting>
    <child1><firstname>Lilla</firstname><lastname>Tolvansson</lastname><citizenIdentifier>201001012384</citizenIdentifier>
      <lunchAtHome>Ja</lunchAtHome><inSchool>Ja</inSchool></child1>
    <cost_rent><Value>6500</Value></cost_rent>
    <cost_home_insurance><Value>150</Value></cost_home_insurance>
    <income1><citizenIdentifier>191212121212</citizenIdentifier><type>salary</type><amount>9000</amount>
      <payer>Ronneby kommun</payer></income1>
    <monthsOnSupport><Value>7</Value></monthsOnSupport>
    <jobStimulus><Value>Ja</Value></jobStimulus>
    <attachment_hyresavi><QueryID>70001</QueryID><files><file><ID>3</ID><Name>hyra.pdf</Name><Size>1200</Size></file>
      </files></attachment_hyresavi>
  </Values>
</FlowInstance>
""".encode("iso-8859-1")


def test_the_export_xml_maps_onto_ronneys_application() -> None:
    root = parse_xml(CASE, "flow instance", "FlowInstance")
    app = parse_application(application_from_xml(root, state="submitted", messages=[], today=date(2026, 11, 23)))
    assert (app.id, app.month, app.kind, app.status) == ("235212", "2026-12", "reapplication", "submitted")
    assert app.applicant.name == "Tolvan Tolvansson" and app.applicant.age == 113
    assert [(c.age, c.lunch_at_home, c.in_school) for c in app.children] == [(16, True, True)]
    assert app.costs["rent"] == 6500 and app.costs["home_insurance"] == 150 and app.costs["medical"] == 0
    assert [(i.type, i.amount, i.payer) for i in app.incomes] == [("salary", 9000, "Ronneby kommun")]
    assert app.months_on_support == 7 and app.job_stimulus_active and app.previous_decision is None
    assert [(a.id, a.type, a.filename) for a in app.attachments] == [("70001/3", "hyresavi", "hyra.pdf")]
    assert app.updated_at == datetime(2026, 11, 14, 9, 0, tzinfo=UTC)  # 10:00 Swedish time
    assert app.address == {"street": "Storgatan 1", "postal_code": "372 30", "city": "Ronneby"}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        CASE[: len(CASE) // 2],
        b"<FlowInstance><Header></FlowInstance>",
        # entity expansion and external references are refused, never resolved
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><FlowInstance>&a;</FlowInstance>',
        b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://example.invalid/x.dtd"><FlowInstance/>',
    ],
)
def test_unreadable_xml_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(OepMalformedXml) as info:
        parse_xml(data, "flow instance", "FlowInstance")
    assert "flow instance" in info.value.message and not info.value.retryable


def test_the_wrong_document_is_named() -> None:
    with pytest.raises(OepMalformedXml, match="is a <Messages>, not a <FlowInstance>"):
        parse_xml(b"<Messages/>", "flow instance", "FlowInstance")


def test_set_status_envelope_has_the_callback_shape() -> None:
    # The body Sundsvall's integration test expects of setStatus (api-oep-set-status.json).
    xml = soap_envelope(
        "setStatus",
        [
            ("flowInstanceID", 12345),
            ("statusAlias", "Inskickat"),
            ("principal", [("name", "John Doe"), ("userID", "joh12doe")]),
        ],
    )
    root = ET.fromstring(xml)
    body = root.find(f"{{{SOAP}}}Body")
    assert root.tag == f"{{{SOAP}}}Envelope" and root.find(f"{{{SOAP}}}Header") is not None and body is not None
    op = body[0]
    assert op.tag == f"{{{CALLBACK_NS}}}setStatus"
    assert [(c.tag.split("}")[1], c.text) for c in op][:2] == [
        ("flowInstanceID", "12345"),
        ("statusAlias", "Inskickat"),
    ]
    principal = op.find(f"{{{CALLBACK_NS}}}principal")
    assert principal is not None and [c.text for c in principal] == ["John Doe", "joh12doe"]


def _client(
    handler: Callable[[httpx.Request], httpx.Response], **ctx_kwargs: Any
) -> tuple[OpenEPlatform, RecordingContext]:
    ctx = RecordingContext(**ctx_kwargs)
    settings = validate_settings(
        OpenEPlatformSettings,
        {"api": "open_eplatform", "base_url": "http://oep.test/", "family_id": 4101, "retry": {"attempts": 1}},
        "eservice",
    )
    ctx.resources["http:eservice"] = HttpConnector(
        ctx,
        "eservice",
        settings,
        transport=httpx.MockTransport(handler),
        breakers=BreakerRegistry(),
        token_cache=TokenCache(),
    )
    return OpenEPlatform(ctx, settings), ctx


def _soap_answer(inner: str, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status,
        content=f'<?xml version="1.0"?><S:Envelope xmlns:S="{SOAP}"><S:Body>{inner}</S:Body></S:Envelope>'.encode(),
        headers={"content-type": "text/xml;charset=ISO-8859-1"},
    )


def test_soap_calls_go_to_the_callback_and_read_the_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _soap_answer(f'<setStatusResponse xmlns="{CALLBACK_NS}"><eventID>16287</eventID></setStatusResponse>')

    oep, ctx = _client(handler)
    assert asyncio.run(oep.set_status("12345", "Beviljad", subject=None, purpose="x")) == "16287"
    assert seen[0].url.path == "/api/callback" and seen[0].headers["content-type"].startswith("text/xml")
    assert [e for e in ctx.events if e["action"] == "external.write"]  # a write is audited


def test_a_soap_fault_is_an_oep_fault() -> None:
    fault = (
        f"<S:Fault><faultcode>S:Server</faultcode><faultstring>x</faultstring><detail>"
        f'<StatusNotFoundFault xmlns="{CALLBACK_NS}"/></detail></S:Fault>'
    )
    oep, _ = _client(lambda request: _soap_answer(fault, 500))
    with pytest.raises(OepFault, match="StatusNotFoundFault"):
        asyncio.run(oep.set_status("1", "Okänd", subject=None, purpose="x"))


def test_a_write_in_a_dry_run_is_refused_before_sending() -> None:
    oep, _ = _client(lambda request: pytest.fail("nothing may be sent"), dry_run=True)
    with pytest.raises(DryRunRefusal):
        asyncio.run(oep.confirm_delivery("1", external_id="ref"))


def test_an_id_that_is_not_digits_is_refused() -> None:
    oep, _ = _client(lambda request: pytest.fail("nothing may be sent"))
    with pytest.raises(UnsafePath):
        asyncio.run(oep.status("../admin"))


def test_no_instance_in_a_status_is_an_empty_list() -> None:
    oep, _ = _client(lambda request: httpx.Response(404, text="<error/>"))
    assert asyncio.run(oep.instances("Inskickat")) == []


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ({"base_url": "http://x/", "family_id": 1}, "api"),
        ({"api": "open_eplatform", "base_url": "http://x/"}, "family_id"),
        ({"api": "open_eplatform", "base_url": "http://x/", "family_id": 1, "statuses": {"granted": "B"}}, "statuses"),
        ({"api": "open_eplatform", "base_url": "http://x/", "family_id": 1, "callback_path": "../x"}, "callback_path"),
    ],
)
def test_settings_name_what_is_wrong(section: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=f"connectors.eservice.{error}"):
        validate_settings(OpenEPlatformSettings, section, "eservice")


def test_a_file_and_the_messages_are_read_as_personal_data() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/fileuploadqueryapi/getfile/235212/70001/3":
            return httpx.Response(200, content=b"%PDF-1.4", headers={"content-type": "application/pdf"})
        assert request.url.path == "/api/messageapi/getmessages/flowinstance/235212"
        return httpx.Response(
            200,
            content=(
                b"<Messages><ExternalMessage><postedByManager>false</postedByManager><messageID>10</messageID>"
                b"<message>Inbound message</message><attachments><ExternalMessageAttachment><attachmentID>164"
                b"</attachmentID><filename>test.pdf</filename><added>2024-03-25 13:16</added>"
                b"</ExternalMessageAttachment></attachments><added>2022-05-25 11:20</added></ExternalMessage></Messages>"
            ),
        )

    oep, ctx = _client(handler)
    assert asyncio.run(oep.file("235212", "70001", "3", subject="191212121212", purpose="bistånd")) == b"%PDF-1.4"
    [message] = asyncio.run(oep.messages("235212", subject="191212121212", purpose="bistånd"))
    assert (message.message_id, message.posted_by_manager, message.attachments[0]["filename"]) == (
        "10",
        False,
        "test.pdf",
    )
    reads = [e for e in ctx.accesses if e["subject"] == "191212121212"]
    assert len(reads) == 2
