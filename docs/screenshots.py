"""Screenshots of the real pages for the guides, taken from a demo night in Chromium.

    .venv/bin/python docs/screenshots.py [--out docs/images] [--seed 1]

Starts the sandbox (a small municipality), runs one night of every robot on a temporary
SQLite database, serves the web app, logs in as a case worker and as operations staff in
Chromium (Debian's /usr/bin/chromium, or Playwright's own), and saves PNGs of the inbox,
one prepared item per robot and the operations dashboard. Everything shown is sandbox
data: made-up people with test personnummer. Rerun it after changing a page or a template
so that docs/case-workers.md shows what people will see.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402

from core.cli.runs import run_many  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.logging import configure_logging  # noqa: E402
from core.registry import load_robots  # noqa: E402
from core.scheduler import night_jobs  # noqa: E402
from core.settings import load_settings  # noqa: E402
from core.storage.db import Database  # noqa: E402
from core.storage.models import ReviewItem, ReviewKind, ReviewState  # noqa: E402
from core.testing.browser import launch_chromium  # noqa: E402
from sandbox.demo import apply_demo_settings, demo_users, load_demo_settings, point_connectors_at  # noqa: E402

#: A small municipality: enough for every kind of page, quick to prepare.
SIZE = {"applications": 40, "employees": 20}
#: Review queues shown, with the file name of their screenshot.
QUEUES = {"ronney": "inkomststod", "bosse": "vikarie", "lena": "hemtjanstplan", "harry": "schema"}


def serve(app: object) -> tuple[str, uvicorn.Server, threading.Thread]:
    """Serve ``app`` on a free loopback port in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the web app did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kollega-shots-") as tmp:
        settings = load_settings(var_dir=Path(tmp), database_url="")
        configure_logging("WARNING", "console")
        settings.robots.setdefault("lena", {})["time_limit_seconds"] = 10
        db = Database(settings.effective_database_url)
        db.upgrade()
        registry = load_robots()
        demo = load_demo_settings()
        tenant = demo.sandbox.tenant
        apply_demo_settings(settings, demo, registry)
        engine = Engine.from_database(db, settings, registry)
        from sandbox.testing import running_sandbox

        with running_sandbox(seed=args.seed, today=date.today(), tenant=tenant, **SIZE) as url:
            point_connectors_at(settings, url, demo.sandbox.systems)
            jobs = night_jobs(settings, registry, SystemClock(), [tenant])
            asyncio.run(run_many(engine, jobs, trigger="manual", show_progress=False))
        with db.session() as s:
            open_items = s.scalars(
                select(ReviewItem).where(ReviewItem.state == ReviewState.open).order_by(ReviewItem.id)
            ).all()
            queues: dict[str, list[str]] = {}
            for r in open_items:
                queues.setdefault(r.tenant, [])
                if r.queue not in queues[r.tenant]:
                    queues[r.tenant].append(r.queue)
            # Per robot its first decision to make; else its first open item of any kind.
            first: dict[str, int] = {}
            for r in sorted(open_items, key=lambda r: (r.kind != ReviewKind.decision, r.id)):
                first.setdefault(r.robot, r.id)
        users = {u.username: u.password for u in demo_users(db, [tenant], queues)}
        from core.testing.web import log_in_page
        from core.web.app import create_app

        base, server, thread = serve(create_app(settings, db, registry))
        try:
            with sync_playwright() as pw:
                browser = launch_chromium(pw)
                page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="sv-SE")
                worker = f"handlaggare.{tenant}"
                log_in_page(page, base, worker, users[worker])
                page.goto(f"{base}/inbox")
                page.screenshot(path=args.out / "inkorg.png", full_page=False)
                for robot, shot in QUEUES.items():
                    if robot in first:
                        page.goto(f"{base}/inbox/items/{first[robot]}")
                        page.screenshot(path=args.out / f"arende-{shot}.png")
                page.context.clear_cookies()
                ops = f"drift.{tenant}"
                log_in_page(page, base, ops, users[ops])
                page.goto(f"{base}/ops")
                page.screenshot(path=args.out / "drift.png")
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            db.dispose()
    for png in sorted(args.out.glob("*.png")):
        print(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)


if __name__ == "__main__":
    main()
