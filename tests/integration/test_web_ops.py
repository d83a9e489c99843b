"""The operations dashboard: last night, trends, time saved, schedules, runs and items, alerts, metrics."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from core.artifacts import FileArtifactStore
from core.storage.db import Database
from core.storage.models import (
    AuditEvent,
    ItemStatus,
    ReviewItem,
    ReviewKind,
    ReviewState,
    Run,
    RunStatus,
    WorkItem,
)
from core.storage.web_models import Alert, Role, SchedulePause
from core.testing import ExampleRobot, RobotResult, run_robot, temporary_database
from core.testing.web import WebEnv, csrf_from, login, make_web_env, web_client
from core.web import alerts

SCHEDULE = """name = "example-night"
robot = "example"
tenants = ["0000"]
cron = "30 1 * * *"
window_end = "06:00"
description = "Testschema"
"""


def cell(html: str, robot: str, tenant: str, column: str) -> str:
    row = re.search(rf'<tr data-robot="{robot}" data-tenant="{tenant}">(.*?)</tr>', html, re.S)
    assert row, f"no row for {robot}/{tenant}"
    value = re.search(rf'data-col="{column}">([^<]*)<', row.group(1))
    assert value, column
    return value.group(1).strip()


async def seed(env: WebEnv) -> RobotResult:
    """One night of the example robot (24 items: 14 done, 7 to review, 3 business errors)."""
    return await asyncio.to_thread(
        run_robot, ExampleRobot, db=env.db, tmp_path=env.settings.var_dir.parent, clock=env.clock
    )


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    """The app on the backend under test (SQLite and PostgreSQL)."""
    return make_web_env(db, tmp_path)


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[WebEnv]:
    """The app on SQLite only."""
    with temporary_database(tmp_path) as database:
        yield make_web_env(database, tmp_path)


class TestDashboard:
    """Last night at a glance, trends and time saved, from seeded runs."""

    async def test_numbers_from_a_seeded_night(self, env: WebEnv) -> None:
        result = await seed(env)
        counts = result.summary.counts
        assert counts["done"] == 14 and counts["needs_review"] == 7 and counts["failed_business"] == 3
        async with web_client(env.app) as client:
            anna_csrf = await login(client, "anna")
            review_id = env.app.state.kollega.reviews.list(queue="example.review")[0].id
            page = await client.get(f"/inbox/items/{review_id}")
            env.clock.advance(120)
            version = re.search(r'name="version" value="(\d+)"', page.text)
            assert version
            await client.post(
                f"/inbox/items/{review_id}/decide",
                data={"decision": "approve", "version": version.group(1), "csrf_token": anna_csrf},
            )
        env.clock.advance(5 * 3600)  # the morning after
        async with web_client(env.app) as client:
            await login(client, "sara")
            page = await client.get("/ops")
            assert page.status_code == 200
            for column, expected in (
                ("runs", 1),
                ("collected", 24),
                ("done", 14),
                ("needs_review", 7),
                ("exceptions", 3),
                ("uncertain", 0),
            ):
                assert cell(page.text, "example", "0000", column) == str(expected), column
            assert "<svg" in page.text and 'role="img"' in page.text
            saved = re.search(
                r'<tr data-robot="example" data-tenant="0000" data-month="2026-11">(.*?)</tr>', page.text, re.S
            )
            assert saved, "no time-saved row"
            numbers = re.findall(r'class="num"[^>]*>([^<]*)<', saved.group(1))
            # 14 cases done without a person × 6 min (the example's estimate) − 2 min measured review = 82 min
            assert numbers == ["84.0 ", "2.0", "1.4"] and "uppskattat" in saved.group(1)
            api = (await client.get("/api/v1/ops/time-saved")).json()
            assert api[0]["saved_minutes"] == 82.0 and api[0]["reviews_measured"] == 1
            night = (await client.get("/api/v1/ops/night")).json()["rows"]
            assert night[0]["collected"] == 24
            trend = (await client.get("/api/v1/ops/trends")).json()["example"]
            assert len(trend) == 30 and trend[-1]["collected"] == 24

    async def test_time_saved_is_computed_once_per_period_and_says_when(
        self, lite: WebEnv, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The effects ledger reads a month of items: views within the period reuse its figures.

        Past the period a view still gets the kept figures at once, with their age, while they
        are computed again behind it; past twice the period the view computes them itself.
        """
        from core.web import dashboard

        await seed(lite)
        computed: list[object] = []
        real = dashboard.time_saved

        def counting(*args: Any, **kwargs: Any) -> Any:
            computed.append(lite.clock.now())
            return real(*args, **kwargs)

        monkeypatch.setattr(dashboard, "time_saved", counting)
        figures = lite.app.state.kollega.figures
        note = re.compile(
            r'id="saved-computed" data-age-minutes="(\d+)">Beräknad (\d\d:\d\d), för (mindre än en minut|\d+ min) sedan; '
            r"räknas om i bakgrunden när siffrorna är äldre än 5 min"
        )
        async with web_client(lite.app) as client:
            csrf = await login(client, "sara")
            first = note.search((await client.get("/ops")).text)
            assert first and first.group(1) == "0" and first.group(3) == "mindre än en minut"
            lite.clock.advance(120)
            second = note.search((await client.get("/ops")).text)
            assert len(computed) == 1
            assert second and second.group(2) == first.group(2) and second.group(3) == "2 min"
            lite.clock.advance(200)  # 320 s after the first view: older than the 300 s period
            third_page = await client.get("/ops")
            third = note.search(third_page.text)
            # Answered with the kept figures, their age stated; the new ones are computed behind it.
            assert third and third.group(2) == first.group(2) and third.group(1) == "5" and third.group(3) == "5 min"
            # The 30-day trends are kept the same way and say so too.
            assert re.search(r'id="trend-computed" data-age-minutes="5">Beräknad ', third_page.text)
            figures.settle()
            assert len(computed) == 2
            fourth = note.search((await client.get("/ops")).text)
            assert fourth and fourth.group(2) != first.group(2) and fourth.group(1) == "0"
            lite.clock.advance(700)  # nobody looked for longer than twice the period: computed on the request
            fifth = note.search((await client.get("/ops")).text)
            assert len(computed) == 3
            assert fifth and fifth.group(2) != fourth.group(2) and fifth.group(1) == "0"
            await client.post(
                "/lang", data={"lang": "en", "csrf_token": csrf}, headers={"Origin": "https://testserver"}
            )
            english = await client.get("/ops")
            assert "less than a minute ago; computed again in the background" in english.text

    async def test_warmed_at_start_the_first_view_computes_nothing(
        self, lite: WebEnv, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`kollega serve` computes the figures of each operations person's municipalities as a worker starts."""
        from core.web import dashboard
        from core.web.routes import ops

        await seed(lite)
        computed: list[set[str]] = []
        real = dashboard.time_saved

        def counting(ctx: Any, tenants: set[str], *args: Any, **kwargs: Any) -> Any:
            computed.append(set(tenants))
            return real(ctx, tenants, *args, **kwargs)

        monkeypatch.setattr(dashboard, "time_saved", counting)
        ctx = lite.app.state.kollega
        ops.warm_dashboard(ctx)
        ctx.figures.settle()
        # sara (operations) and johan (IT) see 0000, olle (operations) 9999: one computation per set.
        assert sorted(sorted(t) for t in computed) == [["0000"], ["9999"]]
        ops.warm_dashboard(ctx)  # kept: not computed again
        ctx.figures.settle()
        async with web_client(lite.app) as client:
            await login(client, "sara")
            page = await client.get("/ops")
        assert page.status_code == 200 and len(computed) == 2

    async def test_other_tenant_sees_nothing_and_gets_404(self, lite: WebEnv) -> None:
        await seed(lite)
        async with web_client(lite.app) as client:
            await login(client, "olle")
            page = await client.get("/ops")
            assert 'data-robot="example"' not in page.text
            for url in ("/ops/runs/1", "/ops/items/1", "/api/v1/runs/1", "/api/v1/items/1"):
                assert (await client.get(url)).status_code == 404, url
            assert (await client.get("/api/v1/runs")).json() == []


class TestRunsAndItems:
    """Run and item detail; retry and cancel; artifacts only for allowed roles."""

    async def test_retry_and_cancel(self, env: WebEnv) -> None:
        await seed(env)
        with env.db.session() as s:
            failed = s.scalar(select(WorkItem.id).where(WorkItem.status == ItemStatus.failed_business))
            done = s.scalar(select(WorkItem.id).where(WorkItem.status == ItemStatus.done))
        async with web_client(env.app) as client:
            csrf = await login(client, "sara")
            run_page = await client.get("/ops/runs/1")
            assert run_page.status_code == 200 and "demo-7" in run_page.text
            item_page = await client.get(f"/ops/items/{failed}")
            assert "uppgift om belopp saknas" in item_page.text and "Kör om" in item_page.text
            await client.post(f"/ops/items/{failed}/retry", data={"csrf_token": csrf})
            await client.post(f"/ops/items/{failed}/cancel", data={"csrf_token": csrf})
            refused = await client.post(f"/api/v1/items/{done}/cancel", headers={"X-CSRF-Token": csrf})
            assert refused.status_code == 409
        with env.db.session() as s:
            item = s.get(WorkItem, failed)
            actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.actor == "user:sara")))
        assert item is not None and item.status == ItemStatus.cancelled
        assert "item.requeued" in actions and "item.cancelled" in actions

    async def test_screenshots_only_for_allowed_roles(self, db: Database, tmp_path: Path) -> None:
        env = make_web_env(db, tmp_path, artifact_roles=[Role.it_admin])
        await seed(env)
        store = FileArtifactStore(env.db, tmp_path / "artifacts", 30, env.clock)
        art = store.save(
            tenant="0000",
            work_item_id=1,
            kind="screenshot",
            filename="fel.png",
            content_type="image/png",
            data=b"\x89PNG\r\n\x1a\nfake",
        )
        async with web_client(env.app) as client:
            await login(client, "sara")
            page = await client.get("/ops/items/1")
            assert "visas bara för behöriga roller" in page.text and f"/ops/artifacts/{art}" not in page.text
            assert (await client.get(f"/ops/artifacts/{art}")).status_code == 403
            assert (await client.get("/api/v1/items/1")).json()["artifacts"] == []
        async with web_client(env.app) as client:
            await login(client, "johan")
            page = await client.get("/ops/items/1")
            assert f'src="/ops/artifacts/{art}"' in page.text
            image = await client.get(f"/ops/artifacts/{art}")
            assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
            assert image.headers["content-type"] == "image/png"
        with env.db.session() as s:
            assert s.scalar(
                select(AuditEvent).where(AuditEvent.action == "artifact.opened", AuditEvent.actor == "user:johan")
            )


