"""Run rows: created by the scheduler or a person, claimed by a worker, finished with counts."""

from __future__ import annotations

import socket
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from core import audit, audit_checkpoint
from core.clock import Clock, SystemClock
from core.errors import LeaseLost
from core.logging import redact_text
from core.queue_ops import lease_end, lease_now
from core.records import IN_PROCESS_OWNER, RunLogEntry, levels_from
from core.storage.db import Database
from core.storage.models import Run, RunLog, RunStatus, Tenant

COUNT_FIELDS = ("collected", "done", "needs_review", "failed_business", "failed_application", "uncertain", "retried")


class SqlRunStore:
    """Creates, claims and finishes runs in the database (the :class:`core.interfaces.RunStore` port)."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()

    def ensure_tenant(self, code: str, name: str, ops_email: str | None = None) -> None:
        """Create or update a tenant row (from the settings' tenant list)."""
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        stmt = dialect_insert(Tenant).values(code=code, name=name, ops_email=ops_email, created_at=self.clock.now())
        # An upsert: several processes starting at once must not trip over each other.
        stmt = stmt.on_conflict_do_update(index_elements=["code"], set_={"name": name, "ops_email": ops_email})
        with self.db.session() as s:
            s.execute(stmt)

    def create(
        self,
        *,
        robot: str,
        tenant: str,
        trigger: str,
        status: RunStatus = RunStatus.queued,
        schedule: str | None = None,
        slot: str | None = None,
        dry_run: bool = False,
        item_limit: int | None = None,
        deadline_at: datetime | None = None,
        error: str | None = None,
        actor: str = "system:kollega",
    ) -> int | None:
        """Insert a run; None when its (schedule, slot) already exists (another scheduler got it)."""
        now = self.clock.now()
        try:
            with self.db.session() as s:
                run = Run(
                    robot=robot,
                    tenant=tenant,
                    trigger=trigger,
                    status=status,
                    schedule=schedule,
                    slot=slot,
                    dry_run=dry_run,
                    item_limit=item_limit,
                    deadline_at=deadline_at,
                    created_at=now,
                    error=error,
                    **{f: 0 for f in COUNT_FIELDS},
                )
                if status in (RunStatus.missed, RunStatus.skipped):
                    run.finished_at = now
                s.add(run)
                s.flush()
                audit.append(
                    s,
                    actor=actor,
                    action=f"run.{status.value}",
                    tenant=tenant,
                    details={
                        "run_id": run.id,
                        "robot": robot,
                        "trigger": trigger,
                        "schedule": schedule,
                        "slot": slot,
                        "dry_run": dry_run,
                        "reason": error,
                    },
                    now=now,
                )
                return run.id
        except IntegrityError as exc:
            # Only the slot's own unique constraint means "another scheduler got it first".
            if schedule is None or (
                "uq_runs_schedule_tenant_slot" not in str(exc.orig) and not self._slot_taken(schedule, tenant, slot)
            ):
                raise
            return None

    def _slot_taken(self, schedule: str, tenant: str, slot: str | None) -> bool:
        with self.db.session() as s:
            return (
                s.scalar(select(Run.id).where(Run.schedule == schedule, Run.tenant == tenant, Run.slot == slot))
                is not None
            )

    def claim_queued(
        self,
        owner: str,
        lease_seconds: float,
        *,
        exclude_tenants: Collection[str] = (),
        resumable_only: bool = False,
    ) -> Run | None:
        """Take the next run: one whose worker died first, then queued ones, fairly by municipality.

        A running run whose lease ran out (its worker stopped renewing it) is resumed before
        any new run starts. Among queued runs, the municipality with the fewest runs going
        now comes first, then the oldest: one municipality's long night does not hold
        another's back.
        """
        now = self.clock.now()
        # A run executed in-process (IN_PROCESS_OWNER) is never resumed by a worker: mark_abandoned's.
        resumable = (
            (Run.status == RunStatus.running)
            & (Run.lease_until < now)
            & ~Run.lease_owner.startswith(IN_PROCESS_OWNER, autoescape=True)
        )
        due = resumable if resumable_only else (Run.status == RunStatus.queued) | resumable
        if exclude_tenants:
            due = due & Run.tenant.not_in(list(exclude_tenants))
        going = aliased(Run)
        busy = (
            select(func.count(going.id))
            .where(going.tenant == Run.tenant, going.status == RunStatus.running, going.lease_until >= now)
            .scalar_subquery()
        )
        pick = select(Run.id).where(due).order_by(case((resumable, 0), else_=1), busy, Run.created_at, Run.id).limit(1)
        if self.db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        with self.db.session() as s:
            run_id = s.scalar(
                update(Run)
                .where(Run.id.in_(pick.scalar_subquery()))
                .values(
                    status=RunStatus.running,
                    lease_owner=owner,
                    host=socket.gethostname(),
                    lease_until=now + timedelta(seconds=lease_seconds),
                )
                .returning(Run.id)
                .execution_options(synchronize_session=False)
            )
            return s.get(Run, run_id) if run_id is not None else None

    def start(self, run_id: int, owner: str, lease_seconds: float) -> None:
        """Mark a run as running on this host."""
        now = self.clock.now()
        with self.db.session() as s:
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    status=RunStatus.running,
                    started_at=now,
                    host=socket.gethostname(),
                    lease_owner=owner,
                    lease_until=lease_end(self.db, self.clock, lease_seconds),
                )
            )

    def heartbeat(
        self, run_id: int, lease_seconds: float, counts: dict[str, int] | None = None, *, owner: str | None = None
    ) -> None:
        """Renew the run's lease, and store the counts so far for the dashboard.

        With ``owner``, only while that owner still holds the running run: :class:`LeaseLost`
        when another worker resumed it or it was marked abandoned.
        """
        stmt = update(Run).where(Run.id == run_id)
        if owner is not None:
            stmt = stmt.where(Run.lease_owner == owner, Run.status == RunStatus.running)
        with self.db.session() as s:
            res = s.execute(
                stmt.values(
                    lease_until=lease_end(self.db, self.clock, lease_seconds),
                    # Only the counts the runs table has columns for (a summary may carry more).
                    **{k: v for k, v in (counts or {}).items() if k in COUNT_FIELDS},
                ).execution_options(synchronize_session=False)
            )
            if owner is not None and res.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost(f"run {run_id}: lease lost; another worker owns the run now, or it was ended")

    def mark_abandoned(self, *, actor: str = "system:kollega") -> list[int]:
        """Mark in-process runs whose heartbeat is older than their lease as ``abandoned``; returns their ids.

        Only runs no worker can resume (``kollega run``, ``night``, ``demo``: lease owner
        :data:`~core.records.IN_PROCESS_OWNER`); a worker's run is resumed by the next
        free worker instead (claim_queued).
        """
        now = self.clock.now()
        with self.db.session() as s:
            rows = s.execute(
                update(Run)
                .where(
                    Run.status == RunStatus.running,
                    Run.lease_until < lease_now(self.db, self.clock),
                    Run.lease_owner.startswith(IN_PROCESS_OWNER, autoescape=True),
                )
                .values(
                    status=RunStatus.abandoned,
                    finished_at=now,
                    error="the process running it stopped (killed, or the machine went down) before it finished",
                    lease_owner=None,
                    lease_until=None,
                )
                .returning(Run.id, Run.tenant, Run.robot)
                .execution_options(synchronize_session=False)
            ).all()
            for r in rows:
                audit.append(
                    s,
                    actor=actor,
                    action="run.abandoned",
                    tenant=r.tenant,
                    details={"run_id": r.id, "robot": r.robot},
                    now=now,
                )
        return sorted(r.id for r in rows)

    def finish(
        self,
        run_id: int,
        status: RunStatus,
        counts: dict[str, int],
        error: str | None = None,
        actor: str = "system:kollega",
        *,
        owner: str | None = None,
    ) -> None:
        """Record the end of a run with its counts (error text is redacted).

        With ``owner``, only while that owner still holds the running run (:class:`LeaseLost`
        otherwise): a worker that lost its run never overwrites the new owner's record.
        """
        now = self.clock.now()
        safe_error = redact_text(error) if error else None
        with self.db.session() as s:
            run = s.get(Run, run_id, with_for_update=owner is not None)
            assert run is not None
            if owner is not None and (run.lease_owner != owner or run.status != RunStatus.running):
                raise LeaseLost(f"run {run_id}: lease lost; another worker owns the run now, or it was ended")
            run.status, run.finished_at, run.error = status, now, safe_error
            run.lease_owner = run.lease_until = None
            for f in COUNT_FIELDS:
                setattr(run, f, counts.get(f, 0))
            audit.append(
                s,
                actor=actor,
                action=f"run.{status.value}",
                tenant=run.tenant,
                details={"run_id": run_id, "robot": run.robot, **counts, "error": safe_error},
                now=now,
            )
            audit_checkpoint.request(s)  # the end of a run (of a night): checkpoint the chain's head

    def get(self, run_id: int) -> Run | None:
        """One run."""
        with self.db.session() as s:
            return s.get(Run, run_id)

    def recent(self, *, robot: str | None = None, tenant: str | None = None, limit: int = 50) -> list[Run]:
        """Newest runs first."""
        stmt = select(Run).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
        if robot:
            stmt = stmt.where(Run.robot == robot)
        if tenant:
            stmt = stmt.where(Run.tenant == tenant)
        with self.db.session() as s:
            return list(s.scalars(stmt).all())

    def last_slot(self, schedule: str) -> str | None:
        """The latest slot recorded for a schedule (any status)."""
        with self.db.session() as s:
            return s.scalar(
                select(Run.slot)
                .where(Run.schedule == schedule, Run.slot.is_not(None))
                .order_by(Run.slot.desc())
                .limit(1)
            )

    def record_version(self, run_id: int, version: str | None, code_hash: str | None) -> None:
        """Store the robot's distribution version and code hash on the run (as it starts)."""
        with self.db.session() as s:
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(robot_version=(version or None) and version[:100], code_hash=code_hash)
                .execution_options(synchronize_session=False)
            )

    def append_log(self, run_id: int, entries: Sequence[RunLogEntry], dropped: int = 0) -> None:
        """Add entries (already redacted, in seq order) to the run's log; ``dropped`` more were not kept."""
        if not entries and not dropped:
            return
        with self.db.session() as s:
            if entries:
                s.execute(
                    insert(RunLog),
                    [
                        {
                            "run_id": run_id,
                            "seq": e.seq,
                            "at": e.at,
                            "level": e.level,
                            "event": e.event[:500],
                            "item_id": e.item_id,
                            "fields": e.fields,
                        }
                        for e in entries
                    ],
                )
            if dropped:
                s.execute(
                    update(Run)
                    .where(Run.id == run_id)
                    .values(log_dropped=Run.log_dropped + dropped)
                    .execution_options(synchronize_session=False)
                )

    def run_log(
        self, run_id: int, *, level: str | None = None, item_id: int | None = None, limit: int = 2000
    ) -> list[RunLogEntry]:
        """The run's log in order: entries of ``level`` or above, of ``item_id`` only when given."""
        stmt = select(RunLog).where(RunLog.run_id == run_id)
        if level is not None:
            stmt = stmt.where(RunLog.level.in_(levels_from(level)))
        if item_id is not None:
            stmt = stmt.where(RunLog.item_id == item_id)
        with self.db.session() as s:
            rows = s.scalars(stmt.order_by(RunLog.seq).limit(limit)).all()
            return [RunLogEntry(r.seq, r.at, r.level, r.event, r.item_id, dict(r.fields or {})) for r in rows]

    def as_dict(self, run: Run) -> dict[str, Any]:
        """A JSON-friendly view of a run."""
        return {
            "id": run.id,
            "robot": run.robot,
            "tenant": run.tenant,
            "trigger": run.trigger,
            "schedule": run.schedule,
            "slot": run.slot,
            "status": run.status.value,
            "dry_run": run.dry_run,
            **{f: getattr(run, f) for f in COUNT_FIELDS},
            "created_at": run.created_at.isoformat() if run.created_at else None,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "error": run.error,
            "robot_version": run.robot_version,
            "code_hash": run.code_hash,
        }
