"""The morning rush: 30 case workers in the inbox at once, on PostgreSQL with a year's history.

    .venv/bin/python bench/inbox_load.py [--reviews 20000] [--queues 10] [--workers 30]
        [--seconds 300] [--think-seconds MIN,MAX] [--history-days 365] [--server-workers 2] [--keep-seed DATABASE]
        [--profile DIR [--cprofile]] [--out bench/results/inbox_load.json]

A fresh PostgreSQL database (at KOLLEGA_TEST_POSTGRES_URL's server; dropped afterwards)
gets two municipalities (1081, 1082), --reviews open review items spread over --queues
queues (half per municipality, made through the queue's own NeedsReview path, so each has
its work item and audit events), a year of finished runs with their done items (what the
dashboard's trends and figures read), --workers case workers with grants on their
municipality's queues and one operations user per municipality, all enrolled with a second
factor as production requires. Seeding takes minutes; with ``--keep-seed NAME`` it is done
once into database NAME, kept, and each run works on a fresh copy of it (CREATE DATABASE …
TEMPLATE), so runs before and after a change start from the same data.

The web app is served by ``kollega serve --workers 2`` (``--server-workers``; its own uvicorn
configuration) in a separate process (real HTTP on 127.0.0.1). Each case worker logs in (password + TOTP), then for
--seconds loops: list its queue, open an item, approve it (the item is picked by the
worker's place among its queue's workers, as colleagues take different items); each
operations user loads the dashboard every 2 s. By default a case worker loads its next page
as soon as the last one came (a closed loop: the latencies are then what the server's
throughput allows 30 busy clients); ``--think-seconds MIN,MAX`` pauses before each page, a
uniform draw between MIN and MAX (as Locust's ``wait_time = between(MIN, MAX)``), as a person
reads and types between pages. The script prints and writes p50/p95/p99 in
ms per page, errors (any 5xx, an unexpected 4xx or a transport error), conflicts (409: a
colleague decided the item first, the page says so) and the server's resident memory
sampled every 5 s, with its growth per minute over the first and second half of the run after
the logins (memory that levels off grows less in the second half; a leak does not).

``--profile DIR`` serves through bench/inbox_profile_server.py instead (one process): per
page its SQL statements, their time and the commits (DIR/requests.json), with ``--cprofile``
a cProfile of the serving threads (DIR/server.prof); meanwhile PostgreSQL's sessions of the
database are sampled every 50 ms (DIR/pg_waits.json: what they wait for, and which
statements wait for a lock). A profiled run is slower: it shows where time goes, not the
figures to compare.

Targets (issue 23): p95 below 300 ms for the inbox list and an item page, below 800 ms for
the dashboard, no errors, memory flat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TENANTS = {"1081": "Ronneby kommun", "1082": "Karlshamns kommun"}
ROBOT = "example"
ITEM_LINK = re.compile(r'href="/inbox/items/(\d+)"')
VERSION = re.compile(r'name="version" value="(\d+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


# -- the database ---------------------------------------------------------------------------
def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(sql)


def queues(n: int) -> dict[str, list[str]]:
    """``n`` queue names split between the two municipalities."""
    names = [f"{ROBOT}.kö{i}" for i in range(n)]
    return {"1081": names[: n // 2], "1082": names[n // 2 :]}


def seed(url: str, a: argparse.Namespace) -> dict[str, Any]:
    """Fill the fresh database at ``url``; returns who logs in where."""
    from sqlalchemy import text

    from core.queue import WorkQueue
    from core.robot import NeedsReview, NewItem
    from core.runs import SqlRunStore
    from core.storage.db import Database
    from core.storage.web_models import Role
    from core.testing.web import _password_hash, enrol_totp
    from core.web.auth import Grant, create_user

    db = Database(url)
    db.upgrade()
    runs = SqlRunStore(db)
    for code, name in TENANTS.items():
        runs.ensure_tenant(code, name)
    qs = queues(a.queues)
    queue = WorkQueue(db)
    started = time.monotonic()
    per_queue = a.reviews // a.queues
    for tenant, names in qs.items():
        for qname in names:
            refs = [NewItem(reference=f"{qname}-{i}", payload={"n": i, "amount": 1000 + i}) for i in range(per_queue)]
            queue.enqueue(ROBOT, tenant, refs)
            while claimed := queue.claim(ROBOT, tenant, "seed", limit=500, lease_seconds=3600):
                for item in claimed:
                    n = int(item.payload["n"])
                    queue.complete(
                        item,
                        NeedsReview(
                            queue=qname,
                            title=f"Ärende {item.reference}",
                            summary=f"Föreslaget belopp {1000 + n} kr",
                            material={"amount": 1000 + n, "reference": item.reference},
                        ),
                        actor="robot:example",
                    )
    seeded_reviews = time.monotonic() - started
    # A year of nightly runs per robot and municipality, each with its finished items:
    # generated in the database, as the dashboard only reads them.
    robots = ["ronney", "bosse", "lena", "harry", "example"]
    with db.engine.begin() as conn:
        for tenant in TENANTS:
            for robot in robots:
                conn.execute(
                    text(
                        """
                        INSERT INTO runs (robot, tenant, trigger, status, dry_run, collected, done, needs_review,
                                          failed_business, failed_application, uncertain, retried,
                                          created_at, started_at, finished_at)
                        SELECT :robot, :tenant, 'schedule', 'succeeded', false, :per_run, :per_run - 5, 5, 0, 0, 0, 0,
                               d, d, d + interval '40 minutes'
                        FROM generate_series(now() - make_interval(days => :days), now() - interval '1 day',
                                             interval '1 day') AS d
                        """
                    ),
                    {"robot": robot, "tenant": tenant, "per_run": a.items_per_run, "days": a.history_days},
                )
        conn.execute(
            text(
                """
                INSERT INTO work_items (robot, tenant, reference, payload, subject, status, attempts,
                                        next_attempt_at, run_id, result, created_at, updated_at, finished_at)
                SELECT r.robot, r.tenant, 'h-' || r.id || '-' || g, '{}'::jsonb, NULL, 'done', 1,
                       r.started_at, r.id, '{}'::jsonb, r.started_at, r.finished_at, r.finished_at
                FROM runs r CROSS JOIN generate_series(1, :per_run) AS g
                """
            ),
            {"per_run": a.items_per_run},
        )
    history = time.monotonic() - started - seeded_reviews
    found = who_logs_in(a)
    pw_hash = _password_hash()
    for i, w in enumerate(found["workers"]):
        tenant = "1081" if i % 2 == 0 else "1082"
        create_user(
            db,
            w["user"],
            display_name=f"Handläggare {i}",
            password_hash=pw_hash,
            grants={Grant(Role.case_worker, tenant, q) for q in qs[tenant]},
        )
        enrol_totp(db, w["user"])
    for tenant, name in zip(TENANTS, found["ops"], strict=True):
        create_user(
            db, name, display_name=f"Drift {tenant}", password_hash=pw_hash, grants={Grant(Role.operations, tenant)}
        )
        enrol_totp(db, name)
    db.dispose()
    # The planner's statistics, as autovacuum keeps them on a municipality's server (it may be
    # off on a test server, and a kept seed's copies start without its activity counters).
    admin(url, "ANALYZE")
    return {**found, "seed_seconds": {"reviews": round(seeded_reviews, 1), "history": round(history, 1)}}


def who_logs_in(a: argparse.Namespace) -> dict[str, Any]:
    """Who logs in where: each case worker's queue and place among its colleagues, the operations users."""
    from core.testing.web import PASSWORD

    qs = queues(a.queues)
    workers: list[dict[str, Any]] = []
    by_queue: dict[str, int] = {}
    for i in range(a.workers):
        tenant = "1081" if i % 2 == 0 else "1082"
        qname = qs[tenant][(i // 2) % len(qs[tenant])]
        workers.append({"user": f"handlaggare{i:02d}", "queue": qname, "slot": by_queue.get(qname, 0)})
        by_queue[qname] = by_queue.get(qname, 0) + 1
    return {"workers": workers, "ops": [f"drift{tenant}" for tenant in TENANTS], "password": PASSWORD}


def seed_signature(a: argparse.Namespace) -> str:
    """What a kept seed database was filled with (stored as its comment, checked before it is reused)."""
    return (
        f"inbox_load seed reviews={a.reviews} queues={a.queues} workers={a.workers} "
        f"history_days={a.history_days} items_per_run={a.items_per_run}"
    )


def database_comment(url: str, name: str) -> str | None:
    """The comment of database ``name`` (None when it does not exist)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    return None if row is None else str(row[0])


def prepare(server_url: str, name: str, a: argparse.Namespace) -> dict[str, Any]:
    """Create and fill database ``name``: seeded afresh, or copied from the kept seed database ``--keep-seed``.

    A copy (PostgreSQL's CREATE DATABASE … TEMPLATE) holds exactly what a fresh seed would, in
    seconds instead of minutes; migrations newer than the kept seed are applied to the copy.
    """
    from core.storage.db import Database

    if not a.keep_seed:
        admin(server_url, f'CREATE DATABASE "{name}"')
        return seed(with_database(server_url, name), a)
    comment = database_comment(server_url, a.keep_seed)
    if comment is not None and comment != seed_signature(a):
        raise SystemExit(f"database {a.keep_seed} holds another seed ({comment!r}); drop it or pick another name")
    if comment is None:
        print(f"filling the kept seed database {a.keep_seed} (reused by later runs with the same sizes) …", flush=True)
        admin(server_url, f'CREATE DATABASE "{a.keep_seed}"')
        found = seed(with_database(server_url, a.keep_seed), a)
        admin(server_url, f"COMMENT ON DATABASE \"{a.keep_seed}\" IS '{seed_signature(a)}'")
    else:
        found = {**who_logs_in(a), "seed_seconds": {"copied_from": a.keep_seed}}
    started = time.monotonic()
    admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{a.keep_seed}"')
    db = Database(with_database(server_url, name))
    db.upgrade()
    db.dispose()
    admin(with_database(server_url, name), "ANALYZE")  # a seed kept before seed() analysed it
    return {**found, "copy_seconds": round(time.monotonic() - started, 1)}


# -- the server -------------------------------------------------------------------------------
def settings_file(url: str, data: Path) -> Path:
    """A config for ``kollega serve``: the two municipalities, this database, cookies over plain HTTP."""
    lines = [f'database_url = "{url}"', f'var_dir = "{data / "var"}"', "", "[web]", "cookie_secure = false", ""]
    for code, name in TENANTS.items():
        lines += ["[[tenants]]", f'code = "{code}"', f'name = "{name}"', ""]
    path = data / "kollega.toml"
    path.write_text("\n".join(lines))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its child processes (the workers of ``kollega serve --workers N``)."""
    total = 0.0
    for proc in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:  # a process that just ended
            continue
    return total


def memory_trend(samples: list[float], every: float = 5.0, warm_up: float = 15.0) -> dict[str, float]:
    """How the server's resident memory moved after the logins (the first ``warm_up`` seconds), in MiB per
    minute over the first and the second half of what is left: memory that levels off grows less in the
    second half than in the first, a leak as much or more. ``samples`` are taken every ``every`` seconds."""
    rest = samples[min(int(warm_up // every), len(samples) - 1) :]
    if len(rest) < 3:
        return {"first_half_mib_per_min": 0.0, "second_half_mib_per_min": 0.0}
    mid = len(rest) // 2

    def per_minute(a: int, b: int) -> float:
        return round((rest[b] - rest[a]) / ((b - a) * every / 60), 2)

    return {"first_half_mib_per_min": per_minute(0, mid), "second_half_mib_per_min": per_minute(mid, len(rest) - 1)}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by ``pid`` and its child processes."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for proc in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rpartition(")")[2].split()
        except OSError:  # a process that just ended
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_busy_seconds() -> float:
    """CPU time all CPUs of the machine have spent busy so far (/proc/stat: everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def postgres_sessions(url: str, name: str) -> int:
    """Connections PostgreSQL has accepted to database ``name`` so far (pg_stat_database.sessions)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def connections_per_process(pid: int, port: int) -> dict[str, int]:
    """Established TCP connections to ``port`` held by ``pid`` and by each of its child processes.

    Which process accepts a client's (kept-alive) connection decides which process serves all
    its requests: the kernel's choice among the workers' own listeners where ``SO_REUSEPORT``
    exists, else the race between the workers on one shared socket.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "01" and int(cols[1].rpartition(":")[2], 16) == port:  # ESTABLISHED, local port
                inodes.add(cols[9])
    counts: dict[str, int] = {}
    for proc in [pid, *children(pid)]:
        try:
            links = [os.readlink(f) for f in Path(f"/proc/{proc}/fd").iterdir()]
        except OSError:
            continue
        held = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes)
        if held:
            counts[str(proc)] = held
    return counts


def children(pid: int) -> list[int]:
    """The child processes of ``pid``."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in text:
            found.append(int(status.parent.name))
    return found


# -- the case workers -------------------------------------------------------------------------
class Timings:
    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.conflicts = 0
        self.decided = 0
        self.cpu_start = self.cpu_end = 0.0
        self.client_cpu = 0.0
        self.machine_busy = 0.0
        self.connections: list[list[int]] = []

    async def timed(self, page: str, call: Any, ok: tuple[int, ...] = (200,)) -> Any:
        started = time.perf_counter()
        try:
            response = await call
        except Exception as exc:  # a transport error is an error, counted, not a crash of the bench
            self.errors.append(f"{page}: {type(exc).__name__}")
            return None
        self.ms.setdefault(page, []).append((time.perf_counter() - started) * 1000)
        if response.status_code == 409 and page == "decide":
            self.conflicts += 1
        elif response.status_code not in ok:
            self.errors.append(f"{page}: HTTP {response.status_code}")
        return response


async def log_in(client: Any, user: str, password: str, t: Timings) -> str | None:
    from core.testing.web import TOTP_SECRET
    from core.web.mfa import code_at

    started = time.perf_counter()
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"username": user, "password": password, "csrf_token": CSRF.search(page.text).group(1)}
    )
    if response.status_code == 303 and response.headers["location"].startswith("/login/mfa"):
        form = await client.get("/login/mfa")
        response = await client.post(
            "/login/mfa",
            data={"code": code_at(TOTP_SECRET, datetime.now(UTC)), "csrf_token": CSRF.search(form.text).group(1)},
        )
    if response.status_code != 303:
        t.errors.append(f"login: HTTP {response.status_code}")
        return None
    t.ms.setdefault("login", []).append((time.perf_counter() - started) * 1000)
    home = await client.get("/me")
    match = CSRF.search(home.text)
    return match.group(1) if match else None


async def think(pause: tuple[float, float], rng: random.Random) -> None:
    """A case worker's pause between two pages (reading, typing): uniform in ``pause``; none for (0, 0)."""
    if pause[1] > 0:
        await asyncio.sleep(rng.uniform(*pause))


async def case_worker(
    base: str, w: dict[str, Any], password: str, until: float, t: Timings, pause: tuple[float, float] = (0.0, 0.0)
) -> None:
    import httpx

    rng = random.Random(w["user"])  # the same pauses in every run
    async with httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=60) as client:
        if await log_in(client, w["user"], password, t) is None:
            return
        while time.monotonic() < until:
            await think(pause, rng)
            listing = await t.timed("inbox", client.get("/inbox", params={"queue": w["queue"]}))
            if listing is None:
                continue
            ids = ITEM_LINK.findall(listing.text)
            if not ids:
                return  # the queue is empty
            review_id = ids[w["slot"] % len(ids)]
            await think(pause, rng)
            item = await t.timed("item", client.get(f"/inbox/items/{review_id}"))
            if item is None or item.status_code != 200:
                continue
            version, csrf = VERSION.search(item.text), CSRF.search(item.text)
            if version is None or csrf is None:
                continue  # decided by a colleague meanwhile: the page shows the outcome
            await think(pause, rng)
            decided = await t.timed(
                "decide",
                client.post(
                    f"/inbox/items/{review_id}/decide",
                    data={"decision": "approve", "version": version.group(1), "csrf_token": csrf.group(1)},
                ),
                ok=(303,),
            )
            if decided is not None and decided.status_code == 303:
                t.decided += 1


async def operations(base: str, user: str, password: str, until: float, t: Timings) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=60) as client:
        if await log_in(client, user, password, t) is None:
            return
        while time.monotonic() < until:
            await t.timed("dashboard", client.get("/ops"))
            await asyncio.sleep(2)


async def drive(
    base: str, people: dict[str, Any], seconds: float, pid: int, pause: tuple[float, float] = (0.0, 0.0)
) -> tuple[Timings, list[float]]:
    t = Timings()
    memory: list[float] = [rss_mib(pid)]
    until = time.monotonic() + seconds
    t.cpu_start = cpu_seconds(pid)
    client0, busy0 = time.process_time(), machine_busy_seconds()
    port = int(base.rpartition(":")[2])

    async def sample() -> None:
        while time.monotonic() < until:
            await asyncio.sleep(5)
            memory.append(rss_mib(pid))
            t.connections.append(sorted(connections_per_process(pid, port).values()))

    await asyncio.gather(
        sample(),
        *(case_worker(base, w, people["password"], until, t, pause) for w in people["workers"]),
        *(operations(base, u, people["password"], until, t) for u in people["ops"]),
    )
    t.cpu_end = cpu_seconds(pid)
    t.client_cpu, t.machine_busy = time.process_time() - client0, machine_busy_seconds() - busy0
    return t, memory


class WaitSampler:
    """Samples pg_stat_activity of one database every 50 ms: wait events, and the statements waiting on a lock."""

    def __init__(self, url: str, name: str) -> None:
        import threading

        self.url, self.name = url.replace("postgresql+psycopg://", "postgresql://"), name
        self.samples = 0
        self.active = 0
        self.waits: dict[str, int] = {}
        self.lock_waiters: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-wait-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(0.05):
                rows = conn.execute(
                    "SELECT state, coalesce(wait_event_type, 'CPU'), coalesce(wait_event, ''), query "
                    "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.name,),
                ).fetchall()
                self.samples += 1
                for state, kind, event, query in rows:
                    if state != "active":
                        continue
                    self.active += 1
                    key = f"{kind}:{event}"
                    self.waits[key] = self.waits.get(key, 0) + 1
                    if kind == "Lock":
                        text = re.sub(r"\s+", " ", query)[:160]
                        self.lock_waiters[text] = self.lock_waiters.get(text, 0) + 1

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=5)
        n = max(1, self.samples)
        return {
            "samples": self.samples,
            "active_backends_mean": round(self.active / n, 2),
            "active_by_wait_mean": {k: round(v / n, 3) for k, v in sorted(self.waits.items(), key=lambda kv: -kv[1])},
            "lock_waiters_mean": {
                k: round(v / n, 3) for k, v in sorted(self.lock_waiters.items(), key=lambda kv: -kv[1])[:10]
            },
        }


