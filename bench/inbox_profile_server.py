"""``kollega serve`` (one process) with a profile of every request, for bench/inbox_load.py --profile DIR.

    .venv/bin/python bench/inbox_profile_server.py --port 8000 --out DIR [--cprofile]

Serves the app exactly as ``kollega serve`` does with one worker (the deployment's settings
from KOLLEGA_CONFIG), and counts per page (the route's path template): requests, wall time,
SQL statements and the time spent in them, transactions committed, and the statements
themselves (normalised, with their count and time). With ``--cprofile`` every thread that
serves requests (uvicorn's event loop and the pool threads running sync routes) runs under
cProfile; its merged stats go to DIR/server.prof (``python -m pstats``). Everything is
written to DIR when the process is stopped (SIGTERM or SIGINT).

Profiling costs time itself: figures from a profiled run are for finding where the time
goes, not for the before/after tables (those come from runs without --profile).
"""

from __future__ import annotations

import argparse
import contextvars
import cProfile
import json
import pstats
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))


class RequestStats:
    """What one request did."""

    __slots__ = ("commits", "sql_ms", "statements", "texts")

    def __init__(self) -> None:
        self.statements = 0
        self.sql_ms = 0.0
        self.commits = 0
        self.texts: list[tuple[str, float]] = []


CURRENT: contextvars.ContextVar[RequestStats | None] = contextvars.ContextVar("kollega_profile", default=None)
_NUMBERS = re.compile(r"\b\d+\b")
_SPACE = re.compile(r"\s+")


def _normalise(statement: str) -> str:
    return _NUMBERS.sub("N", _SPACE.sub(" ", statement)).strip()[:300]


class Totals:
    """Per page: requests, wall ms, statements, SQL ms, commits; and per statement text: count and ms."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pages: dict[str, dict[str, float]] = {}
        self.statements: dict[str, dict[str, dict[str, float]]] = {}

    def add(self, page: str, wall_ms: float, r: RequestStats) -> None:
        with self.lock:
            p = self.pages.setdefault(
                page, {"requests": 0, "wall_ms": 0.0, "statements": 0, "sql_ms": 0.0, "commits": 0}
            )
            p["requests"] += 1
            p["wall_ms"] += wall_ms
            p["statements"] += r.statements
            p["sql_ms"] += r.sql_ms
            p["commits"] += r.commits
            per = self.statements.setdefault(page, {})
            for text, ms in r.texts:
                s = per.setdefault(text, {"count": 0, "ms": 0.0})
                s["count"] += 1
                s["ms"] += ms

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for page, p in sorted(self.pages.items()):
            n = max(1, int(p["requests"]))
            top = sorted(self.statements.get(page, {}).items(), key=lambda kv: -kv[1]["ms"])
            out[page] = {
                "requests": int(p["requests"]),
                "wall_ms_mean": round(p["wall_ms"] / n, 2),
                "statements_per_request": round(p["statements"] / n, 2),
                "sql_ms_mean": round(p["sql_ms"] / n, 2),
                "commits_per_request": round(p["commits"] / n, 2),
                "statements": [
                    {
                        "sql": text,
                        "per_request": round(s["count"] / n, 2),
                        "ms_mean": round(s["ms"] / s["count"], 3),
                    }
                    for text, s in top[:25]
                ],
            }
        return out


def install_sql_counters() -> None:
    """Count every statement and commit on every engine against the request that issued it."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, _statement: str, _params: Any, _context: Any, _many: bool) -> None:
        conn.info.setdefault("kollega_profile_started", []).append(time.perf_counter())

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
        started = conn.info["kollega_profile_started"].pop()
        r = CURRENT.get()
        if r is not None:
            ms = (time.perf_counter() - started) * 1000
            r.statements += 1
            r.sql_ms += ms
            r.texts.append((_normalise(statement), ms))

    @event.listens_for(Engine, "commit")
    def _commit(_conn: Any) -> None:
        r = CURRENT.get()
        if r is not None:
            r.commits += 1


def page_of(scope: dict[str, Any]) -> str:
    """The route's path template (``/inbox/items/{review_id}``), or the path for an unmatched one."""
    route = scope.get("route")
    name = getattr(route, "path", None) or scope.get("path", "?")
    return f"{scope.get('method', '')} {name}"


class Measure:
    """ASGI middleware: a RequestStats per request, attributed to its route when it ends."""

    def __init__(self, app: Any, totals: Totals, threads: int | None = None) -> None:
        self.app = app
        self.totals = totals
        self.threads = threads

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.threads is not None:
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = self.threads
            self.threads = None
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        r = RequestStats()
        token = CURRENT.set(r)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT.reset(token)
            self.totals.add(page_of(scope), (time.perf_counter() - started) * 1000, r)


class ThreadProfiles:
    """cProfile in every thread started after :meth:`install` (and the calling one)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.lock = threading.Lock()

    def _start_here(self, *_args: Any) -> None:
        prof = cProfile.Profile()
        with self.lock:
            self.profiles.append(prof)
        prof.enable()  # replaces this bootstrap hook in this thread

    def install(self) -> None:
        threading.setprofile(self._start_here)
        self._start_here()

    def dump(self, path: Path) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]
        stats: pstats.Stats | None = None
        with self.lock:
            for prof in self.profiles:
                prof.disable()
                prof.create_stats()
                if not getattr(prof, "stats", None):
                    continue
                if stats is None:
                    stats = pstats.Stats(prof)
                else:
                    stats.add(prof)
        if stats is not None:
            stats.dump_stats(str(path))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="folder for requests.json (and server.prof)")
    p.add_argument("--cprofile", action="store_true", help="also run every serving thread under cProfile")
    p.add_argument("--threads", type=int, default=None, help="threads for sync routes (default: anyio's 40)")
    a = p.parse_args()

    import uvicorn

    from core.cli.common import load_cli_settings, open_database, registry
    from core.cli.web import uvicorn_options
    from core.web.app import create_app

    a.out.mkdir(parents=True, exist_ok=True)
    settings = load_cli_settings()
    totals = Totals()
    install_sql_counters()
    app = create_app(settings, open_database(settings), registry(), run_alert_loop=False)
    profiles = ThreadProfiles() if a.cprofile else None
    if profiles is not None:
        profiles.install()
    options = uvicorn_options(host="127.0.0.1", port=a.port, forwarded_allow_ips="127.0.0.1", level="WARNING")
    # uvicorn re-raises the SIGTERM it shut down on, under the handler found before it ran:
    # a no-op one lets the reports below be written.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        uvicorn.run(Measure(app, totals, a.threads), **options)
    finally:
        (a.out / "requests.json").write_text(json.dumps(totals.report(), indent=2, ensure_ascii=False) + "\n")
        if profiles is not None:
            profiles.dump(a.out / "server.prof")


if __name__ == "__main__":
    main()
