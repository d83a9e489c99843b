"""A process for the fencing tests: a slow writing robot run in-process or by a worker.

    python -m tests.helpers.fence_worker MODE URL CONFIG_JSON

MODE ``run`` runs the robot like ``kollega run`` (core.cli.runs.run_many, so SIGTERM stops
it gracefully); MODE ``worker`` serves like ``kollega worker`` until SIGTERM. CONFIG_JSON
holds ``var_dir``, ``log`` (the "external system": one line per write), ``items``,
``steps`` (writes per item), ``step_seconds`` and ``worker`` (WorkerSettings fields).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core.cli.runs import run_many, serve_until_signal
from core.engine import Engine
from core.registry import Registry
from core.robot import Done, NewItem, Robot
from core.settings import WorkerSettings
from core.storage.db import Database
from core.testing import TEST_TENANT, make_settings
from core.worker import Worker


class FenceSettings(BaseModel):
    """Where the robot writes and how slowly."""

    log: str = ""
    items: int = 1
    steps: int = 40
    step_seconds: float = 0.1


class SlowWriter(Robot):
    """Writes ``steps`` lines per item to a log file, each after ``ctx.check_write``, slowly."""

    name = "fence_writer"
    display_name = "Staketskrivaren"
    description = "Test robot for fencing."
    settings_model = FenceSettings

    async def collect(self, ctx: Any) -> AsyncIterator[NewItem]:
        """``items`` items."""
        s: FenceSettings = self.settings  # type: ignore[assignment]
        for n in range(s.items):
            yield NewItem(reference=f"fence-{n}", payload={"n": n})

    async def process(self, ctx: Any, item: Any) -> Done:
        """A slow multi-step write: every step passes the write guard first."""
        s: FenceSettings = self.settings  # type: ignore[assignment]
        with open(s.log, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {item.reference} start\n")
            out.flush()
            for step in range(s.steps):
                ctx.check_write("log", f"step {step}")
                out.write(f"{os.getpid()} {item.reference} {step}\n")
                out.flush()
                await asyncio.sleep(s.step_seconds)
            out.write(f"{os.getpid()} {item.reference} end\n")
        return Done({"steps": s.steps})


def main() -> None:
    """Run or serve, as MODE says."""
    mode, url, raw = sys.argv[1:4]
    config = json.loads(raw)
    robot_settings = {k: config[k] for k in ("log", "items", "steps", "step_seconds")}
    settings = make_settings(
        Path(config["var_dir"]),
        worker=WorkerSettings(**config["worker"]),
        robots={SlowWriter.name: robot_settings},
    )
    if "item_timeout_override" in config:
        # Past validation: the paused-worker test lifts the item timeout above the lease, so
        # that only the write fence (not the item's timeout) can stop a resumed worker.
        object.__setattr__(settings.worker, "item_timeout_seconds", config["item_timeout_override"])
    db = Database(url)
    try:
        engine = Engine.from_database(db, settings, Registry(robots={SlowWriter.name: SlowWriter}))
        if mode == "run":
            summaries = asyncio.run(run_many(engine, [(SlowWriter.name, TEST_TENANT.code)], show_progress=False))
            print("SUMMARY " + json.dumps([s.status.value for s in summaries]), flush=True)
        else:
            worker = Worker(engine)
            serve_until_signal(lambda stop: worker.serve(stop))
            print("STOPPED", flush=True)
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
