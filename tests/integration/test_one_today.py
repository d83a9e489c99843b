"""One "today" (issue 21, point 4): the demo's sandboxes and the robots take the date from the same clock.

Run at 00:30 Stockholm time (still the previous day in UTC), the demo once gave Lena 0 visits
for both municipalities: the sandbox laid its data out around the machine's UTC date while
Lena planned from the Stockholm date. Here the demo's own date logic runs on a fake clock at
that hour: Lena asks for the day the sandbox holds visits for, and Ronney for the month the
sandbox holds applications for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connectors.http import HttpConnector
from core.clock import local_today
from core.context import RunContext
from core.engine import Engine
from core.registry import load_robots
from core.settings import load_settings
from core.storage.db import Database
from core.testing import FakeClock
from sandbox.demo import apply_demo_settings, load_demo_settings, sandbox_today, sandboxes

pytest.importorskip("sandbox.testing")

#: 00:30 on Monday 7 December 2026 in Stockholm; 23:30 on the 6th in UTC.
HALF_PAST_MIDNIGHT = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)


def test_the_clock_gives_the_local_date_not_the_utc_date() -> None:
    clock = FakeClock(HALF_PAST_MIDNIGHT)
    assert local_today(clock, "Europe/Stockholm") == date(2026, 12, 7)
    assert local_today(clock, "UTC") == date(2026, 12, 6)
    # Summer time: 01:30 on 1 July in Stockholm is 23:30 on 30 June in UTC.
    assert local_today(FakeClock(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)), "Europe/Stockholm") == date(2026, 7, 1)


async def test_at_half_past_midnight_lena_and_ronney_ask_for_what_the_demo_sandbox_holds(tmp_path: Path) -> None:
    clock = FakeClock(HALF_PAST_MIDNIGHT)
    settings = load_settings(
        var_dir=tmp_path / "var",
        database_url="",
        tenants=[{"code": "1081", "name": "Ronneby kommun"}, {"code": "1082", "name": "Karlshamns kommun"}],
    )
    demo = load_demo_settings()
    demo.sandbox.options.update({"applications": 40, "employees": 20})
    registry = load_robots()
    apply_demo_settings(settings, demo, registry)
    assert sandbox_today(settings, clock) == date(2026, 12, 7)
    db = Database(settings.effective_database_url)
    db.upgrade()
    contexts: list[RunContext] = []
    try:
        engine = Engine.from_database(db, settings, registry, clock=clock)
        with sandboxes(settings, demo, 1, clock):
            for tenant in ("1081", "1082"):
                lena = engine.robot_instance("lena")
                ctx = engine.context(lena, tenant, None, True)
                contexts.append(ctx)
                items = [item async for item in lena.collect(ctx)]  # type: ignore[union-attr]
                assert items, f"Lena found no groups for {tenant}"
                days = {item.payload["date"] for item in items}
                assert days == {"2026-12-08"}  # tomorrow, counted from the Stockholm date
                api = HttpConnector.for_run(ctx, "homecare")
                for item in items:
                    params = {"group": item.payload["group"], "date": item.payload["date"]}
                    visits = (await api.get_json("/visits", params=params))["items"]
                    assert visits, f"the sandbox holds no visits for {params} ({tenant})"

                ronney = engine.robot_instance("ronney")
                ctx = engine.context(ronney, tenant, None, True)
                contexts.append(ctx)
                assert ronney.month(ctx) == "2027-01"  # type: ignore[attr-defined]
                applications = [item async for item in ronney.collect(ctx)]  # type: ignore[union-attr]
                assert applications, f"Ronney found no applications for 2027-01 in the sandbox ({tenant})"
    finally:
        for ctx in contexts:  # the connectors the robots opened, as the engine closes them after a run
            for resource in ctx.resources.values():
                await resource.aclose()
        db.dispose()
