"""Two municipalities' HaRry runs on two workers against one shared payroll system save every schedule once.

Both municipalities declare the payroll (and scheduling) system shared (``shared_by``), so
both runs collect the same schedules and race to register them: the target lock
(``ctx.exclusive``, system + employee + period) lets exactly one check-and-save through;
the other finds it registered. The sandbox's own save log counts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.engine import Engine
from core.registry import Registry
from core.settings import TenantSettings
from core.testing import temporary_database
from robots.harry.robot import Harry
from tests.helpers.harry import harry_app_settings, payroll_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_two_concurrent_runs_save_every_schedule_once(tmp_path: Path) -> None:
    with (
        payroll_sandbox(seed=5, employees=12, payroll_latency_ms=(20.0, 60.0)) as sb,
        temporary_database(tmp_path) as db,
    ):
        settings = harry_app_settings(tmp_path, sb.url, worker={"concurrency": 3}, robot={"contexts": 2})
        settings.tenants = [TenantSettings(code="1081", name="Ronneby"), TenantSettings(code="1082", name="Karlshamn")]
        for system in ("scheduling", "payroll"):
            settings.connectors[system] = {**settings.connectors[system], "shared_by": ["1081", "1082"]}
        registry = Registry(robots={"harry": Harry})
        one = Engine.from_database(db, settings, registry, owner="worker-1")
        two = Engine.from_database(db, settings, registry, owner="worker-2")

        async def night() -> list[dict[str, int]]:
            runs = await asyncio.gather(one.run("harry", "1081"), two.run("harry", "1082"))
            return [r.counts for r in runs]

        counts = asyncio.run(night())
        with_rows = [s for s in sb.approved() if s["rows"]]
        assert with_rows
        for c in counts:  # the sandbox seeds a schedule HaRry must refuse (failed_business): the same in both
            assert c["collected"] == len(sb.approved()) and c["done"] + c["failed_business"] == c["collected"], counts
        assert counts[0]["failed_business"] == counts[1]["failed_business"]
        saves = sb.saves_per_period()
        periods = {f"{s['employee_id']}:{s['period_from']}:{s['period_to']}" for s in with_rows}
        assert set(saves) <= periods and len(saves) >= len(periods) - counts[0]["failed_business"]
        assert set(saves.values()) == {1}, f"saved twice: {[k for k, v in saves.items() if v > 1]}"
