"""The protected-identity check against the population register, for one household (I/O).

One ``POST protection`` to the ``registers`` system with every member's personnummer (in
the body, never the URL), the case id, the purpose and the legal basis. Each person asked
about is a ``data.read`` in the access log; the check itself, whatever it gave (also when
the register could not be reached), is a ``ronney.protection_checked`` audit event under
the applicant. The decision is :func:`robots.ronney.gate.decide`'s; nothing here ever
lets a household through that was not checked.
"""

from __future__ import annotations

import asyncio

from stdnum.se import personnummer as stdnum_personnummer  # type: ignore[import-untyped]

from connectors.base import record_access
from connectors.http import HttpConnector
from core.api import Carried, ConfigError, ConnectorError, NeedsReview, ReviewView, RunContext, WorkItemView
from robots.ronney.application import Application
from robots.ronney.checks import digits, roles
from robots.ronney.gate import (
    Failure,
    GateDecision,
    MalformedProtectionAnswer,
    Marking,
    decide,
    parse_protection_answer,
    restricted_material,
)
from robots.ronney.material import local_text
from robots.ronney.settings import RonneySettings

__all__ = ["carry_out_restricted", "check_household", "gate_review"]

SYSTEM = "registers"


def _household(app: Application) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for role, member in roles(app):
        number = digits(member.personnummer)
        out.append((role, number if len(number) == 12 and stdnum_personnummer.is_valid(number) else None))
    return out


async def check_household(
    ctx: RunContext, settings: RonneySettings, app: Application, *, organisation: str
) -> GateDecision:
    """Ask the population register about every member of ``app``'s household; the gate's decision.

    Never raises for a failed check (that is an ``unchecked`` decision, which closes the
    gate); a ConfigError (no register configured for the municipality) does propagate: that
    is the deployment's mistake, for operations to fix.
    """
    household = _household(app)
    numbers = [n for _, n in household if n is not None]
    markings: dict[str, Marking] | None = None
    failure: Failure | None = None
    request_id = ""
    if numbers:
        try:
            api = HttpConnector.for_run(ctx, SYSTEM)
            response = await api.request(
                "POST",
                "protection",
                json={
                    "personnummer": numbers,
                    "case_id": app.id,
                    "purpose": settings.purpose,
                    "legal_basis": settings.legal_basis,
                    "organisation": organisation,
                },
                write=False,
                idempotent=True,
                allow_status=(400, 403),
            )
            if response.status_code in (400, 403):
                failure = "refused"
            else:
                raw = api.json_of(response)
                markings = parse_protection_answer(numbers, raw)
                request_id = str(raw.get("request_id") or "") if isinstance(raw, dict) else ""
        except ConfigError:
            raise
        except ConnectorError as exc:
            failure = "malformed_answer" if exc.code == "bad_response" else "register_unavailable"
            ctx.log.warning("protection check failed", error=exc.code)
        except MalformedProtectionAnswer as exc:
            failure = "malformed_answer"
            ctx.log.warning("protection answer unreadable", error=str(exc))
    decision = decide(household, markings, failure)
    if markings is not None:
        for number in markings:
            await record_access(
                ctx,
                subject=number,
                system=SYSTEM,
                purpose=f"{settings.purpose}; ärende {app.id}; kontroll av skyddade personuppgifter"[:500],
                details={"case_id": app.id, "check": "protection", "request_id": request_id},
            )
    await asyncio.to_thread(
        ctx.record,
        "ronney.protection_checked",
        subject=app.applicant.personnummer,
        purpose=settings.purpose,
        details={"application_id": app.id, "persons": len(household), "request_id": request_id, **decision.as_json()},
    )
    return decision


async def gate_review(
    ctx: RunContext, settings: RonneySettings, item: WorkItemView, app: Application, *, queue: str, organisation: str
) -> NeedsReview | None:
    """The gate for one work item: None when the household is clear, else the restricted review item.

    The restricted item lands in the usual queue (nothing is lost) with nothing about the
    household but the application's id and month, and what the case worker must do.
    """
    decision = await check_household(ctx, settings, app, organisation=organisation)
    if decision.clear:
        return None
    now = ctx.clock.now()
    material = restricted_material(
        decision=decision,
        queue=queue,
        reference=item.reference,
        application_id=app.id,
        application_kind=app.kind,
        month=app.month,
        prepared_at=now,
        prepared_at_text=local_text(now),
        return_comment=item.return_comment,
    )
    ctx.log.info("household not prepared: protected identity gate closed", outcome=decision.outcome)
    return NeedsReview(
        queue=queue,
        title=material["title"],
        summary=material["summary"],
        material=material,
        subject=app.applicant.personnummer,
    )


async def carry_out_restricted(ctx: RunContext, review: ReviewView) -> Carried | None:
    """A decision on a restricted item: nothing is written anywhere; the access log records it."""
    if review.state not in ("approved", "rejected"):
        return None
    m = review.material or {}
    await asyncio.to_thread(
        ctx.record,
        "ronney.manual_handling",
        subject=review.subject,
        details={
            "review_id": review.id,
            "application_id": m.get("application_id"),
            "state": review.state,
            "gate": m.get("gate"),
        },
    )
    return Carried(
        "Ärendet handläggs manuellt enligt kommunens rutin för skyddade personuppgifter. Ronney skrev ingenting "
        "till e-tjänsten."
    )
