"""Bosse end to end against the sandbox over HTTP: a night and a day of offers, replies and bookings.

The sandbox clock is frozen and moved together with the engine's FakeClock, so SMS replies
arrive when the test says. Replies follow each substitute's behaviour in the sandbox
(``/admin/truth``); scenario tests set behaviours of their own (always yes after n minutes,
always no, silent) through the sandbox's state, and otherwise use only its HTTP API.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

import sandbox.server
import sandbox.sms
import sandbox.staffing
from connectors.http import DEFAULT_BREAKERS
from core import effects_report
from core.engine import Engine, RunSummary
from core.registry import Registry
from core.review import ReviewQueue
from core.settings import Settings, WorkerSettings
from core.storage.db import Database
from core.storage.models import ItemStatus, ReviewItem, WorkItem
from core.testing import FakeClock, make_settings, run_robot, temporary_database
from robots.bosse.flow import Work
from robots.bosse.ledger import Ledger, build_ledger
from robots.bosse.messages import Answer, MessageKind, parse_reference
from robots.bosse.planning import Evaluation, close_at, evaluate_shift
from robots.bosse.records import ShiftInfo, SubstituteInfo, parse_shift, parse_substitute
from robots.bosse.robot import Bosse
from robots.bosse.rules import STOCKHOLM, BosseRules, check_eligibility
from robots.bosse.settings import BosseSettings
from sandbox.testing import running_sandbox

pytestmark = pytest.mark.timeout(120)

#: One open shift with four reachable eligible candidates (seed 4).
ONE_SHIFT: dict[str, Any] = {"seed": 4, "open_shifts": 1, "substitutes": 60}
SMALL = {
    "substitutes": 30,
    "open_shifts": 8,
    "applications": 0,
    "employees": 0,
    "homecare_visits": 0,
    "homecare_staff": 0,
    "time_scale": 0,
}


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM)


class Town:
    """A sandbox municipality, a Kollega database and Bosse, on one clock."""

    def __init__(self, url: str, state: Any, db: Database, app: Settings, clock: FakeClock) -> None:
        self.url, self.state, self.db, self.app, self.clock = url, state, db, app, clock
        self.http = httpx.Client(base_url=url, timeout=30)

    # -- time and runs ------------------------------------------------------------------
    def at(self, when: datetime | str) -> None:
        moment = local(when) if isinstance(when, str) else when
        self.clock.set(moment)
        self.http.post("/admin/clock", json={"set": moment.isoformat()}).raise_for_status()

    def run(self) -> RunSummary:
        return run_robot(Bosse, db=self.db, clock=self.clock, app_settings=self.app).summary

    def day(self, start: str, until: str, step_minutes: int = 15, stop_when_settled: bool = True) -> None:
        """Runs every ``step_minutes`` in the daytime, one night run at 01:00, from ``start`` to ``until``."""
        t, end = local(start), local(until)
        while t < end:
            if t.hour >= 21 or t.hour < 7:
                t = (t + timedelta(days=1 if t.hour >= 21 else 0)).replace(hour=1, minute=0)
                self.at(t)
                self.run()
                t = t.replace(hour=7)
                continue
            self.at(t)
            summary = self.run()
            assert summary.status.value in ("succeeded", "attention"), summary.error
            if stop_when_settled and self.settled():
                return
            t += timedelta(minutes=step_minutes)

    # -- the sandbox --------------------------------------------------------------------
    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def shifts(self) -> list[ShiftInfo]:
        return [parse_shift(s) for s in self.get("/staffing/shifts", status="all", limit=1000)["items"]]

    def substitutes(self) -> list[SubstituteInfo]:
        return [parse_substitute(s) for s in self.get("/staffing/substitutes", limit=1000)["items"]]

    def bookings(self) -> list[dict[str, Any]]:
        return [b for b in self.get("/staffing/bookings")["items"] if b["status"] == "active"]

    def messages(self) -> list[dict[str, Any]]:
        return list(self.get("/sms/messages", limit=100_000)["items"])

    def ledger(self) -> Ledger:
        return build_ledger("0000", self.messages(), self.get("/sms/inbound", limit=100_000)["items"])

    def behave(self, substitute_id: str, kind: str) -> None:
        """Set how a substitute answers offers: ``yes<n>``/``no<n>`` (after n minutes) or ``silent``."""
        if kind != "silent" and kind not in sandbox.staffing.BEHAVIOURS:
            minutes = int(kind.removeprefix("yes").removeprefix("no"))
            sandbox.staffing.BEHAVIOURS[kind] = (0.0, 1.0 if kind.startswith("yes") else 0.0, (minutes, minutes))
        self.state.data.truth["staffing"]["behaviour"][substitute_id] = kind

    def everyone(self, kind: str) -> None:
        for s in self.substitutes():
            self.behave(s.id, kind)

    def evaluation(self, shift: ShiftInfo) -> Evaluation:
        return evaluate_shift(shift, self.substitutes(), BosseRules())

    def fault(self, system: str, **settings: Any) -> None:
        self.http.post(f"/admin/faults/{system}", json=settings).raise_for_status()

    # -- Kollega ------------------------------------------------------------------------
    def items(self) -> dict[str, WorkItem]:
        with self.db.session() as s:
            return {w.reference: w for w in s.scalars(select(WorkItem).where(WorkItem.robot == "bosse")).all()}

    def reviews(self, queue: str = "bosse.unfilled") -> list[ReviewItem]:
        with self.db.session() as s:
            return list(s.scalars(select(ReviewItem).where(ReviewItem.queue == queue).order_by(ReviewItem.id)).all())

    def settled(self) -> bool:
        """Every shift is booked or with the coordinators, and every notice has gone out."""
        reviewed = {r.material["shift"]["id"] for r in self.reviews()}
        open_items = [w for w in self.items().values() if w.status in (ItemStatus.pending, ItemStatus.in_progress)]
        return not open_items and all(not s.is_open or s.id in reviewed for s in self.shifts())


@pytest.fixture
def make_town(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``make_town(seed=…, robot={…}, concurrency=…, **sandbox options)`` → a :class:`Town`."""
    created: list[Any] = []
    apps: list[Any] = []
    towns: list[Town] = []
    real = sandbox.server.create_app

    def capture(*args: Any, **kwargs: Any) -> Any:
        app = real(*args, **kwargs)
        apps.append(app)
        return app

    monkeypatch.setattr(sandbox.server, "create_app", capture)
    monkeypatch.setattr(sandbox.staffing, "BEHAVIOURS", dict(sandbox.staffing.BEHAVIOURS))
    monkeypatch.setattr(sandbox.sms, "BEHAVIOURS", sandbox.staffing.BEHAVIOURS)
    DEFAULT_BREAKERS.reset()

    def make(seed: int = 3, robot: dict[str, Any] | None = None, concurrency: int = 1, **options: Any) -> Town:
        cm = running_sandbox(seed=seed, **{**SMALL, **options})
        url = cm.__enter__()
        dbm = temporary_database(tmp_path / f"db{len(created)}")
        (tmp_path / f"db{len(created)}").mkdir()
        db = dbm.__enter__()
        created.append((cm, dbm))
        worker = WorkerSettings(
            concurrency=concurrency,
            lease_seconds=60,
            item_timeout_seconds=30,
            max_attempts=3,
            backoff_base_seconds=1,
            backoff_cap_seconds=10,
            retry_wait_seconds=60,
        )
        app = make_settings(
            tmp_path,
            worker=worker,
            robots={"bosse": robot or {}},
            connectors={
                "staffing": {"base_url": f"{url}/staffing"},
                "sms": {"base_url": f"{url}/", "sender": "Bemanningen"},
            },
        )
        town = Town(url, apps[-1].state.sandbox, db, app, FakeClock())
        towns.append(town)
        town.get("/staffing/shifts")  # data generated before behaviours are changed
        return town

    yield make
    for town in towns:
        town.http.close()
    for cm, dbm in reversed(created):
        dbm.__exit__(None, None, None)
        cm.__exit__(None, None, None)
    DEFAULT_BREAKERS.reset()


