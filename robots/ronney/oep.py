"""Ronney's e-service when the municipality runs Open ePlatform (``connectors.eservice.api = "open_eplatform"``).

:class:`OepEservice` has the same methods as :class:`robots.ronney.services.Eservice` (the
sandbox's JSON e-service), so the robot does not know which it talks to; :func:`open_eservice`
picks one per municipality from its ``connectors.eservice`` section.

How Ronney's case maps onto Open ePlatform (docs/robots/ronney.md, "Open ePlatform"):

* an application is a *flow instance* of the income-support flow family (``family_id``);
  its id is the flowInstanceID; its version the header's ``LastSubmitted``;
* the form's answers are the ``<Values>`` of ``getinstance/{id}/xml``, under the query
  names of :data:`FORM` (the municipality's flow must export them so);
* the status names the flow uses are the section's ``statuses`` (``Inskickat``, ``Väntar på
  komplettering``, ``Beviljad`` …);
* a complement request is a message from the case worker starting ``Begäran om
  komplettering:``; it has arrived when the applicant answers with an attachment;
* a decision is the decision letter as a message (with its reference and amount on the last
  lines, so it can be found again and read back) followed by ``setStatus`` to the
  decision's status; ``confirmDelivery`` tells the platform the case has reached Kollega.

Open ePlatform holds the application, not the municipality's case history: there is no
previous decision in a flow instance (Ronney's comparison with last month is empty).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from stdnum.se import personnummer as stdnum_personnummer  # type: ignore[import-untyped]

from connectors.base import record_access, require_section, validate_settings
from connectors.http import HttpConnector, HttpSettings
from connectors.open_eplatform import (
    Message,
    OepMalformedXml,
    OpenEPlatform,
    OpenEPlatformSettings,
    child,
    children,
    text,
)
from core.api import ConfigError, RunContext
from robots.ronney.application import COST_KEYS, MalformedApplication
from robots.ronney.checks import kr
from robots.ronney.services import ApplicationGone, Eservice
from robots.ronney.settings import RonneySettings

__all__ = ["COMPLEMENT_PREFIX", "FORM", "OepEservice", "application_from_xml", "confirm_received", "open_eservice"]

TZ = ZoneInfo("Europe/Stockholm")
SYSTEM = "eservice"
#: The query names (elements under ``<Values>``) the income-support flow exports.
FORM = {
    "month": "applicationMonth",
    "kind": "applicationType",
    "income_period": "incomePeriod",
    "applicant": "applicant",
    "co_applicant": "coApplicant",
    "cohabiting": "cohabiting",
    "child": "child",  # child1, child2 …
    "others": "otherHouseholdMembers",
    "cost": "cost_",  # cost_rent, cost_household_electricity …
    "income": "income",  # income1, income2 …
    "months_on_support": "monthsOnSupport",
    "job_stimulus": "jobStimulus",
    "attachment": "attachment_",  # attachment_hyresavi …: file-upload queries
}
COMPLEMENT_PREFIX = "Begäran om komplettering:"
_KINDS = {"Nyansökan": "new", "Återansökan": "reapplication", "new": "new", "reapplication": "reapplication"}
_YES = {"ja", "true", "yes", "1"}
_DECISION_NAMES = {"approved": "beviljat", "partially_approved": "delvis beviljat", "rejected": "avslag"}


def _when(value: str) -> str | None:
    """OEP's local times (``2025-02-27 11:16`` or ``2024-12-05T21:41:45``) as ISO 8601 with offset."""
    value = value.strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=TZ).isoformat(timespec="seconds")
        except ValueError:
            continue
    return value  # left for the application's validation to name


def _value(values: ET.Element, name: str) -> str:
    return text(child(values, name), "Value")


def _number(value: str) -> int | str:
    return int(value) if re.fullmatch(r"-?\d+", value) else value


def _age(personnummer: str, today: date) -> int | None:
    try:
        born: date = stdnum_personnummer.get_birth_date(personnummer)
    except Exception:  # an invalid personnummer is validation's to report, by role
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _person(node: ET.Element, today: date, **extra: Any) -> dict[str, Any]:
    number = text(node, "citizenIdentifier")
    return {
        "personnummer": number,
        "first_name": text(node, "firstname"),
        "last_name": text(node, "lastname"),
        "age": _age(number, today),
        **extra,
    }


