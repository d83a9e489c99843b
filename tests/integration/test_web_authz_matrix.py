"""Authorization matrix: every route with an object id × every role × another municipality's object.

Objects of tenant 9999 (a run, its work items, review items, an alert, an artifact) are
requested by every test user of tenant 0000 through every page and API route that takes
an id, with GET and with the route's own method (state-changing requests carry a valid
CSRF token, so only authorization can stop them). None may succeed: the answer is 403 or
404, and nothing changes in the database.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from core.artifacts import FileArtifactStore
from core.settings import TenantSettings
from core.storage.db import Database
from core.storage.models import AuditEvent, ReviewItem, Run, WorkItem
from core.storage.web_models import Alert
from core.testing import ExampleRobot, make_settings, run_robot
from core.testing.web import WebEnv, login, make_web_env, web_client

pytestmark = pytest.mark.slow

OWN_TENANT_USERS = ("anna", "bertil", "erik", "sara", "johan", "maria")


def _other_tenant_objects(env: WebEnv, tmp_path: Path) -> dict[str, int]:
    settings = make_settings(
        tmp_path,
        tenants=[TenantSettings(code="9999", name="Andra kommunen")],
        robots={"example": {"items": 6, "flaky_every": 0, "review_every": 2, "business_error_every": 5}},
    )
    run_robot(ExampleRobot, db=env.db, app_settings=settings, tenant="9999")
    with env.db.session() as s:
        run_id = s.scalar(select(Run.id).where(Run.tenant == "9999"))
        item_id = s.scalar(select(WorkItem.id).where(WorkItem.tenant == "9999"))
        review_id = s.scalar(select(ReviewItem.id).where(ReviewItem.tenant == "9999"))
        alert = Alert(
            key="failed:other",
            kind="failed",
            tenant="9999",
            robot="example",
            run_id=run_id,
            message="x",
            created_at=env.clock.now(),
        )
        s.add(alert)
        s.flush()
        alert_id = alert.id
    artifact_id = FileArtifactStore(env.db, tmp_path / "artifacts", 30, env.clock).save(
        tenant="9999",
        work_item_id=item_id,
        kind="screenshot",
        filename="x.png",
        content_type="image/png",
        data=b"\x89PNG",
    )
    assert run_id and item_id and review_id
    return {
        "run_id": run_id,
        "item_id": item_id,
        "review_id": review_id,
        "alert_id": alert_id,
        "artifact_id": artifact_id,
    }


def _state(db: Database) -> tuple[object, ...]:
    with db.session() as s:
        return (
            tuple(s.execute(select(WorkItem.id, WorkItem.status).order_by(WorkItem.id)).all()),
            tuple(
                s.execute(select(ReviewItem.id, ReviewItem.state, ReviewItem.assignee).order_by(ReviewItem.id)).all()
            ),
            s.scalar(select(func.count()).select_from(Alert).where(Alert.acknowledged_at.is_not(None))),
        )


@pytest.fixture
def matrix(db: Database, tmp_path: Path) -> tuple[WebEnv, dict[str, int]]:
    env = make_web_env(db, tmp_path)
    return env, _other_tenant_objects(env, tmp_path)


async def test_no_role_of_one_municipality_reaches_anothers_objects(
    db: Database, matrix: tuple[WebEnv, dict[str, int]]
) -> None:
    env, ids = matrix
    from core.web.routes import api, audit, auth, inbox, ops

    routes = [
        r
        for module in (api, audit, auth, inbox, ops)
        for r in module.router.routes
        if isinstance(r, APIRoute) and re.search(r"\{\w+_id\}", r.path)
    ]
    assert len(routes) >= 18, [r.path for r in routes]
    before = _state(db)
    leaks: list[str] = []
    async with web_client(env.app) as client:
        for user in OWN_TENANT_USERS:
            client.cookies.clear()
            csrf = await login(client, user)
            for route in routes:
                path = route.path
                for name, value in ids.items():
                    path = path.replace("{" + name + "}", str(value))
                for method in sorted({"GET", *route.methods} - {"HEAD"}):
                    if method == "GET" and "GET" not in route.methods:
                        continue
                    if method == "GET":
                        answer = await client.get(path)
                    else:
                        answer = await client.request(
                            method,
                            path,
                            headers={"X-CSRF-Token": csrf},
                            data=None
                            if path.startswith("/api/")
                            else {
                                "csrf_token": csrf,
                                "decision": "approve",
                                "version": "1",
                                "text": "x",
                                "action": "take",
                            },
                            json={"decision": "approve", "comment": "x", "version": 1, "text": "x", "action": "take"}
                            if path.startswith("/api/")
                            else None,
                        )
                    if answer.status_code not in (403, 404):  # refused by authorization, not by validation
                        leaks.append(f"{user} {method} {path} → {answer.status_code}")
    assert not leaks, "\n".join(leaks)
    assert _state(db) == before, "a refused request changed something"
    with db.session() as s:  # and no access to the other municipality's people was logged as made
        opened = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "review.opened", AuditEvent.tenant == "9999")
        ).all()
        assert opened == []
