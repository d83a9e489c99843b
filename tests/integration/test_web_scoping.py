"""Scoping of everything not addressed by an id: one municipality never sees or changes another's.

The authorization matrix (test_web_authz_matrix.py) covers routes that take an object id.
These tests cover the rest, as found by the outside review of issue 17: the auditors'
search by user and by personnummer (H1), pausing and resuming a schedule shared by two
municipalities (M2), and the IT admin's ``/admin/users/{username}/…`` and grant forms.
Tenant 0000 is "ours" (anna, sara, johan, maria …), tenant 9999 the other one (karin, olle,
and vera, an IT admin of 9999 made here). Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.scheduler import Scheduler, load_schedules
from core.settings import TenantSettings
from core.storage.db import Database
from core.storage.models import AuditEvent, Run, RunStatus
from core.storage.web_models import ALL_TENANTS, Role, SchedulePause, User, UserRole
from core.testing import TEST_TENANT, make_settings
from core.testing.web import WebEnv, enrol_totp, login, make_web_env, web_client
from core.web.auth import Grant, create_user, hash_password

PNR = "191212121212"
SHARED = """name = "shared-night"
robot = "example"
tenants = ["0000", "9999"]
cron = "30 1 * * *"
window_end = "06:00"
calendar = "all"
description = "Delas av två kommuner"
"""
VERA_PASSWORD = "vera-har-ett-eget-långt-lösenord"


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    """The app with a schedule shared by 0000 and 9999, and vera, IT admin of 9999."""
    env = make_web_env(db, tmp_path)
    folder = tmp_path / "schedules"
    folder.mkdir()
    (folder / "shared-night.toml").write_text(SHARED, encoding="utf-8")
    env.settings.scheduler = env.settings.scheduler.model_copy(update={"schedules_dir": folder})
    env.settings.tenants = [*env.settings.tenants, TenantSettings(code="9999", name="Andra kommunen")]
    create_user(db, "vera", password_hash=hash_password(VERA_PASSWORD), grants={Grant(Role.it_admin, "9999")})
    enrol_totp(db, "vera")
    return env


async def api(client: httpx.AsyncClient, csrf: str, path: str, body: dict[str, Any]) -> httpx.Response:
    """A JSON API POST with the session's CSRF token."""
    return await client.post(f"/api/v1{path}", json=body, headers={"X-CSRF-Token": csrf})


