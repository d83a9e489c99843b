"""Nothing leaves the inbox unseen: overdue items stay, marked and first; lapsed ones show why; hand-over and reassignment.

Issue 21, point 1: an overdue item is never closed unseen; a robot's lapse is shown with its
reason; a case worker hands an item to a colleague with the same grant, a coordinator
reassigns; the dashboard shows each queue's backlog; the escalation is mailed to coordinators.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.review import ReviewQueue
from core.runs import SqlRunStore
from core.storage.db import Database
from core.storage.models import AuditEvent, ReviewState
from core.storage.web_models import Alert, Role, User
from core.testing import temporary_database
from core.testing.web import WebEnv, login, make_web_env, web_client
from core.web import alerts
from core.web.auth import Grant, create_user
from tests.integration.test_alert_mail import Inbox, smtp_inbox  # noqa: F401 - the fixture
from tests.integration.test_web_inbox import add_review, item_ids


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[WebEnv]:
    """The app on SQLite."""
    with temporary_database(tmp_path) as database:
        yield make_web_env(database, tmp_path)


def reviews(env: WebEnv) -> ReviewQueue:
    return ReviewQueue(env.db, env.clock)


def sweep(env: WebEnv) -> None:
    alerts.sweep_reviews(env.db, env.settings, env.registry, reviews(env), env.clock)


def audit_actions(db: Database) -> list[tuple[str, str, dict[str, object]]]:
    with db.session() as s:
        return [(e.action, e.actor, e.details) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]


class TestOverdue:
    """Past its deadline an item stays open, marked Försenad, first in the list, escalated once."""

    async def test_an_overdue_item_stays_first_and_is_escalated_to_the_dashboard(self, lite: WebEnv) -> None:
        older = add_review(lite, title="Äldre utan deadline", minutes_ago=600)
        soon = add_review(lite, title="Snart", minutes_ago=10, due_in_hours=3)
        late = add_review(lite, title="Sent", minutes_ago=5, due_in_hours=1)
        lite.clock.advance(2 * 3600)  # `late` is an hour past its deadline, `soon` not yet
        sweep(lite)
        row = reviews(lite).get(late)
        assert row.state == ReviewState.open and row.overdue_at is not None and row.escalated_at is not None
        async with web_client(lite.app) as client:
            await login(client, "anna")
            page = await client.get("/inbox")
            assert item_ids(page.text) == [late, soon, older]
            assert f'data-overdue="{late}"' in page.text and f'data-overdue="{soon}"' not in page.text
            assert "samordnaren är underrättad" in page.text
            item = await client.get(f"/inbox/items/{late}")
            assert 'id="overdue-notice"' in item.text and "Ärendet ligger kvar tills någon beslutar" in item.text
            client.cookies.clear()
            await login(client, "sara")  # operations
            ops = await client.get("/ops")
            assert 'data-alert-kind="review_overdue"' in ops.text and f"Ärende {late}" in ops.text
            assert 'data-queue="example.review"' in ops.text
            assert re.search(r'data-col="open">3<', ops.text) and re.search(
                r'data-col="overdue"><strong[^>]*>1<', ops.text
            )
        with lite.db.session() as s:
            assert [a.key for a in s.scalars(select(Alert))] == [f"review_overdue:{late}"]
        sweep(lite)  # once: no second alert, no second audit event
        events = [a for a, _actor, _d in audit_actions(lite.db)]
        assert events.count("review.overdue") == 1 and events.count("review.escalated") == 1

    async def test_a_queue_whose_oldest_item_is_too_old_alerts(self, lite: WebEnv) -> None:
        lite.settings.review.queue_oldest_open_alert_hours["example.review"] = 1
        oldest = add_review(lite, minutes_ago=61)
        add_review(lite, minutes_ago=1)
        sweep(lite)
        with lite.db.session() as s:
            [alert] = s.scalars(select(Alert)).all()
        assert alert.kind == "queue_age" and alert.key == f"queue_age:0000:example.review:{oldest}"
        assert "191212" not in alert.message  # which queue and item, never whom
        assert alerts.alert_queue(lite.db, alert) == "example.review"  # whose coordinators are mailed


class TestLapsed:
    """An item its robot closed as lapsed is listed with the reason and can no longer be decided."""

    async def test_the_reason_is_shown(self, lite: WebEnv) -> None:
        gone = add_review(lite, title="Passet i morse")
        assert reviews(lite).lapse(gone, "Passet började 07:00 och kan inte längre tillsättas.", actor="robot:example")
        async with web_client(lite.app) as client:
            await login(client, "anna")
            page = await client.get("/inbox")
            assert gone not in item_ids(page.text)
            assert f'data-lapsed-reason="{gone}">Passet började 07:00' in page.text
            item = await client.get(f"/inbox/items/{gone}")
            assert 'id="lapsed-notice"' in item.text and "Passet började 07:00" in item.text
            assert 'id="decide-form"' not in item.text

    async def test_kept_a_few_seconds_per_set_of_grants(self, lite: WebEnv) -> None:
        """The list of lapsed items is kept ``[web] inbox_cache_seconds``; one lapsed since shows after that."""
        first, second = add_review(lite, title="Passet i morse"), add_review(lite, title="Passet i kväll")
        assert reviews(lite).lapse(first, "Passet började 07:00.", actor="robot:example")
        async with web_client(lite.app) as anna, web_client(lite.app) as karin:
            await login(anna, "anna")
            await login(karin, "karin")
            assert f'data-lapsed-reason="{first}"' in (await anna.get("/inbox")).text
            assert 'id="inaktuella"' not in (await karin.get("/inbox")).text  # another municipality's grants
            assert reviews(lite).lapse(second, "Passet är tillsatt.", actor="robot:example")
            assert f'data-lapsed-reason="{second}"' not in (await anna.get("/inbox")).text  # kept
            lite.clock.advance(lite.app.state.kollega.web.inbox_cache_seconds)
            page = (await anna.get("/inbox")).text
            assert f'data-lapsed-reason="{second}"' in page and f'data-lapsed-reason="{first}"' in page


class TestHandOver:
    """A case worker hands an item to a colleague with the same grant; a coordinator reassigns; both audited."""

    async def test_a_case_worker_hands_over_to_a_colleague_in_the_queue(self, lite: WebEnv) -> None:
        review_id = add_review(lite)
        async with web_client(lite.app) as client:
            csrf = await login(client, "anna")
            page = await client.get(f"/inbox/items/{review_id}")
            options = re.findall(r'<option value="(user:\w+)"', page.text)
            assert options == ["user:bertil", "user:erik"]  # her queue's case worker and the coordinator
            refused = await client.post(
                f"/inbox/items/{review_id}/hand-over", data={"csrf_token": csrf, "to": "user:karin"}
            )  # a case worker of another municipality
            assert refused.status_code == 422 and "Välj en kollega som får besluta" in refused.text
            assert reviews(lite).get(review_id).assignee is None
            done = await client.post(
                f"/inbox/items/{review_id}/hand-over",
                data={"csrf_token": csrf, "to": "user:bertil", "comment": "Jag är på kurs i morgon"},
            )
            assert done.status_code == 303
        row = reviews(lite).get(review_id)
        assert row.assignee == "user:bertil"
        [event] = [(a, actor, d) for a, actor, d in audit_actions(lite.db) if a == "review.handed_over"]
        assert event[1] == "user:anna" and event[2]["to"] == "user:bertil" and event[2]["from"] is None
        assert [c.text for c in reviews(lite).comments(review_id)] == ["Jag är på kurs i morgon"]

    async def test_only_a_coordinator_reassigns_someone_elses_item(self, lite: WebEnv) -> None:
        review_id = add_review(lite)
        reviews(lite).assign(review_id, "user:anna", actor="user:anna")
        async with web_client(lite.app) as client:
            csrf = await login(client, "bertil")
            page = await client.get(f"/inbox/items/{review_id}")
            assert 'id="handover-form"' not in page.text
            refused = await client.post(
                f"/inbox/items/{review_id}/hand-over", data={"csrf_token": csrf, "to": "user:bertil"}
            )
            assert refused.status_code == 403
            client.cookies.clear()
            csrf = await login(client, "erik")
            done = await client.post(
                f"/inbox/items/{review_id}/hand-over", data={"csrf_token": csrf, "to": "user:bertil"}
            )
            assert done.status_code == 303
        assert reviews(lite).get(review_id).assignee == "user:bertil"
        [event] = [(actor, d) for a, actor, d in audit_actions(lite.db) if a == "review.handed_over"]
        assert event == (
            "user:erik",
            {"review_id": review_id, "queue": "example.review", "from": "user:anna", "to": "user:bertil"},
        )


async def test_the_escalation_is_mailed_to_ops_and_the_coordinators(
    lite: WebEnv,
    smtp_inbox: tuple[alerts.AlertMailSettings, Inbox],  # noqa: F811 - the imported fixture
) -> None:
    smtp, mailbox = smtp_inbox
    SqlRunStore(lite.db, lite.clock).ensure_tenant("0000", "Testkommun", "drift@test.example")
    with lite.db.session() as s:
        s.execute(update(User).where(User.username == "erik").values(email="erik@test.example"))
        s.execute(update(User).where(User.username == "anna").values(email="anna@test.example"))
    # A coordinator of another queue only: not this queue's coordinator, so not mailed.
    create_user(lite.db, "lisa", email="lisa@test.example", grants=[Grant(Role.coordinator, "0000", "other.review")])
    late = add_review(lite, due_in_hours=1)
    lite.clock.advance(2 * 3600)
    sweep(lite)
    assert await alerts.mail_new(lite.db, smtp, lite.clock.now(), "https://kollega.test") == 1
    [(rcpt, msg)] = mailbox.messages
    assert sorted(rcpt) == ["drift@test.example", "erik@test.example"]  # the queue's coordinator, no case worker
    assert "försenat ärende" in str(msg["Subject"])
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None and f"Ärende {late}" in body.get_content() and "/inbox" in body.get_content()
    assert "191212" not in body.get_content()


async def test_the_api_shows_overdue_and_hands_over(lite: WebEnv) -> None:
    late = add_review(lite, due_in_hours=1)
    fresh = add_review(lite, due_in_hours=5)
    lite.clock.advance(2 * 3600)
    async with web_client(lite.app) as client:
        csrf = await login(client, "anna")
        listed = {r["id"]: r["overdue"] for r in (await client.get("/api/v1/reviews")).json()}
        assert listed == {late: True, fresh: False}
        headers = {"X-CSRF-Token": csrf}
        refused = await client.post(
            f"/api/v1/reviews/{late}/hand-over", json={"to": "user:sara"}, headers=headers
        )  # operations may not decide in the queue
        assert refused.status_code == 422 and "Välj en kollega" in refused.json()["message"]
        done = await client.post(
            f"/api/v1/reviews/{late}/hand-over",
            json={"to": "user:erik", "comment": "Till samordnaren"},
            headers=headers,
        )
        assert done.status_code == 200 and done.json()["review"]["assignee"] == "user:erik"
