"""A worker process running Bosse once against a sandbox over HTTP, like `kollega run bosse`.

    python -m tests.helpers.bosse_worker DB_URL CONFIG_JSON

CONFIG_JSON holds ``var_dir``, ``sandbox_url``, ``worker`` (WorkerSettings fields), ``robot``
(Bosse's settings) and the shared timeline: ``clock_start`` (an ISO instant, the sandbox's
frozen time) and ``clock_wall`` (the epoch second it corresponds to). The worker's clock runs
from there in real time, so two workers started one after the other agree on when a lease
runs out. The run's summary is printed as one JSON line starting with SUMMARY.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from core.engine import Engine
from core.registry import Registry
from core.settings import WorkerSettings
from core.storage.db import Database
from core.testing import TEST_TENANT, make_settings
from robots.bosse.robot import Bosse


class TimelineClock:
    """Real time, shifted onto the test's timeline (``start`` at wall-clock second ``wall``)."""

    def __init__(self, start: datetime, wall: float) -> None:
        self.start, self.wall = start, wall

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.time() - self.wall)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0))


def main() -> None:
    """Run Bosse once and print its summary."""
    url, raw = sys.argv[1:3]
    config = json.loads(raw)
    sandbox = config["sandbox_url"]
    settings = make_settings(
        Path(config["var_dir"]),
        worker=WorkerSettings(**config["worker"]),
        robots={Bosse.name: config["robot"]},
        connectors={
            "staffing": {"base_url": f"{sandbox}/staffing"},
            "sms": {"base_url": f"{sandbox}/", "sender": "Bemanningen"},
        },
    )
    clock = TimelineClock(datetime.fromisoformat(config["clock_start"]), float(config["clock_wall"]))
    db = Database(url)
    try:
        engine = Engine.from_database(db, settings, Registry(robots={Bosse.name: Bosse}), clock=clock)
        print("STARTED", flush=True)
        summary = asyncio.run(engine.run(Bosse.name, TEST_TENANT.code))
        print(
            "SUMMARY " + json.dumps({"status": summary.status.value, "counts": summary.counts, "error": summary.error}),
            flush=True,
        )
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