async def audit_search(env: WebEnv, auditor: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """What ``auditor`` finds in the access log through the JSON API."""
    async with web_client(env.app) as client:
        csrf = await login(client, auditor)
        answer = await api(client, csrf, "/audit/search", body)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()
        return found


def concerns(event: dict[str, Any], names: set[str]) -> bool:
    """Whether an event names one of these users as actor or subject."""
    return bool({event["actor"], event["subject"]} & {f"user:{n}" for n in names})


async def other_municipality_activity(env: WebEnv) -> None:
    """9999's people log in, search a personnummer, pause their share of a schedule, reset a password."""
    async with web_client(env.app) as client:
        csrf = await login(client, "olle")  # operations and auditor of 9999
        assert (await api(client, csrf, "/audit/search", {"personnummer": PNR})).status_code == 200
        assert (await api(client, csrf, "/schedules/shared-night/pause", {"reason": "Byte"})).status_code == 200
    async with web_client(env.app) as client:
        csrf = await login(client, "vera", VERA_PASSWORD)
        reset = await client.post("/admin/users/karin/password", data={"csrf_token": csrf})
        assert reset.status_code == 200


class TestAuditSearchScoping:
    """H1: an auditor sees only events of their own municipality, whatever they search for."""

    async def test_search_by_user_shows_nothing_of_another_municipality(self, env: WebEnv) -> None:
        await other_municipality_activity(env)
        async with web_client(env.app) as client:
            await login(client, "anna")  # ours: her login must stay visible to our auditor
        for user in ("olle", "vera", "karin", "user:olle"):
            assert await audit_search(env, "maria", {"user": user}) == [], user
        leaked = [
            e
            for body in ({"action": "user."}, {"action": "schedule."}, {"action": "audit."}, {"start": "2026-01-01"})
            for e in await audit_search(env, "maria", body)
            if concerns(e, {"olle", "vera", "karin"}) or e["tenant"] not in (None, "0000")
        ]
        assert leaked == []
        anna = await audit_search(env, "maria", {"user": "anna"})
        assert "user.login" in {e["action"] for e in anna}  # the fix does not hide our own people
        # …and the other way round: 9999's auditor sees none of ours.
        for body in ({"user": "anna"}, {"user": "maria"}, {"action": "user."}, {"action": "audit."}):
            theirs = await audit_search(env, "olle", body)
            assert not [e for e in theirs if concerns(e, {"anna", "maria", "sara", "johan"})], body

    async def test_search_by_personnummer_is_not_seen_by_another_municipality(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "olle")
            assert (await api(client, csrf, "/audit/search", {"personnummer": "19121212-1212"})).status_code == 200
            assert (await api(client, csrf, "/audit/export", {"personnummer": PNR})).status_code == 200
        with env.db.session() as s:
            own = s.scalars(select(AuditEvent).where(AuditEvent.actor == "user:olle", AuditEvent.subject == PNR)).all()
        # written with the tenant searched, so it is 9999's business only
        assert {(e.action, e.tenant) for e in own} == {("audit.searched", "9999"), ("audit.exported", "9999")}
        for body in ({"user": "olle"}, {"personnummer": PNR}, {"personnummer": PNR, "user": "olle"}):
            found = await audit_search(env, "maria", body)
            assert not [e for e in found if e["actor"] == "user:olle" or e["tenant"] == "9999"], body
        # maria's own search (just made) is 0000's, and olle does not see it
        with env.db.session() as s:
            marias = s.scalars(select(AuditEvent.tenant).where(AuditEvent.actor == "user:maria")).all()
        assert "0000" in marias and "9999" not in marias
        found = await audit_search(env, "olle", {"personnummer": PNR, "user": "maria"})
        assert not [e for e in found if e["actor"] == "user:maria"]
        # while a second auditor of 0000 does see it (who watches the watchers)
        create_user(env.db, "mats", password_hash=hash_password(VERA_PASSWORD), grants={Grant(Role.auditor, "0000")})
        enrol_totp(env.db, "mats")
        async with web_client(env.app) as client:
            csrf = await login(client, "mats", VERA_PASSWORD)
            seen = (await api(client, csrf, "/audit/search", {"personnummer": PNR, "user": "maria"})).json()
        assert {(e["action"], e["tenant"], e["subject"]) for e in seen} == {("audit.searched", "0000", PNR)}


def scheduler_for_both(env: WebEnv, tmp_path: Path) -> Scheduler:
    """A scheduler of a deployment serving 0000 and 9999, reading the shared schedule."""
    settings = make_settings(tmp_path, tenants=[TEST_TENANT, TenantSettings(code="9999", name="Andra kommunen")])
    schedules = load_schedules(env.settings.scheduler.schedules_dir, robots=None, tenants={"0000", "9999"})
    return Scheduler(env.db, settings, schedules, env.clock, owner="test")


def slot_statuses(env: WebEnv, slot: str) -> dict[str, RunStatus]:
    with env.db.session() as s:
        return {r.tenant: r.status for r in s.scalars(select(Run).where(Run.slot == slot))}


async def schedule_state(env: WebEnv, user: str) -> dict[str, Any]:
    """The shared schedule as ``user`` sees it in the JSON API."""
    async with web_client(env.app) as client:
        await login(client, user)
        listed = (await client.get("/api/v1/schedules")).json()["schedules"]
    (row,) = [r for r in listed if r["name"] == "shared-night"]
    return dict(row)


class TestSchedulePauseScoping:
    """M2: a pause belongs to one municipality's share of a schedule; the others keep running."""

    @pytest.mark.parametrize("via", ["form", "api"])
    async def test_pause_by_one_municipality_leaves_the_other_running(
        self, env: WebEnv, tmp_path: Path, via: str
    ) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "olle")  # operations of 9999
            if via == "form":
                answer = await client.post("/ops/schedules/shared-night/pause", data={"csrf_token": csrf})
                assert answer.status_code == 303
            else:
                assert (await api(client, csrf, "/schedules/shared-night/pause", {})).status_code == 200
        theirs, ours = await schedule_state(env, "olle"), await schedule_state(env, "sara")
        assert theirs["paused"] is True and theirs["tenants"] == ["9999"]
        assert ours["paused"] is False and ours["paused_by"] is None and ours["tenants"] == ["0000"]
        async with web_client(env.app) as client:
            await login(client, "sara")
            page = (await client.get("/ops/schedules")).text
        assert "Pausat" not in page
        scheduler = scheduler_for_both(env, tmp_path)
        scheduler.fire(scheduler.schedules["shared-night"], "2026-11-24T01:30")
        assert slot_statuses(env, "2026-11-24T01:30") == {"0000": RunStatus.queued, "9999": RunStatus.skipped}

    @pytest.mark.parametrize("via", ["form", "api"])
    async def test_resume_by_one_municipality_leaves_the_others_pause(
        self, env: WebEnv, tmp_path: Path, via: str
    ) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "sara")  # operations of 0000
            assert (
                await api(client, csrf, "/schedules/shared-night/pause", {"reason": "Uppgradering"})
            ).status_code == 200
        async with web_client(env.app) as client:
            csrf = await login(client, "olle")
            if via == "form":
                answer = await client.post("/ops/schedules/shared-night/resume", data={"csrf_token": csrf})
                assert answer.status_code == 303
            else:
                assert (await api(client, csrf, "/schedules/shared-night/resume", {})).status_code == 200
        ours = await schedule_state(env, "sara")
        assert ours["paused"] is True and ours["paused_by"] == "user:sara"
        assert (await schedule_state(env, "olle"))["paused"] is False
        scheduler = scheduler_for_both(env, tmp_path)
        scheduler.fire(scheduler.schedules["shared-night"], "2026-11-24T01:30")
        assert slot_statuses(env, "2026-11-24T01:30") == {"0000": RunStatus.skipped, "9999": RunStatus.queued}
        # and the pause and resume were logged for the tenant concerned only
        with env.db.session() as s:
            events = s.execute(
                select(AuditEvent.actor, AuditEvent.action, AuditEvent.tenant).where(
                    AuditEvent.action.in_(["schedule.paused", "schedule.resumed"])
                )
            ).all()
        assert sorted(events) == [("user:olle", "schedule.resumed", "9999"), ("user:sara", "schedule.paused", "0000")]

    async def test_resuming_an_old_all_tenant_pause_resumes_only_ones_own_share(
        self, env: WebEnv, tmp_path: Path
    ) -> None:
        with env.db.session() as s:  # a pause made before migration 0004: every tenant
            s.add(
                SchedulePause(
                    schedule="shared-night",
                    tenant=ALL_TENANTS,
                    paused_by="user:olle",
                    paused_at=env.clock.now(),
                    reason="Byte",
                )
            )
        assert (await schedule_state(env, "sara"))["paused"] is True
        async with web_client(env.app) as client:
            csrf = await login(client, "sara")
            assert (await api(client, csrf, "/schedules/shared-night/resume", {})).status_code == 200
        assert (await schedule_state(env, "sara"))["paused"] is False
        theirs = await schedule_state(env, "olle")
        assert theirs["paused"] is True and theirs["paused_by"] == "user:olle"
        scheduler = scheduler_for_both(env, tmp_path)
        scheduler.fire(scheduler.schedules["shared-night"], "2026-11-24T01:30")
        assert slot_statuses(env, "2026-11-24T01:30") == {"0000": RunStatus.queued, "9999": RunStatus.skipped}

    async def test_a_tenant_outside_the_persons_grants_is_refused(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "olle")
            answer = await api(client, csrf, "/schedules/shared-night/pause", {"tenant": "0000"})
            assert answer.status_code == 404
            form = await client.post("/ops/schedules/shared-night/pause", data={"tenant": "0000", "csrf_token": csrf})
            assert form.status_code == 404
        assert (await schedule_state(env, "sara"))["paused"] is False


