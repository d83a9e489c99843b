"""Running robots: ``run``, ``night``, ``worker``, ``scheduler``, ``schedules`` and ``items``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from core.cli.common import (
    Exit,
    build_engine,
    chosen_tenants,
    console,
    emit_json,
    err_console,
    load_cli_settings,
    open_database,
    registry,
)
from core.clock import SystemClock
from core.engine import Engine, RunSummary
from core.errors import ConfigError
from core.registry import Registry
from core.storage.models import ItemStatus, WorkItem

if TYPE_CHECKING:
    from core.scheduler import Schedule
    from core.settings import Settings


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("run")(run_cmd)
    app.command("night")(night_cmd)
    app.command("worker")(worker_cmd)
    app.command("scheduler")(scheduler_cmd)
    app.command("schedules")(schedules_cmd)
    app.command("items")(items_cmd)


# -- reporting runs --------------------------------------------------------------------
def summaries_table(summaries: Sequence[RunSummary], reg: Registry) -> Table:
    """One row per run: its counts (the time robots save is measured per month: ``kollega effects``)."""
    table = Table("Robot", "Tenant", "Run", "Status", "Items", "Done", "To review", "Exceptions", "Uncertain")
    for s in summaries:
        c = s.counts
        table.add_row(
            s.robot,
            s.tenant,
            str(s.run_id or "-"),
            s.status.value,
            str(c.get("collected", 0)),
            str(c.get("done", 0)),
            str(c.get("needs_review", 0)),
            str(c.get("failed_business", 0) + c.get("failed_application", 0)),
            str(c.get("uncertain", 0)),
        )
    return table


def summary_json(s: RunSummary) -> dict[str, Any]:
    """One run's summary as ``--json`` prints it."""
    return {
        "run_id": s.run_id,
        "robot": s.robot,
        "tenant": s.tenant,
        "status": s.status.value,
        "counts": s.counts,
        "error": s.error,
        "dry_run": s.dry_run,
        "refused_writes": s.refused_writes,
    }


async def run_many(
    engine: Engine,
    jobs: Sequence[tuple[str, str]],
    *,
    dry_run: bool = False,
    limit: int | None = None,
    trigger: str = "manual",
    show_progress: bool = True,
) -> list[RunSummary]:
    """Run each (robot, tenant) job in turn, with a progress bar on standard error.

    SIGTERM or SIGINT stops gracefully: the current items are finished, the run is recorded
    as ``interrupted`` and the jobs not yet started are skipped. A second signal acts as usual.
    """
    summaries: list[RunSummary] = []
    stop_on_signal(engine)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=not show_progress,
    )
    with progress:
        for robot, tenant in jobs:
            if engine.stop_requested:
                break
            task = progress.add_task(f"{robot} · {tenant}", total=None)

            def update(_event: str, counts: dict[str, int], task: Any = task) -> None:
                done = sum(counts.get(k, 0) for k in ("done", "needs_review", "failed_business", "failed_application"))
                progress.update(task, total=max(counts.get("collected", 0), done) or None, completed=done)

            summaries.append(
                await engine.run(robot, tenant, trigger=trigger, dry_run=dry_run, limit=limit, on_progress=update)
            )
            progress.update(task, total=1, completed=1)
    return summaries


def stop_on_signal(engine: Engine) -> None:
    """On the running loop: the first SIGTERM or SIGINT asks ``engine`` to stop gracefully."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        engine.request_stop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal: the default (stop at once)
            loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            return


def _report(summaries: list[RunSummary], as_json: bool) -> None:
    if as_json:
        emit_json([summary_json(s) for s in summaries])
    else:
        console.print(summaries_table(summaries, registry()))
        for s in summaries:
            if s.error:
                err_console.print(f"[red]{s.robot} · {s.tenant}: {s.error}[/red]")
            if s.refused_writes:
                err_console.print(f"{s.robot} · {s.tenant}: dry run refused {len(s.refused_writes)} write(s)")
    if any(s.needs_attention for s in summaries):
        raise Exit(1)


# -- running now -----------------------------------------------------------------------
def run_cmd(
    robot: str = typer.Argument(..., help="Robot name (see `kollega robots`)."),
    tenant: str | None = typer.Option(None, "--tenant", help="Kommunkod; default: every configured tenant."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Run, but refuse and report every external write."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Process at most N items."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run one robot now."""
    settings = load_cli_settings()
    registry().get(robot)
    db = open_database(settings)
    engine = build_engine(settings, db)
    jobs = [(robot, t) for t in chosen_tenants(settings, tenant)]
    summaries = asyncio.run(run_many(engine, jobs, dry_run=dry_run, limit=limit, show_progress=not as_json))
    _report(summaries, as_json)


