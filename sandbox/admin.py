"""h. The admin API: reset, fault injection, the sandbox clock, and inspection for tests.

Never faulted itself. ``GET /admin/state/{system}`` is what tests check: every write made
to the system (with counts per action and key), requests by outcome, the faults in force,
and system-specific state — decisions per application, bookings, SMS sent, plans
published, exports written, and for payroll/oidc whatever those modules register — plus
the planted scenarios (``scenarios``) that the system APIs do not reveal.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sandbox import eservice, open_eplatform, payroll, protection, scheduling, sms
from sandbox.common import ApiError
from sandbox.faults import describe_all
from sandbox.state import SYSTEMS, FaultSettings, SandboxOptions, SandboxState, get_state

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])


class ResetIn(BaseModel):
    """Reset to a seed; ``options`` (partial) change volumes or the day for the new data."""

    model_config = ConfigDict(extra="forbid")
    seed: int | None = None
    options: dict[str, Any] | None = None


class ClockIn(BaseModel):
    """Move or set the sandbox clock."""

    model_config = ConfigDict(extra="forbid")
    advance_minutes: float | None = None
    advance_seconds: float | None = None
    set: datetime | None = None
    time_scale: float | None = Field(None, ge=0, le=10_000)


class LockIn(BaseModel):
    """A period to lock in the payroll application (pay for it has been calculated)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    first: date = Field(alias="from")
    last: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> LockIn:
        if self.last < self.first:
            raise ValueError("'to' is before 'from'")
        return self


class NewVersionIn(BaseModel):
    """A changed schedule approved as a new version: all its ``rows``, or changes to its first row."""

    model_config = ConfigDict(extra="forbid")
    period: str | None = Field(None, description="YYYY-MM; default: the employee's first approved schedule")
    rows: list[dict[str, Any]] | None = None
    first_row: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_change(self) -> NewVersionIn:
        if (self.rows is None) == (self.first_row is None):
            raise ValueError("give exactly one of 'rows' and 'first_row'")
        return self


class ProtectedIn(BaseModel):
    """A person's protection markings in the population register (both False clears them)."""

    model_config = ConfigDict(extra="forbid")
    personnummer: str = Field(min_length=12, max_length=13)
    sekretessmarkering: bool = True
    skyddad_folkbokforing: bool = False


class ProtectionAnswersIn(BaseModel):
    """How the protection check answers: normally, malformed, or leaving the first person out."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["normal", "malformed", "incomplete"]


def _system(system: str) -> str:
    if system not in SYSTEMS:
        raise ApiError(404, "not_found", f"no system {system!r}", systems=list(SYSTEMS))
    return system


@router.get("/health")
async def health(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Liveness and what is loaded."""
    return {
        "status": "ok",
        "seed": state.seed,
        "today": state.today.isoformat(),
        "tenant": state.options.tenant,
        "municipality": state.options.municipality,
        "systems": list(SYSTEMS),
        "counts": state.data.counts(),
        "now": state.now_iso(),
    }


