"""Runs, the audit log and artifacts in memory."""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.audit import GENESIS_HASH, VerifyResult, event_hash
from core.errors import LeaseLost
from core.logging import redact_text
from core.records import IN_PROCESS_OWNER, RunLogEntry, RunStatus, levels_from

if TYPE_CHECKING:
    pass

from core.testing.memory.state import COUNT_FIELDS, MemoryArtifact, MemoryEvent, MemoryRun, MemoryState


class MemoryRunStore:
    """Runs in memory (the :class:`core.interfaces.RunStore` port)."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state

    def ensure_tenant(self, code: str, name: str, ops_email: str | None = None) -> None:
        """Create or update a tenant."""
        with self.state.lock:
            self.state.tenants[code] = (name, ops_email)

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
        """Insert a run; None when its (schedule, tenant, slot) already exists."""
        with self.state.lock:
            if schedule is not None and any(
                (r.schedule, r.tenant, r.slot) == (schedule, tenant, slot) for r in self.state.runs.values()
            ):
                return None
            now = self.state.clock.now()
            run = MemoryRun(
                self.state.next_id("run"),
                robot,
                tenant,
                trigger,
                schedule,
                slot,
                status,
                dry_run,
                item_limit,
                now,
                deadline_at=deadline_at,
                error=error,
            )
            if status in (RunStatus.missed, RunStatus.skipped):
                run.finished_at = now
            self.state.runs[run.id] = run
            details = {
                "run_id": run.id,
                "robot": robot,
                "trigger": trigger,
                "schedule": schedule,
                "slot": slot,
                "dry_run": dry_run,
                "reason": error,
            }
            self.state.audit(actor=actor, action=f"run.{status.value}", tenant=tenant, details=details)
            return run.id

    def claim_queued(
        self,
        owner: str,
        lease_seconds: float,
        *,
        exclude_tenants: Collection[str] = (),
        resumable_only: bool = False,
    ) -> MemoryRun | None:
        """Take a run whose worker died first, then queued ones, fairly by municipality (see SqlRunStore)."""
        with self.state.lock:
            now = self.state.clock.now()
            due = [
                r
                for r in self.state.runs.values()
                if (
                    (r.status == RunStatus.queued and not resumable_only)
                    or (
                        r.status == RunStatus.running
                        and r.lease_until is not None
                        and r.lease_until < now
                        and not (r.lease_owner or "").startswith(IN_PROCESS_OWNER)  # never resumed: abandoned
                    )
                )
                and r.tenant not in exclude_tenants
            ]
            if not due:
                return None

            # A run whose worker died first; then the municipality with the fewest runs going.
            def busy(tenant: str) -> int:
                return sum(
                    1
                    for r in self.state.runs.values()
                    if r.tenant == tenant
                    and r.status == RunStatus.running
                    and r.lease_until is not None
                    and r.lease_until >= now
                )

            run = min(due, key=lambda r: (r.status != RunStatus.running, busy(r.tenant), r.created_at, r.id))
            run.status, run.lease_owner, run.host = RunStatus.running, owner, "memory"
            run.lease_until = now + timedelta(seconds=lease_seconds)
            return copy.deepcopy(run)

    def start(self, run_id: int, owner: str, lease_seconds: float) -> None:
        """Mark a run as running."""
        with self.state.lock:
            now = self.state.clock.now()
            run = self.state.runs[run_id]
            run.status, run.started_at, run.host, run.lease_owner = RunStatus.running, now, "memory", owner
            run.lease_until = now + timedelta(seconds=lease_seconds)

    def heartbeat(
        self, run_id: int, lease_seconds: float, counts: dict[str, int] | None = None, *, owner: str | None = None
    ) -> None:
        """Renew the run's lease and store the counts so far (with ``owner``: only while it holds the run)."""
        with self.state.lock:
            run = self.state.runs[run_id]
            self._check_owner(run, owner)
            run.lease_until = self.state.clock.now() + timedelta(seconds=lease_seconds)
            for k, v in (counts or {}).items():
                if k in COUNT_FIELDS:
                    setattr(run, k, v)

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
        """Record the end of a run with its counts (error text redacted; with ``owner``: only while it holds the run)."""
        with self.state.lock:
            run = self.state.runs[run_id]
            self._check_owner(run, owner)
            safe_error = redact_text(error) if error else None
            run.status, run.finished_at, run.error = status, self.state.clock.now(), safe_error
            run.lease_owner = run.lease_until = None
            for f in COUNT_FIELDS:
                setattr(run, f, counts.get(f, 0))
            details = {"run_id": run_id, "robot": run.robot, **counts, "error": safe_error}
            self.state.audit(actor=actor, action=f"run.{status.value}", tenant=run.tenant, details=details)

    @staticmethod
    def _check_owner(run: MemoryRun, owner: str | None) -> None:
        if owner is not None and (run.lease_owner != owner or run.status != RunStatus.running):
            raise LeaseLost(f"run {run.id}: lease lost; another worker owns the run now, or it was ended")

    def mark_abandoned(self, *, actor: str = "system:kollega") -> list[int]:
        """Mark in-process runs whose lease ran out as abandoned; returns their ids."""
        with self.state.lock:
            now = self.state.clock.now()
            found = [
                r
                for r in self.state.runs.values()
                if r.status == RunStatus.running
                and r.lease_until is not None
                and r.lease_until < now
                and (r.lease_owner or "").startswith(IN_PROCESS_OWNER)
            ]
            for r in found:
                r.status, r.finished_at, r.lease_owner, r.lease_until = RunStatus.abandoned, now, None, None
                r.error = "the process running it stopped (killed, or the machine went down) before it finished"
                self.state.audit(
                    actor=actor, action="run.abandoned", tenant=r.tenant, details={"run_id": r.id, "robot": r.robot}
                )
            return sorted(r.id for r in found)

    def get(self, run_id: int) -> MemoryRun | None:
        """A copy of one run, or None."""
        with self.state.lock:
            run = self.state.runs.get(run_id)
            return copy.deepcopy(run) if run is not None else None

    def last_slot(self, schedule: str) -> str | None:
        """The latest slot recorded for a schedule."""
        with self.state.lock:
            slots = [r.slot for r in self.state.runs.values() if r.schedule == schedule and r.slot is not None]
            return max(slots, default=None)

    def record_version(self, run_id: int, version: str | None, code_hash: str | None) -> None:
        """Store the robot's distribution version and code hash on the run."""
        with self.state.lock:
            run = self.state.runs[run_id]
            run.robot_version, run.code_hash = (version or None) and version[:100], code_hash

    def append_log(self, run_id: int, entries: Sequence[RunLogEntry], dropped: int = 0) -> None:
        """Add entries to the run's log; ``dropped`` more were not kept."""
        with self.state.lock:
            run = self.state.runs[run_id]
            seen = {e.seq for e in run.log}
            if any(e.seq in seen for e in entries):
                raise ValueError(f"run {run_id}: a log entry's seq is already stored")  # as the unique constraint
            run.log.extend(replace(e, event=e.event[:500], fields=copy.deepcopy(e.fields)) for e in entries)
            run.log.sort(key=lambda e: e.seq)
            run.log_dropped += dropped

    def run_log(
        self, run_id: int, *, level: str | None = None, item_id: int | None = None, limit: int = 2000
    ) -> list[RunLogEntry]:
        """The run's log in order, filtered by minimum level and item."""
        wanted = levels_from(level) if level is not None else None
        with self.state.lock:
            run = self.state.runs.get(run_id)
            found = [
                e
                for e in (run.log if run is not None else [])
                if (wanted is None or e.level in wanted) and (item_id is None or e.item_id == item_id)
            ]
            return copy.deepcopy(found[:limit])