def _numbered(values: ET.Element, prefix: str) -> list[ET.Element]:
    found = [
        (int(m.group(1)), node)
        for node in values
        if (m := re.fullmatch(rf"{prefix}(\d+)", node.tag.rsplit("}", 1)[-1]))
    ]
    return [node for _, node in sorted(found, key=lambda pair: pair[0])]


def _complements(flow_instance_id: str, messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, message in enumerate(messages):
        if not (message.posted_by_manager and message.text.startswith(COMPLEMENT_PREFIX)):
            continue
        first = message.text.splitlines()[0]
        due = re.search(r"senast (\d{4}-\d{2}-\d{2})", message.text)
        by = re.search(r"^Handläggare: (.+)$", message.text, re.MULTILINE)
        answer = next((m for m in messages[n + 1 :] if not m.posted_by_manager and m.attachments), None)
        out.append(
            {
                "id": f"{flow_instance_id}-M{message.message_id}",
                "what": first.removeprefix(COMPLEMENT_PREFIX).strip(),
                "requested_at": _when(message.added),
                "requested_by": by.group(1).strip() if by else "",
                "due": due.group(1) if due else None,
                "arrived_at": _when(answer.added) if answer else None,
                "attachment_id": f"M{answer.message_id}-{answer.attachments[0]['id']}" if answer else None,
            }
        )
    return out


def application_from_xml(root: ET.Element, *, state: str, messages: list[Message], today: date) -> dict[str, Any]:
    """The flow instance as the e-service's application JSON (``parse_application`` validates it)."""
    header, values = child(root, "Header"), child(root, "Values")
    if header is None or values is None:
        raise MalformedApplication("Ansökan kan inte läsas: e-tjänstens ärende saknar sidhuvud eller svar")
    flow_instance_id = text(header, "FlowInstanceID")
    applicant = child(values, FORM["applicant"])
    co = child(values, FORM["co_applicant"])
    period = child(values, FORM["income_period"])
    children_ = [
        _person(
            node,
            today,
            lunch_at_home=text(node, "lunchAtHome").lower() in _YES,
            in_school=text(node, "inSchool").lower() in _YES,
        )
        for node in _numbered(values, FORM["child"])
    ]
    costs = {key: _number(_value(values, f"{FORM['cost']}{key}") or "0") for key in COST_KEYS}
    incomes = [
        {
            "personnummer": text(node, "citizenIdentifier"),
            "type": text(node, "type"),
            "amount": _number(text(node, "amount")),
            "payer": text(node, "payer"),
        }
        for node in _numbered(values, FORM["income"])
    ]
    attachments = []
    for node in values:
        name = node.tag.rsplit("}", 1)[-1]
        if not name.startswith(FORM["attachment"]):
            continue
        files = child(node, "files")
        for file in children(files, "file") if files is not None else []:
            attachments.append(
                {
                    "id": f"{text(node, 'QueryID')}/{text(file, 'ID')}",
                    "type": name.removeprefix(FORM["attachment"]),
                    "filename": text(file, "Name"),
                    "received_at": _when(text(header, "FirstSubmitted")),
                }
            )
    complements = _complements(flow_instance_id, messages)
    for c in complements:
        if c["attachment_id"]:
            attachments.append(
                {"id": c["attachment_id"], "type": "komplettering", "filename": "", "received_at": c["arrived_at"]}
            )
    address = None
    if applicant is not None and text(applicant, "address"):
        address = {
            "street": text(applicant, "address"),
            "postal_code": text(applicant, "zipcode"),
            "city": text(applicant, "postalAddress"),
        }
    return {
        "id": flow_instance_id,
        "kind": _KINDS.get(_value(values, FORM["kind"]), _value(values, FORM["kind"])),
        "month": _value(values, FORM["month"]),
        "income_period": {"from": text(period, "Datum_fran") or None, "to": text(period, "Datum_till") or None}
        if period is not None
        else None,
        "submitted_at": _when(text(header, "FirstSubmitted")),
        "updated_at": _when(text(header, "LastSubmitted") or text(header, "FirstSubmitted")),
        "status": state,
        "applicant": _person(applicant, today) if applicant is not None else None,
        "co_applicant": _person(co, today) if co is not None else None,
        "cohabiting": _value(values, FORM["cohabiting"]).lower() in _YES,
        "children": children_,
        "other_household_members": _number(_value(values, FORM["others"]) or "0"),
        "address": address,
        "costs": costs,
        "incomes": incomes,
        "months_on_support": _number(_value(values, FORM["months_on_support"]) or "0"),
        "job_stimulus_active": _value(values, FORM["job_stimulus"]).lower() in _YES,
        "attachments": attachments,
        "complement_requests": complements,
        "previous_decision": None,
    }


def _decision_text(payload: dict[str, Any], key: str) -> str:
    lines = [str(payload.get("reasoning") or "").strip()]
    for line in payload.get("lines") or []:
        lines.append(f"{line.get('text')}: {kr(int(line.get('amount') or 0))} kr")
    lines += [
        "",
        f"Beslut: {_DECISION_NAMES.get(str(payload['decision']), payload['decision'])}",
        f"Belopp: {int(payload['amount'])} kr",
        f"Referens: {key}",
    ]
    return "\n".join(lines).strip()


def _decision_message(messages: list[Message]) -> tuple[Message, str, int] | None:
    for message in reversed(messages):
        if not message.posted_by_manager:
            continue
        key = re.search(r"^Referens: (\S+)$", message.text, re.MULTILINE)
        amount = re.search(r"^Belopp: (\d+) kr$", message.text, re.MULTILINE)
        if key and amount:
            return message, key.group(1), int(amount.group(1))
    return None


class OepEservice:
    """Ronney's e-service methods over Open ePlatform (see the module docstring)."""

    def __init__(self, ctx: RunContext, settings: RonneySettings, oep: OpenEPlatform) -> None:
        self.ctx = ctx
        self.oep = oep
        self.api = oep.api
        self.purpose = settings.purpose
        self.statuses = oep.settings.statuses
        self._decided = {self.statuses[k]: k for k in ("approved", "partially_approved", "rejected")}

    def _today(self) -> date:
        return self.ctx.clock.now().astimezone(TZ).date()

    async def summaries(self, month: str, page_size: int = 200) -> AsyncIterator[dict[str, Any]]:
        """The flow instances waiting for Ronney (submitted or awaiting a complement); their month comes with the form."""
        for state in ("submitted", "awaiting_complement"):
            for row in await self.oep.instances(self.statuses[state]):
                yield {"id": row.flow_instance_id, "status": state, "month": None, "has_decision": False}

    async def application(self, app_id: str, *, subject: str | None, stage: str) -> dict[str, Any]:
        """The flow instance as Ronney's application; the read is in the access log under the applicant."""
        try:
            root = await self.oep.instance(app_id, subject=subject, purpose=self.purpose)
            if root is None:
                raise ApplicationGone("Ansökan finns inte längre i e-tjänsten: den kan ha tagits bort eller flyttats")
            status = await self.oep.status(app_id)
            messages = await self.oep.messages(app_id, subject=subject, purpose=self.purpose)
        except OepMalformedXml:
            self.ctx.log.warning("open eplatform answered unreadable xml", application_id=app_id)
            raise MalformedApplication(
                f"Ansökan {app_id} kan inte läsas: e-tjänsten (Open ePlatform) lämnade ett svar som inte går att "
                "tolka. Öppna ansökan i e-tjänsten och handlägg den manuellt, eller returnera ärendet när "
                "e-tjänsten har rättats."
            ) from None
        state = next((k for k, name in self.statuses.items() if name == status), "submitted")
        if status in self._decided:
            state = "decided"
        raw = application_from_xml(root, state=state, messages=messages, today=self._today())
        found = _decision_message(messages)
        if state == "decided":
            raw["decision"] = self._decision(status, found)
        number = str((raw.get("applicant") or {}).get("personnummer") or "")
        if subject is None and number:
            await record_access(
                self.ctx,
                subject=number,
                system=SYSTEM,
                purpose=self.purpose,
                details={"case_id": app_id, "stage": stage},
            )
        return raw

    def _decision(self, status: str | None, found: tuple[Message, str, int] | None) -> dict[str, Any]:
        message, key, amount = found if found else (None, None, None)
        return {
            "decision": self._decided.get(status or ""),
            "amount": amount,
            "idempotency_key": key,
            "decision_id": f"OEP-M{message.message_id}" if message else None,
        }

    async def decision(self, app_id: str) -> dict[str, Any] | None:
        """The decision registered (the status is a decision's), or None: checked before writing, read back after."""
        status = await self.oep.status(app_id)
        if status not in self._decided:
            return None
        messages = await self.oep.messages(app_id, subject=None, purpose=self.purpose)
        return self._decision(status, _decision_message(messages))

    async def write_decision(
        self, app_id: str, payload: dict[str, Any], *, key: str, subject: str | None
    ) -> tuple[int, dict[str, Any]]:
        """The decision letter as a message (once, by ``key``), then the decision's status. 409 = another decision."""
        existing = await self.decision(app_id)
        if existing is not None and existing.get("idempotency_key") != key:
            return 409, {"error": "decision_exists", "decision": existing}
        messages = await self.oep.messages(app_id, subject=subject, purpose=self.purpose)
        found = _decision_message(messages)
        replayed = found is not None and found[1] == key
        if not replayed:
            await self.oep.add_message(
                app_id, _decision_text(payload, key), added=self.ctx.clock.now(), subject=subject, purpose=self.purpose
            )
        await self.oep.set_status(
            app_id, self.statuses[str(payload["decision"])], subject=subject, purpose=self.purpose
        )
        return (200 if replayed else 201), (await self.decision(app_id) or {})

    async def complements(self, app_id: str) -> list[dict[str, Any]]:
        """The complement requests, from the flow instance's messages."""
        return _complements(app_id, await self.oep.messages(app_id, subject=None, purpose=self.purpose))

    async def request_complement(
        self, app_id: str, *, what: str, due: date, requested_by: str, key: str, subject: str | None
    ) -> dict[str, Any]:
        """Ask the applicant through a message, and set the status waiting for a complement."""
        message = f"{COMPLEMENT_PREFIX} {what}\nSkicka in det senast {due.isoformat()}.\nHandläggare: {requested_by}"
        message_id = await self.oep.add_message(
            app_id, message, added=self.ctx.clock.now(), subject=subject, purpose=self.purpose
        )
        await self.oep.set_status(app_id, self.statuses["awaiting_complement"], subject=subject, purpose=self.purpose)
        return next(
            (c for c in await self.complements(app_id) if c["id"] == f"{app_id}-M{message_id}"),
            {"id": f"{app_id}-M{message_id}", "what": what, "due": due.isoformat(), "requested_by": requested_by},
        )


def open_eservice(ctx: RunContext, settings: RonneySettings) -> Eservice | OepEservice:
    """The municipality's e-service: Open ePlatform or the JSON e-service, by ``connectors.eservice.api``."""
    existing = ctx.resources.get(f"http:{SYSTEM}")
    if isinstance(existing, HttpConnector):
        if isinstance(existing.settings, OpenEPlatformSettings):
            return OepEservice(ctx, settings, OpenEPlatform(ctx, existing.settings))
        return Eservice(ctx, settings)
    section = require_section(ctx, SYSTEM)
    api = section.get("api", "kollega_json")
    if api == "open_eplatform":
        return OepEservice(ctx, settings, OpenEPlatform(ctx, validate_settings(OpenEPlatformSettings, section, SYSTEM)))
    if api != "kollega_json":
        raise ConfigError(
            f"connectors.eservice.api is {api!r}: it must be 'kollega_json' (the JSON e-service) or 'open_eplatform'"
        )
    if "api" in section:
        plain = {k: v for k, v in section.items() if k != "api"}
        ctx.resources[f"http:{SYSTEM}"] = HttpConnector(ctx, SYSTEM, validate_settings(HttpSettings, plain, SYSTEM))
    return Eservice(ctx, settings)


async def confirm_received(ctx: RunContext, es: Eservice | OepEservice, app_id: str, reference: str) -> None:
    """Open ePlatform only: ``confirmDelivery`` once Ronney has the case (a dry run writes nothing)."""
    if not isinstance(es, OepEservice) or ctx.dry_run:
        return
    await es.oep.confirm_delivery(
        app_id, external_id=reference, delivered=True, log_message="Mottagen av Kollega (Ronney) för beredning"
    )
