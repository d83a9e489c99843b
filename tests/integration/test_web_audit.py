"""The audit viewer: search by personnummer, user or period; CSV export; chain status; scoping."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from core.review import create_review
from core.storage.db import Database
from core.storage.models import AuditEvent, ReviewKind
from core.testing.web import WebEnv, login, make_web_env, web_client

PNR = "191212121212"


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    """The app with one item about PNR, opened by anna one day before the clock's now."""
    env = make_web_env(db, tmp_path)
    with env.db.session() as s:
        create_review(
            s,
            tenant="0000",
            robot="example",
            work_item_id=None,
            queue="example.review",
            kind=ReviewKind.decision,
            title="Ansökan",
            summary="",
            material={},
            subject=PNR,
            actor="robot:example",
            now=env.clock.now(),
        )
    env.app.state.kollega.reviews.get(1, viewer="user:anna")
    env.clock.advance(24 * 3600)
    return env


class TestAuditViewer:
    """Auditors search the access log; the search itself is logged; personnummer stay out of URLs."""

    async def test_search_by_personnummer_user_and_period(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "maria")
            page = await client.get("/audit")
            assert 'data-chain="ok"' in page.text
            by_pnr = await client.post("/audit/search", data={"personnummer": "19121212-1212", "csrf_token": csrf})
            assert by_pnr.status_code == 200
            assert "user:anna" in by_pnr.text and "review.opened" in by_pnr.text and "handläggning" in by_pnr.text
            short = await client.post("/audit/search", data={"personnummer": "121212-1212", "csrf_token": csrf})
            assert "user:anna" in short.text
            by_user = await client.post("/audit/search", data={"user": "anna", "csrf_token": csrf})
            assert "review.opened" in by_user.text and "robot:example" not in by_user.text
            day = env.clock.now().date()
            none = await client.post(
                "/audit/search", data={"personnummer": PNR, "start": day.isoformat(), "csrf_token": csrf}
            )
            assert "Inga träffar" in none.text
            earlier = await client.post(
                "/audit/search",
                data={
                    "personnummer": PNR,
                    "start": (day - timedelta(days=1)).isoformat(),
                    "end": (day - timedelta(days=1)).isoformat(),
                    "csrf_token": csrf,
                },
            )
            assert "user:anna" in earlier.text
        with env.db.session() as s:
            searched = s.scalars(select(AuditEvent).where(AuditEvent.action == "audit.searched")).all()
        assert searched and searched[0].actor == "user:maria" and searched[0].subject == PNR

    async def test_csv_export(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "maria")
            response = await client.post("/audit/export", data={"personnummer": PNR, "csrf_token": csrf})
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
            assert "attachment" in response.headers["content-disposition"]
            lines = response.text.lstrip("\ufeff").splitlines()
            assert lines[0].startswith("seq;tid;kommun;aktör;händelse;person/objekt;syfte")
            rows = [line.split(";") for line in lines[1:]]
            assert ["user:anna", "review.opened", PNR] in [r[3:6] for r in rows]
            api = await client.post("/api/v1/audit/export", json={"user": "anna"}, headers={"X-CSRF-Token": csrf})
            assert api.status_code == 200 and "review.opened" in api.text
        with env.db.session() as s:
            assert s.scalar(select(AuditEvent).where(AuditEvent.action == "audit.exported"))

    async def test_other_tenant_and_other_roles(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "olle")  # auditor of 9999
            result = await client.post("/audit/search", data={"personnummer": PNR, "csrf_token": csrf})
            assert "Inga träffar" in result.text
        async with web_client(env.app) as client:
            csrf = await login(client, "sara")
            assert (await client.get("/audit")).status_code == 403
            refused = await client.post("/audit/search", data={"personnummer": PNR, "csrf_token": csrf})
            assert refused.status_code == 403

    async def test_chain_status_shows_tampering(self, env: WebEnv) -> None:
        with env.db.session() as s:
            if env.db.dialect == "postgresql":  # get past the append-only guard, as a superuser could
                s.execute(text("SET LOCAL session_replication_role = replica"))
            s.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor="user:someone-else"))
        async with web_client(env.app) as client:
            await login(client, "maria")
            page = await client.get("/audit")
            assert 'data-chain="broken"' in page.text and "Kedjan är bruten vid händelse 2" in page.text
            chain = (await client.get("/api/v1/audit/chain")).json()
            assert chain["ok"] is False and chain["bad_seq"] == 2

    async def test_api_search(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "maria")
            found = await client.post(
                "/api/v1/audit/search", json={"personnummer": PNR}, headers={"X-CSRF-Token": csrf}
            )
            assert found.status_code == 200
            assert [e["action"] for e in found.json()] == ["review.created", "review.opened"]
