"""What became of a decision: the item page, "Mina beslut", polling, "Försök igen", alerts, dashboard, metrics."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.review import create_review
from core.storage.db import Database
from core.storage.models import AuditEvent, CallbackStatus, ReviewItem, ReviewKind, ReviewState
from core.storage.web_models import Alert
from core.testing import FakeClock
from core.testing.web import WebEnv, login, make_web_env, web_client
from core.web import alerts
from core.web.decisions import working_minutes
from core.web.settings import AlertSettings

PNR = "191212121212"
MONDAY_MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 in Stockholm


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    """The app on the backend under test, on a Monday morning."""
    return make_web_env(db, tmp_path, clock=FakeClock(MONDAY_MORNING))


def add_review(env: WebEnv, title: str = "Pass 12 december", tenant: str = "0000") -> int:
    with env.db.session() as s:
        return create_review(
            s,
            tenant=tenant,
            robot="example",
            work_item_id=None,
            queue="example.review",
            kind=ReviewKind.decision,
            title=title,
            summary="Förslag",
            material={"belopp": 1},
            subject=PNR,
            actor="robot:example",
            now=env.clock.now(),
        ).id


def claim(env: WebEnv):  # type: ignore[no-untyped-def]
    [view] = env.app.state.kollega.reviews.claim_callbacks("example", "0000", lease_seconds=60)
    return view


def status_box(html: str, review_id: int) -> str:
    match = re.search(rf'<div class="decision-status[^"]*" data-decision-status="{review_id}".*?</div>', html, re.S)
    assert match, f"no status of {review_id} on the page"
    return match.group(0)


class TestWhatBecameOfADecision:
    """väntar → utförs → utfört, on the item page, beside the next item, under Mina beslut and by polling."""

    async def test_waiting_running_done_with_what_was_done(self, env: WebEnv) -> None:
        first, second = add_review(env, "Pass 12 december"), add_review(env, "Pass 13 december")
        reviews = env.app.state.kollega.reviews
        async with web_client(env.app) as client:
            csrf = await login(client, "anna")
            page = await client.get(f"/inbox/items/{first}")
            version = re.search(r'name="version" value="(\d+)"', page.text)
            assert version
            answer = await client.post(
                f"/inbox/items/{first}/decide",
                data={"decision": "approve", "version": version.group(1), "csrf_token": csrf},
            )
            following = await client.get(answer.headers["location"])
            assert f"/inbox/items/{second}" == answer.headers["location"]
            box = status_box(following.text, first)  # beside the next item: "Dina senaste beslut"
            assert "väntar" in box and 'data-settled="false"' in box
            assert '<script src="/static/decisions.js" defer></script>' in following.text
            assert "script-src 'self'" in following.headers["content-security-policy"]

            view = claim(env)
            polled = await client.get("/inbox/decisions/status", params={"ids": f"{first},{second},99999"})
            assert polled.status_code == 200
            states = {d["id"]: d for d in polled.json()["decisions"]}
            assert set(states) == {first, second}  # an unknown id is left out, without a hint
            assert (states[first]["label"], states[first]["settled"]) == ("utförs", False)
            assert (states[second]["code"], states[second]["settled"]) == ("none", True)  # still open

            env.clock.advance(40)
            reviews.callback_done(view, actor="robot:example", summary="Bokad i bemanningssystemet", reference="B-9")
            [state] = (await client.get("/inbox/decisions/status", params={"ids": str(first)})).json()["decisions"]
            assert (state["label"], state["settled"], state["can_retry"]) == ("utfört", True, False)
            assert "Bokad i bemanningssystemet" in state["text"] and "B-9" in state["text"]
            assert "09:00" in state["text"]  # the local time it was done

            item = await client.get(f"/inbox/items/{first}")
            assert "utfört" in status_box(item.text, first) and "Bokad i bemanningssystemet" in item.text
            inbox = await client.get("/inbox")
            assert "Mina beslut" in inbox.text and "utfört" in status_box(inbox.text, first)

        async with web_client(env.app) as client:  # someone else's decision is not in "Mina beslut"
            await login(client, "bertil")
            inbox = await client.get("/inbox")
            assert f'data-decision-status="{first}"' not in inbox.text

        async with web_client(env.app) as client:  # another municipality's case worker sees nothing
            await login(client, "karin")
            polled = await client.get("/inbox/decisions/status", params={"ids": str(first)})
            assert polled.json()["decisions"] == []

    async def test_a_failure_goes_back_to_the_decider_who_can_try_again(self, env: WebEnv) -> None:
        review_id = add_review(env)
        reviews = env.app.state.kollega.reviews
        reviews.decide(review_id, "approve", actor="user:anna")
        view = claim(env)
        reviews.callback_failed(
            view,
            "ApplicationError: HTTP 503 from /staffing/api/bookings",
            max_attempts=0,
            base_seconds=1,
            cap_seconds=1,
            actor="robot:example",
            message="Vikarien är redan bokad på ett annat pass samma tid.",
        )
        async with web_client(env.app) as client:
            csrf = await login(client, "anna")
            inbox = await client.get("/inbox")
            box = status_box(inbox.text, review_id)
            assert "misslyckades" in box and "Vikarien är redan bokad" in box
            assert "för hand" in box and "Försök igen" in box and "/staffing/api" not in inbox.text
            assert "behöver din uppmärksamhet" in inbox.text
            with env.db.session() as s:
                exception = s.scalar(select(ReviewItem).where(ReviewItem.kind == ReviewKind.exception))
            assert exception is not None and exception.assignee == "user:anna"

            answer = await client.post(f"/inbox/items/{review_id}/retry-decision", data={"csrf_token": csrf})
            assert answer.status_code == 303
            page = await client.get(answer.headers["location"])
            assert "Roboten försöker genomföra beslutet igen." in page.text
            assert "väntar" in status_box(page.text, review_id)
        with env.db.session() as s:
            row = s.get(ReviewItem, review_id)
            withdrawn = s.get(ReviewItem, exception.id)
            retried = s.scalar(select(AuditEvent).where(AuditEvent.action == "review.carry_out_retried"))
        assert row is not None and row.callback_status == CallbackStatus.pending
        assert withdrawn is not None and withdrawn.state == ReviewState.withdrawn
        assert retried is not None and retried.actor == "user:anna"

    async def test_a_decision_waiting_too_long_is_marked_alerted_and_counted(self, env: WebEnv) -> None:
        review_id = add_review(env)
        env.app.state.kollega.reviews.decide(review_id, "approve", actor="user:anna")
        ctx = env.app.state.kollega
        assert alerts.detect(env.db, ctx.web.alerts, env.clock.now(), ctx.zone) == 0
        env.clock.advance(16 * 60)
        assert alerts.detect(env.db, ctx.web.alerts, env.clock.now(), ctx.zone) == 1
        assert alerts.detect(env.db, ctx.web.alerts, env.clock.now(), ctx.zone) == 0  # once
        with env.db.session() as s:
            [alert] = s.scalars(select(Alert)).all()
        assert alert.kind == "decision_late" and PNR not in alert.message and str(review_id) in alert.message
        async with web_client(env.app) as client:
            await login(client, "anna")
            inbox = await client.get("/inbox")
            box = status_box(inbox.text, review_id)
            assert "väntar" in box and "försenat" in box and "behöver din uppmärksamhet" in inbox.text
        async with web_client(env.app) as client:
            await login(client, "sara")
            ops = await client.get("/ops")
            row = re.search(
                r'<tr data-robot="example" data-tenant="0000">.*?</tr>', ops.text.split("waiting-decisions")[1], re.S
            )
            assert row, "no waiting decisions row"
            assert 'data-col="waiting">1<' in row.group(0) and "16 min sedan" in row.group(0)
            assert "Beslut dröjer" in ops.text
            metrics = (await client.get("/metrics")).text
        assert 'kollega_decisions_waiting{robot="example",tenant="0000"} 1.0' in metrics
        assert 'kollega_decisions_waiting_oldest_age_seconds{robot="example",tenant="0000"} 960.0' in metrics


def mine(html: str) -> set[int]:
    """The review ids listed under "Mina beslut" on an inbox page."""
    section = html.split('id="mina-beslut"', 1)[1]
    return {int(i) for i in re.findall(r'<tr data-review-id="(\d+)"', section)}


async def decide_on_page(client: object, review_id: int, csrf: str) -> None:
    page = await client.get(f"/inbox/items/{review_id}")  # type: ignore[attr-defined]
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version
    answer = await client.post(  # type: ignore[attr-defined]
        f"/inbox/items/{review_id}/decide",
        data={"decision": "approve", "version": version.group(1), "csrf_token": csrf},
    )
    assert answer.status_code == 303


class TestMyDecisionsKept:
    """ "Mina beslut" is kept a few seconds per person and process, yet one's own decisions show at once."""

    async def test_my_own_decision_shows_at_once_wherever_it_was_made(self, env: WebEnv) -> None:
        here, there, later = add_review(env, "Här"), add_review(env, "Där"), add_review(env, "Sedan")
        reviews = env.app.state.kollega.reviews
        async with web_client(env.app) as client:
            csrf = await login(client, "anna")
            assert mine((await client.get("/inbox")).text) == set()  # read, and kept
            await decide_on_page(client, here, csrf)
            assert mine((await client.get("/inbox")).text) == {here}  # decided on this process's page
            # Decided elsewhere (the other worker process, the API on another server): the kept
            # entry no longer matches the newest decisions, so the view reads afresh.
            reviews.decide(there, "approve", actor="user:anna")
            assert mine((await client.get("/inbox")).text) == {here, there}
        async with web_client(env.app) as client:
            csrf = await login(client, "anna")
            assert mine((await client.get("/inbox")).text) == {here, there}
            # One elsewhere and then one here, before the next view: both are shown.
            env.clock.advance(1)
            third = add_review(env, "Tredje")
            reviews.decide(third, "approve", actor="user:anna")
            env.clock.advance(1)
            await decide_on_page(client, later, csrf)
            assert mine((await client.get("/inbox")).text) == {here, there, third, later}

    async def test_nobody_else_sees_my_kept_decisions(self, env: WebEnv) -> None:
        ours, theirs = add_review(env, "Vår kommun"), add_review(env, "Andra kommunen", tenant="9999")
        async with web_client(env.app) as anna, web_client(env.app) as bertil, web_client(env.app) as karin:
            anna_csrf, karin_csrf = await login(anna, "anna"), await login(karin, "karin")
            await login(bertil, "bertil")
            for client in (anna, bertil, karin):  # each one's "Mina beslut" read and kept
                assert mine((await client.get("/inbox")).text) == set()
            await decide_on_page(anna, ours, anna_csrf)
            await decide_on_page(karin, theirs, karin_csrf)
            assert mine((await anna.get("/inbox")).text) == {ours}
            assert mine((await bertil.get("/inbox")).text) == set()  # the same queue, another person
            assert mine((await karin.get("/inbox")).text) == {theirs}  # another municipality
            assert f'data-decision-status="{ours}"' not in (await karin.get("/inbox")).text

    async def test_what_the_robot_did_shows_once_the_kept_entry_is_past_its_seconds(self, env: WebEnv) -> None:
        review_id = add_review(env)
        reviews = env.app.state.kollega.reviews
        reviews.decide(review_id, "approve", actor="user:anna")
        async with web_client(env.app) as client:
            await login(client, "anna")
            assert "väntar" in status_box((await client.get("/inbox")).text, review_id)
            reviews.callback_done(claim(env), actor="robot:example", summary="Bokad", reference="B-1")
            # The status polled shows it at once; the page's list within the kept seconds may not.
            [state] = (await client.get("/inbox/decisions/status", params={"ids": str(review_id)})).json()["decisions"]
            assert state["label"] == "utfört"
            env.clock.advance(env.app.state.kollega.web.inbox_cache_seconds)
            assert "utfört" in status_box((await client.get("/inbox")).text, review_id)

    async def test_a_kept_list_is_not_read_again_after_my_decision_here(self, db: Database, tmp_path: Path) -> None:
        """With the list kept, the view after a decision on this process reads less than with it off."""
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        statements: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        sent = {}
        for seconds in (5, 0):  # the same database and users, an app with the list kept and one without
            env = make_web_env(
                db,
                tmp_path / str(seconds),
                clock=FakeClock(MONDAY_MORNING),
                users=seconds == 5,
                inbox_cache_seconds=seconds,
            )
            first, second = add_review(env, "Ett"), add_review(env, "Två")
            async with web_client(env.app) as client:
                csrf = await login(client, "anna")
                await client.get("/inbox")
                await decide_on_page(client, first, csrf)
                await client.get("/inbox")  # takes the decision's one-time message
                await decide_on_page(client, second, csrf)
                event.listen(Engine, "before_cursor_execute", count)
                try:
                    page = await client.get("/inbox")
                finally:
                    event.remove(Engine, "before_cursor_execute", count)
            assert {first, second} <= mine(page.text)
            sent[seconds], statements[:] = len(statements), []
        assert sent[5] < sent[0]

    async def test_off_reads_on_every_view(self, db: Database, tmp_path: Path) -> None:
        env = make_web_env(db, tmp_path, clock=FakeClock(MONDAY_MORNING), inbox_cache_seconds=0)
        assert env.app.state.kollega.my_decisions is None
        review_id = add_review(env)
        reviews = env.app.state.kollega.reviews
        reviews.decide(review_id, "approve", actor="user:anna")
        async with web_client(env.app) as client:
            await login(client, "anna")
            assert "väntar" in status_box((await client.get("/inbox")).text, review_id)
            reviews.callback_done(claim(env), actor="robot:example", summary="Bokad", reference="B-1")
            assert "utfört" in status_box((await client.get("/inbox")).text, review_id)


