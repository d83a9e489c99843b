"""Two runs writing to one shared system at once write each target exactly once (RunContext.exclusive)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from core.api import Done, NewItem, NoSettings, Outcome, Robot, RunContext, WorkItemView
from core.engine import Engine
from core.registry import Registry
from core.settings import TenantSettings
from core.testing import make_settings, temporary_database

#: The shared "payroll system": every save it received, by (employee, period).
SAVED: Counter[str] = Counter()


class Saver(Robot[NoSettings]):
    """Checks the shared system, pauses (a slow page), saves, reads back: the write that must not repeat."""

    name = "saver"
    display_name = "Saver"
    side_effects_repeatable = False

    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:
        for i in range(12):
            # Both municipalities' schedules target the same employees in the shared system.
            yield NewItem(reference=f"E{i}:2026-12", payload={"target": f"E{i}:2026-12"})

    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        target = str(item.payload["target"])
        async with ctx.exclusive(f"payroll:http://shared.example/:{target}"):
            if SAVED[target]:
                return Done({"outcome": "already_saved"})
            await asyncio.sleep(0.02)  # between the check and the write: where two runs used to both write
            SAVED[target] += 1
            assert SAVED[target] == 1  # read back
        return Done({"outcome": "saved"})


def test_two_municipalities_runs_on_two_workers_save_every_target_once(tmp_path: Path) -> None:
    SAVED.clear()
    settings = make_settings(
        tmp_path, tenants=[TenantSettings(code="1081", name="Ronneby"), TenantSettings(code="1082", name="Karlshamn")]
    )
    with temporary_database(tmp_path) as db:
        registry = Registry(robots={"saver": Saver})
        one = Engine.from_database(db, settings, registry, owner="worker-1")
        two = Engine.from_database(db, settings, registry, owner="worker-2")

        async def night() -> list[str]:
            runs = await asyncio.gather(one.run("saver", "1081"), two.run("saver", "1082"))
            return [r.status.value for r in runs]

        assert asyncio.run(night()) == ["succeeded", "succeeded"]
    assert set(SAVED) == {f"E{i}:2026-12" for i in range(12)}
    assert set(SAVED.values()) == {1}, "a target was saved twice"
