"""A night of all four robots while a monkey SIGKILLs workers: nothing lost, nothing written twice.

    .venv/bin/python bench/chaos_night.py --backend postgresql --workers 2 --kills 100 --json
        [--interval 2.0] [--applications 120] [--employees 30] [--max-seconds 1500]
        [--day-rounds 3] [--day-step-minutes 30] [--day-kills N/4] [--out bench/results/chaos.json]

A sandbox municipality (1081) is served over HTTP in this process, as the demo does
(sandbox.testing.running_sandbox, "today" the real date). A fresh database (a schema in
the PostgreSQL at KOLLEGA_TEST_POSTGRES_URL, or a SQLite file) gets one queued run per
robot (ronney, bosse, lena, harry), as the scheduler would make them. ``--workers`` real
``kollega worker`` processes (``python -m core.cli worker``, configured through a
KOLLEGA_CONFIG file pointing every connector at the sandbox) claim and work them. Every
``--interval`` seconds the monkey SIGKILLs a random worker and starts a new one in its
place; meanwhile every open decision review is decided — approved (by two people under
four-eyes), or rejected when it carries no proposed amount, which cannot be approved as is —
so the robots carry decisions out too. Bosse books a shift only when a substitute answers an
offer, so its night run is followed by ``--day-rounds`` rounds of its day: whenever no Bosse
run is queued or running (the other robots' nights may still be going), the bench moves the
sandbox clock ``--day-step-minutes`` on (the sandbox's SMS gateway then delivers the replies
substitutes would have sent by then, as its behaviours dictate) and queues another Bosse
run, as the daytime schedule does; that run books the yeses (and confirms them, tells the
others, sends further waves) while the monkey goes on killing: the last ``--day-kills`` kills
(a quarter by default) are kept until Bosse's day has begun (``kills_in_day_rounds`` says how
many fell in it). Bosse's quiet hours are moved away from the hour the
bench runs at (an hour, twelve hours on), so its offers go out whenever the bench is run.
The monkey stops once ``--kills`` kills are done and the night and day are over (every run
finished, no item pending or in progress, no decision waiting to be carried out); the
workers are then stopped with SIGTERM.

Then it checks and prints (and writes to --out)::

    {"kills", "items", "lost": 0, "duplicate_writes": 0, "uncertain", "audit_ok": true, "seconds", …}

- lost: work items not in a final or review state (pending or in progress) at the end;
- duplicate_writes: from the sandbox's own write logs (GET /admin/state/{system}), every
  key written more than once: a schedule saved twice (payroll ``schedule.saved``), a shift
  booked twice (staffing ``booking.created``), a decision written twice (e-service
  ``decision.created``), a plan published twice (home care ``plan.published``); the
  counts of those writes are in ``writes`` (``bookings`` also has the bookings cancelled
  again and the shifts left booked, from the staffing system's own state);
- uncertain: items left ``uncertain`` for a person (a worker died mid-write);
- audit_ok: the audit chain verifies.
Exit code 0 when the night finished within --max-seconds, lost == 0, duplicate_writes == 0
and audit_ok; 1 otherwise ("finished": false and the figures of what was left).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from core.audit import Auditor  # noqa: E402
from core.errors import AlreadyDecided, ReviewError  # noqa: E402
from core.review import ReviewQueue  # noqa: E402
from core.runs import SqlRunStore  # noqa: E402
from core.storage.db import Database  # noqa: E402
from core.storage.models import CallbackStatus, ItemStatus, ReviewItem, ReviewKind, Run, RunStatus, WorkItem  # noqa: E402
from sandbox.testing import running_sandbox  # noqa: E402

ROBOTS = ("ronney", "bosse", "lena", "harry")
TENANT = "1081"
#: The sandbox's write logs that must never hold one key twice: system → action.
ONCE_ONLY = {
    "payroll": "schedule.saved",
    "staffing": "booking.created",
    "eservice": "decision.created",
    "homecare": "plan.published",
}
PENDING = (RunStatus.queued, RunStatus.running)
OPEN_WORK = (ItemStatus.pending, ItemStatus.in_progress)


# -- configuration -------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and not set(value) <= {"env", "file"}  # a secret reference stays inline


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, dict) for x in value)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for the settings' shapes: scalars, tables of tables, arrays of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not _is_table(v) and not _is_table_array(v)]
    for k, v in data.items():
        if _is_table_array(v):
            for entry in v:
                lines.append(f"\n[[{prefix}{k}]]")
                lines.extend(f"{ek} = {_toml_value(ev)}" for ek, ev in entry.items())
    for k, v in data.items():
        if _is_table(v):
            lines.append(f"\n[{prefix}{k}]")
            lines.append(to_toml(v, f"{prefix}{k}."))
    return "\n".join(lines) + "\n"


def write_config(folder: Path, db_url: str, sandbox_url: str, lease: float) -> Path:
    """The workers' KOLLEGA_CONFIG: the deployment's file, connectors at the sandbox, one tenant."""
    with (ROOT / "config" / "kollega.toml").open("rb") as fh:
        data = tomllib.load(fh)
    data["database_url"] = db_url
    data["var_dir"] = str(folder / "var")
    data["tenants"] = [t for t in data["tenants"] if t["code"] == TENANT]
    data["worker"] = {
        **data.get("worker", {}),
        "concurrency": 2,
        "lease_seconds": lease,
        "item_timeout_seconds": lease * 0.8,
        "backoff_base_seconds": 0.5,
        "backoff_cap_seconds": 2.0,
        "retry_wait_seconds": 5.0,
        "poll_seconds": 0.5,
    }
    data["logging"] = {"level": "WARNING", "format": "json"}
    # The deployment's sections and the municipality's own (the shipped file declares each
    # municipality's systems in its [[tenants]] entry) all point at this night's sandbox.
    sections = [*data.get("connectors", {}).values()]
    for tenant in data["tenants"]:
        sections += (tenant.get("connectors") or {}).values()
    for section in sections:
        if "base_url" in section:
            section["base_url"] = section["base_url"].replace("http://127.0.0.1:8765", sandbox_url)
    data.setdefault("robots", {}).setdefault("lena", {})["time_limit_seconds"] = 2.0
    # Bosse sends no offers in its quiet hours (21-07 by default); the bench may run at any
    # hour, so they are moved to an hour twelve hours away: offers go out now, and the
    # day rounds' replies are booked.
    quiet = (datetime.now(ZoneInfo("Europe/Stockholm")) + timedelta(hours=12)).hour
    data["robots"].setdefault("bosse", {}).update(
        quiet_hours_start=f"{quiet:02d}:00", quiet_hours_end=f"{(quiet + 1) % 24:02d}:00"
    )
    path = folder / "kollega.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return path


# -- workers and the monkey ------------------------------------------------------------------
class Workers:
    """The ``kollega worker`` processes: started, killed, replaced."""

    def __init__(self, config: Path, folder: Path) -> None:
        self.env = {
            **os.environ,
            "KOLLEGA_CONFIG": str(config),
            "KOLLEGA_HARRY_PASSWORD": "sandlada-harry",
            "PYTHONUNBUFFERED": "1",
        }
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        log = (self.folder / f"worker-{self.started}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.procs.append(proc)
        return proc

    def kill_one(self, rng: random.Random) -> None:
        alive = [p for p in self.procs if p.poll() is None]
        victim = rng.choice(alive)
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        self.procs.remove(victim)
        self.start()

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


# -- the night ---------------------------------------------------------------------------------
def approve_open(reviews: ReviewQueue, db: Database) -> int:
    """Decide every open decision review (two people approve under four-eyes); returns how many decided."""
    decided = 0
    for r in reviews.list(limit=200):
        if r.kind != ReviewKind.decision:
            continue
        # A proposal without an amount (Ronney could not compute one) cannot be approved as
        # it is: a person would decide in the e-service itself; the monkey's person rejects it.
        proposal = (r.material or {}).get("proposal")
        decision = "reject" if isinstance(proposal, dict) and proposal.get("amount") is None else "approve"
        comment = None if decision == "approve" else "Inget föreslaget belopp: avslås i kaosprovet."
        try:
            reviews.decide(r.id, decision, actor="user:chaos.anna", comment=comment)
            if r.four_eyes and decision == "approve":
                reviews.decide(r.id, decision, actor="user:chaos.bertil")
            decided += 1
        except (AlreadyDecided, ReviewError):  # decided meanwhile (a race with another decider): fine
            continue
    return decided


def night_over(db: Database) -> bool:
    """Every run finished, no item pending or in progress, no decision waiting to be carried out."""
    with db.session() as s:
        runs_left = s.scalar(select(func.count()).select_from(Run).where(Run.status.in_(PENDING))) or 0
        work_left = s.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.status.in_(OPEN_WORK))) or 0
        callbacks = (
            s.scalar(
                select(func.count()).select_from(ReviewItem).where(ReviewItem.callback_status == CallbackStatus.pending)
            )
            or 0
        )
        open_decisions = (
            s.scalar(
                select(func.count())
                .select_from(ReviewItem)
                .where(ReviewItem.kind == ReviewKind.decision, ReviewItem.state == "open")
            )
            or 0
        )
    return runs_left == 0 and work_left == 0 and callbacks == 0 and open_decisions == 0


def bosse_idle(db: Database) -> bool:
    """No Bosse run queued or running (the other robots' nights may still be going)."""
    with db.session() as s:
        return not s.scalar(select(func.count()).select_from(Run).where(Run.robot == "bosse", Run.status.in_(PENDING)))


def day_round(sandbox_url: str, runs: SqlRunStore, minutes: float) -> int:
    """Move the sandbox clock on (due SMS replies arrive) and queue a Bosse run; returns the replies."""
    with httpx.Client(base_url=sandbox_url, timeout=30) as client:
        moved = client.post("/admin/clock", json={"advance_minutes": minutes}).raise_for_status().json()
    runs.create(robot="bosse", tenant=TENANT, trigger="schedule")
    return int(moved.get("sms_replies_arrived", 0))


def bookings(sandbox_url: str) -> dict[str, int]:
    """What the staffing system's own state says about bookings: made, cancelled, shifts left booked."""
    with httpx.Client(base_url=sandbox_url, timeout=30) as client:
        state = client.get("/admin/state/staffing").raise_for_status().json()
        items = client.get("/staffing/bookings").raise_for_status().json()["items"]
    made = [w for w in state["writes"] if w["action"] == "booking.created"]
    active = Counter(b["shift_id"] for b in items if b["status"] == "active")
    return {
        "made": len(made),
        "cancelled": sum(1 for w in state["writes"] if w["action"] == "booking.cancelled"),
        "shifts_booked": len(active),
        "shifts_with_two_active_bookings": sum(1 for n in active.values() if n > 1),
        "substitutes_booked": len({w["details"].get("substitute_id") for w in made}),
    }


def duplicate_writes(sandbox_url: str) -> dict[str, list[str]]:
    """Keys written more than once in the sandbox's own write logs, per system."""
    found: dict[str, list[str]] = {}
    with httpx.Client(base_url=sandbox_url, timeout=30) as client:
        for system, action in ONCE_ONLY.items():
            writes = client.get(f"/admin/state/{system}").raise_for_status().json()["writes"]
            keys = Counter(w["key"] for w in writes if w["action"] == action)
            twice = sorted(k for k, n in keys.items() if n > 1)
            if twice:
                found[system] = twice
    return found


def figures(db: Database, sandbox_url: str) -> dict[str, Any]:
    """The night's outcome, from the database and the sandbox's write logs."""
    with db.session() as s:
        by_status = dict(s.execute(select(WorkItem.status, func.count()).group_by(WorkItem.status)).all())
        runs = dict(s.execute(select(Run.status, func.count()).group_by(Run.status)).all())
        callbacks = dict(
            s.execute(
                select(ReviewItem.callback_status, func.count())
                .where(ReviewItem.kind == ReviewKind.decision)
                .group_by(ReviewItem.callback_status)
            ).all()
        )
        errors = Counter(
            (e or "")[:160]
            for e in s.scalars(select(ReviewItem.callback_error).where(ReviewItem.callback_error.is_not(None))).all()
        )
        open_decisions = s.scalar(
            select(func.count())
            .select_from(ReviewItem)
            .where(ReviewItem.kind == ReviewKind.decision, ReviewItem.state == "open")
        )
    dups = duplicate_writes(sandbox_url)
    with httpx.Client(base_url=sandbox_url, timeout=30) as client:
        writes = {
            system: sum(1 for w in client.get(f"/admin/state/{system}").json()["writes"] if w["action"] == action)
            for system, action in ONCE_ONLY.items()
        }
    return {
        "items": sum(by_status.values()),
        "lost": sum(by_status.get(s, 0) for s in OPEN_WORK),
        "duplicate_writes": sum(len(v) for v in dups.values()),
        "duplicate_writes_by_system": {system: len(dups.get(system, [])) for system in ONCE_ONLY},
        "duplicates": dups,
        "uncertain": by_status.get(ItemStatus.uncertain, 0),
        "items_by_status": {str(k.value): v for k, v in by_status.items()},
        "runs_by_status": {str(k.value): v for k, v in runs.items()},
        "decisions_by_callback_status": {str(k.value): v for k, v in callbacks.items()},
        "callback_errors": dict(errors.most_common(5)),
        "open_decisions": open_decisions,
        "writes": writes,
        "bookings": bookings(sandbox_url),
        "audit_ok": Auditor(db.session).verify().ok,
    }


def fresh_database(backend: str, folder: Path) -> tuple[Database, str, str | None]:
    """(database, its URL, the PostgreSQL schema to drop afterwards or None)."""
    if backend == "sqlite":
        url = f"sqlite:///{folder / 'chaos.db'}"
        db = Database(url)
        db.upgrade()
        return db, url, None
    base = os.environ.get("KOLLEGA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"chaos_{uuid.uuid4().hex[:10]}"
    admin = Database(base)
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    db = Database(url)
    db.upgrade()
    return db, url, schema


def drop_schema(schema: str) -> None:
    base = os.environ.get("KOLLEGA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    admin = Database(base)
    with admin.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def chaos_night(args: argparse.Namespace) -> dict[str, Any]:
    """Run the night under the monkey; return the figures."""
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="kollega-chaos-"))
    db, url, schema = fresh_database(args.backend, folder)
    options = {"applications": args.applications, "employees": args.employees}
    started = time.monotonic()
    kills = rounds = replies = 0
    kills_before_day: int | None = None
    try:
        with running_sandbox(seed=args.seed, today=date.today(), tenant=TENANT, **options) as sandbox_url:
            config = write_config(folder, url, sandbox_url, args.lease)
            runs = SqlRunStore(db)
            runs.ensure_tenant(TENANT, "Ronneby kommun")
            for robot in ROBOTS:
                runs.create(robot=robot, tenant=TENANT, trigger="schedule")
            reviews = ReviewQueue(db)
            workers = Workers(config, folder)
            for _ in range(args.workers):
                workers.start()
            next_kill = time.monotonic() + args.interval
            finished = True
            try:
                while True:
                    if time.monotonic() - started > args.max_seconds:
                        finished = False  # reported with what was left, never hidden
                        break
                    approve_open(reviews, db)
                    if rounds < args.day_rounds and bosse_idle(db):
                        replies += day_round(sandbox_url, runs, args.day_step_minutes)
                        rounds += 1
                        if rounds == 1:
                            kills_before_day = kills
                    # The last --day-kills kills wait for Bosse's day: its bookings are made under them.
                    held = args.day_kills if rounds == 0 and args.day_rounds > 0 else 0
                    if kills < args.kills - held and time.monotonic() >= next_kill:
                        workers.kill_one(rng)
                        kills += 1
                        next_kill = time.monotonic() + args.interval
                    elif kills >= args.kills and rounds >= args.day_rounds and night_over(db):
                        break
                    time.sleep(0.25)
            finally:
                workers.stop()
            result = figures(db, sandbox_url)
    finally:
        db.dispose()
        if schema is not None:
            drop_schema(schema)
    return {
        "kills": kills,
        "finished": finished,
        **result,
        "day_rounds": rounds,
        # Kills dealt once Bosse's day had begun (its bookings were made under these).
        "kills_in_day_rounds": None if kills_before_day is None else kills - kills_before_day,
        "sms_replies_delivered": replies,
        "seconds": round(time.monotonic() - started, 1),
        "backend": args.backend,
        "workers": args.workers,
        "interval_seconds": args.interval,
        "sandbox": {"applications": args.applications, "employees": args.employees, "seed": args.seed},
        "day_step_minutes": args.day_step_minutes,
        "day_kills_held": args.day_kills,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the night, print and write the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--kills", type=int, default=100, help="SIGKILLs to deal out (default 100)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between kills (default 2)")
    p.add_argument("--lease", type=float, default=20.0, help="the workers' lease in seconds (default 20)")
    p.add_argument("--applications", type=int, default=120, help="Ronney's applications in the sandbox")
    p.add_argument("--employees", type=int, default=30, help="HaRry's employees in the sandbox")
    p.add_argument("--day-rounds", type=int, default=3, help="Bosse day runs after the night (default 3)")
    p.add_argument(
        "--day-step-minutes", type=float, default=30, help="sandbox minutes before each day run (default 30)"
    )
    p.add_argument(
        "--day-kills", type=int, default=None, help="kills kept for Bosse's day rounds (default a quarter of --kills)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-seconds", type=float, default=1500, help="give up after this long (default 1500)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "chaos.json")
    args = p.parse_args(argv)
    if args.day_kills is None:
        args.day_kills = args.kills // 4
    args.day_kills = min(args.day_kills, args.kills)
    result = chaos_night(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
    else:
        for key in ("kills", "items", "lost", "duplicate_writes", "uncertain", "audit_ok", "seconds"):
            print(f"{key:>18}: {result[key]}")
    ok = result["finished"] and result["lost"] == 0 and result["duplicate_writes"] == 0 and result["audit_ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
