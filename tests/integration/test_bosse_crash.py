"""A real crash mid-booking: Bosse's worker process is SIGKILLed between the booking and recording it.

The worker is ``python -m tests.helpers.bosse_worker``: Engine.run for Bosse in its own
process, talking to the sandbox over HTTP, on the real clock shifted onto the sandbox's
morning. The sandbox makes every read of one substitute (``GET /staffing/substitutes/{id}``)
take 1.5 s, so the worker settling a yes spends 1.5 s re-reading the person *after* the
staffing system has made the booking: the test sees the booking appear and kills the
worker right then, before Bosse has recorded it (no ``bosse.booked`` event, the item still
in progress). A fresh worker then takes over once the lease has run out.

The staffing system must show the shift booked exactly once and nobody double-booked, the
interrupted item must end done (Bosse declares ``side_effects_repeatable``: it is retried,
not handed to a person as uncertain), the winner confirmed once, and the booking written
to the audit log.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from datetime import datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core import audit
from core.storage.models import AuditEvent, ItemStatus, ReviewItem, WorkItem
from robots.bosse.messages import MessageKind
from robots.bosse.records import parse_substitute
from robots.bosse.rules import Interval
from tests.helpers.procs import finish, spawn
from tests.integration.test_bosse_robot import ONE_SHIFT, Town, local, make_town, pick_shift  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LEASE_SECONDS = 15.0
SLOW_READ_MS = 1500


def worker_config(town: Town, tmp_path: Path, start: datetime, wall: float) -> str:
    return json.dumps(
        {
            "var_dir": str(tmp_path / "var"),
            "sandbox_url": town.url,
            "worker": {
                "concurrency": 1,
                "lease_seconds": LEASE_SECONDS,
                "item_timeout_seconds": LEASE_SECONDS - 1,
                "max_attempts": 3,
                "backoff_base_seconds": 0.2,
                "backoff_cap_seconds": 1,
                "retry_wait_seconds": 30,
            },
            "robot": {"adaptive_waves": False, "wave_size": 3},
            "clock_start": start.isoformat(),
            "clock_wall": wall,
        }
    )


def events(town: Town, action: str) -> list[AuditEvent]:
    with town.db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)).all())


def test_a_worker_killed_mid_booking_leaves_exactly_one_booking(make_town: Any, tmp_path: Path) -> None:  # noqa: F811
    town = make_town(**ONE_SHIFT, robot={"adaptive_waves": False, "wave_size": 3})
    town.everyone("silent")
    shift, ranked = pick_shift(town, 2)
    first, second = ranked[:2]
    town.behave(first, "yes2")  # both say yes: the second must not be booked as well after the crash
    town.behave(second, "yes3")
    town.at("2026-11-23T07:00")
    town.run()  # wave 1, in this process
    assert {first, second} <= set(town.ledger().of(shift.id).offers)

    morning = local("2026-11-23T07:05")
    town.at(morning)  # both yeses have arrived
    town.fault("staffing", latency_ms=SLOW_READ_MS, methods=["GET"], path_prefix="/substitutes/")
    wall = time.time()
    config = worker_config(town, tmp_path, morning, wall)

    # -- the first worker, killed once the booking exists and before Bosse has recorded it
    log = tmp_path / "killed-worker.log"
    proc = spawn("bosse_worker", [town.db.url, config], log)
    deadline = time.monotonic() + 60
    try:
        while not town.bookings():
            assert proc.poll() is None, f"the worker ended before it was killed:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no booking was made:\n{log.read_text()[-3000:]}"
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    (booking,) = town.bookings()
    assert (booking["shift_id"], booking["substitute_id"]) == (shift.id, first)
    interrupted = [w for w in town.items().values() if w.status is ItemStatus.in_progress]
    # The kill lands while a reply is settled; the other reply's item may be leased ahead of it
    # (the engine's prefetch for a repeatable robot): both are then retried.
    kinds = [w.reference.split("/")[1] for w in interrupted]
    assert kinds and set(kinds) == {"reply"}, "the kill must land while settling"
    assert events(town, "bosse.booked") == [], "the kill must land before Bosse recorded the booking"
    assert not town.ledger().of(shift.id).notice(MessageKind.confirm, first)

    # -- a fresh worker takes over once the lease has run out
    town.http.delete("/admin/faults/staffing").raise_for_status()
    with town.db.session() as s:
        until = s.scalar(select(func.max(WorkItem.lease_until)).where(WorkItem.status == ItemStatus.in_progress))
    assert until is not None
    on_timeline = morning.timestamp() + (time.time() - wall)
    time.sleep(max(until.timestamp() - on_timeline, 0) + 0.3)
    log2 = tmp_path / "fresh-worker.log"
    fresh = spawn("bosse_worker", [town.db.url, config], log2)
    finish([fresh], [log2], timeout=120)
    [line] = [ln for ln in log2.read_text().splitlines() if ln.startswith("SUMMARY ")]
    summary = json.loads(line.removeprefix("SUMMARY "))
    assert summary["status"] == "succeeded", summary

    # The staffing system: the shift booked exactly once, by the first yes, nobody double-booked.
    everything = town.get("/staffing/bookings")["items"]
    assert [(b["shift_id"], b["substitute_id"], b["status"]) for b in everything] == [(shift.id, first, "active")]
    staffing = town.get("/admin/state/staffing")
    assert staffing["bookings_per_shift"] == {shift.id: 1}
    assert staffing["double_booked_shifts"] == []
    for raw in town.get("/staffing/substitutes", limit=1000)["items"]:
        person = parse_substitute(raw)
        clashes = [(a, b) for a, b in combinations(person.bookings, 2) if Interval.overlaps(a, b)]
        assert clashes == [], f"{person.id} is double-booked"
    assert town.shifts()[[s.id for s in town.shifts()].index(shift.id)].booked_substitute_id == first

    # Kollega: the interrupted item was retried and is done; nothing uncertain, nothing lost.
    items = town.items()
    for w in interrupted:
        assert items[w.reference].status is ItemStatus.done and items[w.reference].attempts >= 2, w.reference
        assert items[w.reference].result["booked_substitute_id"] == first
    assert {w.status for w in items.values()} == {ItemStatus.done}
    with town.db.session() as s:
        assert s.scalars(select(ReviewItem)).all() == []

    # The SMS: the winner confirmed once, the other yes told the shift is filled, nothing twice.
    ledger = town.ledger().of(shift.id)
    assert ledger.notice(MessageKind.confirm, first) is not None
    assert ledger.notice(MessageKind.filled, second) or ledger.notice(MessageKind.notbooked, second)
    refs = Counter(m["reference"] for m in town.messages())
    assert set(refs.values()) == {1}

    # The audit log: the booking is accounted for after the take-over (the killed worker may
    # not even have written its external.write), and the chain is intact.
    booked = events(town, "bosse.booked")
    # Every retried item that finds Bosse's booking records it (the audit log cannot be asked
    # whether the killed attempt did), so there may be more than one such event.
    assert booked and {(e.details["substitute_id"], e.details.get("recovered")) for e in booked} == {(first, True)}
    with town.db.session() as s:
        result = audit.verify(s)
    assert result.ok, result.problem
