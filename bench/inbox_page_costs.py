"""What one inbox page costs, measured alone: CPU ms (the app's and PostgreSQL's) and SQL statements per page.

    .venv/bin/python bench/inbox_page_costs.py --keep-seed inbox_load_seed [--loops 300]
        [--cprofile bench/results/pages.prof] [--out bench/results/inbox_page_costs.json]

The app is built in this process as ``kollega serve`` builds it (the same settings file as
bench/inbox_load.py) on a fresh copy of the kept seed (``--keep-seed``, filled by
bench/inbox_load.py or here on first use), and driven over ASGI, one request at a time: six
case workers of both municipalities in turn list their queue, open an item and approve it
(--loops rounds), then an operations user loads the dashboard (its costly figures computed
once and then served from the per-period cache, as in the load test). Per page it reports
the CPU time of this process (every thread: the event loop and the pool threads that run the
routes) and of the PostgreSQL backends serving this database, and the statements sent.

Unlike the latencies of bench/inbox_load.py these figures hardly depend on what else runs on
the machine, so a change can be measured while others work; they leave out the HTTP server
(uvicorn's parsing and the socket), which the load test's ``server_cpu_ms_per_request``
includes. ``--cprofile FILE``: a cProfile of every thread over the measured loops.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench import inbox_load  # noqa: E402 - after the path is set


def postgres_cpu_seconds(database: str) -> float:
    """CPU time (user + system) so far of the PostgreSQL backends connected to ``database``."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    wanted = f" {database} ".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes()
            if not title.startswith(b"postgres:") or wanted not in title:
                continue
            fields = (cmdline.parent / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # a process that just ended
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Counter:
    """SQL statements sent by this process (every engine)."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.statements = 0

        @event.listens_for(Engine, "before_cursor_execute")
        def _count(*_args: Any) -> None:
            self.statements += 1


class Caller:
    """A minimal ASGI client (a GET or a form POST with the session's cookies): next to nothing of its own
    in the CPU measured, unlike an HTTP client's request building and response parsing."""

    def __init__(self, app: Any, cookies: dict[str, str]) -> None:
        self.app = app
        self.cookie = "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()

    async def __call__(self, method: str, path: str, query: str = "", form: dict[str, str] | None = None) -> Any:
        from urllib.parse import urlencode

        body = urlencode(form).encode() if form else b""
        headers = [(b"host", b"127.0.0.1"), (b"cookie", self.cookie)]
        if form is not None:
            headers += [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", str(len(body)).encode()),
            ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return Response(status, b"".join(chunks).decode())


class Response:
    """What :class:`Caller` got back."""

    def __init__(self, status_code: int, text: str) -> None:
        self.status_code = status_code
        self.text = text


class Page:
    """CPU and statements of one kind of page."""

    def __init__(self) -> None:
        self.cpu_ms: list[float] = []
        self.pg_ms: list[float] = []
        self.statements: list[int] = []

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.cpu_ms),
            "cpu_ms_mean": round(statistics.fmean(self.cpu_ms), 2),
            "cpu_ms_median": round(statistics.median(self.cpu_ms), 2),
            "postgres_cpu_ms_mean": round(statistics.fmean(self.pg_ms), 2),
            "statements_mean": round(statistics.fmean(self.statements), 2),
        }


async def drive(app: Any, people: dict[str, Any], database: str, loops: int, profile: Any) -> dict[str, Page]:
    import httpx

    counter = Counter()
    pages: dict[str, Page] = {}
    timings = inbox_load.Timings()

    def pg_cpu() -> float:
        # Not while profiling: reading /proc would be most of what the profile shows.
        return 0.0 if profile is not None else postgres_cpu_seconds(database)

    async def measured(name: str, call: Any) -> Any:
        pg0, cpu0, st0 = pg_cpu(), time.process_time(), counter.statements
        response = await call
        cpu1, st1, pg1 = time.process_time(), counter.statements, pg_cpu()
        page = pages.setdefault(name, Page())
        page.cpu_ms.append((cpu1 - cpu0) * 1000)
        page.pg_ms.append((pg1 - pg0) * 1000)
        page.statements.append(st1 - st0)
        return response

    # Six case workers: three queues of each municipality.
    workers = [w for w in people["workers"] if w["slot"] == 0][:6]
    clients = []
    for w in [*workers, {"user": people["ops"][0]}]:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")
        if await inbox_load.log_in(client, w["user"], people["password"], timings) is None:
            raise SystemExit(f"{w['user']} could not log in: {timings.errors}")
        clients.append(client)
    callers = [Caller(app, dict(c.cookies.items())) for c in clients]
    for client in clients:
        await client.aclose()
    ops = callers.pop()

    async def loop(record: bool) -> None:
        from urllib.parse import urlencode

        for w, call in zip(workers, callers, strict=True):
            listing_call = call("GET", "/inbox", urlencode({"queue": w["queue"]}))
            listing = await (measured("inbox", listing_call) if record else listing_call)
            review_id = inbox_load.ITEM_LINK.findall(listing.text)[0]
            item_call = call("GET", f"/inbox/items/{review_id}")
            item = await (measured("item", item_call) if record else item_call)
            version, csrf = inbox_load.VERSION.search(item.text), inbox_load.CSRF.search(item.text)
            if version is None or csrf is None:
                raise SystemExit(f"item {review_id} has no decision form")
            decide_call = call(
                "POST",
                f"/inbox/items/{review_id}/decide",
                form={"decision": "approve", "version": version.group(1), "csrf_token": csrf.group(1)},
            )
            decided = await (measured("decide", decide_call) if record else decide_call)
            if decided.status_code != 303:
                raise SystemExit(f"decision on {review_id}: HTTP {decided.status_code}")

    for _ in range(5):  # warm-up: imports, compiled statements, templates, pools
        await loop(record=False)
    await ops("GET", "/ops")  # the costly figures, computed once per period
    if profile is not None:
        profile.enable()
    for i in range(loops):
        await loop(record=True)
        if i % 10 == 0:
            response = await measured("dashboard", ops("GET", "/ops"))
            if response.status_code != 200:
                raise SystemExit(f"dashboard: HTTP {response.status_code}")
    return pages


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep-seed", metavar="DATABASE", required=True, help="the kept seed database (filled if absent)")
    p.add_argument("--loops", type=int, default=300, help="rounds of six case workers' list, open, decide")
    p.add_argument("--cprofile", type=Path, default=None, help="write a cProfile of the measured loops here")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "inbox_page_costs.json")
    p.add_argument("--reviews", type=int, default=20000)
    p.add_argument("--queues", type=int, default=10)
    p.add_argument("--workers", type=int, default=30)
    p.add_argument("--history-days", type=int, default=365)
    p.add_argument("--items-per-run", type=int, default=40)
    a = p.parse_args()

    server_url = os.environ.get("KOLLEGA_TEST_POSTGRES_URL", inbox_load.DEFAULT_PG)
    name = f"inbox_costs_{uuid.uuid4().hex[:8]}"
    data = Path(tempfile.mkdtemp(prefix="kollega-inbox-costs-"))
    try:
        people = inbox_load.prepare(server_url, name, a)
        url = inbox_load.with_database(server_url, name)
        os.environ["KOLLEGA_CONFIG"] = str(inbox_load.settings_file(url, data))
        os.environ["KOLLEGA_LOGGING__LEVEL"] = "WARNING"
        from core.cli.common import load_cli_settings, open_database, registry
        from core.web.app import create_app

        settings = load_cli_settings()
        db = open_database(settings)
        app = create_app(settings, db, registry(), run_alert_loop=False)
        profile = None
        if a.cprofile is not None:
            import anyio.to_thread

            async def inline(func: Any, *args: Any, **_kwargs: Any) -> Any:
                return func(*args)

            # The routes run in this thread instead of the pool's, where the one profiler sees them.
            anyio.to_thread.run_sync = inline  # type: ignore[assignment]
            profile = cProfile.Profile(time.process_time)  # CPU time, not waits
        started = time.monotonic()
        pages = asyncio.run(drive(app, people, name, a.loops, profile))
        if profile is not None:
            a.cprofile.parent.mkdir(parents=True, exist_ok=True)
            profile.disable()
            profile.dump_stats(a.cprofile)
        db.dispose()
    finally:
        inbox_load.admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result = {
        "pages": {page: figures.summary() for page, figures in sorted(pages.items())},
        "loops": a.loops,
        "seconds": round(time.monotonic() - started, 1),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "profiled": a.cprofile is not None,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    for page, s in result["pages"].items():
        print(
            f"{page:<10} n={s['requests']:>5}  app CPU {s['cpu_ms_mean']:>6} ms (median {s['cpu_ms_median']:>6})  "
            f"PostgreSQL CPU {s['postgres_cpu_ms_mean']:>6} ms  statements {s['statements_mean']:>5}"
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {a.out}")


if __name__ == "__main__":
    main()
