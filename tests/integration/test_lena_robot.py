"""Lena end to end against the sandbox over HTTP: plan, review, publish once, re-plan with the comment."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from connectors.http import DEFAULT_BREAKERS
from core import effects_report
from core.engine import RunSummary
from core.review import ReviewQueue
from core.settings import Settings, WorkerSettings
from core.storage.db import Database
from core.storage.models import AuditEvent, ItemStatus, ReviewItem, WorkItem
from core.testing import FakeClock, make_settings, run_robot, temporary_database
from robots.lena.check import check_plan
from robots.lena.homecare import to_problem
from robots.lena.report import plan_from_dict
from robots.lena.robot import LenaRobot
from sandbox.testing import running_sandbox

pytestmark = pytest.mark.timeout(180)

SMALL = {
    "applications": 0,
    "substitutes": 1,
    "open_shifts": 0,
    "employees": 0,
    "homecare_visits": 40,
    "homecare_staff": 8,
    "time_scale": 0,
}
DAY = date(2026, 11, 24)
TEMPLATES = Path(__file__).resolve().parents[2] / "robots" / "lena" / "templates"


class Office:
    """A sandbox municipality, a Kollega database and Lena."""

    def __init__(self, url: str, db: Database, app: Settings) -> None:
        self.url, self.db, self.app = url, db, app
        self.clock = FakeClock()  # 2026-11-23 02:00 in Sweden: Lena plans the 24th
        self.http = httpx.Client(base_url=url, timeout=30)

    def run(self) -> RunSummary:
        return run_robot(LenaRobot, db=self.db, clock=self.clock, app_settings=self.app).summary

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get(path, params=params).json()

    def reviews(self) -> list[ReviewItem]:
        with self.db.session() as s:
            return list(s.scalars(select(ReviewItem).where(ReviewItem.queue == "lena.plan").order_by(ReviewItem.id)))

    def items(self) -> list[WorkItem]:
        with self.db.session() as s:
            return list(s.scalars(select(WorkItem).where(WorkItem.robot == "lena")))

    def audit(self, action: str) -> list[AuditEvent]:
        with self.db.session() as s:
            return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))

    def decide(self, review_id: int, decision: str, comment: str | None = None) -> None:
        ReviewQueue(self.db, self.clock).decide(review_id, decision, actor="user:samordnare", comment=comment)

    def problem(self, group: str) -> Any:
        params = {"group": group, "date": DAY.isoformat()}
        return to_problem(
            DAY,
            self.get("/homecare/visits", **params)["items"],
            self.get("/homecare/staff", **params)["items"],
            self.get("/homecare/history", group=group)["items"],
        )


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    DEFAULT_BREAKERS.reset()
    with running_sandbox(seed=5, **SMALL) as url, temporary_database(tmp_path) as db:
        worker = WorkerSettings(
            concurrency=1,
            lease_seconds=120,
            item_timeout_seconds=60,
            max_attempts=3,
            backoff_base_seconds=1,
            backoff_cap_seconds=10,
            retry_wait_seconds=60,
        )
        app = make_settings(
            tmp_path,
            worker=worker,
            robots={"lena": {"time_limit_seconds": 3, "seed": 1}},
            connectors={"homecare": {"base_url": f"{url}/homecare"}},
        )
        o = Office(url, db, app)
        yield o
        o.http.close()
    DEFAULT_BREAKERS.reset()


def render(review: ReviewItem) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    context = {
        "id": review.id,
        "title": review.title,
        "summary": review.summary,
        "state": review.state.value,
        "kind": review.kind.value,
        "queue": review.queue,
        "created_at": review.created_at,
    }
    return env.get_template(LenaRobot.review_template).render(
        review=context, material=review.material, lang="sv", _=lambda s: s
    )


class TestPlanAndPublish:
    """A night's plan goes to the coordinator; approval publishes it once; a return re-plans."""

    def test_plan_review_publish(self, office: Office) -> None:
        summary = office.run()
        assert summary.counts["collected"] == 1 and summary.counts["needs_review"] == 1, summary
        [review] = office.reviews()
        m = review.material
        group = m["group"]
        assert review.title.startswith("Hemtjänstplan") and m["date"] == DAY.isoformat()
        problem = office.problem(group)
        plan = plan_from_dict(m["plan"])
        assert check_plan(problem, plan) == []
        assert len(plan.assignments()) + len(plan.unassigned) == len(problem.visits) == 40
        view = m["view"]
        assert view["totals"]["continuity_mean_baseline"] is not None
        assert view["totals"]["continuity_mean"] <= view["totals"]["continuity_mean_baseline"]
        assert {d["id"] for d in view["staff"]} == {s.id for s in problem.staff}
        assert office.audit("lena.data_read")

        html = render(review)
        assert "Personalens dagar" in html and "Kontinuitet per brukare" in html and "<button" not in html
        assert "Personalkontinuitet (Kolada)" in html and "Personalkontinuitet (Lenas mått)" in html
        assert problem.staff[0].id in html
        # Figures read as Swedish: a decimal comma, never a decimal point.
        mean = f"{view['totals']['continuity_mean']:.1f}".replace(".", ",")
        assert f"i snitt {mean} olika personal per brukare" in review.summary
        assert f"{mean} olika personal per brukare i snitt" in html
        assert not re.search(r"\d\.\d", review.summary)
        totals = view["totals"]
        assert review.summary.startswith(
            f"{totals['assigned']} av {totals['visits']} besök planerade, {totals['unassigned']} ej planerade; restid "
        )

        # Rerunning finds the same group-day: nothing new, no second review.
        assert office.run().counts["collected"] == 0
        assert len(office.reviews()) == 1

        office.decide(review.id, "approve")
        office.run()
        published = office.get("/homecare/plans", group=group, date=DAY.isoformat())
        assert published["idempotency_key"].endswith(f"review-{review.id}")
        assert len(published["assignments"]) == len(plan.assignments())
        assert {a["visit_id"]: a["staff_ids"] for a in published["assignments"]} == {
            v: [s for s, _, _ in rows] for v, rows in plan.assignments().items()
        }
        [event] = office.audit("lena.plan_published")
        assert event.details["plan_id"] == published["plan_id"]
        assert [i.status for i in office.items()] == [ItemStatus.done]

        # The effects ledger's facts travel with the plan: Kolada's continuity for Lena's plan and the system's,
        # over 14 days with history of every group, and no client or staff ids in the audit event.
        facts = event.details["effects"]
        assert facts == m["effects"] and facts["period_days"] == 14
        clients = office.get("/homecare/clients", group=group)["items"]
        counted = len(facts["kolada"]["counts"])
        assert counted > 0 and counted + sum(facts["kolada"]["excluded"].values()) == len(clients)
        assert facts["kolada_system"]["median"] is not None and facts["own_counts"]
        assert view["totals"]["kolada_median"] == facts["kolada"]["median"]
        assert not any(c["id"] in str(facts) for c in clients)
        # Reading the client records (age, absences) is an audited access per person.
        read = {e.subject for e in office.audit("data.read") if e.details.get("group") == group}
        assert read == {c["personnummer"] for c in clients}
        rep = effects_report.report(office.db, {"lena": LenaRobot}, office.app, "0000", "2026-11")
        values = rep.robots[0].measured.values
        assert values["kolada_continuity"] == facts["kolada"]["median"]
        assert values["unassigned_visits"] == len(plan.unassigned)
        assert rep.robots[0].measured.outcomes == {"plan_published": 1}

        office.run()  # the decision is carried out once
        assert office.get("/admin/state/homecare")["plans_published"] == 1

    def test_returned_plan_is_replanned_with_the_comment(self, office: Office) -> None:
        office.run()
        [first] = office.reviews()
        plan = plan_from_dict(first.material["plan"])
        problem = office.problem(first.material["group"])
        # Lock a planned single visit to someone qualified who does not have it now, at its window start.
        target = next(
            v
            for v in problem.visits
            if v.staff_count == 1 and v.locked is None and v.id in plan.assignments() and v.earliest >= 9 * 60
        )
        current = plan.assignments()[target.id][0][0]
        other = next(
            s
            for s in problem.staff
            if s.id != current
            and target.competences <= s.competences
            and s.shift_start + 30 <= target.earliest
            and target.earliest + 60 <= s.shift_end
        )
        start = f"{target.earliest // 60:02d}:{target.earliest % 60:02d}"
        office.decide(first.id, "return", comment=f"lås {target.id} {other.id} {start}\nfrånvarande {current}")
        summary = office.run()
        assert summary.counts["needs_review"] == 1, summary
        second = office.reviews()[-1]
        assert second.id != first.id and second.material["replanned_with_comment"]
        again = plan_from_dict(second.material["plan"])
        rows = again.assignments().get(target.id)
        reason = next((u.reason for u in again.unassigned if u.visit_id == target.id), None)
        assert rows == [(other.id, target.earliest, 0)] or reason is not None
        assert again.route(current) is None  # absent: no day planned for them
        assert office.audit("lena.replan_requested")
