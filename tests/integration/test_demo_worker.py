"""The worker beside the demo's inbox: carries out decisions while the inbox is served, stops with it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from core.records import CallbackStatus, ReviewKind
from core.testing import TEST_TENANT, ExampleRobot
from sandbox.demo import worker_beside
from tests.contract.test_engine_on_memory import engine_on_memory


def test_a_decision_is_carried_out_while_the_inbox_runs_and_the_worker_stops_with_it(tmp_path: Path) -> None:
    stores, engine = engine_on_memory(tmp_path, ExampleRobot, poll_seconds=0.05)
    asyncio.run(engine.run("example", TEST_TENANT.code))
    decision = next(r for r in stores.state.reviews.values() if r.kind == ReviewKind.decision)
    with worker_beside(engine, stop_timeout=10) as thread:
        assert thread.is_alive()
        stores.reviews.decide(decision.id, "approve", actor="user:anna")  # made in the inbox meanwhile
        deadline = time.monotonic() + 10
        while stores.state.reviews[decision.id].callback_status != CallbackStatus.done:
            assert time.monotonic() < deadline, "the worker beside the inbox did not carry the decision out"
            time.sleep(0.02)
    assert not thread.is_alive()  # leaving the block (the inbox stopped) stopped the worker
