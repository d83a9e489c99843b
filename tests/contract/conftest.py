"""The store contract suite's fixture: every port implementation, on one fake clock.

``stores`` is parametrised over the in-memory stores (core.testing.memory), SQLite and
PostgreSQL (marked ``postgres``; skipped when unreachable, except on CI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core.alert_sink import SqlAlertSink
from core.artifacts import FileArtifactStore
from core.audit import Auditor
from core.interfaces import AlertSink, ArtifactStore, AuditSink, ReviewStore, RunStore, WorkItemStore
from core.queue import WorkQueue
from core.review import ReviewQueue
from core.runs import SqlRunStore
from core.storage.db import Database
from core.storage.web_models import ReviewTiming
from core.testing import FakeClock, temporary_database
from core.testing.memory import MemoryStores

TENANT = "0000"
OTHER = "9999"


@dataclass
class Stores:
    """One backend's stores, as the ports see them."""

    backend: str
    clock: FakeClock
    queue: WorkItemStore
    reviews: ReviewStore
    runs: RunStore
    audit: AuditSink
    artifacts: ArtifactStore
    alerts: AlertSink
    #: The review timings kept (review id, person, opened at, decided at), oldest first.
    review_times: Callable[[], list[tuple[int, str, datetime, datetime | None]]]

    def actions(self, after: int = 0) -> list[str]:
        """The audit actions written after seq ``after``."""
        return [e.action for e in self.audit.events(after)]

    def last_seq(self) -> int:
        """The latest audit seq (0 when empty)."""
        events = self.audit.events()
        return events[-1].seq if events else 0


def _review_times(db: Database) -> list[tuple[int, str, datetime, datetime | None]]:
    with db.session() as s:
        rows = s.execute(
            select(
                ReviewTiming.review_id, ReviewTiming.actor, ReviewTiming.opened_at, ReviewTiming.decided_at
            ).order_by(ReviewTiming.id)
        )
        return [(r.review_id, r.actor, r.opened_at, r.decided_at) for r in rows]


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Every store of one backend, with tenants 0000 and 9999 known."""
    clock = FakeClock()
    backend = str(request.param)
    if backend == "memory":
        mem = MemoryStores(clock)
        made = Stores(
            backend,
            clock,
            mem.queue,
            mem.reviews,
            mem.runs,
            mem.audit,
            mem.artifacts,
            mem.alerts,
            lambda: [(t.review_id, t.actor, t.opened_at, t.decided_at) for t in mem.state.review_timings],
        )
        made.runs.ensure_tenant(TENANT, "Testkommun")
        made.runs.ensure_tenant(OTHER, "Annan kommun")
        yield made
        return
    url = None if backend == "sqlite" else str(request.getfixturevalue("pg_url"))
    with temporary_database(tmp_path, url) as db:
        made = Stores(
            backend,
            clock,
            WorkQueue(db, clock),
            ReviewQueue(db, clock),
            SqlRunStore(db, clock),
            Auditor(db.session, clock),
            FileArtifactStore(db, tmp_path / "artifacts", 30, clock),
            SqlAlertSink(db, clock),
            lambda: _review_times(db),
        )
        made.runs.ensure_tenant(TENANT, "Testkommun")
        made.runs.ensure_tenant(OTHER, "Annan kommun")
        yield made