def test_waiting_counts_working_hours_only() -> None:
    cfg = AlertSettings()
    friday = datetime(2026, 11, 27, 15, 55, tzinfo=UTC)  # 16:55 in Stockholm
    monday = datetime(2026, 11, 30, 6, 10, tzinfo=UTC)  # 07:10
    assert working_minutes(friday, monday, "Europe/Stockholm", cfg) == pytest.approx(15)
    night = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    assert working_minutes(night, night.replace(hour=4), "Europe/Stockholm", cfg) == 0
    # Public holidays are not working days either: Christmas Eve 2026 is a Thursday, and
    # Juldagen (Friday) and Annandag jul are public holidays; the decision waits until Monday.
    thursday = datetime(2026, 12, 24, 16, 55, tzinfo=ZoneInfo("Europe/Stockholm"))
    monday_after = datetime(2026, 12, 28, 7, 10, tzinfo=ZoneInfo("Europe/Stockholm"))
    assert working_minutes(thursday, monday_after, "Europe/Stockholm", cfg) == pytest.approx(15)


def test_late_is_more_than_the_limit_in_working_minutes_whatever_the_wall_clock() -> None:
    """A decision is late exactly when its working minutes exceed the limit, decided at any time of the week."""
    from datetime import timedelta
    from types import SimpleNamespace

    from core.web.decisions import is_late

    cfg = AlertSettings(decision_wait_minutes=15)
    now = datetime(2026, 12, 7, 9, 10, tzinfo=UTC)  # a Monday morning
    for minutes_ago in [*range(0, 40), *range(60, 60 * 24 * 4, 7)]:
        decided = now - timedelta(minutes=minutes_ago, seconds=30)
        row = SimpleNamespace(callback_status=CallbackStatus.pending, decided_at=decided)
        expected = working_minutes(decided, now, "Europe/Stockholm", cfg) > 15
        assert is_late(row, now, "Europe/Stockholm", cfg) is expected, minutes_ago
    done = SimpleNamespace(callback_status=CallbackStatus.done, decided_at=now - timedelta(days=2))
    assert not is_late(done, now, "Europe/Stockholm", cfg)