class TestSchedules:
    """Schedules with next run; pause and resume stored in the database; run now."""

    async def test_pause_resume_run_now(self, lite: WebEnv, tmp_path: Path) -> None:
        folder = tmp_path / "schedules"
        folder.mkdir()
        (folder / "example-night.toml").write_text(SCHEDULE, encoding="utf-8")
        lite.settings.scheduler = lite.settings.scheduler.model_copy(update={"schedules_dir": folder})
        async with web_client(lite.app) as client:
            csrf = await login(client, "sara")
            page = await client.get("/ops/schedules")
            assert 'data-schedule="example-night"' in page.text and "2026-11-24 01:30" in page.text
            await client.post("/ops/schedules/example-night/pause", data={"reason": "Uppgradering", "csrf_token": csrf})
            with lite.db.session() as s:
                pause = s.get(SchedulePause, ("example-night", "0000"))
                assert pause is not None and pause.paused_by == "user:sara" and pause.reason == "Uppgradering"
            assert "Pausat" in (await client.get("/ops/schedules")).text
            await client.post("/ops/schedules/example-night/resume", data={"csrf_token": csrf})
            with lite.db.session() as s:
                assert s.get(SchedulePause, ("example-night", "0000")) is None
            missing = await client.post("/ops/schedules/nope/pause", data={"csrf_token": csrf})
            assert missing.status_code == 404
            response = await client.post(
                "/ops/run-now", data={"robot": "example", "tenant": "0000", "csrf_token": csrf}
            )
            assert response.status_code == 303
            run_id = int(response.headers["location"].rsplit("/", 1)[1])
            foreign = await client.post("/ops/run-now", data={"robot": "example", "tenant": "9999", "csrf_token": csrf})
            assert foreign.status_code == 404
        with lite.db.session() as s:
            run = s.get(Run, run_id)
        assert run is not None and run.status == RunStatus.queued and run.trigger == "manual"

    async def test_change_a_schedule_report_a_broken_file_and_start_a_dry_run(
        self, lite: WebEnv, tmp_path: Path
    ) -> None:
        folder = tmp_path / "schedules"
        folder.mkdir()
        (folder / "example-night.toml").write_text("# kept comment\n" + SCHEDULE, encoding="utf-8")
        (folder / "broken.toml").write_text('robot = "example"\ncron = "nonsense"\n', encoding="utf-8")
        lite.settings.scheduler = lite.settings.scheduler.model_copy(update={"schedules_dir": folder})
        async with web_client(lite.app) as client:
            csrf = await login(client, "sara")
            page = (await client.get("/ops/schedules")).text
            # The broken file is reported in Swedish; the good schedule is still listed and editable.
            assert 'data-schedule-file="broken.toml"' in page and "Några schemafiler har fel" in page
            assert 'data-schedule="example-night"' in page and "Ändra schemat" in page
            form = {"cron": "0 2 * * 1-5", "window_end": "05:30", "calendar": "workdays", "csrf_token": csrf}
            response = await client.post("/ops/schedules/example-night/edit", data=form)
            assert response.status_code == 303
            text = (folder / "example-night.toml").read_text(encoding="utf-8")
            assert text.startswith("# kept comment") and 'cron = "0 2 * * 1-5"' in text and "enabled = false" in text
            bad = await client.post("/ops/schedules/example-night/edit", data={**form, "cron": "0 25 * * *"})
            assert bad.status_code == 303
            assert "Tiden (cron) är ogiltig" in (await client.get("/ops/schedules")).text
            assert 'cron = "0 2 * * 1-5"' in (folder / "example-night.toml").read_text(encoding="utf-8")
            no_csrf = await client.post("/ops/schedules/example-night/edit", data={**form, "csrf_token": "x"})
            assert no_csrf.status_code == 403
            response = await client.post(
                "/ops/run-now", data={"robot": "example", "tenant": "0000", "dry_run": "on", "csrf_token": csrf}
            )
            run_id = int(response.headers["location"].rsplit("/", 1)[1])
        with lite.db.session() as s:
            run = s.get(Run, run_id)
            assert run is not None and run.dry_run and run.status == RunStatus.queued
            changed = s.scalars(select(AuditEvent).where(AuditEvent.action == "schedule.changed")).all()
            queued = s.scalars(select(AuditEvent).where(AuditEvent.action == "run.queued")).all()
        [event] = changed
        assert event.actor == "user:sara" and event.tenant == "0000"
        assert event.details["changes"]["cron"] == ["30 1 * * *", "0 2 * * 1-5"]
        assert event.details["changes"]["enabled"] == [True, False]
        assert any(e.details.get("dry_run") and e.actor == "user:sara" for e in queued)


