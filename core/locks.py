"""Target locks for writes that must not repeat: the SQL :class:`~core.interfaces.LockStore` and ``exclusive``.

A robot writes "exactly once" by checking the target system before it writes and reading
the write back after it. Two runs (two workers on one municipality, or two municipalities
on one shared system) doing that at the same moment would both find nothing and both
write; so the check, the write and the read-back are held under a lock named after the
target (``payroll:<system>:<employee>:<period>``), shared by every worker through the
database. The lock has a lease, renewed while it is held: a holder that died frees the
target after one lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.clock import Clock, SystemClock
from core.errors import TargetLocked
from core.interfaces import LockStore
from core.storage.db import Database
from core.storage.models import Lock

#: The locks table's name column holds at most this many characters.
MAX_KEY = 100
#: Prefix of target locks, so they never collide with the scheduler's leader lock.
PREFIX = "target:"


def lock_name(key: str) -> str:
    """The stored name of target lock ``key``: itself when short, else a readable head and a digest."""
    name = PREFIX + key
    if len(name) <= MAX_KEY:
        return name
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"{name[: MAX_KEY - 33]}#{digest}"


class SqlLockStore:
    """Target locks in the ``locks`` table (the :class:`core.interfaces.LockStore` port).

    Each change is one statement that checks the lease itself: an INSERT … ON CONFLICT DO
    NOTHING for a free key, an UPDATE … WHERE the lease ran out (or is ours) for a taken one.
    """

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()

    def acquire(self, key: str, owner: str, lease_seconds: float) -> bool:
        """Take or renew ``key`` for ``owner``; False while another holds an unexpired lease."""
        name, now = lock_name(key), self.clock.now()
        until = now + timedelta(seconds=lease_seconds)
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        with self.db.session() as s:
            got = s.scalar(
                insert(Lock)
                .values(name=name, owner=owner, until=until)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(Lock.name)
            )
            if got is None:
                # Taken: ours to renew, or free again when its holder stopped renewing.
                got = s.scalar(
                    update(Lock)
                    .where(Lock.name == name, (Lock.until < now) | (Lock.owner == owner))
                    .values(owner=owner, until=until)
                    .returning(Lock.name)
                )
        return got is not None

    def release(self, key: str, owner: str) -> bool:
        """Give ``key`` up if ``owner`` holds it."""
        with self.db.session() as s:
            gone = s.execute(delete(Lock).where(Lock.name == lock_name(key), Lock.owner == owner))
            return bool(getattr(gone, "rowcount", 0))

    def holder(self, key: str) -> str | None:
        """Who holds ``key`` now (None when free or expired)."""
        with self.db.session() as s:
            row = s.execute(select(Lock.owner, Lock.until).where(Lock.name == lock_name(key))).first()
        return row[0] if row is not None and row[1] >= self.clock.now() else None


@contextlib.asynccontextmanager
async def exclusive(
    store: LockStore,
    key: str,
    *,
    owner: str,
    lease_seconds: float,
    wait_seconds: float,
    log: Any = None,
) -> AsyncIterator[None]:
    """Hold ``key`` in ``store`` while the block runs; wait up to ``wait_seconds`` for it.

    The lease is renewed every third of itself while the block runs, so a long write
    keeps it and a dead holder loses it. Raises :class:`TargetLocked` (retried with
    backoff like any transient failure) when the target stays busy.
    """
    token = f"{owner}:{uuid.uuid4().hex[:8]}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    pause = 0.02
    while not await asyncio.to_thread(store.acquire, key, token, lease_seconds):
        if loop.time() >= deadline:
            raise TargetLocked(f"the target {key} is held by another run; retried later")
        # Jittered, growing pauses: waiters on one target do not poll the database in step.
        await asyncio.sleep(min(pause, max(deadline - loop.time(), 0)) * random.uniform(0.5, 1.0))
        pause = min(pause * 2, 1.0)

    async def renew() -> None:
        while True:
            await asyncio.sleep(max(lease_seconds / 3, 0.05))
            try:
                kept = await asyncio.to_thread(store.acquire, key, token, lease_seconds)
            except Exception:  # a missed renewal is retried at the next one
                kept = True
            if not kept and log is not None:
                log.warning("a target lock's lease ran out while held", key=key)

    renewing = asyncio.create_task(renew())
    try:
        yield
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        try:
            await asyncio.to_thread(store.release, key, token)
        except Exception:  # it expires on its own after one lease
            if log is not None:
                log.warning("releasing a target lock failed; it expires with its lease", key=key)
