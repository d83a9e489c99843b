"""Issue 19: Ronney keeps an application's warnings across its versions (the robot's state port).

Version 1 opens warnings; the case worker closes one and returns the item; version 2 shows it
closed (never reopened) and closes by itself a warning whose cause went away; a municipality
may require open warnings to be acknowledged before approval; the application as submitted is
kept once per version.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from core.records import ReviewView
from core.storage.db import Database
from core.testing.memory import MemoryStores
from robots.ronney.robot import Ronney
from tests.unit.test_ronney_checks import AGREEING, ANNA, application
from tests.unit.test_ronney_robot import Systems, context, database, in_2021, item, process, verified_2021

__all__ = ["database"]  # the fixture, used by name


def live(db: Database, tmp_path: Path, systems: Systems, **settings: Any) -> tuple[Ronney, Any]:
    robot, ctx = context(db, tmp_path, systems, **settings)
    ctx.dry_run = False  # the state and the snapshot are kept
    ctx.artifacts = MemoryStores(ctx.clock).artifacts  # the stand-in item has no row to attach files to
    return robot, ctx


def version_2(app: dict[str, Any]) -> dict[str, Any]:
    app = copy.deepcopy(app)
    app["updated_at"] = "2026-11-14T09:00:00+01:00"
    return app


def returned(material: dict[str, Any], data: dict[str, Any]) -> ReviewView:
    return ReviewView(
        id=7,
        tenant="0000",
        robot="ronney",
        work_item_id=0,
        queue="ronney.application",
        kind="decision",
        title="t",
        material=material,
        subject=None,
        state="returned",
        decided_by="user:anna",
        decision_comment="Titta igen",
        decision_data=data,
    )


def by_key(material: dict[str, Any]) -> dict[str, str]:
    return {f["key"]: f["state"] for f in material["flags"]}


def test_warnings_live_across_versions(database: Database, tmp_path: Path) -> None:
    app = application(tenant="0000")
    app["previous_decision"]["basis"]["rent"] = 6500  # rent changed since last month: a warning
    app["previous_decision"]["basis"]["household_size"] = 3  # and the household: another
    systems = Systems(app)
    robot, ctx = live(database, tmp_path, systems)
    first = process(robot, ctx).material
    assert by_key(first)["rent_changed"] == "open" and by_key(first)["household_changed"] == "open"
    # the case worker closes the rent warning and returns the item
    asyncio.run(robot.on_decision(ctx, returned(first, {"warning.rent_changed": "close"})))
    kept = ctx.state_get("warnings:EB-202612-0001")
    assert kept is not None and kept[0]["warnings"]["rent_changed"]["state"] == "closed"
    assert kept[0]["warnings"]["rent_changed"]["by"] == "anna"
    # version 2: the rent is still changed (stays closed: never reopened), the household is right now
    second_app = version_2(app)
    second_app["previous_decision"]["basis"]["household_size"] = 2
    systems.app = second_app
    second = process(robot, ctx, item("EB-202612-0001@20261114T090000", version="20261114T090000")).material
    assert by_key(second)["rent_changed"] == "closed"
    assert "household_changed" not in by_key(second)
    assert {g["key"]: g["why"] for g in second["warnings_gone"]} == {"household_changed": "cause_gone"}
    # a closed warning does not count as a deviation in the title
    open_warnings = [f for f in second["flags"] if f["severity"] == "warning" and f["state"] != "closed"]
    assert f"{len(open_warnings)} avvikelse" in second["title"] or not open_warnings


def test_open_warnings_must_be_acknowledged_before_approval_where_the_municipality_wants_it(
    database: Database, tmp_path: Path
) -> None:
    app = verified_2021(application())  # 2021: a full official table, so a proposed amount
    app["previous_decision"]["basis"]["rent"] = 6500
    systems = Systems(app)
    systems.registers[ANNA] = in_2021(AGREEING)
    robot, ctx = live(database, tmp_path, systems, acknowledge_before_approval=["0000"])
    material = process(robot, ctx).material
    assert material["proposal"]["amount"] is not None
    required = material["required_on_approve"]
    assert "warning.rent_changed" in required and required["warning.rent_changed"].startswith("Kvittera varningen:")


def test_not_required_elsewhere(database: Database, tmp_path: Path) -> None:
    app = application(tenant="0000")
    app["previous_decision"]["basis"]["rent"] = 6500
    robot, ctx = live(database, tmp_path, Systems(app))
    material = process(robot, ctx).material
    assert not any(k.startswith("warning.") for k in material.get("required_on_approve") or {})


def test_the_application_as_submitted_is_kept_once_per_version(database: Database, tmp_path: Path) -> None:
    systems = Systems(application(tenant="0000"))
    robot, ctx = live(database, tmp_path, systems)
    first = process(robot, ctx).material
    again = process(robot, ctx).material  # prepared again (returned): the same snapshot
    snap = [d for d in first["documents"] if d["content_type"] == "application/json"]
    assert len(snap) == 1 and snap == [d for d in again["documents"] if d["content_type"] == "application/json"]
    kept = ctx.state_get("snapshot:EB-202612-0001:20261112T074100")
    assert kept is not None and kept[0]["artifact_id"] == snap[0]["artifact_id"]
    # the applicant changes the application: a new version, a new snapshot; the first is untouched
    systems.app = version_2(systems.app)
    third = process(robot, ctx, item("EB-202612-0001@20261114T090000", version="20261114T090000")).material
    new = [d for d in third["documents"] if d["content_type"] == "application/json"]
    assert new[0]["artifact_id"] != snap[0]["artifact_id"]
    assert ctx.state_get("snapshot:EB-202612-0001:20261112T074100") == kept