def _answers(ledger: Ledger) -> dict[tuple[str, str], Answer | None]:
    return {(sid, sub): o.answer for sid, sl in ledger.shifts.items() for sub, o in sl.offers.items()}


# --------------------------------------------------------------------------- a whole night


class TestNightAndDay:
    """One night's open shifts, offered by SMS in the morning, end booked or with the coordinators."""

    def test_every_shift_ends_booked_or_with_the_coordinators(self, make_town: Any) -> None:
        town = make_town(seed=3, concurrency=4)
        open_shifts = {s.id for s in town.shifts() if s.is_open}
        assert len(open_shifts) == len(town.shifts())

        town.at("2026-11-23T01:00")
        night = town.run()
        assert night.counts["collected"] >= 8 and night.counts["failed_application"] == 0
        prepared = {ref for ref, w in town.items().items() if "/" not in ref}
        assert prepared == open_shifts
        assert all(
            w.status is ItemStatus.done and w.result["status"] == "prepared"
            for ref, w in town.items().items()
            if ref in prepared
        )
        assert town.messages() == []  # nothing is sent at night

        town.day("2026-11-23T07:00", "2026-11-27T00:00")
        assert town.settled()

        # None lost: every shift is booked, or the coordinators have it.
        booked = {b["shift_id"]: b for b in town.bookings()}
        reviewed = {r.material["shift"]["id"] for r in town.reviews()}
        assert open_shifts <= set(booked) | reviewed
        assert booked, "the seeded day should fill some shifts"
        items = town.items().values()
        assert not [w.reference for w in items if w.status not in (ItemStatus.done, ItemStatus.needs_review)]
        assert town.reviews("bosse.exceptions") == []

        # No booking breaks a rule: checked against the final rosters, each booking without itself.
        people = {p.id: p for p in town.substitutes()}
        shifts = {s.id: s for s in town.shifts()}
        for b in booked.values():
            shift, person = shifts[b["shift_id"]], people[b["substitute_id"]]
            violations = check_eligibility(
                shift.to_rules(), person.to_rules(shift, without_booking=b["id"]), BosseRules()
            )
            assert violations == [], (b, [v.reason for v in violations])

        staffing = town.get("/admin/state/staffing")
        assert staffing["double_booked_shifts"] == []
        assert all(n == 1 for n in staffing["bookings_per_shift"].values())
        assert town.get("/admin/state/sms")["quiet_hours_violations"] == 0

        # Each message once; each person offered a shift at most once.
        refs = [m["reference"] for m in town.messages()]
        assert len(refs) == len(set(refs))
        offers = Counter(
            (r.shift_id, r.substitute_id) for r in map(parse_reference, refs) if r and r.kind is MessageKind.offer
        )
        assert set(offers.values()) == {1}

        ledger = town.ledger()
        for shift_id, b in booked.items():
            mine = ledger.of(shift_id)
            winner = b["substitute_id"]
            # Booked only on a yes, and every earlier yes was told why it was not booked.
            assert mine.offers[winner].answer is Answer.yes
            earlier = mine.yes_queue()[: mine.yes_queue().index(winner)] if winner in mine.yes_queue() else []
            assert all(mine.notice(MessageKind.notbooked, s) for s in earlier), (shift_id, earlier)
            assert mine.notice(MessageKind.confirm, winner) is not None
            for sub, offer in mine.offers.items():  # everyone else with an open offer heard it is filled
                if sub != winner and offer.message.delivered and offer.answer is not Answer.no:
                    assert mine.notice(MessageKind.filled, sub) or mine.notice(MessageKind.notbooked, sub)
        # Every reply was handled as a work item.
        replies = {r.id for sl in ledger.shifts.values() for r in sl.replies}
        handled = {ref.rsplit("/", 1)[1] for ref in town.items() if "/reply/" in ref}
        assert replies <= handled

        # The effects ledger counts the same night from the audit log: every booking, every SMS.
        rep = effects_report.report(town.db, {"bosse": Bosse}, town.app, "0000", "2026-11")
        m = rep.robots[0].measured
        assert m.values["fill_rate"] == round(100 * len(booked) / len(open_shifts), 1)
        assert m.values["sms_per_filled_shift"] == round(len(town.messages()) / len(booked), 1)
        assert m.values["median_minutes_to_booked"] is not None and m.values["median_minutes_to_booked"] > 0
        assert m.outcomes["shift_booked_on_yes"] == len(booked)

    def test_repeated_processing_sends_nothing_twice(self, make_town: Any) -> None:
        town = make_town(seed=5, open_shifts=4)
        town.at("2026-11-23T01:00")
        town.run()
        town.day("2026-11-23T07:00", "2026-11-23T08:00", stop_when_settled=False)
        sent, bookings = len(town.messages()), town.bookings()
        assert sent and bookings
        # Process every finished item a second time, as after a worker that lost its lease
        # mid-write (the stores never put a done item back, so the test sets it pending itself).
        done = [w.id for w in town.items().values() if w.status is ItemStatus.done]
        with town.db.session() as s:
            s.execute(
                update(WorkItem)
                .where(WorkItem.id.in_(done))
                .values(status=ItemStatus.pending, attempts=0, next_attempt_at=town.clock.now(), finished_at=None)
            )
        summary = town.run()
        assert summary.counts["done"] > 0
        assert len(town.messages()) == sent
        assert town.bookings() == bookings

    def test_a_send_whose_answer_was_lost_is_not_sent_again(self, make_town: Any) -> None:
        town = make_town(seed=5)
        town.at("2026-11-23T07:00")
        town.fault("sms", fail_after_processing_next=2, methods=["POST"])
        summary = town.run()
        assert summary.counts["failed_application"] == 0
        refs = Counter(m["reference"] for m in town.messages())
        assert refs and set(refs.values()) == {1}
        assert town.get("/admin/faults/sms")["remaining"]["fail_after_processing_next"] == 0


