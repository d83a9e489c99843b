"""The ``kollega`` command (typer + rich). Exit codes: 0 success, 1 needs attention, 2 bad input/config."""

from __future__ import annotations

import asyncio
import getpass
import json
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from core import audit as audit_mod
from core.engine import Engine, RunSummary
from core.errors import ConfigError, KollegaError, ReviewError
from core.logging import configure_logging
from core.registry import Registry, load_robots
from core.settings import Settings, load_settings
from core.storage.db import Database, redact_url
from core.storage.models import ItemStatus, ReviewState, WorkItem

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="kollega",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Kollega: digital colleagues that prepare the night's work for people to decide on.",
)
review_app = typer.Typer(no_args_is_help=True, help="Review queues: list, show and decide items.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit and access log.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(review_app, name="review")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")

_registry: Registry | None = None


class Exit(Exception):
    """Leave the command with an exit code (after the output was printed)."""

    def __init__(self, code: int) -> None:
        self.code = code


# -- bootstrapping ---------------------------------------------------------------------
def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


def _database(settings: Settings, *, migrated: bool = True) -> Database:
    db = Database(settings.effective_database_url)
    if migrated:
        db.check_migrated()
    return db


def registry() -> Registry:
    """The robots installed, loaded once per process."""
    global _registry
    if _registry is None:
        _registry = load_robots()
    return _registry


def _engine(settings: Settings, db: Database) -> Engine:
    return Engine.from_database(db, settings, registry())


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _tenants(settings: Settings, tenant: str | None) -> list[str]:
    codes = [t.code for t in settings.tenants]
    if tenant is not None:
        if tenant not in codes:
            raise ConfigError(f"unknown tenant {tenant!r}; configured tenants: {', '.join(codes) or 'none'}")
        return [tenant]
    if not codes:
        raise ConfigError("no tenants configured: add a [[tenants]] section to config/kollega.toml")
    return codes


def _cli_actor(by: str | None) -> str:
    return f"user:{by}" if by else f"cli:{getpass.getuser()}"


