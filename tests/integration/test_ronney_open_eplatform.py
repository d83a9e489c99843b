"""Ronney against the sandbox's e-service in both modes over real HTTP: the JSON API and Open ePlatform.

Open ePlatform: REST XML (getinstances by family and status, getinstance/{id}/xml,
getstatus, messages) and the SOAP callback (setStatus, addMessage, confirmDelivery), as
Sundsvall's integration calls them. The same month of applications is prepared the same
way in both modes; a decision is written back once; a malformed XML loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.http import DEFAULT_BREAKERS
from core.engine import Engine
from core.records import ReviewView
from core.registry import Registry
from core.review import ReviewQueue
from core.settings import Settings
from core.storage.db import Database
from core.storage.models import AuditEvent, ItemStatus, ReviewItem, WorkItem
from core.testing import FakeClock, make_settings, run_robot, temporary_database
from robots.ronney.robot import Ronney

sandbox_testing = pytest.importorskip("sandbox.testing")

SEED = 4
OPTIONS: dict[str, Any] = {
    "applications": 12,
    "tenant": "0000",
    "municipality": "Testkommun",
    "anomaly_rate": 0,
    "undeclared_income_rate": 0.3,
    "protected_identity_rate": 0,
}
CONFIRM = {"confirm_unverified_table": "1"}
#: Flags comparing with last month's decision: Open ePlatform holds the application, not the
#: case history, so a flow instance has no previous decision (robots/ronney/oep.py).
LAST_MONTH = {"no_previous_decision", "household_changed", "income_changed", "previous_rejected", "rent_changed"}
# The case history (återkrav, an advance on a benefit, pending benefits, last month's payment
# account, income types of the last decision) comes with the JSON e-service's application; an
# Open ePlatform form holds only what the applicant submitted, so these checks need the case
# system there (docs/robots/ronney.md, "Known limits").
HISTORY = {
    "recovery_claim",
    "previous_decision_advance",
    "pending_benefit",
    "child_part_time",
    "payment_account_changed",
    "income_type_missing",
    "income_dropped",
}
TIMEOUT = 60


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with sandbox_testing.running_sandbox(seed=SEED, **OPTIONS) as url:
        yield url


@pytest.fixture
def sandbox(sandbox_url: str) -> Iterator[str]:
    httpx.post(f"{sandbox_url}/admin/reset", json={"seed": SEED, "options": OPTIONS}, timeout=TIMEOUT)
    DEFAULT_BREAKERS.reset()
    yield sandbox_url
    DEFAULT_BREAKERS.reset()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with temporary_database(tmp_path) as database:
        yield database


def settings_for(tmp_path: Path, url: str, mode: str) -> Settings:
    eservice: dict[str, Any] = (
        {"api": "open_eplatform", "base_url": f"{url}/oep", "family_id": 4101}
        if mode == "open_eplatform"
        else {"api": "kollega_json", "base_url": f"{url}/eservice"}
    )
    return make_settings(
        tmp_path,
        robots={"ronney": {"pdf": False, "complement_reminder_days": 1}},
        connectors={"eservice": eservice, "registers": {"base_url": f"{url}/registers"}},
    )


def admin(url: str, path: str) -> Any:
    return httpx.get(f"{url}/admin/{path}", timeout=TIMEOUT).json()


def reviews(db: Database, queue: str = "ronney.application") -> list[ReviewItem]:
    with db.session() as s:
        return list(s.scalars(select(ReviewItem).where(ReviewItem.queue == queue).order_by(ReviewItem.id)).all())


def items(db: Database) -> list[WorkItem]:
    with db.session() as s:
        return list(s.scalars(select(WorkItem).order_by(WorkItem.id)).all())


def proposals(db: Database, names: dict[str, str] | None = None) -> dict[str, Any]:
    """Application (by its JSON id) → the proposed amount, the flags' codes and the calculation's lines."""
    out = {}
    for r in reviews(db):
        m = r.material
        key = (names or {}).get(m["application_id"], m["application_id"])
        lines = [(line["key"], line["amount"]) for line in (m["calculation"] or {}).get("lines", [])]
        codes = sorted(f["code"] for f in m["flags"] if f["code"] not in LAST_MONTH | HISTORY)
        out[key] = (m["proposal"]["amount"], codes, lines)
    return out


def test_the_same_month_is_prepared_the_same_in_both_modes(sandbox: str, tmp_path: Path) -> None:
    results = {}
    for mode in ("kollega_json", "open_eplatform"):
        httpx.post(f"{sandbox}/admin/reset", json={"seed": SEED, "options": OPTIONS}, timeout=TIMEOUT)
        DEFAULT_BREAKERS.reset()
        folder = tmp_path / mode
        folder.mkdir()
        with temporary_database(folder) as db:
            result = run_robot(Ronney, db=db, app_settings=settings_for(folder, sandbox, mode))
            names = admin(sandbox, "state/oep")["flow_instances"] if mode == "open_eplatform" else None
            results[mode] = (result, proposals(db, names), [i.status for i in items(db)])
            if mode == "open_eplatform":
                oep = admin(sandbox, "state/oep")
                # every flow instance prepared was confirmed delivered, naming Kollega's reference
                processed = {i.payload["application_id"]: i.reference for i in items(db) if "@" in i.reference}
                assert set(oep["deliveries"]) == set(processed)
                for number, deliveries in oep["deliveries"].items():
                    assert deliveries == [
                        {
                            "delivered": True,
                            "external_id": processed[number],
                            "system": "Kollega",
                            "log_message": "Mottagen av Kollega (Ronney) för beredning",
                        }
                    ]
                # the XML reads are in the access log under the applicant, with the purpose
                with db.session() as s:
                    reads = s.scalars(select(AuditEvent).where(AuditEvent.action == "data.read")).all()
                xml_reads = [e for e in reads if "/xml" in str((e.details or {}).get("path", ""))]
                assert xml_reads and all(e.subject and len(e.subject) == 12 and e.purpose for e in xml_reads)
    json_result, json_proposals, json_statuses = results["kollega_json"]
    oep_result, oep_proposals, oep_statuses = results["open_eplatform"]
    assert json_result.summary.counts["needs_review"] > 5
    assert oep_result.summary.counts["collected"] == json_result.summary.counts["collected"]
    assert sorted(oep_statuses) == sorted(json_statuses)
    assert oep_proposals == json_proposals  # amounts, flags and every line of the calculation


def _carry_out(db: Database, settings: Settings, clock: FakeClock, review_id: int, times: int) -> list[Any]:
    engine = Engine.from_database(db, settings, Registry(robots={"ronney": Ronney}), clock=clock)
    robot = engine.robot_instance("ronney")

    async def run() -> list[Any]:
        out: list[Any] = []
        ctx = engine.context(robot, "0000", None, dry_run=False)
        try:
            for _ in range(times):
                row = engine.reviews.get(review_id)  # type: ignore[attr-defined]
                try:
                    out.append(await robot.on_decision(ctx, ReviewView.from_row(row)))
                except Exception as exc:
                    out.append(exc)
        finally:
            await engine._close_resources(ctx)
        return out

    return asyncio.run(run())


def test_an_approved_decision_is_written_back_once_by_soap(sandbox: str, db: Database, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, sandbox, "open_eplatform")
    clock = FakeClock()
    run_robot(Ronney, db=db, app_settings=settings, clock=clock)
    review = next(
        r for r in reviews(db) if r.material["proposal"]["amount"] and r.material["proposal"]["decision"] == "approved"
    )
    number = review.material["application_id"]
    ReviewQueue(db, clock).decide(review.id, "approve", actor="user:anna", decision_data=CONFIRM)
    outcomes = _carry_out(db, settings, clock, review.id, times=2)
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    assert "kontrolläst" in outcomes[0].summary and outcomes[0].reference.startswith("OEP-M")
    oep = admin(sandbox, "state/oep")
    assert oep["statuses"] == {number: "Beviljad"}
    letters = oep["messages"][number]
    assert len(letters) == 1  # written once, the second carrying-out found it
    text = letters[0]["message"]
    amount = review.material["proposal"]["amount"]
    assert f"Belopp: {amount} kr" in text and f"Referens: ronney-0000-{number}-review-{review.id}" in text
    assert "Du beviljas" in text
    writes = admin(sandbox, "log?system=oep&action=message.added")["items"]
    assert len(writes) == 1
    # the flow instance is no longer among those waiting for Ronney
    waiting = httpx.get(f"{sandbox}/oep/api/instanceapi/getinstances/family/4101/Inskickat", timeout=TIMEOUT).text
    assert f"<flowInstanceID>{number}</flowInstanceID>" not in waiting


def test_a_rejection_sets_the_rejected_status(sandbox: str, db: Database, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, sandbox, "open_eplatform")
    clock = FakeClock()
    run_robot(Ronney, db=db, app_settings=settings, clock=clock)
    review = reviews(db)[0]
    ReviewQueue(db, clock).decide(review.id, "reject", actor="user:anna", comment="Inkomsterna täcker behovet.")
    [outcome] = _carry_out(db, settings, clock, review.id, times=1)
    assert not isinstance(outcome, Exception), outcome
    oep = admin(sandbox, "state/oep")
    number = review.material["application_id"]
    assert oep["statuses"][number] == "Avslagen"
    assert "Skäl: Inkomsterna täcker behovet." in oep["messages"][number][0]["message"]


def test_a_complement_is_requested_again_by_message(sandbox: str, db: Database, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, sandbox, "open_eplatform")
    clock = FakeClock()
    run_robot(Ronney, db=db, app_settings=settings, clock=clock)
    complements = reviews(db, "ronney.complement")
    if not complements:
        pytest.skip("this seed plants no overdue complement")
    review = complements[0]
    ReviewQueue(db, clock).decide(review.id, "approve", actor="user:anna")
    outcomes = _carry_out(db, settings, clock, review.id, times=2)
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    number = review.material["application_id"]
    oep = admin(sandbox, "state/oep")
    assert oep["statuses"][number] == "Väntar på komplettering"
    [message] = oep["messages"][number]  # once, though carried out twice
    assert message["message"].startswith("Begäran om komplettering:") and "Handläggare: anna" in message["message"]


def test_malformed_xml_is_a_clear_exception_and_nothing_is_lost(sandbox: str, db: Database, tmp_path: Path) -> None:
    numbers = sorted(admin(sandbox, "state/oep")["flow_instances"])
    broken = numbers[0]
    httpx.post(f"{sandbox}/admin/oep/instances/{broken}/malformed", timeout=TIMEOUT).raise_for_status()
    result = run_robot(Ronney, db=db, app_settings=settings_for(tmp_path, sandbox, "open_eplatform"))
    counts = result.summary.counts
    assert counts["collected"] == counts["needs_review"] + counts["failed_business"]
    assert counts["failed_application"] == counts["uncertain"] == 0
    by_app = {i.payload["application_id"]: i for i in items(db)}
    assert by_app[broken].status == ItemStatus.failed_business
    assert by_app[broken].error_code == "malformed_application"
    [exception] = [r for r in reviews(db, "ronney.exceptions") if r.work_item_id == by_app[broken].id]
    assert "Open ePlatform" in exception.summary or "Open ePlatform" in str(exception.material)
    assert "kan inte läsas" in str(exception.material)
    assert all(i.status == ItemStatus.needs_review for a, i in by_app.items() if a != broken)


def test_an_unknown_api_is_a_configuration_error(sandbox: str, db: Database, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        robots={"ronney": {"pdf": False}},
        connectors={
            "eservice": {"api": "soap2000", "base_url": f"{sandbox}/eservice"},
            "registers": {"base_url": f"{sandbox}/registers"},
        },
    )
    result = run_robot(Ronney, db=db, app_settings=settings)
    assert result.summary.status.value == "failed"
    assert "connectors.eservice.api" in (result.summary.error or "")


@pytest.mark.timeout(600)
def test_a_demo_night_prepares_ronney_items_for_both_municipalities(tmp_path: Path) -> None:
    """The shipped configuration: Ronneby's e-service speaks JSON, Karlshamn's is Open ePlatform."""
    from datetime import UTC, datetime

    from core.settings import PROJECT_ROOT, load_settings
    from sandbox.demo import demo_night, load_demo_settings

    schedules = tmp_path / "schedules"
    schedules.mkdir()
    for path in (PROJECT_ROOT / "schedules").glob("ronney*.toml"):
        (schedules / path.name).write_bytes(path.read_bytes())
    settings = load_settings(var_dir=tmp_path / "var", database_url="", scheduler={"schedules_dir": schedules})
    karlshamn = next(t for t in settings.tenants if t.code == "1082")
    assert karlshamn.connectors["eservice"]["api"] == "open_eplatform"
    database = Database(settings.effective_database_url)
    database.upgrade()
    demo = load_demo_settings()
    demo = demo.model_copy(update={"sandbox": demo.sandbox.model_copy(update={"options": {"applications": 20}})})
    evening = FakeClock(datetime(2026, 11, 23, 22, 0, tzinfo=UTC))
    try:
        registry = Registry(robots={"ronney": Ronney})
        with demo_night(settings, database, registry, demo, seed=1, clock=evening, show_progress=False) as night:
            assert sorted(night.jobs) == [("ronney", "1081"), ("ronney", "1082")]
            assert not night.failed
            oep = admin(night.urls["1082"], "state/oep")
            assert oep["deliveries"]  # Karlshamn's cases came through Open ePlatform …
            assert admin(night.urls["1081"], "state/oep")["deliveries"] == {}  # … Ronneby's through JSON
        with database.session() as s:
            rows = s.scalars(select(ReviewItem).where(ReviewItem.queue == "ronney.application")).all()
            by_tenant = {t: [r for r in rows if r.tenant == t] for t in ("1081", "1082")}
        assert all(by_tenant.values()), {t: len(r) for t, r in by_tenant.items()}
        assert all(r.material["application_id"].isdigit() for r in by_tenant["1082"])
        assert all(r.material["application_id"].startswith("EB-") for r in by_tenant["1081"])
    finally:
        database.dispose()
