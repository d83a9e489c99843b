"""The auditors' random check (slumpvis kontroll) and the access log's five-year floor (issue 17)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import audit, retention
from core.settings import RetentionSettings
from core.storage.db import Database
from core.storage.models import AuditEvent
from core.storage.web_models import AccessCheck
from core.testing import make_settings
from core.testing.web import WebEnv, login, make_web_env, web_client

PNR = "191212121212"


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    """The app on the backend under test (SQLite and PostgreSQL)."""
    return make_web_env(db, tmp_path)


def _accesses(env: WebEnv, tenant: str, n: int, *, actor: str = "user:anna") -> None:
    now = env.clock.now()
    with env.db.session() as s:
        for i in range(n):
            audit.append(
                s,
                actor=actor,
                action="review.opened" if i % 2 else "data.read",
                tenant=tenant,
                subject=PNR,
                now=now - timedelta(hours=i + 1),
            )
        audit.append(s, actor="robot:ronney", action="item.done", tenant=tenant, now=now)  # not an access


async def test_auditor_draws_a_sample_and_records_verdicts(env: WebEnv) -> None:
    _accesses(env, "0000", 30)
    _accesses(env, "0000", 5, actor="user:maria")  # the auditor's own accesses are never drawn
    _accesses(env, "9999", 10)
    async with web_client(env.app) as client:
        csrf = await login(client, "maria")
        today = env.clock.now().date()
        drawn = await client.post(
            "/audit/checks/draw",
            data={
                "csrf_token": csrf,
                "tenant": "0000",
                "start": (today - timedelta(days=7)).isoformat(),
                "end": today.isoformat(),
                "size": "10",
            },
        )
        assert drawn.status_code == 303
        page = await client.get("/audit/checks")
        ids = [int(i) for i in re.findall(r'data-check="(\d+)"', page.text)]
        assert len(ids) == 10 and "Slumpvis kontroll" in page.text
        with env.db.session() as s:
            checked = s.execute(
                select(AuditEvent.actor, AuditEvent.action, AuditEvent.tenant).join(
                    AccessCheck, AccessCheck.event_seq == AuditEvent.seq
                )
            ).all()
        assert all(t == "0000" and a in retention.ACCESS_ACTIONS and who != "user:maria" for who, a, t in checked)
        # Another municipality's auditor neither sees nor reviews them.
        async with web_client(env.app) as other:
            olle = await login(other, "olle")
            assert 'data-check="' not in (await other.get("/audit/checks")).text
            foreign = await other.post(f"/audit/checks/{ids[0]}", data={"csrf_token": olle, "verdict": "ok"})
            assert foreign.status_code == 404
            refused = await other.post(
                "/audit/checks/draw",
                data={"csrf_token": olle, "tenant": "0000", "start": "2026-11-01", "end": "2026-11-30", "size": "5"},
            )
            assert refused.status_code == 400
        # A deviation needs a note; a verdict is final.
        bare = await client.post(f"/audit/checks/{ids[0]}", data={"csrf_token": csrf, "verdict": "deviation"})
        assert bare.status_code == 400 and "Beskriv avvikelsen" in bare.text
        ok = await client.post(f"/audit/checks/{ids[0]}", data={"csrf_token": csrf, "verdict": "ok"})
        assert ok.status_code == 303
        again = await client.post(f"/audit/checks/{ids[0]}", data={"csrf_token": csrf, "verdict": "ok"})
        assert again.status_code == 400
        dev = await client.post(
            f"/audit/checks/{ids[1]}",
            data={"csrf_token": csrf, "verdict": "deviation", "note": "Ingen tjänstgöring den dagen"},
        )
        assert dev.status_code == 303
        page = await client.get("/audit/checks")
        assert len(re.findall(r'data-check="(\d+)"', page.text)) == 8
        assert "Ingen tjänstgöring den dagen" in page.text
    with env.db.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action.like("audit.check_%"))).all()
        reviewed = [e for e in events if e.action == "audit.check_reviewed"]
        assert [e.actor for e in events] == ["user:maria"] * 3 and len(reviewed) == 2
        assert all(e.tenant == "0000" for e in events)
        assert "tjänstgöring" not in str([e.details for e in events])  # the note stays out of the log
        drawn_event = next(e for e in events if e.action == "audit.check_drawn")
        assert drawn_event.details["population"] == 30 and drawn_event.details["drawn"] == 10


async def test_non_auditors_are_refused(env: WebEnv) -> None:
    async with web_client(env.app) as client:
        await login(client, "sara")
        assert (await client.get("/audit/checks")).status_code == 403


def test_access_log_outlives_a_one_day_retention(db: Database, tmp_path: Path) -> None:
    """Whatever a tenant's retention says, access events stay (five years at least) and the chain verifies."""
    settings = make_settings(tmp_path, retention=RetentionSettings(work_item_days=1, review_days=1, artifact_days=1))
    now = datetime(2032, 1, 1, tzinfo=UTC)
    old = now - timedelta(days=6 * 365)
    with db.session() as s:
        for action in retention.ACCESS_ACTIONS:
            audit.append(s, actor="user:anna", action=action, tenant="0000", subject=PNR, now=old)
    retention.purge(db, settings, now)
    with db.session() as s:
        kept = s.scalar(select(func.count()).where(AuditEvent.action.in_(retention.ACCESS_ACTIONS)))
    assert kept == len(retention.ACCESS_ACTIONS)
    with db.session() as s:
        assert audit.verify(s).ok
    cutoff = retention.access_log_cutoff(settings, settings.tenants[0], now)
    assert cutoff <= now.replace(year=now.year - 5)
    long = make_settings(tmp_path, retention=RetentionSettings(work_item_days=3000))
    assert retention.access_log_cutoff(long, long.tenants[0], now) == now - timedelta(days=3000)
