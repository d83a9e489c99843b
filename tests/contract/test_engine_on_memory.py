"""The engine depends on the ports only: the example robot runs a whole night on the in-memory stores."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from core.engine import Engine
from core.errors import ApplicationError, BusinessError
from core.records import CallbackStatus, ItemStatus, ReviewKind, ReviewState, RunStatus
from core.registry import Registry
from core.robot import Carried, Done, Robot
from core.settings import WorkerSettings
from core.testing import TEST_TENANT, ExampleRobot, ExampleWriterRobot, FakeClock, make_settings
from core.testing.memory import MemoryStores
from core.worker import Worker


def engine_on_memory(
    tmp_path: Path, robot: type[Robot], robot_settings: dict[str, Any] | None = None, **worker: float
) -> tuple[MemoryStores, Engine]:
    clock = FakeClock()
    stores = MemoryStores(clock)
    base = make_settings(tmp_path).worker.model_dump()
    settings = make_settings(
        tmp_path, robots={robot.name: robot_settings or {}}, worker=WorkerSettings(**{**base, **worker})
    )
    return stores, stores.engine(settings, Registry(robots={robot.name: robot}))


def by_reference(stores: MemoryStores) -> dict[str, ItemStatus]:
    return {i.reference: i.status for i in stores.state.items.values()}


class TestExampleRobotOnMemoryStores:
    """The same night as tests/integration/test_engine.py's, without a database."""

    def test_a_whole_night(self, tmp_path: Path) -> None:
        stores, engine = engine_on_memory(tmp_path, ExampleRobot)
        summary = asyncio.run(engine.run("example", TEST_TENANT.code))
        assert summary.status == RunStatus.succeeded
        assert summary.counts == {
            "collected": 24,
            "done": 14,
            "needs_review": 7,
            "failed_business": 3,
            "failed_application": 0,
            "uncertain": 0,
            "retried": 4,
            "rechecked": 0,
        }
        statuses = by_reference(stores)
        assert statuses["demo-7"] == ItemStatus.failed_business and statuses["demo-3"] == ItemStatus.needs_review
        assert statuses["demo-5"] == ItemStatus.done
        run = stores.runs.get(summary.run_id)
        assert run is not None and (run.status, run.collected, run.done) == (RunStatus.succeeded, 24, 14)
        actions = [e.action for e in stores.audit.events()]
        assert actions[0] == "run.queued" and actions[-1] == "run.succeeded"
        assert actions.count("review.created") == 10
        assert stores.audit.verify().ok

    def test_decisions_are_carried_out_by_the_next_run(self, tmp_path: Path) -> None:
        stores, engine = engine_on_memory(tmp_path, ExampleRobot)
        asyncio.run(engine.run("example", TEST_TENANT.code))
        decisions = [r for r in stores.state.reviews.values() if r.kind == ReviewKind.decision]
        approved, returned = decisions[0], decisions[1]
        stores.reviews.decide(approved.id, "approve", actor="user:anna")
        stores.reviews.decide(returned.id, "return", actor="user:anna", comment="Kontrollera beloppet")
        again = asyncio.run(engine.run("example", TEST_TENANT.code))
        assert again.counts["collected"] == 0 and again.counts["done"] == 1  # the returned one, processed again
        assert stores.state.items[approved.work_item_id or 0].status == ItemStatus.done
        assert stores.state.items[returned.work_item_id or 0].status == ItemStatus.done
        carried = [e for e in stores.audit.events() if e.action == "example.decision_carried_out"]
        assert len(carried) == 2

    def test_a_timeout_in_an_unrepeatable_robot_leaves_it_uncertain(self, tmp_path: Path) -> None:
        class SlowWriter(ExampleWriterRobot):
            name = "slow_writer"

            async def process(self, ctx: Any, item: Any) -> Done:
                await asyncio.sleep(1)
                raise AssertionError("unreachable: the item times out first")

        stores, engine = engine_on_memory(tmp_path, SlowWriter, {"items": 1}, item_timeout_seconds=0.05)
        summary = asyncio.run(engine.run("slow_writer", TEST_TENANT.code))
        assert summary.status == RunStatus.attention and summary.counts["uncertain"] == 1
        [item] = stores.state.items.values()
        assert item.status == ItemStatus.uncertain
        [review] = stores.state.reviews.values()
        assert (review.kind, review.state) == (ReviewKind.uncertain, ReviewState.open)

    def test_the_worker_drains_due_retries(self, tmp_path: Path) -> None:
        stores, engine = engine_on_memory(tmp_path, ExampleRobot, retry_wait_seconds=0)
        first = asyncio.run(engine.run("example", TEST_TENANT.code))
        assert first.counts["retried"] == 4 and first.counts["done"] < 14
        assert isinstance(stores.clock, FakeClock)
        stores.clock.advance(3600)
        asyncio.run(Worker(engine).serve(asyncio.Event(), once=True))
        statuses = by_reference(stores)
        assert statuses["demo-5"] == ItemStatus.done and statuses["demo-10"] == ItemStatus.done


