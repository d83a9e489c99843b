"""e. The scheduling system (schemaläggning): approved schedules, as JSON and as CSV exports.

Every employee has a schedule for the coming month: one row per working day (date, start,
end, break minutes, activity code from :data:`ACTIVITY_CODES`); a few days have two rows.
Managers approve schedules; some are approved again as version 2 after a change (the
earlier version is then ``superseded``) and some are still drafts. The employee list is
the one the payroll application knows too (``state.employees``).

``POST /scheduling/exports`` (or :func:`write_csv_export`) writes the selected schedules
as one semicolon-separated UTF-8 CSV file into a drop folder, atomically (written under a
temporary name, then renamed), optionally with deliberately malformed rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sandbox.common import (
    add_months,
    content_hash,
    error,
    local,
    month_end,
    month_key,
    not_found,
    paginate,
    parse_month,
)
from sandbox.geography import geography
from sandbox.people import PersonFactory
from sandbox.state import TZ, SandboxOptions, SandboxState, get_state

__all__ = [
    "ACTIVITY_CODES",
    "CSV_COLUMNS",
    "SchedulingStore",
    "approve_new_version",
    "generate_employees",
    "router",
    "write_csv_export",
]

SYSTEM = "scheduling"

#: Activity codes of schedule rows (the payroll application accepts exactly these).
ACTIVITY_CODES = {
    "ARB": "Arbetstid",
    "UTB": "Utbildning",
    "APT": "Arbetsplatsträff",
    "JOUR": "Jour",
    "BER": "Beredskap",
}
CSV_COLUMNS = (
    "employee_id",
    "personnummer",
    "schedule_id",
    "version",
    "period",
    "date",
    "start",
    "end",
    "break_minutes",
    "activity_code",
    "approved_at",
)
_OFFICE_UNITS = (
    "Kommunledningsförvaltningen",
    "Socialförvaltningen, försörjningsstöd",
    "Bemanningsenheten",
    "Tekniska förvaltningen",
    "Kulturskolan",
)
_PRESCHOOLS = ("Förskolan Solrosen", "Förskolan Ekorren", "Förskolan Tallkotten")
#: Pattern → list of (start, end, break minutes) to choose from per working day.
_PATTERNS: dict[str, tuple[tuple[tuple[int, int], tuple[int, int], int], ...]] = {
    "dag": (((7, 0), (16, 0), 30), ((7, 0), (15, 30), 30), ((8, 0), (16, 30), 30)),
    "kväll": (((13, 30), (21, 30), 30), ((15, 0), (22, 0), 30)),
    "växlande": (((7, 0), (16, 0), 30), ((13, 30), (21, 30), 30), ((7, 0), (13, 0), 0)),
    "kontor": (((8, 0), (17, 0), 60), ((7, 30), (16, 30), 60)),
    "förskola": (((6, 30), (15, 0), 45), ((8, 30), (17, 0), 45)),
}
_MANAGERS = ("chef:karin.lind", "chef:johan.berg", "chef:sara.holm", "chef:anders.nystrom", "chef:maria.olsson")


def _hhmm(h: int, m: int) -> str:
    return f"{h:02d}:{m:02d}"


def _rows(rng: random.Random, pattern: str, rate: int, start: date, end: date) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    day = start
    weekdays_only = pattern in ("kontor", "förskola")
    share = rate / 100 * (1.0 if weekdays_only else 5 / 7)
    while day <= end:
        works = day.isoweekday() <= 5 or not weekdays_only
        if works and rng.random() < share:
            (sh, sm), (eh, em), pause = rng.choice(_PATTERNS[pattern])
            code = "UTB" if rng.random() < 0.03 else "ARB"
            if rng.random() < 0.03 and sh < 12 and eh > 14:  # a workplace meeting after lunch: two rows
                rows.append(
                    {
                        "date": day.isoformat(),
                        "start": _hhmm(sh, sm),
                        "end": "12:00",
                        "break_minutes": 0,
                        "activity_code": code,
                    }
                )
                rows.append(
                    {
                        "date": day.isoformat(),
                        "start": "13:00",
                        "end": _hhmm(eh, em),
                        "break_minutes": 0,
                        "activity_code": "APT",
                    }
                )
            else:
                rows.append(
                    {
                        "date": day.isoformat(),
                        "start": _hhmm(sh, sm),
                        "end": _hhmm(eh, em),
                        "break_minutes": pause,
                        "activity_code": code,
                    }
                )
        day += timedelta(days=1)
    return rows


def generate_employees(
    rng: random.Random, people: PersonFactory, options: SandboxOptions
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(employees, schedules for the coming month, every version)."""
    period_start = add_months(options.today, 1)
    period_end = month_end(period_start)
    period = month_key(period_start)
    care_units = [u[0] for u in geography(options.tenant).units]
    employees: list[dict[str, Any]] = []
    schedules: list[dict[str, Any]] = []
    for i in range(options.employees):
        person = people.person(20, 66)
        roll = rng.random()
        unit, pattern = (
            (rng.choice(care_units), rng.choice(("dag", "kväll", "växlande", "växlande")))
            if roll < 0.6
            else (rng.choice(_PRESCHOOLS), "förskola")
            if roll < 0.8
            else (rng.choice(_OFFICE_UNITS), "kontor")
        )
        rate = rng.choice((100, 100, 100, 90, 80, 75, 50))
        emp = {
            "id": f"E{10001 + i}",
            "personnummer": person.personnummer,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "unit": unit,
            "employment_rate": rate,
            "pattern": pattern,
            "manager": rng.choice(_MANAGERS),
        }
        employees.append(emp)
        rows = _rows(rng, pattern, rate, period_start, period_end)
        approved = local(options.today - timedelta(days=rng.randint(1, 10)), rng.randint(8, 16), rng.randint(0, 59))
        status = "draft" if rng.random() < 0.03 else "approved"
        base = {
            "employee_id": emp["id"],
            "personnummer": emp["personnummer"],
            "employee_name": f"{emp['first_name']} {emp['last_name']}",
            "unit": unit,
            "period": period,
            "period_from": period_start.isoformat(),
            "period_to": period_end.isoformat(),
        }
        first = {
            **base,
            "schedule_id": f"SCH-{emp['id']}-{period}-v1",
            "version": 1,
            "status": status,
            "approved_at": approved.isoformat(timespec="seconds") if status == "approved" else None,
            "approved_by": emp["manager"] if status == "approved" else None,
            "rows": rows,
        }
        schedules.append(first)
        if status == "approved" and rows and rng.random() < 0.05:
            changed = [dict(r) for r in rows]
            target = rng.randrange(len(changed))
            changed[target]["end"] = "17:00" if changed[target]["end"] < "17:00" else "15:00"
            later = min(approved + timedelta(days=rng.randint(0, 3), hours=rng.randint(1, 5)), local(options.today, 6))
            first["status"] = "superseded"
            schedules.append(
                {
                    **base,
                    "schedule_id": f"SCH-{emp['id']}-{period}-v2",
                    "version": 2,
                    "status": "approved",
                    "approved_at": later.isoformat(timespec="seconds"),
                    "approved_by": emp["manager"],
                    "rows": changed,
                }
            )
    for s in schedules:
        s["content_hash"] = content_hash(s["rows"])
    return employees, schedules