class MemoryAuditSink:
    """The hash-chained audit log in memory (the :class:`core.interfaces.AuditSink` port)."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state

    def record(
        self,
        *,
        actor: str,
        action: str,
        tenant: str | None = None,
        subject: str | None = None,
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Append one event; returns its seq."""
        with self.state.lock:
            return self.state.audit(
                actor=actor, action=action, tenant=tenant, subject=subject, purpose=purpose, details=details
            )

    def data_access(
        self,
        *,
        actor: str,
        tenant: str | None,
        subject: str,
        system: str,
        purpose: str,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Record a read of personal data."""
        return self.record(
            actor=actor,
            action="data.read",
            tenant=tenant,
            subject=subject,
            purpose=purpose,
            details={"system": system, **(details or {})},
        )

    def events(self, after_seq: int = 0) -> list[MemoryEvent]:
        """The events after ``after_seq``, in order."""
        with self.state.lock:
            return [e for e in self.state.events if e.seq > after_seq]

    def verify(self, checkpoint: tuple[int, str] | None = None) -> VerifyResult:
        """Walk the chain and name the first bad seq (a checkpoint detects truncation)."""
        with self.state.lock:
            prev, count = GENESIS_HASH, 0
            for n, ev in enumerate(self.state.events, start=1):
                fields = {k: v for k, v in ev.__dict__.items() if k != "hash"}
                if ev.seq != n or ev.prev_hash != prev or event_hash(**fields) != ev.hash:
                    return VerifyResult(False, count, n - 1, prev, n, f"event {n} was modified, moved or removed")
                prev, count = ev.hash, count + 1
            if checkpoint is not None:
                cp_seq, cp_hash = checkpoint
                known = {e.seq: e.hash for e in self.state.events}
                if known.get(cp_seq) != cp_hash:
                    problem = f"event {cp_seq} does not match the checkpoint: the chain was truncated or rewritten"
                    return VerifyResult(False, count, count, prev, cp_seq, problem)
            return VerifyResult(True, count, count, prev)


class MemoryArtifactStore:
    """Artifacts in memory, bytes included (the :class:`core.interfaces.ArtifactStore` port)."""

    def __init__(self, state: MemoryState, retention_days: int = 30) -> None:
        self.state = state
        self.retention = timedelta(days=retention_days)

    def save(
        self,
        *,
        tenant: str,
        work_item_id: int | None,
        kind: str,
        filename: str,
        content_type: str,
        data: bytes,
        sensitive: bool = True,
    ) -> int:
        """Keep one file; returns its id."""
        with self.state.lock:
            now = self.state.clock.now()
            art = MemoryArtifact(
                self.state.next_id("artifact"),
                tenant,
                work_item_id,
                kind,
                filename,
                content_type,
                bytes(data),
                sensitive,
                now,
                now + self.retention,
            )
            self.state.artifacts[art.id] = art
            return art.id

    def for_item(self, work_item_id: int) -> list[MemoryArtifact]:
        """The artifacts of one work item."""
        with self.state.lock:
            return sorted(
                (a for a in self.state.artifacts.values() if a.work_item_id == work_item_id), key=lambda a: a.id
            )

    def purge_expired(self) -> int:
        """Forget artifacts past their retention; returns how many."""
        with self.state.lock:
            now = self.state.clock.now()
            gone = [a.id for a in self.state.artifacts.values() if a.expires_at < now]
            for art_id in gone:
                del self.state.artifacts[art_id]
            return len(gone)


class MemoryAlertSink:
    """Operations alerts in memory (the :class:`core.interfaces.AlertSink` port)."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state
        #: Every alert raised, in order: dicts with the columns of ``web_alerts``.
        self.alerts: list[dict[str, Any]] = []

    def raise_alert(self, *, key: str, kind: str, tenant: str, robot: str, run_id: int | None, message: str) -> bool:
        """Keep the alert unless ``key`` exists; True when it is new."""
        with self.state.lock:
            if any(a["key"] == key[:200] for a in self.alerts):
                return False
            self.alerts.append(
                {
                    "key": key[:200],
                    "kind": kind[:32],
                    "tenant": tenant,
                    "robot": robot,
                    "run_id": run_id,
                    "message": redact_text(message),
                    "created_at": self.state.clock.now(),
                }
            )
            return True

    def alert_keys(self, tenant: str | None = None) -> list[str]:
        """The keys raised so far, oldest first."""
        with self.state.lock:
            return [a["key"] for a in self.alerts if tenant is None or a["tenant"] == tenant]