# --------------------------------------------------------------------------- scenarios


def pick_shift(town: Town, reachable: int) -> tuple[ShiftInfo, list[str]]:
    """An open shift with at least ``reachable`` eligible candidates; their ids in rank order."""
    for shift in sorted(town.shifts(), key=lambda s: s.start):
        ranked = [c.id for c in town.evaluation(shift).eligible if c.reachable]
        if shift.is_open and len(ranked) >= reachable:
            return shift, ranked
    pytest.fail("no shift in the sandbox data has enough candidates for this scenario")


class TestReplies:
    """JA books, NEJ is noted, silence moves on to the next wave; two yeses: the first wins."""

    def test_yes_no_and_silence(self, make_town: Any) -> None:
        town = make_town(**ONE_SHIFT, robot={"adaptive_waves": False, "wave_size": 2, "reply_wait_minutes": 30})
        town.everyone("silent")
        shift, ranked = pick_shift(town, 4)
        first, second, third, fourth = ranked[:4]
        town.behave(first, "no3")
        town.behave(third, "yes5")

        town.at("2026-11-23T07:00")
        town.run()  # wave 1: the two best
        ledger = town.ledger().of(shift.id)
        assert set(ledger.offers) == {first, second} and ledger.last_wave == 1

        town.at("2026-11-23T07:10")
        town.run()  # first said no, second is silent: wait for the reply time
        ledger = town.ledger().of(shift.id)
        assert ledger.offers[first].answer is Answer.no and ledger.offers[second].answer is None
        assert set(ledger.offers) == {first, second}
        assert town.items()[f"{shift.id}/reply/{ledger.offers[first].replies[0].id}"].result["answer"] == "NEJ"

        town.at("2026-11-23T07:30")
        town.run()  # silence: wave 2 to the next two
        ledger = town.ledger().of(shift.id)
        assert {s for s, o in ledger.offers.items() if o.wave == 2} == {third, fourth}

        town.at("2026-11-23T07:40")
        town.run()  # third said yes: booked, confirmed, the silent ones told it is filled
        (booking,) = town.bookings()
        assert (booking["shift_id"], booking["substitute_id"], booking["booked_by"]) == (
            shift.id,
            third,
            "Kollega/Bosse",
        )
        ledger = town.ledger().of(shift.id)
        assert ledger.notice(MessageKind.confirm, third)
        assert ledger.notice(MessageKind.filled, second) and ledger.notice(MessageKind.filled, fourth)
        assert ledger.notice(MessageKind.filled, first) is None  # said no: nothing more to say
        assert town.reviews() == []

    def test_two_yeses_race_and_a_late_yes_gets_a_polite_no(self, make_town: Any) -> None:
        town = make_town(**ONE_SHIFT, robot={"adaptive_waves": False, "wave_size": 3}, concurrency=4)
        town.everyone("silent")
        shift, ranked = pick_shift(town, 3)
        a, b, c = ranked[:3]
        town.behave(a, "yes4")
        town.behave(b, "yes2")  # answers first
        town.behave(c, "yes40")  # answers after the shift is filled
        town.at("2026-11-23T07:00")
        town.run()
        town.at("2026-11-23T07:05")
        town.run()  # both yeses in one run, handled concurrently
        (booking,) = town.bookings()
        assert booking["substitute_id"] == b
        ledger = town.ledger().of(shift.id)
        assert ledger.notice(MessageKind.confirm, b)
        assert ledger.notice(MessageKind.filled, a) and ledger.notice(MessageKind.filled, c)
        town.at("2026-11-23T07:45")
        town.run()
        ledger = town.ledger().of(shift.id)
        assert ledger.offers[c].answer is Answer.yes
        assert ledger.notice(MessageKind.late, c)
        assert len(town.bookings()) == 1
        assert town.get("/admin/state/staffing")["double_booked_shifts"] == []


