"""The inbox: scoping by tenant and queue, ordering and counts, decisions, four-eyes, access log, robot templates."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from core.queue import WorkQueue
from core.review import create_review
from core.robot import NewItem
from core.storage.db import Database
from core.storage.models import AuditEvent, ReviewItem, ReviewKind, ReviewState
from core.storage.web_models import ReviewTiming
from core.testing import ExampleRobot, temporary_database
from core.testing.web import WebEnv, csrf_from, login, make_web_env, web_client
from core.transitions import RetryPolicy

PNR = "191212121212"  # Skatteverket's best-known test personnummer
PNR_PATTERN = re.compile(r"(19|20)?\d{6}[-+]?\d{4}")


def add_review(
    env: WebEnv,
    *,
    tenant: str = "0000",
    queue: str = "example.review",
    title: str = "Ärende",
    minutes_ago: int = 0,
    due_in_hours: float | None = None,
    four_eyes: bool = False,
    kind: ReviewKind = ReviewKind.decision,
    subject: str | None = PNR,
) -> int:
    """A review item created ``minutes_ago`` before the clock's now."""
    now = env.clock.now() - timedelta(minutes=minutes_ago)
    with env.db.session() as s:
        row = create_review(
            s,
            tenant=tenant,
            robot="example",
            work_item_id=None,
            queue=queue,
            kind=kind,
            title=title,
            summary="Förslag",
            material={"personnummer": subject, "belopp": 1234, "rader": ["a", "b"]},
            subject=subject,
            actor="robot:example",
            now=now,
            due_at=now + timedelta(hours=due_in_hours) if due_in_hours is not None else None,
            four_eyes=four_eyes,
        )
        return row.id


def item_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-item-id="(\d+)"', html)]


