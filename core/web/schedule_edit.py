"""Changing a schedule from the dashboard: validated, written back to its TOML file, audited.

Operations staff change a schedule's time (cron), window end, calendar and whether it is
on. The file in schedules/ is the one source of truth, so the change is written back to it
(:func:`core.schedule_files.write_schedule`: comments kept, atomic) and the running
scheduler picks it up like an edit by hand. Only a person with operations rights for every
municipality the schedule covers may change it: a shared schedule changes for all of them.
Each change is an audit event ``schedule.changed`` per municipality, with before and after.
"""

from __future__ import annotations

from typing import Any

from core import audit
from core.errors import ConfigError, WebError
from core.schedule_files import write_schedule
from core.web.auth import Forbidden, NotFound
from core.web.dashboard import _schedules
from core.web.deps import WebContext

#: Swedish messages for a change that does not validate, by the key that failed.
_PROBLEMS = {
    "cron": "Tiden (cron) är ogiltig: skriv fem fält, minut timme dag månad veckodag, t.ex. 30 1 * * 1-5.",
    "window_end": "Sluttiden ska skrivas TT:MM, mellan 00:00 och 23:59.",
    "calendar": "Kalendern ska vara 'workdays' (vardagar) eller 'all' (alla dagar).",
}


class ScheduleEditError(WebError):
    """A schedule change from the dashboard does not validate; the file is left as it was.

    The message is Swedish: the page shows it to operations staff.
    """

    code = "schedule_edit"


def change_schedule(
    ctx: WebContext,
    tenants: set[str],
    name: str,
    *,
    cron: str,
    window_end: str,
    calendar: str,
    enabled: bool,
    actor: str,
) -> dict[str, list[Any]]:
    """Write the new values to ``name``'s file and audit them; the changed keys as [before, after].

    NotFound for a schedule outside the person's tenants; Forbidden when it covers a
    municipality the person does not operate; ScheduleEditError (Swedish) when invalid.
    """
    rows, _everyone, _problems = _schedules(ctx, tenants)
    row = next((r for r in rows if r.name == name), None)
    if row is None or not row.file:
        raise NotFound()
    if not set(row.all_tenants) <= tenants:
        raise Forbidden()
    changes = {
        "cron": " ".join(cron.split()),
        "window_end": window_end.strip(),
        "calendar": calendar,
        "enabled": enabled,
    }
    codes = {t.code for t in ctx.settings.tenants} | tenants
    try:
        before, after = write_schedule(
            ctx.settings.scheduler.schedules_dir,
            row.file,
            changes,
            robots=set(ctx.registry.robots) or None,
            tenants=codes,
        )
    except ConfigError as exc:
        failed = next((key for key in _PROBLEMS if f"{key}:" in exc.message), None)
        message = _PROBLEMS[failed] if failed else "Schemat kunde inte sparas: schemafilen är inte giltig."
        raise ScheduleEditError(message) from None
    diff = {
        key: [getattr(before, key), getattr(after, key)]
        for key in changes
        if getattr(before, key) != getattr(after, key)
    }
    if diff:
        now = ctx.clock()
        with ctx.db.session() as s:
            for code in row.all_tenants:
                audit.append(
                    s,
                    actor=actor,
                    action="schedule.changed",
                    tenant=code,
                    details={"schedule": name, "file": row.file, "changes": diff},
                    now=now,
                )
    return diff
