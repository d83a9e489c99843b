"""Ronney's two external systems: the income-support e-service and the register lookup.

Thin wrappers over :class:`connectors.http.HttpConnector` (``[connectors.eservice]`` and
``[connectors.registers]``) that know the URL contract (sandbox/API.md, a and b), state
the purpose of every read of personal data so it lands in the access log, and turn the
answers a case worker should hear about into :class:`core.errors.BusinessError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from connectors.base import record_access
from connectors.http import HttpConnector
from core.api import ApplicationError, BusinessError, ConnectorError, RunContext
from robots.ronney.application import LookupAnswer, parse_lookup
from robots.ronney.settings import RonneySettings

__all__ = ["ApplicationGone", "Eservice", "LookupRefused", "Registers"]


class ApplicationGone(BusinessError):
    """Ansökan finns inte längre i e-tjänsten."""

    code = "application_gone"


class LookupRefused(BusinessError):
    """Registerfrågan nekades."""

    code = "lookup_refused"


class Eservice:
    """The income-support e-service for one run."""

    def __init__(self, ctx: RunContext, settings: RonneySettings) -> None:
        self.ctx = ctx
        self.api = HttpConnector.for_run(ctx, "eservice")
        self.purpose = settings.purpose

    async def summaries(self, month: str, page_size: int = 200) -> AsyncIterator[dict[str, Any]]:
        """Every application summary of ``month`` (no personal data), oldest first."""
        offset = 0
        while True:
            page = await self.api.get_json(
                "applications", params={"month": month, "offset": offset, "limit": page_size}
            )
            items = page.get("items") or []
            for item in items:
                yield item
            offset += len(items)
            if not items or offset >= int(page.get("total") or 0):
                return

    async def application(self, app_id: str, *, subject: str | None, stage: str) -> dict[str, Any]:
        """One application in full; the read is written to the access log under its applicant.

        When the applicant is not known yet (``subject`` None, while collecting), the access is
        recorded after the read, under the personnummer the application names.
        """
        response = await self.api.get(
            f"applications/{app_id}", subject=subject, purpose=self.purpose, allow_status=(404,)
        )
        if response.status_code == 404:
            raise ApplicationGone("Ansökan finns inte längre i e-tjänsten: den kan ha tagits bort eller flyttats")
        raw = self.api.json_of(response)
        if not isinstance(raw, dict):
            raise ConnectorError("eservice answered with something that is not an application", code="bad_response")
        if subject is None:
            applicant = raw.get("applicant") if isinstance(raw.get("applicant"), dict) else {}
            number = str(applicant.get("personnummer") or "") if applicant else ""
            if number:
                await record_access(
                    self.ctx,
                    subject=number,
                    system="eservice",
                    purpose=self.purpose,
                    details={"case_id": app_id, "stage": stage},
                )
        return raw

    async def decision(self, app_id: str) -> dict[str, Any] | None:
        """The decision registered for the application, or None (check before writing, read back after)."""
        response = await self.api.get(f"applications/{app_id}/decision", allow_status=(404,))
        if response.status_code == 404:
            return None
        found = self.api.json_of(response)
        return found if isinstance(found, dict) else None

    async def write_decision(
        self, app_id: str, payload: dict[str, Any], *, key: str, subject: str | None
    ) -> tuple[int, dict[str, Any]]:
        """POST the decision with an idempotency key; returns (status, body). 409 = another decision exists."""
        response = await self.api.request(
            "POST",
            f"applications/{app_id}/decision",
            json=payload,
            headers={"Idempotency-Key": key},
            subject=subject,
            purpose=self.purpose,
            what=f"decision for application {app_id}",
            idempotent=True,  # the idempotency key makes a repeat a replay, never a second decision
            allow_status=(409, 422),
        )
        body = self.api.json_of(response, empty_ok=True) or {}
        return response.status_code, body

    async def complements(self, app_id: str) -> list[dict[str, Any]]:
        """The application's complement requests."""
        body = await self.api.get_json(f"applications/{app_id}/complements")
        return list(body.get("items") or [])

    async def request_complement(
        self, app_id: str, *, what: str, due: date, requested_by: str, key: str, subject: str | None
    ) -> dict[str, Any]:
        """Ask the applicant for a complement (idempotent by ``key``)."""
        body = await self.api.request(
            "POST",
            f"applications/{app_id}/complements",
            json={"what": what, "due": due.isoformat(), "requested_by": requested_by},
            headers={"Idempotency-Key": key},
            subject=subject,
            purpose=self.purpose,
            what=f"complement request for application {app_id}",
            idempotent=True,
        )
        found = self.api.json_of(body, empty_ok=True)
        return found if isinstance(found, dict) else {}


class Registers:
    """The SSBTEK-like register lookup for one run."""

    def __init__(self, ctx: RunContext, settings: RonneySettings, organisation: str) -> None:
        self.ctx = ctx
        self.api = HttpConnector.for_run(ctx, "registers")
        self.settings = settings
        self.organisation = organisation

    async def lookup(self, personnummer: str, *, case_id: str, period_from: date, period_to: date) -> LookupAnswer:
        """One person's register data for the period; the lookup is in the access log with its purpose,
        case id and legal basis."""
        s = self.settings
        body: dict[str, Any] = {
            "personnummer": personnummer,  # in the body, never in the URL
            "period": {"from": period_from.isoformat(), "to": period_to.isoformat()},
            "case_id": case_id,
            "purpose": s.purpose,
            "legal_basis": s.legal_basis,
            "organisation": self.organisation,
            "case_worker": self.ctx.actor,
        }
        if s.register_sources:
            body["sources"] = s.register_sources
        purpose = f"{s.purpose}; ärende {case_id}; rättslig grund: {s.legal_basis}"[:500]
        response = await self.api.request(
            "POST",
            "lookup",
            json=body,
            subject=personnummer,
            purpose=purpose,
            write=False,
            idempotent=True,
            allow_status=(400,),
        )
        raw = self.api.json_of(response)
        if response.status_code == 400:
            code = str(raw.get("error") if isinstance(raw, dict) else "") or "bad_request"
            if code == "invalid_personnummer":
                raise LookupRefused("Registren godtar inte personnumret för en vuxen i ansökan: kontrollera det")
            raise LookupRefused(
                f"Registerfrågan nekades ({code}): kontrollera Ronneys inställningar för ändamål och rättslig grund",
                code="lookup_refused",
            )
        try:
            return parse_lookup(personnummer, raw)
        except ValueError as exc:
            raise ApplicationError(f"the register answer cannot be read: {exc}", code="bad_register_answer") from exc