class Inbox:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=email.policy.default))
        )
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestAlerts:
    """Failed, missed, overrunning runs and exception-share jumps: shown and mailed once."""

    async def test_detect_show_and_mail(self, env: WebEnv) -> None:
        runs = env.app.state.kollega.runs
        failed = runs.create(robot="example", tenant="0000", trigger="schedule")
        assert failed is not None
        runs.finish(failed, RunStatus.failed, {}, error="collect failed: e-tjänsten svarar inte")
        runs.create(
            robot="example",
            tenant="0000",
            trigger="schedule",
            status=RunStatus.missed,
            schedule="example-night",
            slot="2026-11-22T01:30",
        )
        late = runs.create(
            robot="example",
            tenant="0000",
            trigger="schedule",
            schedule="example-night",
            slot="2026-11-23T01:30",
            deadline_at=env.clock.now(),
        )
        assert late is not None
        runs.start(late, "worker-1", 300)
        for _ in range(3):
            ok = runs.create(robot="example", tenant="0000", trigger="manual")
            assert ok is not None
            runs.finish(ok, RunStatus.succeeded, {"collected": 10, "done": 10})
        jump = runs.create(robot="example", tenant="0000", trigger="manual")
        assert jump is not None
        runs.finish(jump, RunStatus.attention, {"collected": 10, "done": 4, "failed_business": 6})
        other = runs.create(robot="example", tenant="9999", trigger="manual")
        assert other is not None
        runs.finish(other, RunStatus.failed, {}, error="boom")
        env.clock.advance(60)
        async with web_client(env.app) as client:
            csrf = await login(client, "sara")
            page = await client.get("/ops")
            kinds = re.findall(r'data-alert-kind="([a-z_]+)"', page.text)
            assert sorted(kinds) == ["exception_jump", "failed", "missed", "overrun"]
            assert "60% undantag" in page.text
            alert_id = (await client.get("/api/v1/ops/alerts")).json()[0]["id"]
            await client.post(f"/ops/alerts/{alert_id}/ack", data={"csrf_token": csrf})
            assert len((await client.get("/api/v1/ops/alerts")).json()) == 3
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
        controller.start()
        try:
            smtp = alerts.mail_settings(
                {
                    "mail": {
                        "host": "127.0.0.1",
                        "port": controller.port,
                        "security": "none",
                        "sender": "kollega@test.example",
                    }
                }
            )
            assert smtp is not None
            sent = await alerts.mail_new(env.db, smtp, env.clock.now(), "https://kollega.test")
            again = await alerts.mail_new(env.db, smtp, env.clock.now(), "https://kollega.test")
        finally:
            controller.stop()
        assert sent == 5 and again == 0  # four for 0000, one for 9999; each mailed once
        to = sorted(rcpt[0] for rcpt, _msg in inbox.messages)
        assert to == ["drift@andra.example"] + ["drift@test.example"] * 4
        body = inbox.messages[0][1].get_body(preferencelist=("plain",))
        assert body is not None and "https://kollega.test/ops" in body.get_content()
        with env.db.session() as s:
            assert all(a.mailed_at is not None for a in s.scalars(select(Alert)))


