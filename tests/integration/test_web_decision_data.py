"""The decision form carries a robot's own fields (``data.<key>``) to the decision (issue 18).

A robot's review template adds fields to the page's decision form (``form="decide-form"``);
the kernel keeps them with the decision and hands them to on_decision. An approval the
robot's material says needs a confirmation is refused, in Swedish, until it is ticked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from core.review import create_review
from core.storage.db import Database
from core.storage.models import ReviewItem, ReviewKind, ReviewState
from core.testing.web import WebEnv, login, make_web_env, web_client


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    return make_web_env(db, tmp_path)


def add(env: WebEnv, material: dict[str, Any]) -> int:
    now = env.clock.now()
    with env.db.session() as s:
        row = create_review(
            s,
            tenant="0000",
            robot="example",
            work_item_id=None,
            queue="example.review",
            kind=ReviewKind.decision,
            title="Ärende",
            summary="Förslag",
            material=material,
            subject=None,
            actor="robot:example",
            now=now,
        )
        return row.id


def version_of(html: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match, "no decision form"
    return match.group(1)


async def test_robot_fields_reach_the_decision(env: WebEnv) -> None:
    review_id = add(env, {"belopp": 1})
    async with web_client(env.app) as client:
        csrf = await login(client, "anna")
        page = await client.get(f"/inbox/items/{review_id}")
        assert 'id="decide-form"' in page.text
        response = await client.post(
            f"/inbox/items/{review_id}/decide",
            data={
                "decision": "approve",
                "version": version_of(page.text),
                "csrf_token": csrf,
                "data.line.2.decision": "delvis",
                "data.line.2.amount": "5000",
                "data.line.2.reason": "Hyran är för hög",
                "other": "ignored",
            },
        )
        assert response.status_code == 303
    with env.db.session() as s:
        row = s.get(ReviewItem, review_id)
        assert row is not None and row.state == ReviewState.approved
        assert row.decision_data == {
            "line.2.decision": "delvis",
            "line.2.amount": "5000",
            "line.2.reason": "Hyran är för hög",
        }


async def test_a_required_confirmation_is_asked_for_in_swedish(env: WebEnv) -> None:
    review_id = add(env, {"required_on_approve": {"confirm_table": "Jag har kontrollerat beloppen"}})
    async with web_client(env.app) as client:
        csrf = await login(client, "anna")
        page = await client.get(f"/inbox/items/{review_id}")
        refused = await client.post(
            f"/inbox/items/{review_id}/decide",
            data={"decision": "approve", "version": version_of(page.text), "csrf_token": csrf},
        )
        assert refused.status_code == 422
        assert "Bekräfta innan du godkänner: Jag har kontrollerat beloppen" in refused.text
        ok = await client.post(
            f"/inbox/items/{review_id}/decide",
            data={
                "decision": "approve",
                "version": version_of(refused.text),
                "csrf_token": csrf,
                "data.confirm_table": "1",
            },
        )
        assert ok.status_code == 303
