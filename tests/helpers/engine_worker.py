"""A worker process running Engine.run once, on the real clock, like `kollega run`.

    python -m tests.helpers.engine_worker URL ROBOT CONFIG_JSON

CONFIG_JSON holds ``var_dir``, ``worker`` (WorkerSettings fields) and ``robot`` (the
robot's settings). The run's summary is printed as one JSON line starting with SUMMARY.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from core.engine import Engine
from core.registry import Registry
from core.settings import WorkerSettings
from core.storage.db import Database
from core.testing import TEST_TENANT, ExampleRobot, ExampleWriterRobot, make_settings

ROBOTS = {r.name: r for r in (ExampleRobot, ExampleWriterRobot)}


def main() -> None:
    """Run one robot once and print its summary."""
    url, robot_name, raw = sys.argv[1:4]
    config = json.loads(raw)
    robot = ROBOTS[robot_name]
    settings = make_settings(
        Path(config["var_dir"]), worker=WorkerSettings(**config["worker"]), robots={robot.name: config["robot"]}
    )
    db = Database(url)
    try:
        engine = Engine.from_database(db, settings, Registry(robots={robot.name: robot}))
        summary = asyncio.run(engine.run(robot.name, TEST_TENANT.code))
        print("SUMMARY " + json.dumps({"status": summary.status.value, "counts": summary.counts}), flush=True)
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