def night_cmd(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this kommunkod."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run every robot scheduled tonight, now, in schedule order."""
    import core.scheduler as sched

    settings = load_cli_settings()
    db = open_database(settings)
    engine = build_engine(settings, db)
    jobs = sched.night_jobs(settings, registry(), SystemClock(), chosen_tenants(settings, tenant))
    summaries = asyncio.run(run_many(engine, jobs, show_progress=not as_json))
    _report(summaries, as_json)


# -- long-running processes ------------------------------------------------------------
def serve_until_signal(coro_factory: Callable[[asyncio.Event], Any]) -> None:
    """Run ``coro_factory(stop)`` on a new event loop; SIGINT or SIGTERM sets ``stop``."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await coro_factory(stop)

    asyncio.run(main())


def worker_cmd(once: bool = typer.Option(False, "--once", help="Stop when there is nothing left to do.")) -> None:
    """Claim queued runs and process due items and decisions until stopped (SIGTERM)."""
    from core.worker import Worker

    settings = load_cli_settings()
    worker = Worker(build_engine(settings, open_database(settings)))
    serve_until_signal(lambda stop: worker.serve(stop, once=once))


def scheduler_cmd() -> None:
    """Create runs from schedules/*.toml at their times (one leader; catches up after downtime).

    Edited, added and removed schedule files are noticed while it runs ([scheduler]
    reload_seconds); a broken file is logged and the others keep running.
    """
    import core.scheduler as sched
    from core.engine import worker_id

    settings = load_cli_settings()
    db = open_database(settings)
    engine = build_engine(settings, db)
    if not settings.scheduler.schedules_dir.is_dir():
        raise ConfigError(f"schedules folder {settings.scheduler.schedules_dir} does not exist")
    scheduler = sched.Scheduler.from_folder(db, settings, registry(), engine.clock, worker_id())
    serve_until_signal(scheduler.serve)


def _own_days_off(settings: Settings, schedule: Schedule, day: date) -> list[str]:
    """``kommunkod: reason`` for each of the schedule's municipalities whose own day off ``day`` is."""
    import core.scheduler as sched

    found = []
    for code in sched.schedule_tenants(schedule, settings):
        tenant = settings.tenant(code)
        reason = sched.skip_reason(schedule, day, settings.scheduler, tenant.days_off if tenant else None)
        if reason is not None:
            found.append(f"{code}: {reason}")
    return found


def schedules_cmd(
    count: int = typer.Option(3, "--count", min=1, max=50, help="How many next fire times to show."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Schedules with their next fire times (local time) and whether tomorrow is skipped."""
    import core.scheduler as sched

    settings = load_cli_settings()
    now = SystemClock().now()
    rows: list[dict[str, Any]] = []
    for s in sched.installed_schedules(settings, registry()):
        zone = s.zone
        tomorrow = (now.astimezone(zone) + timedelta(days=1)).date()
        reason = sched.skip_reason(s, tomorrow, settings.scheduler)
        nexts = []
        for _slot, when in sched.next_slots(s, now, count):
            local = when.astimezone(zone)
            skip = sched.skip_reason(s, local.date(), settings.scheduler)
            # A municipality's own days off (klämdagar) skip only its share of the slot.
            own = [] if skip else _own_days_off(settings, s, local.date())
            note = f" (skipped: {skip})" if skip else (f" (skipped for {', '.join(own)})" if own else "")
            nexts.append(local.strftime("%Y-%m-%d %H:%M %Z") + note)
        rows.append(
            {
                "name": s.name,
                "robot": s.robot,
                "tenants": sched.schedule_tenants(s, settings),
                "cron": s.cron,
                "timezone": s.timezone,
                "calendar": s.calendar,
                "window_end": s.window_end,
                "enabled": s.enabled,
                "next": nexts,
                "tomorrow": f"skipped: {reason}" if reason else "runs",
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table("Schedule", "Robot", "Tenants", "Cron", "Calendar", "Next (local time)", "Tomorrow", "Enabled")
    for r in rows:
        table.add_row(
            r["name"],
            r["robot"],
            ", ".join(r["tenants"]),
            r["cron"],
            r["calendar"],
            "\n".join(r["next"]),
            r["tomorrow"],
            "yes" if r["enabled"] else "no",
        )
    console.print(table)


# -- work items ------------------------------------------------------------------------
def items_cmd(
    robot: str | None = typer.Option(None, "--robot"),
    status: ItemStatus | None = typer.Option(None, "--status"),
    tenant: str | None = typer.Option(None, "--tenant"),
    limit: int = typer.Option(100, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Work items, newest first."""
    settings = load_cli_settings()
    db = open_database(settings)
    stmt = select(WorkItem).order_by(WorkItem.id.desc()).limit(limit)
    if robot:
        stmt = stmt.where(WorkItem.robot == robot)
    if status:
        stmt = stmt.where(WorkItem.status == status)
    if tenant:
        stmt = stmt.where(WorkItem.tenant == tenant)
    with db.session() as s:
        rows = s.scalars(stmt).all()
    data = [
        {
            "id": r.id,
            "robot": r.robot,
            "tenant": r.tenant,
            "reference": r.reference,
            "status": r.status.value,
            "attempts": r.attempts,
            "error_code": r.error_code,
            "error": r.error_message,
            "updated_at": r.updated_at.isoformat(),
        }
        for r in rows
    ]
    if as_json:
        emit_json(data)
        return
    table = Table("Id", "Robot", "Tenant", "Reference", "Status", "Attempts", "Error")
    for d in data:
        table.add_row(*(str(d[k] or "") for k in ("id", "robot", "tenant", "reference", "status", "attempts", "error")))
    console.print(table)