# --- CSV export ---------------------------------------------------------------------------------


@dataclass
class SchedulingStore:
    """Exports written."""

    exports: list[dict[str, Any]] = field(default_factory=list)


def _store(state: SandboxState) -> SchedulingStore:
    return state.store(SYSTEM, SchedulingStore)


def _select(
    state: SandboxState,
    period: str | None,
    approved_since: datetime | None,
    include: set[str] | None = None,
    employee_id: str | None = None,
) -> list[dict[str, Any]]:
    statuses = include or {"approved"}
    since = approved_since if approved_since is None or approved_since.tzinfo else approved_since.replace(tzinfo=TZ)
    return [
        s
        for s in state.data.schedules
        if s["status"] in statuses
        and (period is None or s["period"] == period)
        and (employee_id is None or s["employee_id"] == employee_id)
        and (since is None or (s["approved_at"] is not None and datetime.fromisoformat(s["approved_at"]) > since))
    ]


def write_csv_export(
    state: SandboxState,
    folder: Path,
    period: str | None = None,
    approved_since: datetime | None = None,
    malformed_rows: int = 0,
    employee_ids: list[str] | None = None,
) -> dict[str, Any]:
    """Write the selected approved schedules as one CSV file in ``folder``; returns what was written."""
    folder = Path(folder)
    root = state.options.export_root
    if root is not None and not folder.resolve().is_relative_to(Path(root).resolve()):
        raise ValueError(f"exports may only be written below {root}")
    chosen = [
        s for s in _select(state, period, approved_since) if employee_ids is None or s["employee_id"] in employee_ids
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    lines: list[list[str]] = []
    for s in chosen:
        for r in s["rows"]:
            lines.append(
                [
                    s["employee_id"],
                    s["personnummer"],
                    s["schedule_id"],
                    str(s["version"]),
                    s["period"],
                    r["date"],
                    r["start"],
                    r["end"],
                    str(r["break_minutes"]),
                    r["activity_code"],
                    s["approved_at"] or "",
                ]
            )
    seq = len(_store(state).exports) + 1
    broken: list[int] = []
    if malformed_rows and lines:
        rng = state.rng("export", seq)
        for index in sorted(rng.sample(range(len(lines)), min(malformed_rows, len(lines)))):
            column, bad = rng.choice(((6, "25:00"), (9, ""), (8, "trettio"), (5, "2026-02-30"), (7, "7.30")))
            lines[index][column] = bad
            broken.append(index + 2)  # file line number (header is line 1)
    writer.writerows(lines)
    data = buffer.getvalue().encode("utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    name = f"schema_export_{state.now():%Y%m%dT%H%M%S}_{seq:03d}.csv"
    temporary = folder / f".{name}.part"
    temporary.write_bytes(data)
    os.replace(temporary, folder / name)
    summary = {
        "path": str(folder / name),
        "filename": name,
        "schedules": len(chosen),
        "rows": len(lines),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "malformed_lines": broken,
    }
    _store(state).exports.append(summary)
    state.log.record(SYSTEM, "export.written", name, {"schedules": len(chosen), "rows": len(lines)})
    return summary


# --- API ---------------------------------------------------------------------------------------

router = APIRouter(prefix="/scheduling", tags=["scheduling"])


def approve_new_version(
    state: SandboxState,
    employee_id: str,
    *,
    period: str | None = None,
    rows: list[dict[str, Any]] | None = None,
    first_row: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A manager approves a changed schedule: a new version, the current one becomes ``superseded``.

    The change is either the whole ``rows`` or ``first_row`` (fields updated in the current
    version's first row). ``period`` (``YYYY-MM``) defaults to the employee's first approved
    schedule with rows. Raises LookupError when there is no approved schedule to change.
    """
    wanted = month_key(parse_month(period)) if period else None
    current = next(
        (
            s
            for s in state.data.schedules
            if s["status"] == "approved"
            and s["employee_id"] == employee_id
            and (wanted is None or s["period"] == wanted)
            and (s["rows"] or wanted is not None)
        ),
        None,
    )
    if current is None:
        raise LookupError(f"no approved schedule for {employee_id}" + (f" in {wanted}" if wanted else ""))
    new_rows = [dict(r) for r in (rows if rows is not None else current["rows"])]
    if first_row:
        if not new_rows:
            raise LookupError(f"the schedule of {employee_id} in {current['period']} has no rows to change")
        new_rows[0].update(first_row)
    version = current["version"] + 1
    new = {
        **current,
        "schedule_id": f"SCH-{employee_id}-{current['period']}-v{version}",
        "version": version,
        "approved_at": state.now().isoformat(timespec="seconds"),
        "rows": new_rows,
        "content_hash": content_hash(new_rows),
    }
    current["status"] = "superseded"
    state.data.schedules.append(new)
    return new


class ExportIn(BaseModel):
    """Which schedules to export, and where."""

    model_config = ConfigDict(extra="forbid")
    folder: str = Field(min_length=1)
    period: str | None = None
    approved_since: datetime | None = None
    employee_ids: list[str] | None = None
    malformed_rows: int = Field(0, ge=0, le=1000)


def _summary(s: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in s.items() if k != "rows"} | {"row_count": len(s["rows"])}


@router.get("/employees")
async def list_employees(
    state: SandboxState = Depends(get_state), offset: int = 0, limit: int = 1000
) -> dict[str, Any]:
    """Employees (id, personnummer, name, unit, employment rate)."""
    return paginate(state.data.employees, offset, limit)


@router.get("/schedules")
async def list_schedules(
    state: SandboxState = Depends(get_state),
    period: str | None = None,
    approved_since: datetime | None = None,
    status: str = "approved",
    offset: int = 0,
    limit: int = 1000,
) -> dict[str, Any]:
    """Schedule summaries (no rows), by approval time; ``status`` = approved | superseded | draft | all."""
    if period:
        period = month_key(parse_month(period))
    include = {"approved", "superseded", "draft"} if status == "all" else {status}
    items = sorted(
        (_summary(s) for s in _select(state, period, approved_since, include)),
        key=lambda s: (s["approved_at"] or "", s["schedule_id"]),
    )
    return paginate(items, offset, limit)


@router.get("/schedules/{schedule_id}")
async def get_schedule(schedule_id: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """One schedule version with its rows."""
    for s in state.data.schedules:
        if s["schedule_id"] == schedule_id:
            return s
    raise not_found(f"schedule {schedule_id}")


@router.get("/employees/{employee_id}/schedule")
async def employee_schedule(
    employee_id: str, state: SandboxState = Depends(get_state), period: str | None = None
) -> Any:
    """The employee's current approved schedule for a period (default: the coming month)."""
    wanted = month_key(parse_month(period)) if period else month_key(add_months(state.today, 1))
    found = _select(state, wanted, None, employee_id=employee_id)
    if not found:
        return error(404, "no_schedule", f"no approved schedule for {employee_id} in {wanted}")
    return found[-1]


@router.post("/exports", status_code=201)
async def create_export(body: ExportIn, state: SandboxState = Depends(get_state)) -> Any:
    """Write a CSV export into ``folder`` (see the module docstring)."""
    folder = Path(body.folder)
    if not folder.is_absolute():
        return error(422, "bad_folder", "folder must be an absolute path")
    try:
        summary = write_csv_export(
            state, folder, body.period, body.approved_since, body.malformed_rows, body.employee_ids
        )
    except ValueError as exc:
        return error(403, "folder_not_allowed", str(exc))
    except OSError as exc:
        return error(500, "write_failed", f"{type(exc).__name__}: {exc}")
    return JSONResponse(summary, status_code=201)


def inspect(state: SandboxState) -> dict[str, Any]:
    """Admin view: the exports written."""
    return {
        "exports": _store(state).exports,
        "schedules": {
            "approved": sum(1 for s in state.data.schedules if s["status"] == "approved"),
            "superseded": sum(1 for s in state.data.schedules if s["status"] == "superseded"),
            "draft": sum(1 for s in state.data.schedules if s["status"] == "draft"),
        },
    }
