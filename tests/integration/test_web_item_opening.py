"""Opening an item under load: the access event in the chain, review time, the one-time message, headers.

The item page writes its access event in one statement on PostgreSQL (the hash computed in
the database) and the review timing in one more; these tests hold what that must keep.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from core import audit
from core.storage.db import Database
from core.storage.models import AuditEvent, AuditHead
from core.storage.web_models import ReviewTiming
from core.testing.web import WebEnv, login, make_web_env, web_client
from tests.integration.test_web_inbox import PNR, add_review

VERSION = re.compile(r'name="version" value="(\d+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    """The app on the backend under test (SQLite and PostgreSQL)."""
    return make_web_env(db, tmp_path)


def opened_events(db: Database) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "review.opened").order_by(AuditEvent.seq)))


class TestAccessEventOfAnOpening:
    """Every opening is a `review.opened` event of the right person and municipality, linked into the chain."""

    async def test_each_opening_is_an_event_in_the_verified_chain(self, env: WebEnv) -> None:
        db = env.db
        mine = add_review(env)
        async with web_client(env.app) as anna, web_client(env.app) as bertil:
            await login(anna, "anna")
            await login(bertil, "bertil")
            for client in (anna, bertil, anna):
                assert (await client.get(f"/inbox/items/{mine}")).status_code == 200
        events = opened_events(db)
        assert [(e.actor, e.tenant, e.subject, e.purpose) for e in events] == [
            ("user:anna", "0000", PNR, "handläggning"),
            ("user:bertil", "0000", PNR, "handläggning"),
            ("user:anna", "0000", PNR, "handläggning"),
        ]
        assert all(e.details == {"review_id": mine, "queue": "example.review"} for e in events)
        with db.session() as s:
            result = audit.verify(s)
            head = s.get(AuditHead, 1)
        assert result.ok, result.problem
        assert head is not None and (head.seq, head.hash) == (result.last_seq, result.last_hash)
        # Each event links to the one before it, whoever wrote that one.
        with db.session() as s:
            for e in events:
                before = s.get(AuditEvent, e.seq - 1)
                assert before is not None and e.prev_hash == before.hash

    async def test_concurrent_openings_never_fork_the_chain(self, env: WebEnv) -> None:
        db = env.db
        items = [add_review(env, title=f"Ärende {i}") for i in range(6)]
        async with web_client(env.app) as anna, web_client(env.app) as bertil:
            await login(anna, "anna")
            await login(bertil, "bertil")
            pages = await asyncio.gather(*(client.get(f"/inbox/items/{i}") for i in items for client in (anna, bertil)))
        assert [p.status_code for p in pages] == [200] * 12
        events = opened_events(db)
        assert sorted((e.actor, e.details["review_id"]) for e in events) == sorted(
            (actor, i) for i in items for actor in ("user:anna", "user:bertil")
        )
        with db.session() as s:
            result = audit.verify(s)
        assert result.ok, result.problem
        assert len({e.seq for e in events}) == 12

    async def test_an_item_of_another_queue_is_not_opened_nor_logged(self, env: WebEnv) -> None:
        hidden = add_review(env, queue="other.review")
        async with web_client(env.app) as client:
            await login(client, "bertil")
            assert (await client.get(f"/inbox/items/{hidden}")).status_code == 404
        assert opened_events(env.db) == []
        assert timings(env.db) == []


def timings(db: Database) -> list[ReviewTiming]:
    with db.session() as s:
        return list(s.scalars(select(ReviewTiming).order_by(ReviewTiming.id)))


class TestReviewTime:
    """Review time runs from a person's first opening to their decision, however often they reopen."""

    async def test_the_page_writes_its_access_event_and_the_review_times_start_together(self, env: WebEnv) -> None:
        review_id = add_review(env)
        async with web_client(env.app) as client:
            await login(client, "anna")
            assert (await client.get(f"/inbox/items/{review_id}")).status_code == 200
        [event] = opened_events(env.db)
        [timing] = timings(env.db)
        assert (timing.review_id, timing.actor, timing.tenant) == (review_id, "user:anna", "0000")
        assert (event.actor, event.time) == (timing.actor, timing.opened_at)

    async def test_reopening_keeps_the_first_opening_and_the_decision_ends_it(self, env: WebEnv) -> None:
        review_id = add_review(env)
        async with web_client(env.app) as client:
            await login(client, "anna")
            await client.get(f"/inbox/items/{review_id}")
            env.clock.advance(180)
            page = await client.get(f"/inbox/items/{review_id}")
            env.clock.advance(120)
            decided = await client.post(
                f"/inbox/items/{review_id}/decide",
                data={
                    "decision": "approve",
                    "version": VERSION.search(page.text).group(1),  # type: ignore[union-attr]
                    "csrf_token": CSRF.search(page.text).group(1),  # type: ignore[union-attr]
                },
            )
            assert decided.status_code == 303
        [timing] = timings(env.db)
        assert timing.actor == "user:anna" and timing.seconds == 300


class TestOneTimeMessage:
    """The message after a decision is shown on exactly one following page."""

    async def test_shown_once_even_to_pages_loaded_at_once(self, env: WebEnv) -> None:
        review_id = add_review(env)
        add_review(env, title="Nästa")
        async with web_client(env.app) as client:
            await login(client, "anna")
            page = await client.get(f"/inbox/items/{review_id}")
            await client.post(
                f"/inbox/items/{review_id}/decide",
                data={
                    "decision": "approve",
                    "version": VERSION.search(page.text).group(1),  # type: ignore[union-attr]
                    "csrf_token": CSRF.search(page.text).group(1),  # type: ignore[union-attr]
                },
            )
            pages = await asyncio.gather(*(client.get("/inbox") for _ in range(4)))
            later = await client.get("/inbox")
        shown = [p.text.count("Beslut registrerat") for p in pages]
        assert sorted(shown) == [0, 0, 0, 1]
        assert "Beslut registrerat" not in later.text


class TestSecurityHeaders:
    """Every response carries the security headers; only static files may be cached."""

    async def test_pages_errors_and_static_files(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            await login(client, "anna")
            responses = {
                "page": await client.get("/inbox"),
                "missing": await client.get("/inbox/items/999999"),
                "login": await client.get("/login"),
            }
            static = await client.get("/static/kollega.css")
        for name, response in {**responses, "static": static}.items():
            assert response.headers["X-Content-Type-Options"] == "nosniff", name
            assert response.headers["X-Frame-Options"] == "DENY", name
            assert response.headers["Referrer-Policy"] == "no-referrer", name
            assert "default-src" in response.headers["Content-Security-Policy"], name
        assert all(r.headers["Cache-Control"] == "no-store" for r in responses.values())
        assert static.status_code == 200 and static.headers.get("Cache-Control") != "no-store"
