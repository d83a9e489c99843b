"""b2. The population register's protection check: who has protected personal data.

``POST /registers/protection`` answers, for up to 20 personnummer at once, whether each
person has a *sekretessmarkering* or *skyddad folkbokföring* (formerly kvarskrivning) in
the population register, and nothing else: no name, no address. It plays the narrow
question a municipality's system asks of the population register before it shows or sends
anything about a household (Skatteverket passes both markings on to the registers of other
authorities and of the municipality: polisen.se, "Skyddade personuppgifter").

Like the lookup, it takes the personnummer in the body, never in the URL, and refuses a
request without case id, purpose or legal basis. It is part of the ``registers`` system, so
the register's faults (``POST /admin/faults/registers``, e.g. ``path_prefix = "/protection"``)
reach it. Tests can mark persons (``POST /admin/registers/protected``) and make the answers
malformed (``POST /admin/registers/protection-answers``).

The generated data marks a few persons of the applications (``protected_identity_rate``),
children included; ``GET /admin/truth`` lists them under ``registers.protected_identity``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from stdnum.se import personnummer as stdnum_personnummer  # type: ignore[import-untyped]

from sandbox.common import error
from sandbox.state import SandboxOptions, SandboxState, get_state

__all__ = ["ProtectionStore", "generate_protection", "mark", "router", "set_answers"]

SYSTEM = "registers"
MAX_PERSONS = 20

#: How a malformed answer looks (for tests of a fail-closed client).
AnswerMode = Literal["normal", "malformed", "incomplete"]


def generate_protection(
    rng: random.Random, applications: list[dict[str, Any]], options: SandboxOptions
) -> tuple[dict[str, dict[str, bool]], list[dict[str, Any]]]:
    """Protection markings for some persons of the applications, and where they were planted.

    A household is picked with probability ``protected_identity_rate``; one of its members
    (adult or child) gets a sekretessmarkering, and in a third of the cases skyddad
    folkbokföring as well (which Skatteverket normally combines with a sekretessmarkering).
    """
    marked: dict[str, dict[str, bool]] = {}
    planted: list[dict[str, Any]] = []
    for app in applications:
        if rng.random() >= options.protected_identity_rate:
            continue
        members = [("applicant", app["applicant"])]
        if app.get("co_applicant"):
            members.append(("co_applicant", app["co_applicant"]))
        members += [(f"child_{n + 1}", c) for n, c in enumerate(app.get("children") or [])]
        role, person = rng.choice(members)
        number = str(person["personnummer"]).replace("-", "")
        kind = {"sekretessmarkering": True, "skyddad_folkbokforing": rng.random() < 1 / 3}
        marked[number] = kind
        planted.append({"application_id": app["id"], "role": role, "personnummer": number, **kind})
    return marked, planted


@dataclass
class ProtectionStore:
    """Markings set through the admin API (over the generated ones), and how answers look."""

    marked: dict[str, dict[str, bool]] = field(default_factory=dict)
    mode: AnswerMode = "normal"


def _store(state: SandboxState) -> ProtectionStore:
    return state.store("registers.protection", ProtectionStore)


def mark(state: SandboxState, personnummer: str, *, sekretessmarkering: bool, skyddad_folkbokforing: bool) -> None:
    """Set (or clear, with both False) a person's protection markings."""
    _store(state).marked[personnummer.replace("-", "")] = {
        "sekretessmarkering": sekretessmarkering,
        "skyddad_folkbokforing": skyddad_folkbokforing,
    }


def set_answers(state: SandboxState, mode: AnswerMode) -> None:
    """Answer normally, with a malformed body, or leaving a person out."""
    _store(state).mode = mode


def _markings(state: SandboxState, number: str) -> dict[str, bool]:
    own = _store(state).marked.get(number)
    if own is not None:
        return own
    generated: dict[str, dict[str, bool]] = state.data.protected_identities
    return generated.get(number) or {"sekretessmarkering": False, "skyddad_folkbokforing": False}


# --- API ---------------------------------------------------------------------------------------

router = APIRouter(prefix="/registers", tags=["registers (SSBTEK-like)"])


class ProtectionIn(BaseModel):
    """A protection check: about whom, for which case, why, and by what right."""

    model_config = ConfigDict(extra="forbid")
    personnummer: list[str] = Field(min_length=1, max_length=MAX_PERSONS)
    case_id: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    organisation: str | None = None


@router.post("/protection")
async def protection(request: Request, state: SandboxState = Depends(get_state)) -> Any:
    """Per personnummer: sekretessmarkering and skyddad folkbokföring (see the module docstring)."""
    if {"personnummer", "pnr", "personal_number"} & {k.lower() for k in request.query_params}:
        state.log.record(SYSTEM, "protection.refused", "-", {"reason": "personnummer_in_url"})
        return error(400, "personnummer_in_url", "send the personnummer in the body")
    try:
        body = ProtectionIn.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        return error(400, "bad_request", "the body must be a protection check", detail=str(exc)[:500])
    missing = [name for name in ("case_id", "purpose", "legal_basis") if not (getattr(body, name) or "").strip()]
    if missing:
        state.log.record(SYSTEM, "protection.refused", body.case_id or "-", {"reason": "missing", "missing": missing})
        return error(400, "missing_fields", "a protection check needs " + ", ".join(missing), missing=missing)
    numbers = [n.replace("-", "").strip() for n in body.personnummer]
    if any(len(n) != 12 or not stdnum_personnummer.is_valid(n) for n in numbers):
        state.log.record(SYSTEM, "protection.refused", body.case_id or "-", {"reason": "invalid_personnummer"})
        return error(400, "invalid_personnummer", "every personnummer must be 12 digits with a valid check digit")
    entry = state.log.record(
        SYSTEM,
        "protection",
        body.case_id or "",
        {"persons": len(numbers), "purpose": body.purpose, "legal_basis": body.legal_basis},
    )
    mode = _store(state).mode
    persons = [{"personnummer": n, **_markings(state, n)} for n in numbers]
    if mode == "malformed":
        persons = [{"personnummer": p["personnummer"], "sekretessmarkering": "kanske"} for p in persons]
    elif mode == "incomplete":
        persons = persons[1:]
    return JSONResponse(
        {
            "request_id": f"FOLK-{entry.seq:07d}",
            "fetched_at": entry.at,
            "case_id": body.case_id,
            "persons": persons,
        }
    )


def inspect(state: SandboxState) -> dict[str, Any]:
    """Admin view (merged into ``/admin/state/registers``): checks made and the markings in force."""
    store = _store(state)
    return {
        "protection_checks": state.log.count(SYSTEM, "protection"),
        "protection_answers": store.mode,
        "protected_identity": {
            **{n: m for n, m in state.data.protected_identities.items()},
            **store.marked,
        },
    }
