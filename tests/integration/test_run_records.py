"""Run records: each run keeps its robot's version, code hash and structured log; the pages show them.

Also the items page's bulk retry and cancel (one audited action) and the log's bound.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.engine import Engine
from core.records import ItemStatus, RunStatus
from core.registry import Registry
from core.robot import Done, NewItem, Robot
from core.runlog import code_hash
from core.settings import WorkerSettings
from core.storage.db import Database
from core.storage.models import AuditEvent, Run, RunLog, WorkItem
from core.testing import TEST_TENANT, ExampleRobot, FakeClock, make_settings, run_robot
from core.testing.memory import MemoryStores
from core.testing.web import WebEnv, login, make_web_env, web_client


class ChattyRobot(Robot):
    """Logs per item, with a personnummer in a field the redaction must catch."""

    name = "chatty"
    display_name = "Pratsam"

    def collect(self, ctx: Any) -> list[NewItem]:
        return [NewItem(reference=f"c-{i}", payload={}) for i in range(3)]

    async def process(self, ctx: Any, item: Any) -> Done:
        ctx.log.info("looked up the applicant", subject="19121212-1212", step=item.reference)
        if item.reference == "c-1":
            ctx.log.warning("income looks odd", amount=12)
        ctx.log.debug("never kept")
        return Done({})


def chatty_engine(tmp_path: Path, max_entries: int = 5000) -> tuple[Engine, MemoryStores]:
    stores = MemoryStores(FakeClock())
    base = make_settings(tmp_path).worker.model_dump()
    settings = make_settings(tmp_path, worker=WorkerSettings(**{**base, "run_log_max_entries": max_entries}))
    return stores.engine(settings, Registry(robots={"chatty": ChattyRobot}, versions={"chatty": "2.1.0"})), stores


class TestTheEngineKeepsTheRecord:
    """The version and hash are stored as the run starts; what it logs is kept, redacted, by item."""

    def test_version_hash_and_log(self, tmp_path: Path) -> None:
        engine, stores = chatty_engine(tmp_path)
        summary = asyncio.run(engine.run("chatty", TEST_TENANT.code))
        assert summary.status == RunStatus.succeeded and summary.run_id is not None
        run = stores.runs.get(summary.run_id)
        assert run is not None and run.robot_version == "2.1.0"
        assert run.code_hash == code_hash(ChattyRobot) and run.code_hash is not None and len(run.code_hash) == 64
        log = stores.runs.run_log(summary.run_id)
        events = [e.event for e in log]
        assert events[0] == "run started" and events[-1] == "run finished"
        assert events.count("looked up the applicant") == 3 and "never kept" not in events
        assert [e.seq for e in log] == list(range(1, len(log) + 1))
        looked = [e for e in log if e.event == "looked up the applicant"]
        assert all(e.item_id is not None for e in looked)
        assert "19121212-1212" not in str(log)  # redacted with the one redaction function
        [odd] = stores.runs.run_log(summary.run_id, level="warning")
        assert odd.event == "income looks odd" and odd.fields == {"amount": 12, "attempt": 1}
        by_item = stores.runs.run_log(summary.run_id, item_id=odd.item_id)
        assert {e.event for e in by_item} >= {"looked up the applicant", "income looks odd"}

    def test_the_log_is_bounded_and_counts_what_it_dropped(self, tmp_path: Path) -> None:
        engine, stores = chatty_engine(tmp_path, max_entries=3)
        summary = asyncio.run(engine.run("chatty", TEST_TENANT.code))
        assert summary.run_id is not None
        run = stores.runs.get(summary.run_id)
        assert len(stores.runs.run_log(summary.run_id)) == 3
        assert run is not None and run.log_dropped == 3  # 6 entries at INFO and above: 3 kept, 3 counted


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    return make_web_env(db, tmp_path)


class TestThePages:
    """The run page shows version and log with filters; the items page acts on every matching failure."""

    async def test_run_page_log_and_bulk_retry(self, env: WebEnv) -> None:
        result = await asyncio.to_thread(
            run_robot, ExampleRobot, db=env.db, tmp_path=env.settings.var_dir.parent, clock=env.clock
        )
        run_id = result.summary.run_id
        with env.db.session() as s:
            run = s.get(Run, run_id)
            assert run is not None and run.code_hash == code_hash(ExampleRobot)
            stored = s.scalar(select(RunLog.id).where(RunLog.run_id == run_id).limit(1))
            failed = list(s.scalars(select(WorkItem.id).where(WorkItem.status == ItemStatus.failed_business)))
        assert stored is not None and len(failed) == 3
        async with web_client(env.app) as client:
            csrf = await login(client, "sara")
            page = (await client.get(f"/ops/runs/{run_id}")).text
            assert "Körningens logg" in page and "run started" in page and run.code_hash[:12] in page
            errors_only = (await client.get(f"/ops/runs/{run_id}?level=error")).text
            assert "run started" not in errors_only
            item_only = (await client.get(f"/ops/runs/{run_id}?item={failed[0]}")).text
            rows = re.findall(r'<tr data-level="(\w+)">', item_only)
            assert rows and "run started" not in item_only

            listing = (await client.get(f"/ops/items?run={run_id}&status=failed_business")).text
            assert all(f'data-item="{i}"' in listing for i in failed)
            assert (await client.get("/ops/items?status=done")).status_code == 404  # never a bulk on done items
            response = await client.post(
                "/ops/items/bulk",
                data={"action": "retry", "status": "failed_business", "run": str(run_id), "csrf_token": csrf},
            )
            assert response.status_code == 303 and f"run={run_id}" in response.headers["location"]
            after = (await client.get(response.headers["location"])).text
            assert "3 ärenden är tillbaka i kön." in after and "Inga misslyckade ärenden matchar filtret." in after
            no_csrf = await client.post("/ops/items/bulk", data={"action": "cancel", "csrf_token": "nope"})
            assert no_csrf.status_code == 403
        with env.db.session() as s:
            statuses = {s.get(WorkItem, i).status for i in failed}  # type: ignore[union-attr]
            [bulk] = s.scalars(select(AuditEvent).where(AuditEvent.action == "items.bulk_retried")).all()
        assert statuses == {ItemStatus.pending}
        assert bulk.actor == "user:sara" and sorted(bulk.details["items"]) == sorted(failed)
        assert bulk.details["filter"]["run_id"] == run_id