class TestMetrics:
    """/metrics in the Prometheus text format."""

    async def test_exposition(self, env: WebEnv) -> None:
        await seed(env)
        async with web_client(env.app) as client:
            response = await client.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert "# TYPE kollega_runs_total counter" in text
        assert 'kollega_runs_total{robot="example",status="succeeded",tenant="0000"} 1.0' in text
        assert 'kollega_work_items{robot="example",status="done",tenant="0000"} 14.0' in text
        assert 'kollega_review_queue_depth{queue="example.review",tenant="0000"} 7.0' in text
        assert 'kollega_review_queue_depth{queue="example.exceptions",tenant="0000"} 3.0' in text
        assert "kollega_run_last_duration_seconds{" in text

    async def test_token_protected(self, lite: WebEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from core.settings import SecretRef

        monkeypatch.setenv("KOLLEGA_TEST_METRICS", "s3cret")
        env = make_web_env(
            lite.db, tmp_path / "again", metrics_token=SecretRef(env="KOLLEGA_TEST_METRICS"), users=False
        )
        # From another machine (not in metrics_networks): the token is needed (issue 17).
        async with _client_from(env.app, "203.0.113.7") as client:
            assert (await client.get("/metrics")).status_code == 401
            assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
            ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200

    async def test_closed_by_default_except_to_this_machine(self, lite: WebEnv, tmp_path: Path) -> None:
        env = make_web_env(lite.db, tmp_path / "default", users=False)
        async with _client_from(env.app, "203.0.113.7") as client:
            assert (await client.get("/metrics")).status_code == 401
        async with _client_from(env.app, "127.0.0.1") as client:
            assert (await client.get("/metrics")).status_code == 200
        wider = make_web_env(lite.db, tmp_path / "wider", users=False, metrics_networks=["203.0.113.0/24"])
        async with _client_from(wider.app, "203.0.113.7") as client:
            assert (await client.get("/metrics")).status_code == 200
        async with _client_from(wider.app, "198.51.100.1") as client:
            assert (await client.get("/metrics")).status_code == 401


def _client_from(app: Any, host: str) -> httpx.AsyncClient:
    """An in-process client whose requests come from ``host``."""
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


def test_csrf_helper_finds_token() -> None:
    assert csrf_from('<input name="csrf_token" value="abc">') == "abc"


class TestProblemReportsFollowTheItem:
    """Retrying or cancelling a failed item takes its exception report out of the inbox."""

    async def test_retry_withdraws_the_open_exception_review(self, env: WebEnv) -> None:
        await seed(env)
        with env.db.session() as s:
            failed = s.scalar(select(WorkItem.id).where(WorkItem.status == ItemStatus.failed_business))
        assert open_problem_reviews(env, failed) == 1
        async with web_client(env.app) as client:
            csrf = await login(client, "sara")
            await client.post(f"/ops/items/{failed}/retry", data={"csrf_token": csrf})
        assert open_problem_reviews(env, failed) == 0
        with env.db.session() as s:
            review = s.scalars(select(ReviewItem).where(ReviewItem.work_item_id == failed)).one()
            assert (review.state, review.decided_by) == (ReviewState.withdrawn, "user:sara")
            assert "review.withdrawn" in list(s.scalars(select(AuditEvent.action)))

    async def test_cancel_withdraws_it_too_and_decision_reviews_are_left_alone(self, env: WebEnv) -> None:
        await seed(env)
        with env.db.session() as s:
            failed = s.scalar(select(WorkItem.id).where(WorkItem.status == ItemStatus.failed_business))
            decisions_before = s.scalar(
                select(func.count())
                .select_from(ReviewItem)
                .where(ReviewItem.kind == ReviewKind.decision, ReviewItem.state == ReviewState.open)
            )
        async with web_client(env.app) as client:
            csrf = await login(client, "sara")
            answer = await client.post(f"/api/v1/items/{failed}/cancel", headers={"X-CSRF-Token": csrf})
            assert answer.status_code == 200
        assert open_problem_reviews(env, failed) == 0
        with env.db.session() as s:
            decisions_after = s.scalar(
                select(func.count())
                .select_from(ReviewItem)
                .where(ReviewItem.kind == ReviewKind.decision, ReviewItem.state == ReviewState.open)
            )
        assert decisions_after == decisions_before


def open_problem_reviews(env: WebEnv, work_item_id: int) -> int:
    with env.db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(ReviewItem)
                .where(
                    ReviewItem.work_item_id == work_item_id,
                    ReviewItem.state == ReviewState.open,
                    ReviewItem.kind.in_([ReviewKind.exception, ReviewKind.uncertain]),
                )
            )
            or 0
        )


class TestLocalMonths:
    """Effects are counted per month in Swedish time: a night's work after midnight on the 1st is the new month's."""

    async def test_an_item_of_0030_on_the_first_counts_for_that_month(self, env: WebEnv) -> None:
        from datetime import UTC, datetime

        from core.web import dashboard

        await seed(env)
        with env.db.session() as s:
            ids = list(s.scalars(select(WorkItem.id).where(WorkItem.status == ItemStatus.done).order_by(WorkItem.id)))
            first, second = s.get(WorkItem, ids[0]), s.get(WorkItem, ids[1])
            assert first is not None and second is not None
            first.created_at = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 1 December 00:30 in Sweden
            second.created_at = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)  # 30 November 23:30 in Sweden
            for other in ids[2:]:
                row = s.get(WorkItem, other)
                assert row is not None
                row.created_at = datetime(2026, 10, 15, 12, tzinfo=UTC)
        env.clock.set(datetime(2026, 12, 10, 9, tzinfo=UTC))
        rows = dashboard.time_saved(env.app.state.kollega, {"0000"})
        by_month = {r.month: r.replaced_minutes for r in rows if r.robot == "example"}
        assert by_month["2026-12"] == 6.0 and by_month["2026-11"] == 6.0