# -- robots ----------------------------------------------------------------------------
@app.command("robots")
def robots_cmd(
    strict: bool = typer.Option(False, "--strict", help="Exit 2 if any plugin is broken (for CI)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List installed robots (name, version, description, health) and broken plugins."""
    reg = registry()
    rows = [
        {
            "name": n,
            "version": reg.versions.get(n, ""),
            "display_name": c.display_name,
            "description": c.description,
            "health": "ok",
        }
        for n, c in sorted(reg.robots.items())
    ]
    rows += [
        {"name": b.name, "version": "", "display_name": "", "description": b.target, "health": f"broken: {b.error}"}
        for b in reg.broken
    ]
    if as_json:
        _emit_json(rows)
    else:
        table = Table("Robot", "Version", "Name", "Description", "Health")
        for r in rows:
            table.add_row(
                r["name"],
                r["version"],
                r["display_name"],
                r["description"],
                r["health"] if r["health"] == "ok" else f"[red]{r['health']}[/red]",
            )
        console.print(table)
    if reg.broken:
        raise Exit(2 if strict else 1)


# -- running ---------------------------------------------------------------------------
def _summaries_table(summaries: Sequence[RunSummary], reg: Registry) -> Table:
    table = Table(
        "Robot", "Tenant", "Run", "Status", "Items", "Done", "To review", "Exceptions", "Uncertain", "Time saved"
    )
    for s in summaries:
        c = s.counts
        minutes = reg.robots[s.robot].manual_minutes_per_item if s.robot in reg.robots else 0
        handled = c.get("done", 0) + c.get("needs_review", 0)
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
            f"{handled * minutes / 60:.1f} h",
        )
    return table


def _summary_json(s: RunSummary) -> dict[str, Any]:
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


async def _run_many(
    engine: Engine,
    jobs: Sequence[tuple[str, str]],
    *,
    dry_run: bool = False,
    limit: int | None = None,
    trigger: str = "manual",
    show_progress: bool = True,
) -> list[RunSummary]:
    summaries: list[RunSummary] = []
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
            task = progress.add_task(f"{robot} · {tenant}", total=None)

            def update(_event: str, counts: dict[str, int], task: Any = task) -> None:
                done = sum(counts.get(k, 0) for k in ("done", "needs_review", "failed_business", "failed_application"))
                progress.update(task, total=max(counts.get("collected", 0), done) or None, completed=done)

            summaries.append(
                await engine.run(robot, tenant, trigger=trigger, dry_run=dry_run, limit=limit, on_progress=update)
            )
            progress.update(task, total=1, completed=1)
    return summaries


def _report(summaries: list[RunSummary], as_json: bool) -> None:
    if as_json:
        _emit_json([_summary_json(s) for s in summaries])
    else:
        console.print(_summaries_table(summaries, registry()))
        for s in summaries:
            if s.error:
                err_console.print(f"[red]{s.robot} · {s.tenant}: {s.error}[/red]")
            if s.refused_writes:
                err_console.print(f"{s.robot} · {s.tenant}: dry run refused {len(s.refused_writes)} write(s)")
    if any(s.needs_attention for s in summaries):
        raise Exit(1)


@app.command("run")
def run_cmd(
    robot: str = typer.Argument(..., help="Robot name (see `kollega robots`)."),
    tenant: str | None = typer.Option(None, "--tenant", help="Kommunkod; default: every configured tenant."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Run, but refuse and report every external write."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Process at most N items."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run one robot now."""
    settings = _settings()
    registry().get(robot)
    db = _database(settings)
    engine = _engine(settings, db)
    jobs = [(robot, t) for t in _tenants(settings, tenant)]
    summaries = asyncio.run(_run_many(engine, jobs, dry_run=dry_run, limit=limit, show_progress=not as_json))
    _report(summaries, as_json)


def _schedule_tenants(schedule: Any, settings: Settings) -> list[str]:
    codes = [t.code for t in settings.tenants]
    return codes if schedule.tenants == ["*"] else [t for t in schedule.tenants if t in codes]


def _load_schedules(settings: Settings) -> list[Any]:
    import core.scheduler as sched

    return sched.load_schedules(
        settings.scheduler.schedules_dir, robots=set(registry().robots), tenants={t.code for t in settings.tenants}
    )


def night_jobs(settings: Settings, tenant: str | None) -> list[tuple[str, str]]:
    """(robot, tenant) pairs of the enabled schedules, in the order they fire in the coming 24 h.

    Robots without any schedule come last, so that a night run covers every installed robot;
    a robot whose schedules are all disabled is left out.
    """
    import core.scheduler as sched

    tenants = _tenants(settings, tenant)
    now = datetime.now(UTC)
    firing: list[tuple[datetime, str, str]] = []
    switched_off: set[str] = set()
    for schedule in _load_schedules(settings):
        if not schedule.enabled:
            switched_off.add(schedule.robot)
            continue
        upcoming = sched.next_slots(schedule, now, 1)
        when = upcoming[0][1] if upcoming else now + timedelta(days=365)
        firing += [(when, schedule.robot, t) for t in _schedule_tenants(schedule, settings) if t in tenants]
    jobs: list[tuple[str, str]] = []
    for _when, robot, t in sorted(firing, key=lambda f: f[0]):
        if robot in registry().robots and (robot, t) not in jobs:
            jobs.append((robot, t))
    scheduled = {r for r, _t in jobs} | switched_off
    jobs += [(r, t) for r in sorted(registry().robots) if r not in scheduled for t in tenants]
    return jobs


@app.command("night")
def night_cmd(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this kommunkod."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run every robot scheduled tonight, now, in schedule order."""
    settings = _settings()
    db = _database(settings)
    engine = _engine(settings, db)
    summaries = asyncio.run(_run_many(engine, night_jobs(settings, tenant), show_progress=not as_json))
    _report(summaries, as_json)


# -- long-running processes ------------------------------------------------------------
def _serve_until_signal(coro_factory: Callable[[asyncio.Event], Any]) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await coro_factory(stop)

    asyncio.run(main())


@app.command("worker")
def worker_cmd(once: bool = typer.Option(False, "--once", help="Stop when there is nothing left to do.")) -> None:
    """Claim queued runs and process due items and decisions until stopped (SIGTERM)."""
    from core.worker import Worker

    settings = _settings()
    worker = Worker(_engine(settings, _database(settings)))
    _serve_until_signal(lambda stop: worker.serve(stop, once=once))


@app.command("scheduler")
def scheduler_cmd() -> None:
    """Create runs from schedules/*.toml at their times (one leader; catches up after downtime)."""
    import core.scheduler as sched
    from core.engine import worker_id

    settings = _settings()
    db = _database(settings)
    engine = _engine(settings, db)
    scheduler = sched.Scheduler(db, settings, _load_schedules(settings), engine.clock, worker_id())
    _serve_until_signal(scheduler.serve)


@app.command("schedules")
def schedules_cmd(
    count: int = typer.Option(3, "--count", min=1, max=50, help="How many next fire times to show."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Schedules with their next fire times (local time) and whether tomorrow is skipped."""
    import core.scheduler as sched

    settings = _settings()
    now = datetime.now(UTC)
    rows = []
    for s in _load_schedules(settings):
        zone = s.zone
        tomorrow = (now.astimezone(zone) + timedelta(days=1)).date()
        reason = sched.skip_reason(s, tomorrow, settings.scheduler)
        nexts = []
        for _slot, when in sched.next_slots(s, now, count):
            local = when.astimezone(zone)
            skip = sched.skip_reason(s, local.date(), settings.scheduler)
            nexts.append(local.strftime("%Y-%m-%d %H:%M %Z") + (f" (skipped: {skip})" if skip else ""))
        rows.append(
            {
                "name": s.name,
                "robot": s.robot,
                "tenants": _schedule_tenants(s, settings),
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
        _emit_json(rows)
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


# -- items and reviews -----------------------------------------------------------------
@app.command("items")
def items_cmd(
    robot: str | None = typer.Option(None, "--robot"),
    status: ItemStatus | None = typer.Option(None, "--status"),
    tenant: str | None = typer.Option(None, "--tenant"),
    limit: int = typer.Option(100, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Work items, newest first."""
    settings = _settings()
    db = _database(settings)
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
        _emit_json(data)
        return
    table = Table("Id", "Robot", "Tenant", "Reference", "Status", "Attempts", "Error")
    for d in data:
        table.add_row(*(str(d[k] or "") for k in ("id", "robot", "tenant", "reference", "status", "attempts", "error")))
    console.print(table)


@review_app.command("list")
def review_list(
    queue: str | None = typer.Option(None, "--queue"),
    tenant: str | None = typer.Option(None, "--tenant"),
    state: ReviewState = typer.Option(ReviewState.open, "--state"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Review items, oldest first."""
    from core.review import ReviewQueue

    settings = _settings()
    rq = ReviewQueue(_database(settings))
    rows = rq.list(tenants={tenant} if tenant else None, queue=queue, state=state)
    data = [
        {
            "id": r.id,
            "tenant": r.tenant,
            "queue": r.queue,
            "kind": r.kind.value,
            "title": r.title,
            "state": r.state.value,
            "four_eyes": r.four_eyes,
            "due_at": r.due_at.isoformat() if r.due_at else None,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]
    if as_json:
        _emit_json(data)
        return
    table = Table("Id", "Tenant", "Queue", "Kind", "Title", "Due", "State")
    for d in data:
        table.add_row(*(str(d[k] or "") for k in ("id", "tenant", "queue", "kind", "title", "due_at", "state")))
    console.print(table)


@review_app.command("show")
def review_show(
    review_id: int = typer.Argument(...),
    by: str | None = typer.Option(None, "--by", help="Who is looking (written to the access log)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one review item (an audited access to personal data)."""
    from core.review import ReviewQueue

    settings = _settings()
    rq = ReviewQueue(_database(settings))
    r = rq.get(review_id, viewer=_cli_actor(by))
    data = {
        "id": r.id,
        "tenant": r.tenant,
        "robot": r.robot,
        "queue": r.queue,
        "kind": r.kind.value,
        "title": r.title,
        "summary": r.summary,
        "material": r.material,
        "state": r.state.value,
        "four_eyes": r.four_eyes,
        "first_approver": r.first_approver,
        "decided_by": r.decided_by,
        "decision_comment": r.decision_comment,
        "version": r.version,
        "comments": [{"author": c.author, "text": c.text} for c in rq.comments(r.id)],
    }
    if as_json:
        _emit_json(data)
        return
    console.print(f"[bold]{r.title}[/bold]  ({r.queue}, {r.state.value})")
    if r.summary:
        console.print(r.summary)
    console.print_json(json.dumps(r.material, ensure_ascii=False, default=str))


@review_app.command("decide")
def review_decide(
    review_id: int = typer.Argument(...),
    decision: str = typer.Argument(..., help="approve, reject or return."),
    comment: str | None = typer.Option(None, "--comment", help="Required to reject or return."),
    by: str | None = typer.Option(None, "--by", help="Who decides (default: the logged-in OS user)."),
) -> None:
    """Decide a review item; the robot carries the decision out on its next run or worker pass."""
    from core.review import ReviewQueue

    settings = _settings()
    rq = ReviewQueue(_database(settings))
    row = rq.decide(review_id, decision, actor=_cli_actor(by), comment=comment)
    if row.state == ReviewState.open:
        console.print(f"review {review_id}: first approval recorded; a second person must approve (four-eyes)")
    else:
        console.print(f"review {review_id}: {row.state.value}")


# -- audit -----------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="A checkpoint file: detects truncation."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Verify the hash chain; exit 1 naming the first bad seq."""
    settings = _settings()
    db = _database(settings)
    cp = audit_mod.read_checkpoint(checkpoint) if checkpoint else None
    with db.session() as s:
        result = audit_mod.verify(s, cp)
    if as_json:
        _emit_json(result.__dict__)
    elif result.ok:
        console.print(f"audit chain intact: {result.events} events, last seq {result.last_seq}")
    else:
        err_console.print(f"audit chain BROKEN at seq {result.bad_seq}: {result.problem}")
    if not result.ok:
        raise Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    append: Path | None = typer.Option(None, "--append", help="Also append the checkpoint to this file."),
) -> None:
    """Print the latest seq and hash (keep them outside the database to detect truncation)."""
    settings = _settings()
    db = _database(settings)
    with db.session() as s:
        seq, digest = audit_mod.latest(s)
    console.print(f"{seq} {digest}")
    if append:
        audit_mod.write_checkpoint(append, seq, digest)


# -- database --------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (creates the SQLite file on first use)."""
    settings = _settings()
    db = _database(settings, migrated=False)
    db.upgrade()
    console.print(f"database {redact_url(db.url)} is at revision {db.current_revision()}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and of the code."""
    settings = _settings()
    db = _database(settings, migrated=False)
    console.print(f"database: {db.current_revision() or 'not migrated'}; code: {db.head_revision()}")


# -- plugin kit --------------------------------------------------------------------------
@app.command("new-robot")
def new_robot(
    name: str = typer.Argument(..., help="The robot's name: lower case, digits, underscores (e.g. invoice_check)."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to create the package folder."),
    display: str | None = typer.Option(None, "--display-name", help="Name shown to people (default: from NAME)."),
) -> None:
    """Write a new robot package (robot, settings, rules, review template, tests, entry point)."""
    from core.newrobot import scaffold

    folder = scaffold(name, directory, display=display)
    console.print(f"Created {folder}")
    console.print(f"Next: pip install -e {folder}  &&  kollega robots  &&  pytest {folder / 'tests'}")


# -- artifacts ---------------------------------------------------------------------------
artifacts_app = typer.Typer(no_args_is_help=True, help="Screenshots and page snapshots saved when items fail.")
app.add_typer(artifacts_app, name="artifacts")


@artifacts_app.command("purge")
def artifacts_purge(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Delete artifacts past artifact_retention_days now (workers also do it every hour)."""
    from core.artifacts import ArtifactStore
    from core.clock import SystemClock

    settings = _settings()
    db = _database(settings)
    store = ArtifactStore(db, settings.var_dir / "artifacts", settings.artifact_retention_days, SystemClock())
    purged = store.purge_expired()
    if as_json:
        print(json.dumps({"deleted": purged, "retention_days": settings.artifact_retention_days}))
    else:
        console.print(f"{purged} expired artifact(s) deleted (retention {settings.artifact_retention_days} days)")


@app.command("purge")
def purge_cmd(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this kommunkod."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be cleared; change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Clear personal data in finished work past each tenant's retention periods ([retention])."""
    from core.clock import SystemClock
    from core.retention import purge

    settings = _settings()
    db = _database(settings)
    chosen = [t for t in settings.tenants if tenant is None or t.code == tenant]
    if tenant is not None and not chosen:
        raise ConfigError(f"no tenant with kommunkod {tenant} in the configuration")
    results = purge(db, settings, SystemClock().now(), dry_run=dry_run, actor="cli:purge", tenants=chosen)
    if as_json:
        _emit_json([r.as_dict() for r in results])
        return
    table = Table("Tenant", "Work items", "Review items", "Artifacts", "Periods (days: items / reviews / artifacts)")
    for r in results:
        table.add_row(
            r.tenant,
            str(r.work_items),
            str(r.review_items),
            str(r.artifacts),
            f"{r.work_item_days or 'kept'} / {r.review_days or 'kept'} / {r.artifact_days}",
        )
    console.print(table)
    if dry_run:
        console.print("Dry run: nothing was changed.")


# -- web app -----------------------------------------------------------------------------
from core.web.cli import serve_command, users_app  # noqa: E402 - mounted after the core commands

app.command("serve")(serve_command)
app.add_typer(users_app, name="users")


# -- sandbox ---------------------------------------------------------------------------
sandbox_app = typer.Typer(no_args_is_help=True, help="The simulated municipality the robots work against.")
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("serve")
def sandbox_serve(
    seed: int = typer.Option(1, "--seed", help="Same seed, same synthetic municipality."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (the sandbox has no authentication)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535),
) -> None:
    """Serve the sandbox's external systems over HTTP until interrupted."""
    from sandbox.server import serve

    console.print(f"sandbox (seed {seed}) on http://{host}:{port}/ - API in sandbox/API.md")
    serve(seed=seed, host=host, port=port)


# -- demo ------------------------------------------------------------------------------
@app.command("demo")
def demo_cmd(
    no_serve: bool = typer.Option(False, "--no-serve", help="Stop after the night's summary."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port of the inbox afterwards."),
    seed: int = typer.Option(1, "--seed", help="The sandbox municipality's seed."),
) -> None:
    """The sandbox, one full night of every robot on the embedded database, then the review inbox."""
    from core import demo

    settings = _settings()
    # A night compressed into minutes: transient failures are retried seconds apart.
    settings.worker = settings.worker.model_copy(
        update={"backoff_base_seconds": min(settings.worker.backoff_base_seconds, 1.0)}
    )
    db = _database(settings, migrated=False)
    db.upgrade()
    lena = settings.robots.setdefault("lena", {})
    lena.setdefault("time_limit_seconds", demo.DEMO_LENA_SECONDS)
    engine = _engine(settings, db)
    with demo.sandboxes(settings, seed) as urls:
        # Each municipality of the deployment gets a sandbox of its own (its own systems,
        # people and schedules); the robots run for all of them, sharing one database.
        jobs = night_jobs(settings, None)
        console.print(
            "[bold]Kollega demo[/bold]: "
            + ", ".join(f"sandbox for {code} at {url}" for code, url in urls.items())
            + f"; {len(jobs)} robot run(s) on {redact_url(db.url)}"
        )
        summaries = asyncio.run(_run_many(engine, jobs, trigger="manual"))
        console.print(_summaries_table(summaries, registry()))
        from core.review import ReviewQueue

        open_items = ReviewQueue(db).list()
        queues: dict[str, list[str]] = {}
        for r in open_items:
            queues.setdefault(r.tenant, [])
            if r.queue not in queues[r.tenant]:
                queues[r.tenant].append(r.queue)
        console.print(f"\n[bold]Review inbox[/bold]: {len(open_items)} item(s) waiting for a decision")
        failed = any(s.status.value == "failed" for s in summaries)
        if no_serve:
            raise Exit(1 if failed else 0)
        users = demo.demo_users(db, [t.code for t in settings.tenants], queues)
        table = Table("User", "Password", "Role", "Tenant")
        for u in users:
            table.add_row(u.username, u.password, u.role.value, u.tenant)
        console.print(table)
        import uvicorn

        from core.web.app import create_app

        console.print(f"[bold]Inbox and dashboard: http://127.0.0.1:{port}/[/bold]  (Ctrl-C stops)")
        uvicorn.run(
            create_app(settings, db, registry()), host="127.0.0.1", port=port, server_header=False, log_level="warning"
        )


# -- entry point -----------------------------------------------------------------------
def _mount_robot_commands() -> None:
    taken = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    for name, cls in sorted(registry().robots.items()):
        if name in taken:
            continue
        try:
            sub = cls(cls.settings_model.model_construct()).cli()
        except Exception as exc:  # a robot's CLI must not take the others down
            err_console.print(f"robot {name}: its commands could not be loaded: {exc}")
            continue
        if sub is not None:
            app.add_typer(sub, name=name, help=f"{cls.display_name}: {cls.description}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    try:
        _mount_robot_commands()
        # Without standalone mode a command's typer.Exit(code) comes back as the return value.
        rv = app(args=argv, standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except Exit as exc:
        return exc.code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except ConfigError as exc:
        err_console.print(f"error: {exc.message}", markup=False, highlight=False)
        return 2
    except ReviewError as exc:
        err_console.print(f"error: {exc.message}", markup=False, highlight=False)
        return 2
    except KollegaError as exc:
        err_console.print(f"error: {exc.message}", markup=False, highlight=False)
        return 1
    except Exception as exc:
        # Usage errors and aborts from the click that typer bundles (typer._click).
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            return 2
        if type(exc).__name__ == "Abort":
            return 130
        raise


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