class TestWhatCarryingOutReports:
    """What on_decision returns (or raises) reaches the review item, for the person who decided."""

    @staticmethod
    def night_with_a_decision(tmp_path: Path, robot: type[Robot]) -> tuple[MemoryStores, Engine, int]:
        stores, engine = engine_on_memory(tmp_path, robot)
        asyncio.run(engine.run(robot.name, TEST_TENANT.code))
        decision = next(r for r in stores.state.reviews.values() if r.kind == ReviewKind.decision)
        stores.reviews.decide(decision.id, "approve", actor="user:anna")
        return stores, engine, decision.id

    def test_a_carried_result_is_kept(self, tmp_path: Path) -> None:
        class Booker(ExampleRobot):
            name = "booker"

            async def on_decision(self, ctx: Any, review: Any) -> Carried:
                return Carried("Bokad i bemanningssystemet, bekräftelse-SMS skickat", "B-17")

        stores, engine, review_id = self.night_with_a_decision(tmp_path, Booker)
        asyncio.run(engine.drain("booker", TEST_TENANT.code))
        row = stores.state.reviews[review_id]
        assert (row.callback_status, row.callback_summary, row.callback_reference) == (
            CallbackStatus.done,
            "Bokad i bemanningssystemet, bekräftelse-SMS skickat",
            "B-17",
        )

    def test_a_business_error_is_the_reason_the_decider_reads(self, tmp_path: Path) -> None:
        class Refused(ExampleRobot):
            name = "refused"

            async def on_decision(self, ctx: Any, review: Any) -> None:
                raise BusinessError("Vikarien är redan bokad på ett annat pass samma tid", code="taken")

        stores, engine, review_id = self.night_with_a_decision(tmp_path, Refused)
        asyncio.run(engine.drain("refused", TEST_TENANT.code))
        row = stores.state.reviews[review_id]
        assert row.callback_status == CallbackStatus.failed  # bad data: no retry
        assert row.callback_message == "Vikarien är redan bokad på ett annat pass samma tid"

    def test_a_technical_error_gets_general_words(self, tmp_path: Path) -> None:
        class Down(ExampleRobot):
            name = "down"

            async def on_decision(self, ctx: Any, review: Any) -> None:
                raise ApplicationError("HTTP 503 from https://staffing.example/api/bookings", code="http_503")

        stores, engine, review_id = self.night_with_a_decision(tmp_path, Down)
        asyncio.run(engine.drain("down", TEST_TENANT.code))
        row = stores.state.reviews[review_id]
        assert row.callback_status == CallbackStatus.pending  # retried later
        assert row.callback_message is not None and "https://" not in row.callback_message
        assert row.callback_error is not None and "503" in row.callback_error  # for operations
