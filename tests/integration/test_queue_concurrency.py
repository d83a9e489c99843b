"""2,000 items, 1 / 4 / 16 concurrent claimers, on SQLite and PostgreSQL: each processed once.

Two kinds of claimer:

* asyncio tasks — the real Engine.drain with ``concurrency`` tasks on one loop, storage
  calls in threads (asyncio.to_thread), the way a run processes items;
* separate processes — ``python -m tests.helpers.queue_worker claim``, each with its own
  Database on the same file or schema, started together behind a barrier.

Every process() call is recorded in a file before the item is completed; the test then
checks the record has no duplicates and nothing missing, and that every item is done on
its first attempt (leases are long, so any second attempt would be a double claim).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.engine import Engine
from core.queue import WorkQueue
from core.registry import Registry
from core.robot import NewItem
from core.runs import SqlRunStore
from core.settings import WorkerSettings
from core.storage.db import Database
from core.storage.models import ItemStatus, WorkItem
from core.testing import TEST_TENANT, make_settings
from tests.helpers.procs import finish, spawn, wait_ready
from tests.helpers.robots import RecordingRobot

pytestmark = pytest.mark.slow

N_ITEMS = 2000
TENANT = TEST_TENANT.code


def enqueue_all(db: Database, robot: str) -> set[int]:
    """Enqueue N_ITEMS items for ``robot``; their ids."""
    SqlRunStore(db).ensure_tenant(TENANT, TEST_TENANT.name)
    assert WorkQueue(db).enqueue(robot, TENANT, [NewItem(reference=f"item-{i}") for i in range(N_ITEMS)]) == N_ITEMS
    with db.session() as s:
        return set(s.scalars(select(WorkItem.id).where(WorkItem.robot == robot)).all())


def assert_each_processed_once(db: Database, robot: str, expected: set[int], processed: list[int]) -> None:
    """No duplicate processing, nothing missing, every item done on its first attempt."""
    twice = {i: n for i, n in Counter(processed).items() if n > 1}
    assert not twice, f"{len(twice)} items were processed more than once, e.g. {list(twice.items())[:5]}"
    missing = expected - set(processed)
    assert not missing, f"{len(missing)} items were never processed, e.g. {sorted(missing)[:5]}"
    assert set(processed) == expected
    with db.session() as s:
        by_status = dict(
            s.execute(
                select(WorkItem.status, func.count()).where(WorkItem.robot == robot).group_by(WorkItem.status)
            ).all()
        )
        max_attempts = s.scalar(select(func.max(WorkItem.attempts)).where(WorkItem.robot == robot))
    assert by_status == {ItemStatus.done: N_ITEMS}
    assert max_attempts == 1, "an item was claimed twice"


@pytest.mark.parametrize("claimers", [1, 4, 16])
async def test_asyncio_claimers_process_every_item_exactly_once(db: Database, tmp_path: Path, claimers: int) -> None:
    log = tmp_path / "processed.log"
    log.touch()
    settings = make_settings(
        tmp_path,
        worker=WorkerSettings(concurrency=claimers, lease_seconds=600, item_timeout_seconds=300, max_attempts=3),
        robots={RecordingRobot.name: {"log_path": str(log)}},
    )
    engine = Engine.from_database(db, settings, Registry(robots={RecordingRobot.name: RecordingRobot}))
    expected = enqueue_all(db, RecordingRobot.name)

    counts = await engine.drain(RecordingRobot.name, TENANT)

    processed = [int(line.split()[0]) for line in log.read_text().splitlines()]
    assert_each_processed_once(db, RecordingRobot.name, expected, processed)
    assert counts["done"] == N_ITEMS
    assert counts["failed_application"] == counts["retried"] == 0


@pytest.mark.parametrize("claimers", [1, 4, 16])
def test_claimer_processes_process_every_item_exactly_once(db: Database, tmp_path: Path, claimers: int) -> None:
    expected = enqueue_all(db, "bulk")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    outs = [tmp_path / f"processed-{i}.log" for i in range(claimers)]
    logs = [tmp_path / f"claimer-{i}.out" for i in range(claimers)]
    procs = [
        spawn("queue_worker", ["claim", db.url, "bulk", TENANT, f"p{i}", str(barrier), str(outs[i])], logs[i])
        for i in range(claimers)
    ]

    wait_ready(barrier, claimers, procs)
    finish(procs, logs)

    lines = [line.split() for out in outs if out.exists() for line in out.read_text().splitlines()]
    assert_each_processed_once(db, "bulk", expected, [int(fields[0]) for fields in lines])
    with db.session() as s:
        owners = dict(s.execute(select(WorkItem.id, WorkItem.result)).all())
    assert all(owners[int(i)] == {"by": name} for i, _ref, name in lines), (
        "an item was completed by a process that did not record it"
    )
    if claimers > 1:
        workers = {name for _i, _ref, name in lines}
        assert len(workers) >= 2, f"only {workers} took items: the claimers did not run side by side"