def think_seconds(value: str) -> tuple[float, float]:
    """``MIN,MAX`` (or one number for both) as a pause range in seconds."""
    low, _, high = value.partition(",")
    pause = (float(low), float(high or low))
    if not 0 <= pause[0] <= pause[1]:
        raise argparse.ArgumentTypeError("expected MIN,MAX with 0 <= MIN <= MAX")
    return pause


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"n": len(values)}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"n": len(values), "p50": round(q[49], 1), "p95": round(q[94], 1), "p99": round(q[98], 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reviews", type=int, default=20000, help="open review items (default 20000)")
    p.add_argument("--queues", type=int, default=10, help="queues, half per municipality (default 10)")
    p.add_argument("--workers", type=int, default=30, help="concurrent case workers (default 30)")
    p.add_argument("--seconds", type=float, default=300, help="how long they work (default 300)")
    p.add_argument(
        "--think-seconds",
        metavar="MIN,MAX",
        type=think_seconds,
        default=(0.0, 0.0),
        help="a case worker's pause before each page, uniform between MIN and MAX seconds (like Locust's "
        "wait_time); default 0: no pause, each worker loads its next page as soon as the last one came",
    )
    p.add_argument("--history-days", type=int, default=365, help="days of past runs (default 365)")
    p.add_argument("--items-per-run", type=int, default=40, help="finished items per past run (default 40)")
    p.add_argument(
        "--server-workers",
        type=int,
        default=2,
        help="kollega serve --workers (default 2: one per CPU, as a municipality's two-CPU server runs it)",
    )
    p.add_argument(
        "--keep-seed",
        metavar="DATABASE",
        default="",
        help="fill this database once and keep it; each run works on a fresh copy of it (drop it when done)",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        default=None,
        help="serve through bench/inbox_profile_server.py (one process) and sample PostgreSQL's waits; reports in DIR",
    )
    p.add_argument("--cprofile", action="store_true", help="with --profile: cProfile the serving threads too")
    p.add_argument("--threads", type=int, default=0, help="with --profile: threads for sync routes (anyio's limit)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "inbox_load.json", help="result file")
    a = p.parse_args()

    server_url = os.environ.get("KOLLEGA_TEST_POSTGRES_URL", DEFAULT_PG)
    name = f"inbox_load_{uuid.uuid4().hex[:8]}"
    url = with_database(server_url, name)
    data = Path(tempfile.mkdtemp(prefix="kollega-inbox-load-"))
    server = None
    try:
        print(f"seeding {a.reviews} review items in {a.queues} queues and {a.history_days} days of runs …", flush=True)
        people = prepare(server_url, name, a)
        print(f"seeded in {people['seed_seconds']} s", flush=True)
        port = free_port()
        env = {**os.environ, "KOLLEGA_CONFIG": str(settings_file(url, data)), "KOLLEGA_LOGGING__LEVEL": "WARNING"}
        if a.profile is not None:
            command = [
                sys.executable,
                str(ROOT / "bench" / "inbox_profile_server.py"),
                *("--port", str(port), "--out", str(a.profile.resolve())),
                *(("--cprofile",) if a.cprofile else ()),
                *(("--threads", str(a.threads)) if a.threads else ()),
            ]
        else:
            command = [
                sys.executable,
                *("-m", "core.cli", "serve", "--port", str(port), "--no-alerts"),
                *(("--workers", str(a.server_workers)) if a.server_workers != 1 else ()),
            ]
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(data / "server.log").open("w"),
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start; see {data / 'server.log'}") from None
                time.sleep(0.2)
        print(f"{a.workers} case workers and {len(people['ops'])} operations users for {a.seconds:g} s …", flush=True)
        sampler = WaitSampler(server_url, name) if a.profile is not None else None
        if sampler is not None:
            sampler.start()
        sessions_before = postgres_sessions(server_url, name)
        timings, memory = asyncio.run(drive(base, people, a.seconds, server.pid, a.think_seconds))
        sessions_opened = postgres_sessions(server_url, name) - sessions_before
        if sampler is not None:
            a.profile.mkdir(parents=True, exist_ok=True)
            (a.profile / "pg_waits.json").write_text(json.dumps(sampler.stop(), indent=2, ensure_ascii=False) + "\n")
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
        admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    pages = {page: percentiles(ms) for page, ms in sorted(timings.ms.items())}
    requests = max(1, sum(len(v) for v in timings.ms.values()))
    targets = {"inbox": 300, "item": 300, "dashboard": 800}
    result: dict[str, Any] = {
        "pages_ms": pages,
        "targets_p95_ms": targets,
        "met": {pg: pages.get(pg, {}).get("p95", float("inf")) < ms for pg, ms in targets.items()},
        "errors": len(timings.errors),
        "error_kinds": sorted(set(timings.errors)),
        "conflicts_409": timings.conflicts,
        "decided": timings.decided,
        # The server's CPU time per page served (its processes; PostgreSQL's not included):
        # what a page costs, much less sensitive to the machine's load than the latencies.
        "server_cpu_ms_per_request": round(1000 * (timings.cpu_end - timings.cpu_start) / requests, 2),
        # The bench's own clients (this process: 32 HTTP clients on one event loop), and every
        # CPU of the machine (server, PostgreSQL, the clients, and whatever else ran meanwhile).
        "client_cpu_ms_per_request": round(1000 * timings.client_cpu / requests, 2),
        "machine_cpu_ms_per_request": round(1000 * timings.machine_busy / requests, 2),
        # How the clients' kept-alive connections are spread over the server's processes (every
        # 5 s), and the connections PostgreSQL accepted during the run (pools growing or churning).
        "connections_per_server_process": {
            "after_logins": timings.connections[min(5, len(timings.connections) - 1)] if timings.connections else [],
            "at_end": next((c for c in reversed(timings.connections) if c), []),  # the clients close at the end
            "samples": timings.connections,
        },
        "postgres_sessions_opened": sessions_opened,
        "server_rss_mib": {
            "first": round(memory[0], 1),
            "last": round(memory[-1], 1),
            "max": round(max(memory), 1),
            **memory_trend(memory),
            "samples": [round(m, 1) for m in memory],
        },
        "conditions": {
            "reviews": a.reviews,
            "queues": a.queues,
            "workers": a.workers,
            "server_workers": a.server_workers,
            "seconds": a.seconds,
            "think_seconds": list(a.think_seconds),
            "history_days": a.history_days,
            "items_per_run": a.items_per_run,
            "seed_seconds": people["seed_seconds"],
            "cpus": os.cpu_count(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
            "profiled": a.profile is not None,
            "python": platform.python_version(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
        },
    }
    trend = memory_trend(memory)
    for page, figures in pages.items():
        print(
            f"{page:<10} n={figures.get('n', 0):>6}  p50 {figures.get('p50', 0):>7} ms  p95 {figures.get('p95', 0):>7} ms  "
            f"p99 {figures.get('p99', 0):>7} ms"
        )
    print(
        f"errors {len(timings.errors)}, conflicts {timings.conflicts}, decided {timings.decided}; "
        f"server CPU {result['server_cpu_ms_per_request']} ms per request "
        f"(clients {result['client_cpu_ms_per_request']}, machine {result['machine_cpu_ms_per_request']}); "
        f"connections per server process {result['connections_per_server_process']['after_logins']} → "
        f"{result['connections_per_server_process']['at_end']}, "
        f"PostgreSQL sessions opened {sessions_opened}; "
        f"server memory {memory[0]:.0f} → {memory[-1]:.0f} MiB (max {max(memory):.0f}; after the logins "
        f"{trend['first_half_mib_per_min']:+} then {trend['second_half_mib_per_min']:+} MiB/min)"
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {a.out}")


if __name__ == "__main__":
    main()