def grants_of(db: Database, username: str) -> set[tuple[str, str]]:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None
        return {(r.role.value, r.tenant) for r in s.scalars(select(UserRole).where(UserRole.user_id == user.id))}


class TestUserAdminScoping:
    """``/admin/users/{username}/…`` and the grant form: one municipality's IT never touches another's staff."""

    async def test_another_municipalitys_admin_cannot_see_or_change_our_account(self, env: WebEnv) -> None:
        with env.db.session() as s:
            before = s.scalar(select(User.password_hash).where(User.username == "anna"))
        async with web_client(env.app) as client:
            csrf = await login(client, "vera", VERA_PASSWORD)  # IT admin of 9999
            password = await client.post("/admin/users/anna/password", data={"csrf_token": csrf})
            active = await client.post("/admin/users/anna/active", data={"active": "false", "csrf_token": csrf})
            grant = await client.post(
                "/admin/users/grants",
                data={"username": "anna", "role": "case_worker", "tenant": "9999", "queue": "x", "csrf_token": csrf},
            )
            listing = await client.get("/admin/users")
        assert password.status_code == 404 and active.status_code == 404
        # a grant in 9999 would take anna out of 0000's IT's hands (an account with grants in two
        # municipalities is managed by neither alone): refused, and not even her existence shown
        assert grant.status_code == 404
        assert 'action="/admin/users/anna/' not in listing.text and "karin" in listing.text
        assert grants_of(env.db, "anna") == {("case_worker", "0000")}
        with env.db.session() as s:
            anna = s.scalar(select(User).where(User.username == "anna"))
            assert anna is not None and anna.active and anna.password_hash == before
        async with web_client(env.app) as client:  # our own IT admin still manages her
            csrf = await login(client, "johan")
            assert (await client.post("/admin/users/anna/password", data={"csrf_token": csrf})).status_code == 200

    async def test_our_admin_cannot_touch_the_other_municipalitys_account(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "johan")  # IT admin of 0000
            for path, data in (
                ("/admin/users/karin/password", {}),
                ("/admin/users/karin/active", {"active": "false"}),
                ("/admin/users/vera/active", {"active": "false"}),
            ):
                answer = await client.post(path, data={**data, "csrf_token": csrf})
                assert answer.status_code == 404, path
            grant = await client.post(
                "/admin/users/grants",
                data={"username": "karin", "role": "auditor", "tenant": "0000", "csrf_token": csrf},
            )
            assert grant.status_code == 404
        assert grants_of(env.db, "karin") == {("case_worker", "9999")}
        with env.db.session() as s:
            assert all(s.scalars(select(User.active).where(User.username.in_(["karin", "vera"]))))