def version_of(html: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match, "no decision form"
    return match.group(1)


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    """The app on the backend under test (SQLite and PostgreSQL)."""
    return make_web_env(db, tmp_path)


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[WebEnv]:
    """The app on SQLite only."""
    with temporary_database(tmp_path) as database:
        yield make_web_env(database, tmp_path)


class TestInbox:
    """Queues with counts and deadlines; items with the deadline first, then the oldest."""

    async def test_ordering_counts_and_filters(self, env: WebEnv) -> None:
        newest = add_review(env, title="Nyast", minutes_ago=1)
        oldest = add_review(env, title="Äldst", minutes_ago=90)
        middle = add_review(env, title="Mitten", minutes_ago=30)
        due = add_review(env, title="Bråttom", minutes_ago=5, due_in_hours=2)
        late = add_review(env, title="Försenad", minutes_ago=200, due_in_hours=1)
        exc = add_review(env, queue="example.exceptions", kind=ReviewKind.exception, minutes_ago=500)
        add_review(env, tenant="9999", title="Annan kommun", minutes_ago=999)
        add_review(env, queue="other.review", title="Annan kö", minutes_ago=999)
        async with web_client(env.app) as client:
            await login(client, "anna")
            page = await client.get("/inbox")
            assert page.status_code == 200
            assert item_ids(page.text) == [late, due, exc, oldest, middle, newest]
            assert 'data-queue-count="example.review">5<' in page.text
            assert 'data-queue-count="example.exceptions">1<' in page.text
            assert "Annan kommun" not in page.text and "Annan kö" not in page.text
            assert "(försenad)" in page.text
            only = await client.get("/inbox", params={"queue": "example.exceptions"})
            assert item_ids(only.text) == [exc]
            overdue = await client.get("/inbox", params={"overdue": "true"})
            assert item_ids(overdue.text) == [late]
            api = await client.get("/api/v1/inbox/queues")
            counts = {q["queue"]: (q["open"], q["overdue"]) for q in api.json()}
            assert counts == {"example.review": (5, 1), "example.exceptions": (1, 0)}

    async def test_counts_are_kept_a_few_seconds_and_exact_where_the_first_page_holds_the_queue(
        self, env: WebEnv
    ) -> None:
        """The queue counts are kept per set of grants for ``[web] inbox_cache_seconds`` in each process; a list
        that fits on its first page recounts its queues from what it shows; the API always counts afresh."""
        from core.web.inbox import PAGE_SIZE

        for n in range(PAGE_SIZE + 2):
            add_review(env, title=f"Ärende {n}", minutes_ago=1000 - n)
        add_review(env, queue="example.exceptions", kind=ReviewKind.exception, minutes_ago=10)
        async with web_client(env.app) as anna, web_client(env.app) as bertil, web_client(env.app) as karin:
            await login(anna, "anna")
            await login(bertil, "bertil")
            await login(karin, "karin")
            page = (await anna.get("/inbox")).text
            assert f'data-queue-count="example.review">{PAGE_SIZE + 2}<' in page
            assert 'data-queue-count="example.exceptions">1<' in page
            assert 'data-queue-count="example.review">0<' in (await karin.get("/inbox")).text  # her own count

            add_review(env, title="Ny", minutes_ago=0)
            late = add_review(env, queue="example.exceptions", kind=ReviewKind.exception, due_in_hours=-1)
            page = (await anna.get("/inbox")).text  # a full first page: the kept counts
            assert f'data-queue-count="example.review">{PAGE_SIZE + 2}<' in page
            assert 'data-queue-count="example.exceptions">1<' in page
            # Bertil's grants are another set: his count is his own, read now.
            assert f'data-queue-count="example.review">{PAGE_SIZE + 3}<' in (await bertil.get("/inbox")).text
            only = (await anna.get("/inbox", params={"queue": "example.exceptions", "tenant": "0000"})).text
            assert item_ids(only) == [late, item_ids(only)[1]] and len(item_ids(only)) == 2
            assert 'data-queue-count="example.exceptions">2<' in only  # recounted from the list
            assert '<span class="muted">(2)</span>' in only
            api = await anna.get("/api/v1/inbox/queues")
            counts = {q["queue"]: (q["open"], q["overdue"]) for q in api.json()}
            assert counts == {"example.review": (PAGE_SIZE + 3, 0), "example.exceptions": (2, 1)}

            env.clock.advance(env.app.state.kollega.web.inbox_cache_seconds)
            page = (await anna.get("/inbox")).text
            assert f'data-queue-count="example.review">{PAGE_SIZE + 3}<' in page
            assert 'data-queue-count="example.exceptions">2<' in page

    async def test_a_long_queue_is_listed_a_page_at_a_time_with_its_total(self, env: WebEnv) -> None:
        from core.web.inbox import PAGE_SIZE

        ids = [add_review(env, title=f"Ärende {n}", minutes_ago=1000 - n) for n in range(PAGE_SIZE + 3)]
        late = add_review(env, title="Försenad", minutes_ago=1, due_in_hours=-1)
        async with web_client(env.app) as client:
            await login(client, "anna")
            first = await client.get("/inbox", params={"queue": "example.review"})
            # The overdue one first, then the oldest; the heading counts every open item, not the page.
            assert item_ids(first.text) == [late, *ids[: PAGE_SIZE - 1]]
            assert f"({PAGE_SIZE + 4})" in first.text
            assert f"Visar 1–{PAGE_SIZE} av {PAGE_SIZE + 4}." in first.text
            link = re.search(r'<a href="([^"]+)" rel="next">Nästa sida</a>', first.text)
            assert link, "no link to the next page"
            second = await client.get(link.group(1).replace("&amp;", "&"))
            assert item_ids(second.text) == ids[PAGE_SIZE - 1 :]
            assert 'rel="next"' not in second.text and 'rel="prev"' in second.text
            beyond = await client.get("/inbox", params={"queue": "example.review", "page": 9})
            assert item_ids(beyond.text) == [] and "Till första sidan" in beyond.text
            assert (await client.get("/inbox", params={"page": 0})).status_code == 422

    async def test_coordinator_sees_every_queue_of_the_tenant(self, lite: WebEnv) -> None:
        other = add_review(lite, queue="other.review")
        async with web_client(lite.app) as client:
            await login(client, "erik")
            assert other in item_ids((await client.get("/inbox")).text)

    async def test_other_tenant_gets_404_and_no_access_is_logged(self, env: WebEnv) -> None:
        mine = add_review(env)
        theirs = add_review(env, tenant="9999")
        async with web_client(env.app) as client:
            await login(client, "karin")
            assert item_ids((await client.get("/inbox")).text) == [theirs]
            for url in (f"/inbox/items/{mine}", f"/api/v1/reviews/{mine}"):
                response = await client.get(url)
                assert response.status_code == 404, url
            assert (await client.get("/inbox/items/999999")).status_code == 404
        with env.db.session() as s:
            opened = s.scalars(select(AuditEvent).where(AuditEvent.action == "review.opened")).all()
        assert [e.details["review_id"] for e in opened] == []

    async def test_roles_without_inbox_are_forbidden(self, lite: WebEnv) -> None:
        async with web_client(lite.app) as client:
            await login(client, "maria")
            assert (await client.get("/inbox")).status_code == 403
            assert (await client.get("/ops")).status_code == 403


class Labelled(ExampleRobot):
    """A robot that names its review queue for people."""

    queue_labels = {"example.review": "fakturor att granska"}
    messages = {"en": {"fakturor att granska": "invoices to check"}}


class TestQueueLabels:
    """Case workers see "Exempelroboten: fakturor att granska", not the queue's technical name."""

    def test_a_robot_with_broken_texts_does_not_load(self) -> None:
        class Broken(ExampleRobot):
            queue_labels = {"example.review": ""}
            messages = {"sv": {"x": "y"}, "english": {"x": "y"}, "en": {"x": ""}}

        problems = "; ".join(Broken.validate_class())
        assert "queue_labels must map queue names to non-empty Swedish texts" in problems
        assert "messages['sv'] is not needed" in problems
        assert "'english', which is not a two-letter language code" in problems
        assert "messages['en'] must map Swedish texts to non-empty translations" in problems

    async def test_queues_are_shown_by_the_robot_and_its_label(self, lite: WebEnv, tmp_path: Path) -> None:
        env = make_web_env(lite.db, tmp_path / "labelled", robots={"example": Labelled}, users=False)
        item = add_review(env, title="Ansökan")
        add_review(env, queue="example.exceptions", kind=ReviewKind.exception, title="Undantaget")
        add_review(env, queue="other.review", title="Annan robot")  # no such robot: its name as it is
        async with web_client(env.app) as client:
            csrf = await login(client, "erik")
            page = (await client.get("/inbox")).text
            assert ">Exempelroboten: fakturor att granska</a>" in page
            assert ">Exempelroboten: undantag</a>" in page
            assert ">other.review</a>" in page
            assert "<td>Exempelroboten: fakturor att granska <span" in page
            assert 'value="example.review"' in page  # the filter still sends the queue's name
            opened = (await client.get(f"/inbox/items/{item}")).text
            assert '<p class="meta">Exempelroboten: fakturor att granska · 0000 · Beslut' in opened
            await client.post("/lang", data={"lang": "en", "next": "/inbox", "csrf_token": csrf})
            english = (await client.get("/inbox")).text
            # The plugin's own English: nothing in the web app's table knows this text.
            assert ">Exempelroboten: invoices to check</a>" in english and ">Exempelroboten: exceptions</a>" in english


class TestItemPage:
    """Opening an item is an audited access; the material is rendered."""

    async def test_opening_writes_an_access_event(self, env: WebEnv) -> None:
        review_id = add_review(env)
        async with web_client(env.app) as client:
            await login(client, "anna")
            page = await client.get(f"/inbox/items/{review_id}")
            assert page.status_code == 200
            assert "1234" in page.text and "Förslag" in page.text
        with env.db.session() as s:
            event = s.scalar(select(AuditEvent).where(AuditEvent.action == "review.opened"))
            timing = s.scalar(select(ReviewTiming))
        assert event is not None and event.actor == "user:anna" and event.subject == PNR
        assert event.details["review_id"] == review_id and event.time == env.clock.now()
        assert timing is not None and timing.opened_at == env.clock.now()

    async def test_a_municipality_names_its_own_robot(self, lite: WebEnv) -> None:
        """`display_name` in [tenants.robots.<name>] is what that municipality's case workers see."""
        review_id = add_review(lite)
        async with web_client(lite.app) as client:
            await login(client, "anna")
            before = (await client.get(f"/inbox/items/{review_id}")).text
            assert "Exempelroboten" in before
            lite.settings.tenants[0].robots["example"] = {"display_name": "Ekonomiroboten"}
            after = (await client.get(f"/inbox/items/{review_id}")).text
        assert "Ekonomiroboten" in after and "Exempelroboten" not in after

    async def test_robot_template_is_rendered(self, lite: WebEnv, tmp_path: Path) -> None:
        package = tmp_path / "templated_robot"
        (package / "templates").mkdir(parents=True)
        (package / "templates" / "review.html").write_text(
            '<div class="robot-view"><h3>{{ _("Underlag") }} #{{ review.id }}</h3>'
            "<p>Belopp: {{ material.belopp }} kr</p><p>{{ review.kind }} {{ lang }}</p>"
            "<p>{{ material.personnummer }}</p></div>",
            encoding="utf-8",
        )
        (package / "robot.py").write_text(
            "from core.testing import ExampleRobot\n\n\nclass TemplatedRobot(ExampleRobot):\n"
            "    name = 'example'\n    review_template = 'review.html'\n",
            encoding="utf-8",
        )
        spec = importlib.util.spec_from_file_location("templated_robot_mod", package / "robot.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["templated_robot_mod"] = module
        spec.loader.exec_module(module)
        lite.app.state.kollega.registry.robots["example"] = module.TemplatedRobot
        decision = add_review(lite)
        exception = add_review(lite, queue="example.exceptions", kind=ReviewKind.exception)
        async with web_client(lite.app) as client:
            await login(client, "anna")
            page = await client.get(f"/inbox/items/{decision}")
            assert '<div class="robot-view">' in page.text and "Belopp: 1234 kr" in page.text
            assert f"Underlag #{decision}" in page.text and "decision sv" in page.text
            generic = await client.get(f"/inbox/items/{exception}")
            assert "robot-view" not in generic.text and '<dl class="material">' in generic.text


class TestDecisions:
    """Approve, reject, return; four-eyes; a clear message when someone else decided first."""

    async def test_approve_goes_to_the_next_item_and_measures_review_time(self, env: WebEnv) -> None:
        first = add_review(env, minutes_ago=20)
        second = add_review(env, minutes_ago=10)
        async with web_client(env.app) as client:
            csrf = await login(client, "anna")
            page = await client.get(f"/inbox/items/{first}")
            env.clock.advance(95)
            response = await client.post(
                f"/inbox/items/{first}/decide",
                data={"decision": "approve", "version": version_of(page.text), "csrf_token": csrf},
            )
            assert response.status_code == 303 and response.headers["location"] == f"/inbox/items/{second}"
            following = await client.get(response.headers["location"])
            assert "Beslut registrerat: Godkänd." in following.text
            assert item_ids((await client.get("/inbox")).text) == [second]
        with env.db.session() as s:
            row = s.get(ReviewItem, first)
            timing = s.scalar(select(ReviewTiming).where(ReviewTiming.review_id == first))
        assert row is not None and row.state == ReviewState.approved and row.decided_by == "user:anna"
        assert timing is not None and timing.seconds == 95

    async def test_review_time_is_whole_seconds_from_the_first_opening(self, env: WebEnv) -> None:
        """Reopening does not restart it; part of a second is not counted; one not opened here records none."""
        opened, unopened = add_review(env, minutes_ago=20), add_review(env, minutes_ago=10)
        async with web_client(env.app) as client:
            csrf = await login(client, "anna")
            page = await client.get(f"/inbox/items/{opened}")
            env.clock.advance(100.6)
            again = await client.get(f"/inbox/items/{opened}")
            env.clock.advance(25)
            for review_id, text in ((opened, again.text), (unopened, page.text)):
                version = version_of(text) if review_id == opened else "1"
                response = await client.post(
                    f"/inbox/items/{review_id}/decide",
                    data={"decision": "approve", "version": version, "csrf_token": csrf},
                )
                assert response.status_code == 303
        with env.db.session() as s:
            timings = {t.review_id: t.seconds for t in s.scalars(select(ReviewTiming))}
        assert timings == {opened: 125}

    async def test_someone_else_decided_first(self, env: WebEnv) -> None:
        review_id = add_review(env)
        async with web_client(env.app) as anna, web_client(env.app) as bertil:
            anna_csrf = await login(anna, "anna")
            bertil_csrf = await login(bertil, "bertil")
            anna_page = await anna.get(f"/inbox/items/{review_id}")
            bertil_page = await bertil.get(f"/inbox/items/{review_id}")
            ok = await anna.post(
                f"/inbox/items/{review_id}/decide",
                data={"decision": "approve", "version": version_of(anna_page.text), "csrf_token": anna_csrf},
            )
            assert ok.status_code == 303
            late = await bertil.post(
                f"/inbox/items/{review_id}/decide",
                data={
                    "decision": "reject",
                    "comment": "Nej",
                    "version": version_of(bertil_page.text),
                    "csrf_token": bertil_csrf,
                },
            )
            assert late.status_code == 409
            assert "anna har redan fattat beslut i ärendet (godkänd" in late.text
            assert "Ditt beslut sparades inte." in late.text
            assert 'name="version"' not in late.text  # no decision form on a decided item
        with env.db.session() as s:
            row = s.get(ReviewItem, review_id)
        assert row is not None and row.state == ReviewState.approved

    async def test_changed_while_reading(self, lite: WebEnv) -> None:
        review_id = add_review(lite)
        async with web_client(lite.app) as client:
            csrf = await login(client, "anna")
            page = await client.get(f"/inbox/items/{review_id}")
            lite.app.state.kollega.reviews.assign(review_id, "user:bertil", actor="user:erik")
            response = await client.post(
                f"/inbox/items/{review_id}/decide",
                data={"decision": "approve", "version": version_of(page.text), "csrf_token": csrf},
            )
            assert response.status_code == 409 and "Ärendet ändrades medan du läste det" in response.text

    async def test_four_eyes(self, env: WebEnv) -> None:
        review_id = add_review(env, four_eyes=True)
        async with web_client(env.app) as anna, web_client(env.app) as bertil:
            csrf = await login(anna, "anna")
            page = await anna.get(f"/inbox/items/{review_id}")
            assert "ska godkännas av två olika personer" in page.text
            first = await anna.post(
                f"/inbox/items/{review_id}/decide",
                data={"decision": "approve", "version": version_of(page.text), "csrf_token": csrf},
            )
            assert first.status_code == 303
            again_page = await anna.get(f"/inbox/items/{review_id}")
            assert "Ditt godkännande är registrerat" in again_page.text
            again = await anna.post(
                f"/inbox/items/{review_id}/decide",
                data={"decision": "approve", "version": version_of(again_page.text), "csrf_token": csrf},
            )
            assert again.status_code == 409 and "fyraögonsprincipen" in again.text
            b_csrf = await login(bertil, "bertil")
            b_page = await bertil.get(f"/inbox/items/{review_id}")
            assert "första godkännandet gjordes av anna" in b_page.text
            second = await bertil.post(
                f"/inbox/items/{review_id}/decide",
                data={"decision": "approve", "version": version_of(b_page.text), "csrf_token": b_csrf},
            )
            assert second.status_code == 303
        with env.db.session() as s:
            row = s.get(ReviewItem, review_id)
        assert row is not None and row.state == ReviewState.approved and row.first_approver == "user:anna"
        assert row.decided_by == "user:bertil"

    async def test_reject_needs_a_comment_and_return_records_it(self, lite: WebEnv) -> None:
        review_id = add_review(lite)
        async with web_client(lite.app) as client:
            csrf = await login(client, "anna")
            page = await client.get(f"/inbox/items/{review_id}")
            bare = await client.post(
                f"/inbox/items/{review_id}/decide",
                data={"decision": "reject", "version": version_of(page.text), "csrf_token": csrf},
            )
            assert bare.status_code == 422 and "Skriv en kommentar" in bare.text
            returned = await client.post(
                f"/inbox/items/{review_id}/decide",
                data={
                    "decision": "return",
                    "comment": "Komplettera med hyresavtal",
                    "version": version_of(page.text),
                    "csrf_token": csrf,
                },
            )
            assert returned.status_code == 303
        with lite.db.session() as s:
            row = s.get(ReviewItem, review_id)
        assert row is not None and row.state == ReviewState.returned
        assert row.decision_comment == "Komplettera med hyresavtal"

    async def test_api_decision_conflict(self, lite: WebEnv) -> None:
        review_id = add_review(lite)
        async with web_client(lite.app) as client:
            csrf = await login(client, "anna")
            item = (await client.get(f"/api/v1/reviews/{review_id}")).json()
            assert item["material"]["belopp"] == 1234
            headers = {"X-CSRF-Token": csrf}
            ok = await client.post(
                f"/api/v1/reviews/{review_id}/decision",
                json={"decision": "approve", "version": item["version"]},
                headers=headers,
            )
            assert ok.status_code == 200 and ok.json()["review"]["state"] == "approved"
            late = await client.post(
                f"/api/v1/reviews/{review_id}/decision",
                json={"decision": "approve", "version": item["version"]},
                headers=headers,
            )
            assert late.status_code == 409 and "redan fattat beslut" in late.json()["message"]


class TestNoPersonalDataInUrls:
    """No URL a page produces, and no redirect, carries a personnummer."""

    async def test_crawl(self, lite: WebEnv) -> None:
        from core.testing import run_robot

        await asyncio.to_thread(
            run_robot, ExampleRobot, db=lite.db, tmp_path=lite.settings.var_dir.parent, clock=lite.clock
        )
        for minutes in (1, 2, 3):
            add_review(lite, minutes_ago=minutes, due_in_hours=5)
        seen: set[str] = set()
        for user in ("anna", "erik", "sara", "johan", "maria"):
            async with web_client(lite.app) as client:
                csrf = await login(client, user)
                queue = ["/", "/inbox", "/ops", "/audit", "/me"]
                visited: set[str] = set()
                while queue and len(visited) < 40:
                    url = queue.pop(0)
                    if url in visited:
                        continue
                    visited.add(url)
                    response = await client.get(url)
                    seen.add(url)
                    if response.status_code in (301, 302, 303, 307):
                        queue.append(response.headers["location"])
                        continue
                    for link in re.findall(r'(?:href|action|src|formaction)="([^"]+)"', response.text):
                        seen.add(link)
                        parsed = urlsplit(link.replace("&amp;", "&"))
                        if (
                            not parsed.netloc
                            and parsed.path.startswith("/")
                            and "/static/" not in parsed.path
                            and "logout" not in parsed.path
                            and "/artifacts/" not in parsed.path
                        ):
                            queue.append(link.replace("&amp;", "&"))
                if user == "maria":
                    result = await client.post("/audit/search", data={"personnummer": PNR, "csrf_token": csrf})
                    assert PNR in result.text  # shown on the page, never in its address
                    assert str(result.url) == "https://testserver/audit/search"
        assert any("/inbox/items/" in u for u in seen) and any("/ops/runs/" in u for u in seen)
        offenders = [u for u in seen if PNR_PATTERN.search(u.replace("/ops/runs/", "").replace("/ops/items/", ""))]
        assert not offenders, offenders


async def test_a_problem_report_reads_in_swedish_without_raw_keys(lite: WebEnv) -> None:
    """A failed item reads as the case worker's Swedish: the robot's words for bad data, general
    words for a technical failure; error codes and English messages are folded away for IT."""
    queue = WorkQueue(lite.db, clock=lite.clock)
    queue.enqueue("example", "0000", [NewItem(reference="A-1", payload={}), NewItem(reference="A-2", payload={})])
    business, technical = queue.claim("example", "0000", "w", limit=2)
    queue.fail_business(business, code="amount_missing", message="Beloppet saknas i ansökan", actor="robot:example")
    queue.fail_application(
        technical,
        code="unavailable",
        message="eservice: connection refused",
        actor="robot:example",
        policy=RetryPolicy(max_attempts=1),
    )
    with lite.db.session() as s:
        ids = dict(s.execute(select(ReviewItem.material["reference"].as_string(), ReviewItem.id)).tuples().all())
    async with web_client(lite.app) as client:
        await login(client, "anna")
        page = (await client.get(f"/inbox/items/{ids['A-1']}")).text
        main, technical_info = page.split("<details", 1)[0], page.split("<details", 1)[1]
        assert "Beloppet saknas i ansökan" in main and "<dt>Referens</dt><dd>A-1</dd>" in main
        assert "Returnera till roboten, så gör roboten ett nytt försök" in main
        assert "amount_missing" not in main and "amount_missing" in technical_info
        for raw in ("<dt>reference</dt>", "<dt>error_code</dt>", "<dt>error</dt>", "<dt>error_kind</dt>", "business"):
            assert raw not in main
        page = (await client.get(f"/inbox/items/{ids['A-2']}")).text
        main = page.split("<details", 1)[0]
        assert "Tekniskt fel efter 1 försök" in main and "IT kan behöva åtgärda felet" in main
        assert "connection refused" not in main and "unavailable" not in main
        assert '<dd lang="en">eservice: connection refused</dd>' in page  # for IT, marked as English
        # In English, the page's own words are English; the robot's words stay as written.
        await client.post("/lang", data={"lang": "en", "next": "/inbox", "csrf_token": csrf_from(page)})
        page = (await client.get(f"/inbox/items/{ids['A-1']}")).text
        assert "Technical information (for IT support)" in page and "choose Return to the robot" in page


async def test_a_robot_template_that_renders_problem_reports_is_used_for_them(lite: WebEnv, tmp_path: Path) -> None:
    """HaRry says in the case worker's words what failed and what to do; a robot that does not
    declare the kind (the example robot) keeps the generic view."""
    from robots.harry.robot import Harry

    env = make_web_env(lite.db, tmp_path / "harry", robots={"harry": Harry}, users=False)
    material = {
        "reference": "E10034/2027-01/v2",
        "error_code": "schedule_refused",
        "error": "PersonalLön sparade inte schemat: 2027-01-27: sluttiden är densamma som starttiden.",
    }
    ids = []
    with env.db.session() as s:
        for kind in (ReviewKind.exception, ReviewKind.uncertain):
            row = create_review(
                s,
                tenant="0000",
                robot="harry",
                work_item_id=None,
                queue="harry.exceptions",
                kind=kind,
                title="Schemat kunde inte registreras",
                summary=material["error"],
                material=material,
                subject=None,
                actor="robot:harry",
                now=env.clock.now(),
            )
            ids.append(row.id)
    exception, uncertain = ids
    async with web_client(env.app) as client:
        await login(client, "erik")
        page = (await client.get(f"/inbox/items/{exception}")).text
        assert "Schemat kunde inte registreras" in page and "sluttiden är densamma som starttiden" in page
        assert "Skicka tillbaka</strong> när orsaken är åtgärdad" in page
        assert "schedule_refused" not in page and "<dt>Felkod</dt>" not in page
        page = (await client.get(f"/inbox/items/{uncertain}")).text
        assert "Osäkert om schemat blev sparat" in page and "HaRry skriver aldrig in det igen" in page
    assert Harry.review_template_kinds == {"decision", "exception", "uncertain"}
    assert ExampleRobot.review_template_kinds == {"decision"}


async def test_the_pages_run_on_as_many_threads_as_the_pools_hold(lite: WebEnv, tmp_path: Path) -> None:
    """``[web] request_threads`` limits the synchronous routes' threads while the app runs, then is given back."""
    import anyio.to_thread

    env = make_web_env(lite.db, tmp_path / "threads", users=False, request_threads=3)

    @env.app.get("/threads-now")
    async def threads_now() -> dict[str, float]:
        return {"tokens": anyio.to_thread.current_default_thread_limiter().total_tokens}

    before = anyio.to_thread.current_default_thread_limiter().total_tokens
    async with env.app.router.lifespan_context(env.app), web_client(env.app) as client:
        assert (await client.get("/threads-now")).json() == {"tokens": 3}
    assert anyio.to_thread.current_default_thread_limiter().total_tokens == before


class TestItemPageReads:
    """The item page's four reads after the opening, in one statement, give what the single reads give."""

    def test_one_statement_gives_the_comments_colleagues_next_item_and_recent_decisions(self, env: WebEnv) -> None:
        from core.web import decisions, inbox, itempage
        from core.web.auth import Grant, Principal, Role

        ctx = env.app.state.kollega
        anna = Principal(
            env.users["anna"],
            "anna",
            "Anna",
            frozenset({Grant(Role.case_worker, "0000", "example.review")}),
        )
        erik = Principal(env.users["erik"], "erik", "Erik", frozenset({Grant(Role.coordinator, "0000")}))
        shown = add_review(env, title="Visas", minutes_ago=50)
        following = add_review(env, title="Nästa", minutes_ago=40)
        add_review(env, title="Senare", minutes_ago=10)
        add_review(env, tenant="9999", title="Annan kommun", minutes_ago=999)
        add_review(env, queue="other.review", title="Annan kö", minutes_ago=999)
        decided = [add_review(env, title=f"Beslutat {n}", minutes_ago=60 + n) for n in range(5)]
        for n, review_id in enumerate(decided):
            env.clock.advance(60)
            ctx.reviews.decide(review_id, "approve" if n % 2 else "reject", actor=anna.actor, comment=f"skäl {n}")
        ctx.reviews.comment(shown, "Första", actor="user:bertil")
        env.clock.advance(5)
        ctx.reviews.comment(shown, "Andra", actor="user:erik")
        row = ctx.reviews.get(shown)

        def single(p: Principal, review: Any, with_colleagues: bool) -> itempage.ItemReads:
            with ctx.db.read_connection() as conn:
                return itempage.ItemReads(
                    comments=inbox.comments(ctx, review.id, conn),
                    colleagues=inbox.colleagues(ctx, p, review, conn) if with_colleagues else [],
                    next_id=inbox.next_item_id(ctx, p, review.queue, review.tenant, exclude=review.id, conn=conn),
                    recent=decisions.recent_decisions(ctx, p, exclude=review.id, conn=conn),
                )

        def together(p: Principal, review: Any, with_colleagues: bool) -> itempage.ItemReads:
            with ctx.db.read_connection() as conn:
                return itempage.item_reads(ctx, p, review, with_colleagues=with_colleagues, conn=conn)

        for p, with_colleagues in ((anna, True), (anna, False), (erik, True)):
            one, four = together(p, row, with_colleagues), single(p, row, with_colleagues)
            assert [tuple(c._mapping.values()) for c in four.comments] == [
                (c.id, c.author, c.text, c.created_at) for c in one.comments
            ]
            assert [c.text for c in one.comments] == ["Första", "Andra"]
            assert one.colleagues == four.colleagues
            assert one.next_id == four.next_id == following
            assert [tuple(getattr(r, name) for name in itempage.RECENT_SHOWN) for r in four.recent] == [
                tuple(getattr(r, name) for name in itempage.RECENT_SHOWN) for r in one.recent
            ]
        assert [c.actor for c in together(anna, row, True).colleagues] == ["user:bertil", "user:erik"]
        assert [c.actor for c in together(erik, row, True).colleagues] == ["user:anna", "user:bertil"]
        assert together(anna, row, False).colleagues == []
        # The three newest decisions of the last hour, newest first; an item opened among them is left out.
        assert [r.id for r in together(anna, row, True).recent] == decided[::-1][:3]
        assert [r.id for r in together(erik, row, True).recent] == []
        opened_decided = ctx.reviews.get(decided[-1])
        assert [r.id for r in together(anna, opened_decided, True).recent] == decided[::-1][1:4]
        # No comments, no colleagues to show, no next item: every part empty, as the single reads.
        env.clock.advance(3600)
        last = ctx.reviews.get(add_review(env, queue="example.exceptions", kind=ReviewKind.exception))
        for p in (anna, erik):
            one, four = together(p, last, True), single(p, last, True)
            assert (
                (one.comments, one.next_id, one.recent) == ([], None, []) == (four.comments, four.next_id, four.recent)
            )
            assert one.colleagues == four.colleagues