@router.get("/options")
async def get_options(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """The options in force."""
    return state.options.model_dump(mode="json")


@router.post("/reset")
async def reset(body: ResetIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Regenerate everything from the seed; all writes, faults and planned replies are forgotten."""
    options = state.options
    if body.options:
        try:
            options = SandboxOptions.model_validate({**state.options.model_dump(), **body.options})
        except ValidationError as exc:
            raise ApiError(
                422,
                "bad_options",
                "the options are invalid",
                detail=exc.errors(include_url=False, include_context=False),
            ) from None
    state.reset(body.seed, options)
    return {"seed": state.seed, "options": state.options.model_dump(mode="json"), "counts": state.data.counts()}


@router.get("/faults")
async def all_faults(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Every system's fault settings, remaining counters and statistics."""
    return describe_all(state)


@router.get("/faults/{system}")
async def get_faults(system: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """One system's faults."""
    return state.faults[_system(system)].describe()


@router.post("/faults/{system}")
async def set_faults(system: str, body: FaultSettings, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Replace one system's faults (fields left out take their no-fault defaults)."""
    return state.set_faults(_system(system), body).describe()


@router.delete("/faults/{system}")
async def clear_faults(system: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """No more faults for the system."""
    state.clear_faults(_system(system))
    return state.faults[system].describe()


@router.get("/state")
async def all_state(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Per system: writes by action and requests by outcome."""
    return {
        s: {
            "write_counts": {a: sum(k.values()) for a, k in state.log.counts(s).items()},
            "requests": dict(state.requests.get(s, {})),
        }
        for s in SYSTEMS
    }


@router.get("/state/{system}")
async def system_state(system: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Everything tests may check about one system (see the module docstring)."""
    if system == "sms":
        sms.materialize(state)
    return state.inspect(_system(system))


@router.get("/log")
async def write_log(
    state: SandboxState = Depends(get_state), system: str | None = None, action: str | None = None, since: int = 0
) -> dict[str, Any]:
    """The write log (``seq > since``)."""
    return {"items": [e.as_dict() for e in state.log.entries(system, action, since)]}


@router.get("/truth")
async def truth(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Every planted scenario: anomalies, undeclared incomes, substitutes' reply behaviour."""
    return state.data.truth


@router.get("/clock")
async def get_clock(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """The sandbox clock."""
    return {"now": state.now_iso(), "time_scale": state.clock.time_scale}


@router.post("/clock")
async def set_clock(body: ClockIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Jump the clock (``set``, then ``advance_*``) and/or change its speed; due SMS replies arrive."""
    if body.set is not None:
        state.clock.set(body.set)
    seconds = (body.advance_minutes or 0) * 60 + (body.advance_seconds or 0)
    if seconds:
        state.clock.advance(seconds)
    if body.time_scale is not None:
        state.clock.set_scale(body.time_scale)
    arrived = sms.materialize(state)
    return {"now": state.now_iso(), "time_scale": state.clock.time_scale, "sms_replies_arrived": arrived}


@router.post("/payroll/locks", status_code=201)
async def lock_payroll_period(body: LockIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Lock a period in the payroll application: saving a schedule in it is refused from now on."""
    store = payroll.store_for(state)
    store.lock(body.first, body.last)
    return {
        "locked_until": store.locked_until.isoformat(),
        "locked_ranges": [[a.isoformat(), b.isoformat()] for a, b in store.locked_ranges],
    }


@router.post("/scheduling/employees/{employee_id}/versions", status_code=201)
async def approve_schedule_version(
    employee_id: str, body: NewVersionIn, state: SandboxState = Depends(get_state)
) -> dict[str, Any]:
    """A manager approves a changed schedule as a new version (the current one becomes superseded)."""
    try:
        return scheduling.approve_new_version(
            state, employee_id, period=body.period, rows=body.rows, first_row=body.first_row
        )
    except LookupError as exc:
        raise ApiError(404, "no_schedule", str(exc)) from None


@router.post("/eservice/complements/{complement_id}/arrive")
async def complement_arrives(complement_id: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Simulate an applicant sending the complement asked for."""
    return eservice.mark_complement_arrived(state, complement_id)


@router.post("/registers/protected")
async def mark_protected(body: ProtectedIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Give a person a sekretessmarkering and/or skyddad folkbokföring (or clear both)."""
    protection.mark(
        state,
        body.personnummer,
        sekretessmarkering=body.sekretessmarkering,
        skyddad_folkbokforing=body.skyddad_folkbokforing,
    )
    return {"personnummer": body.personnummer.replace("-", ""), **body.model_dump(exclude={"personnummer"})}


@router.post("/registers/protection-answers")
async def protection_answers(body: ProtectionAnswersIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Make the protection check's answers malformed or incomplete (``normal`` restores them)."""
    protection.set_answers(state, body.mode)
    return {"mode": body.mode}


@router.post("/oep/instances/{flow_instance_id}/malformed")
async def oep_malformed(flow_instance_id: int, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Open ePlatform serves this flow instance's XML cut off from now on (until a reset)."""
    try:
        open_eplatform.mark_malformed(state, flow_instance_id)
    except KeyError:
        raise ApiError(404, "not_found", f"no flow instance {flow_instance_id}") from None
    return {"flow_instance_id": flow_instance_id, "malformed": True}