class TestConflicts:
    """The staffing system has the last word: a 409 means the next yes, never a double booking."""

    def test_clash_at_booking_time_tries_the_next_yes(self, make_town: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        town = make_town(**ONE_SHIFT, robot={"adaptive_waves": False, "wave_size": 3})
        town.everyone("silent")
        shift, ranked = pick_shift(town, 2)
        a, b = ranked[:2]
        town.behave(a, "yes2")
        town.behave(b, "yes4")
        town.at("2026-11-23T07:00")
        town.run()
        town.at("2026-11-23T07:10")

        # Someone books A elsewhere between Bosse's check and its booking: the staffing system answers 409.
        from robots.bosse import systems

        real_book = systems.StaffingApi.book

        async def racing_book(self: Any, s: ShiftInfo, person: SubstituteInfo) -> Any:
            if person.id == a:
                other = town.state.data.substitutes
                entry = next(x for x in other if x["id"] == a)
                entry["bookings"].append(
                    {
                        "id": "BOK-ELSEWHERE",
                        "shift_id": None,
                        "unit": "Annan enhet",
                        "start": s.start.astimezone(STOCKHOLM).isoformat(timespec="minutes"),
                        "end": s.end.astimezone(STOCKHOLM).isoformat(timespec="minutes"),
                        "hours": s.hours,
                    }
                )
            return await real_book(self, s, person)

        monkeypatch.setattr(systems.StaffingApi, "book", racing_book)
        town.run()
        (booking,) = town.bookings()
        assert booking["substitute_id"] == b
        assert town.get("/admin/state/staffing")["conflicts"] == 1
        ledger = town.ledger().of(shift.id)
        assert ledger.notice(MessageKind.notbooked, a)  # told politely why not
        assert ledger.notice(MessageKind.confirm, b)
        settle = [w.result for ref, w in town.items().items() if "/reply/" in ref and w.result.get("refused")]
        assert settle and a in settle[0]["refused"]

    def test_a_rule_broken_meanwhile_undoes_the_booking(self, make_town: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        town = make_town(**ONE_SHIFT, robot={"adaptive_waves": False, "wave_size": 3})
        town.everyone("silent")
        shift, ranked = pick_shift(town, 2)
        a, b = ranked[:2]
        town.behave(a, "yes2")
        town.behave(b, "yes4")
        town.at("2026-11-23T07:00")
        town.run()
        town.at("2026-11-23T07:10")

        # Another worker books A two hours after this shift (no overlap, so the staffing
        # system accepts both) between Bosse's check and its booking: dygnsvila is broken.
        from robots.bosse import systems

        real_book = systems.StaffingApi.book

        async def racing_book(self: Any, s: ShiftInfo, person: SubstituteInfo) -> Any:
            if person.id == a:
                entry = next(x for x in town.state.data.substitutes if x["id"] == a)
                later = s.end + timedelta(hours=2)
                entry["bookings"].append(
                    {
                        "id": "BOK-OTHER-WORKER",
                        "shift_id": None,
                        "unit": "Annan enhet",
                        "start": later.astimezone(STOCKHOLM).isoformat(timespec="minutes"),
                        "end": (later + timedelta(hours=4)).astimezone(STOCKHOLM).isoformat(timespec="minutes"),
                        "hours": 4.0,
                    }
                )
            return await real_book(self, s, person)

        monkeypatch.setattr(systems.StaffingApi, "book", racing_book)
        town.run()
        everything = town.get("/staffing/bookings")["items"]
        assert [(x["substitute_id"], x["status"]) for x in everything] == [(a, "cancelled"), (b, "active")]
        ledger = town.ledger().of(shift.id)
        assert ledger.notice(MessageKind.notbooked, a) and ledger.notice(MessageKind.confirm, b)
        assert ledger.notice(MessageKind.confirm, a) is None

    def test_a_booking_whose_answer_was_lost_is_made_once(self, make_town: Any) -> None:
        town = make_town(**ONE_SHIFT, robot={"adaptive_waves": False, "wave_size": 1})
        town.everyone("silent")
        shift, ranked = pick_shift(town, 1)
        town.behave(ranked[0], "yes2")
        town.at("2026-11-23T07:00")
        town.run()
        town.at("2026-11-23T07:05")
        town.fault("staffing", fail_after_processing_next=1, methods=["POST"])
        summary = town.run()
        assert summary.counts["failed_application"] == 0
        assert [b["substitute_id"] for b in town.bookings()] == [ranked[0]]
        staffing = town.get("/admin/state/staffing")
        assert staffing["bookings_per_shift"] == {shift.id: 1}


class TestOutages:
    """The staffing system down: items are retried, then each becomes an exception for a person."""

    def test_staffing_down_is_retried_then_an_exception(self, make_town: Any) -> None:
        town = make_town(seed=3, open_shifts=3)
        town.at("2026-11-23T01:00")
        town.fault("staffing", error_rate=1.0, path_prefix="/shifts/")  # list works, each shift fails
        summary = town.run()
        prepare = {ref: w for ref, w in town.items().items() if "/" not in ref}
        assert len(prepare) == 3
        assert summary.counts["retried"] >= 6 and summary.counts["failed_application"] >= 3
        assert {w.status for w in prepare.values()} == {ItemStatus.failed_application}
        assert all(w.attempts == 3 and w.error_code in ("http_503", "circuit_open") for w in prepare.values())
        exceptions = town.reviews("bosse.exceptions")
        assert {r.material["reference"] for r in exceptions} >= set(prepare)
        faults = town.get("/admin/faults/staffing")
        assert faults["stats"]  # the sandbox saw the retried requests

    def test_whole_staffing_system_down_fails_the_run_visibly(self, make_town: Any) -> None:
        town = make_town(seed=3, open_shifts=2)
        town.at("2026-11-23T01:00")
        town.fault("staffing", maintenance=True)
        summary = town.run()
        assert summary.status.value == "failed" and "staffing" in (summary.error or "")
        assert town.items() == {}

    def test_sms_gateway_down_then_back(self, make_town: Any) -> None:
        town = make_town(**ONE_SHIFT, robot={"adaptive_waves": False, "wave_size": 2})
        town.everyone("silent")
        shift, ranked = pick_shift(town, 2)
        town.at("2026-11-23T07:00")
        town.fault("sms", error_rate=1.0, methods=["POST"])
        summary = town.run()
        wave = town.items()[f"{shift.id}/wave-1/2026112307"]
        assert wave.status is ItemStatus.failed_application and wave.attempts == 3
        assert town.reviews("bosse.exceptions")
        assert town.messages() == []
        assert summary.status.value == "attention"

        town.http.delete("/admin/faults/sms").raise_for_status()
        town.at("2026-11-23T07:30")
        town.run()  # same hour: the failed step stays with operations
        assert town.messages() == []
        town.at("2026-11-23T08:00")
        town.run()  # a later hour: the wave is found due again and goes out
        assert town.items()[f"{shift.id}/wave-1/2026112308"].status is ItemStatus.done
        assert set(town.ledger().of(shift.id).offers) == set(ranked[:2])

    def test_dry_run_sends_and_books_nothing(self, make_town: Any) -> None:
        town = make_town(**ONE_SHIFT)
        town.at("2026-11-23T07:00")
        result = run_robot(Bosse, db=town.db, clock=town.clock, app_settings=town.app, dry_run=True)
        assert result.summary.refused_writes and all(w["system"] == "sms" for w in result.summary.refused_writes)
        assert town.messages() == [] and town.items() == {}


class TestCoordinators:
    """What Bosse cannot fill goes to the coordinators with the ranked list; their decision is carried out."""

    def test_unfilled_review_and_approval_books_the_named_person(self, make_town: Any) -> None:
        town = make_town(**ONE_SHIFT, robot={"adaptive_waves": False, "wave_size": 10, "reply_wait_minutes": 20})
        town.everyone("no2")
        shift, ranked = pick_shift(town, 2)
        town.at("2026-11-23T07:00")
        town.run()
        town.at("2026-11-23T07:10")
        town.run()  # everyone said no and nobody is left: to the coordinators
        (review,) = town.reviews()
        m = review.material
        assert review.title.startswith(f"Obemannat pass {shift.code}")
        assert m["reason"] == "exhausted" and m["proposed"] is None
        assert [e["id"] for e in m["eligible"]] == [c.id for c in town.evaluation(shift).eligible]
        assert all(e["status"].endswith("svarade NEJ") for e in m["eligible"] if e["reachable"])
        assert m["ineligible"] and all(p["reasons"] for p in m["ineligible"])
        assert {e["kind"] for e in m["history"]} == {"offer", "reply"}
        # Each candidate's reply history, read from the SMS gateway's record of Bosse's offers.
        for e in m["eligible"]:
            asked = 1 if e["reachable"] else 0
            assert (e["replies"]["asked"], e["replies"]["yes"], e["replies"]["unanswered"]) == (asked, 0, 0)
            assert e["replies"]["text"].startswith(
                "Svarat ja på 0 av 1 förfrågningar de senaste 90 dagarna" if asked else "Inga förfrågningar"
            )

        chosen = ranked[1]
        ReviewQueue(town.db, town.clock).decide(
            review.id, "approve", actor="user:samordnare", comment=f"{chosen} har ringt och kan ändå"
        )
        town.at("2026-11-23T08:00")
        town.run()
        (booking,) = town.bookings()
        assert booking["substitute_id"] == chosen
        assert town.ledger().of(shift.id).notice(MessageKind.confirm, chosen)
        with town.db.session() as s:
            assert s.get(ReviewItem, review.id).callback_status.value == "done"
            assert s.get(WorkItem, review.work_item_id).status is ItemStatus.done

    def test_returned_review_sends_another_wave(self, make_town: Any) -> None:
        town = make_town(**ONE_SHIFT, robot={"adaptive_waves": False, "wave_size": 1, "max_waves": 1})
        town.everyone("silent")
        shift, ranked = pick_shift(town, 2)
        town.at("2026-11-23T07:00")
        town.run()
        town.at("2026-11-23T07:30")
        town.run()
        (review,) = town.reviews()
        assert review.material["reason"] == "max_waves"
        ReviewQueue(town.db, town.clock).decide(
            review.id, "return", actor="user:samordnare", comment="Skicka en omgång till"
        )
        town.at("2026-11-23T07:40")
        town.run()
        ledger = town.ledger().of(shift.id)
        assert ledger.last_wave == 2 and ranked[1] in ledger.offers
        latest = town.reviews()[-1]
        assert latest.id != review.id and latest.state.value == "open"
        assert "Ny omgång (2)" in (latest.material["note"] or "")

    def test_a_yes_after_offers_closed_goes_to_the_coordinators(self, make_town: Any) -> None:
        robot = {"adaptive_waves": False, "wave_size": 1, "quiet_hours_start": "23:30", "quiet_hours_end": "04:00"}
        town = make_town(**ONE_SHIFT, robot=robot)
        town.everyone("silent")
        shift, ranked = pick_shift(town, 1)
        town.behave(ranked[0], "yes30")
        closes = close_at(shift, BosseSettings.model_validate(robot)).astimezone(STOCKHOLM)
        town.at(closes - timedelta(minutes=20))
        town.run()  # wave 1 goes out 20 minutes before offers close
        town.at(closes + timedelta(minutes=15))
        town.run()  # the yes came 10 minutes too late: not booked, the coordinators decide
        assert town.bookings() == []
        late = [r for r in town.reviews() if r.material["reason"] == "late_yes"]
        assert len(late) == 1 and late[0].material["proposed"] == ranked[0]
        assert late[0].title.startswith(f"Sent ja från {ranked[0]}")
        ReviewQueue(town.db, town.clock).decide(late[0].id, "approve", actor="user:samordnare")
        town.at(closes + timedelta(minutes=20))
        town.run()
        assert [b["substitute_id"] for b in town.bookings()] == [ranked[0]]


# --------------------------------------------------------------------------- concurrent runs


def _two_shifts_one_person(town: Town) -> tuple[ShiftInfo, ShiftInfo, str]:
    """Two open shifts and a substitute eligible for each alone, but not for both (rest or hours).

    The second shift is added to the sandbox after the first one (a few hours later, the
    same unit and requirements), so the staffing system itself sees no overlap and accepts
    either booking: only Bosse's working-time rules stand between the two.
    """
    rules = BosseRules()
    for first in sorted((s for s in town.shifts() if s.is_open), key=lambda s: s.start):
        candidates = [c.id for c in town.evaluation(first).eligible]
        raw = next(s for s in town.state.data.shifts if s["id"] == first.id)
        for gap_hours in (1, 2, 3, 4, 6, 8):
            start = first.end + timedelta(hours=gap_hours)
            for length in (3, 4, 6):
                second = parse_shift(
                    {
                        **raw,
                        "id": f"{first.id}-B{gap_hours}{length}",
                        "code": "P999",
                        "start": start.astimezone(STOCKHOLM).isoformat(timespec="minutes"),
                        "end": (start + timedelta(hours=length)).astimezone(STOCKHOLM).isoformat(timespec="minutes"),
                        "hours": float(length),
                        "deadline": (start - timedelta(hours=2)).astimezone(STOCKHOLM).isoformat(timespec="minutes"),
                    }
                )
                people = {p.id: p for p in town.substitutes()}
                for sub in candidates:
                    alone = check_eligibility(second.to_rules(), people[sub].to_rules(second), rules)
                    if alone:
                        continue
                    with_first = replace(
                        people[sub].to_rules(second),
                        bookings=(*people[sub].to_rules(second).bookings, first.to_rules().span),
                    )
                    if check_eligibility(second.to_rules(), with_first, rules):
                        entry = {
                            **raw,
                            "id": second.id,
                            "code": "P999",
                            "start": second.local_start.isoformat(timespec="minutes"),
                            "end": second.local_end.isoformat(timespec="minutes"),
                            "hours": float(length),
                            "deadline": (second.local_start - timedelta(hours=2)).isoformat(timespec="minutes"),
                        }
                        town.state.data.shifts.append(entry)
                        sandbox.staffing._shift_index(town.state)[entry["id"]] = entry
                        return first, next(s for s in town.shifts() if s.id == second.id), sub
    pytest.fail("no pair of shifts in the sandbox data shares an eligible substitute for this scenario")


class TestConcurrentRuns:
    """Two runs (two workers, or two municipalities on one shared staffing system) book at once."""

    def test_one_person_two_shifts_that_break_the_rest_rule_booked_once(self, make_town: Any) -> None:
        # The same substitute says yes to two shifts close together; each run books one of
        # them at the same moment. The staffing system accepts either (no overlap): only the
        # lock on system + substitute around check, booking and read-back lets one through;
        # the other run then sees the first booking and books nothing. Without that lock
        # both pass the check, both book, and one booking has to be taken back again.
        town = make_town(**ONE_SHIFT)
        first, second, person = _two_shifts_one_person(town)
        town.at(first.local_start - timedelta(hours=20))
        # A slow staffing system widens the window between the check and the booking.
        town.fault("staffing", latency_ms=150, methods=["GET"])
        registry = Registry(robots={"bosse": Bosse})
        engines = [Engine.from_database(town.db, town.app, registry, owner=f"worker-{n}") for n in (1, 2)]
        robot = Bosse(BosseSettings())

        async def both() -> list[Any]:
            contexts = [e.context(robot, "0000", None, False) for e in engines]
            try:
                return list(
                    await asyncio.gather(
                        Work(contexts[0], robot.bosse_settings).book_checked(first, person, via="sms_yes"),
                        Work(contexts[1], robot.bosse_settings).book_checked(second, person, via="sms_yes"),
                    )
                )
            finally:
                for ctx in contexts:
                    await Engine._close_resources(ctx)

        outcomes = asyncio.run(both())
        assert sorted(o.booked for o in outcomes) == [False, True]
        refused = next(o for o in outcomes if not o.booked)
        assert refused.reasons and not refused.conflict
        log = town.get("/admin/state/staffing")
        assert all(w["details"].get("substitute_id") in (person, None) for w in log["writes"])
        created = [w["key"] for w in log["writes"] if w["action"] == "booking.created"]
        assert len(created) == 1, f"{person} booked on both {created} (one booking then taken back)"
        assert not [w for w in log["writes"] if w["action"] == "booking.cancelled"]
        assert [(b["substitute_id"], b["status"]) for b in town.get("/staffing/bookings")["items"]] == [
            (person, "active")
        ]
