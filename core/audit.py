"""Append-only, hash-chained audit and access log.

Each event's hash is SHA-256 over the canonical JSON of its fields and the previous
event's hash. Appends are serialised through the single ``audit_head`` row, locked by an
UPDATE in the appending transaction, so concurrent writers (several worker processes on
PostgreSQL) never fork the chain. On PostgreSQL that UPDATE is the append's one statement:
it advances the head, computes the new hash in the database (``sha256`` over the same
canonical JSON, built here with the seq and the previous hash left as gaps) and inserts the
event, so the lock is never held while this process waits for a round trip or for its
turn to run Python; the lock ends with the caller's commit (at once, for a statement on its
own: :meth:`core.storage.db.Database.statement_session`).

``verify`` walks the chain and names the first bad seq; a checkpoint (seq + hash kept
outside the database, :mod:`core.audit_checkpoint`) detects truncation of the tail and a
rewrite of the whole chain.

Why no keyed hash (HMAC): every process that appends (web, workers, scheduler) would need
the key, so an intruder on an application host has it along with the database password;
one with database access only is stopped on PostgreSQL by the append-only guard (a
trigger, migration 0006) and role separation, and a whole rewrite is caught by the
checkpoints kept outside. Unkeyed SHA-256 lets anyone with read access, an external
auditor included, verify the chain without holding a secret that could forge events.
See docs/operations.md, "The audit log".
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Insert,
    LargeBinary,
    String,
    Table,
    Update,
    bindparam,
    column,
    insert,
    literal_column,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit_checkpoint
from core.clock import Clock, SystemClock
from core.errors import AuditChainBroken, ConfigError
from core.storage.models import AuditEvent, AuditHead, JSONType, UTCDateTime

GENESIS_HASH = "0" * 64


def _canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    seq: int,
    time: datetime,
    tenant: str | None,
    actor: str,
    action: str,
    subject: str | None,
    purpose: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) over the canonical JSON of one event and its predecessor's hash."""
    canonical = _canonical(
        seq=seq,
        time=time,
        tenant=tenant,
        actor=actor,
        action=action,
        subject=subject,
        purpose=purpose,
        details=details,
        prev_hash=prev_hash,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _canonical(
    *,
    seq: int | str,
    time: datetime,
    tenant: str | None,
    actor: str,
    action: str,
    subject: str | None,
    purpose: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "time": _canonical_time(time),
        "tenant": tenant,
        "actor": actor,
        "action": action,
        "subject": subject,
        "purpose": purpose,
        "details": details,
        "prev_hash": prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_with_gaps(
    *,
    time: datetime,
    tenant: str | None,
    actor: str,
    action: str,
    subject: str | None,
    purpose: str | None,
    details: dict[str, Any],
) -> tuple[bytes, bytes, bytes]:
    """An event's canonical JSON (UTF-8) in three pieces, around its ``prev_hash`` and its ``seq``.

    ``before + prev_hash + between + str(seq) + after`` is byte for byte what
    :func:`event_hash` hashes: the database fills the gaps with the head it locks.
    """
    prev_mark, seq_mark = secrets.token_hex(16), secrets.token_hex(16)
    canonical = _canonical(
        seq=seq_mark,
        time=time,
        tenant=tenant,
        actor=actor,
        action=action,
        subject=subject,
        purpose=purpose,
        details=details,
        prev_hash=prev_mark,
    )
    # The keys are sorted: "prev_hash" comes before "seq"; each mark is random, so found once.
    before, rest = canonical.split(prev_mark)
    between, after = rest.split(f'"{seq_mark}"')
    return before.encode("utf-8"), between.encode("utf-8"), after.encode("utf-8")


def _normalise(value: Any) -> Any:
    # PostgreSQL's JSONB rewrites some numbers (-0.0 → 0, 1e20 → 100000000000000000000):
    # hash only forms every backend gives back unchanged.
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    # Round-trip so that what is hashed is exactly what the JSON column gives back.
    result: dict[str, Any] = _normalise(json.loads(json.dumps(details, sort_keys=True, default=str)))
    return result


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    tenant: str | None = None,
    subject: str | None = None,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
    alongside: Insert | Update | None = None,
    alongside_values: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (committed with the caller's change).

    ``alongside``: one more change that must commit with the event and only with it (an
    INSERT or UPDATE built once, ``alongside_values`` bound to its parameters by name; none
    named ``ev_…`` (the event's own) nor as a column of an UPDATE's table, which SQLAlchemy
    would take for a value to set). On PostgreSQL it is a CTE of the append's one
    statement, so that a statement session (:meth:`core.storage.db.Database.statement_session`)
    writes both in one implicit transaction and the head stays locked for that statement
    only; on SQLite it runs just before the append, in the caller's transaction.
    """
    time = (now or datetime.now(UTC)).astimezone(UTC)
    clean = _jsonable(details or {})
    if session.get_bind().dialect.name == "postgresql":
        return _append_in_one_statement(
            session,
            time=time,
            tenant=tenant,
            actor=actor,
            action=action,
            subject=subject,
            purpose=purpose,
            details=clean,
            alongside=alongside,
            alongside_values=alongside_values or {},
        )
    if alongside is not None:
        session.execute(alongside, dict(alongside_values or {}))
    # The UPDATE takes the row lock that serialises appends until the transaction ends
    # (SQLite: the transaction's BEGIN IMMEDIATE already holds the database's write lock).
    row = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash)
    ).one_or_none()
    if row is None:
        raise ConfigError("the audit chain has no head row: run `kollega db upgrade`")
    seq, prev_hash = int(row[0]), str(row[1])
    digest = event_hash(
        seq=seq,
        time=time,
        tenant=tenant,
        actor=actor,
        action=action,
        subject=subject,
        purpose=purpose,
        details=clean,
        prev_hash=prev_hash,
    )
    event = AuditEvent(
        seq=seq,
        time=time,
        tenant=tenant,
        actor=actor,
        action=action,
        subject=subject,
        purpose=purpose,
        details=clean,
        prev_hash=prev_hash,
        hash=digest,
    )
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=digest, prev_hash=prev_hash))
    session.flush()
    # Every N-th event: checkpoint the head once this transaction has committed.
    audit_checkpoint.note_append(session, seq, digest)
    return event


#: PostgreSQL: lock and advance the head and hash. The SET expressions see the head as locked
#: (the latest committed one, re-read after a wait), so ``prev_hash = hash`` is the hash this
#: event follows; RETURNING gives the new row to the event's INSERT (:func:`_append_statement`).
_HEAD = (
    text(
        """
        UPDATE audit_head
        SET seq = seq + 1,
            prev_hash = hash,
            hash = encode(
                sha256(:ev_before || convert_to(hash, 'UTF8') || :ev_between
                       || convert_to((seq + 1)::text, 'UTF8') || :ev_after),
                'hex')
        WHERE id = 1
        RETURNING seq, prev_hash, hash
        """
    )
    .bindparams(
        bindparam("ev_before", type_=LargeBinary()),
        bindparam("ev_between", type_=LargeBinary()),
        bindparam("ev_after", type_=LargeBinary()),
    )
    .columns(column("seq", BigInteger()), column("prev_hash", String()), column("hash", String()))
)


@lru_cache(maxsize=16)
def _append_statement(alongside: Insert | Update | None) -> Any:
    """PostgreSQL: lock and advance the head, hash, and insert the event, in one statement.

    ``alongside`` (an INSERT or UPDATE of the caller's, its values bound by name) becomes a
    data-modifying CTE of the same statement: it commits with the event or not at all, and
    the head is still locked only while this one statement runs. Built once per ``alongside``.
    """
    head = _HEAD.cte("head")
    # From one row outer-joined to the head: without a head row the event's seq is NULL and the
    # whole statement fails (alongside included) instead of writing nothing and committing.
    one = select(literal_column("1").label("one")).subquery("one")
    event = select(
        head.c.seq,
        bindparam("ev_time", type_=UTCDateTime()),
        bindparam("ev_tenant", type_=String()),
        bindparam("ev_actor", type_=String()),
        bindparam("ev_action", type_=String()),
        bindparam("ev_subject", type_=String()),
        bindparam("ev_purpose", type_=String()),
        bindparam("ev_details", type_=JSONType),
        head.c.prev_hash,
        head.c.hash,
    ).select_from(one.outerjoin(head, true()))
    columns = ["seq", "time", "tenant", "actor", "action", "subject", "purpose", "details", "prev_hash", "hash"]
    events = cast(Table, AuditEvent.__table__)
    stmt = insert(events).from_select(columns, event).returning(events.c.seq, events.c.prev_hash, events.c.hash)
    if alongside is not None:
        stmt = stmt.add_cte(alongside.cte("alongside"))
    return stmt


def _append_in_one_statement(
    session: Session,
    *,
    time: datetime,
    tenant: str | None,
    actor: str,
    action: str,
    subject: str | None,
    purpose: str | None,
    details: dict[str, Any],
    alongside: Insert | Update | None = None,
    alongside_values: Mapping[str, Any],
) -> AuditEvent:
    before, between, after = canonical_with_gaps(
        time=time, tenant=tenant, actor=actor, action=action, subject=subject, purpose=purpose, details=details
    )
    # The caller's pending changes go first: the head's lock is taken as late as possible.
    session.flush()
    try:
        row = session.execute(
            _append_statement(alongside),
            {
                **alongside_values,
                "ev_before": before,
                "ev_between": between,
                "ev_after": after,
                "ev_time": time,
                "ev_tenant": tenant,
                "ev_actor": actor,
                "ev_action": action,
                "ev_subject": subject,
                "ev_purpose": purpose,
                "ev_details": details,
            },
        ).one()
    except IntegrityError as exc:
        if getattr(getattr(exc.orig, "diag", None), "column_name", None) == "seq":
            raise ConfigError("the audit chain has no head row: run `kollega db upgrade`") from None
        raise
    seq, prev_hash, digest = int(row[0]), str(row[1]), str(row[2])
    audit_checkpoint.note_append(session, seq, digest)
    return AuditEvent(
        seq=seq,
        time=time,
        tenant=tenant,
        actor=actor,
        action=action,
        subject=subject,
        purpose=purpose,
        details=details,
        prev_hash=prev_hash,
        hash=digest,
    )


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of walking the chain."""

    ok: bool
    events: int
    last_seq: int
    last_hash: str
    bad_seq: int | None = None
    problem: str | None = None
    #: The checkpoint (kept outside the database) the chain was checked against, if any.
    checkpoint_seq: int | None = None


def _iter_events(session: Session, batch: int = 5000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(session: Session, checkpoint: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the chain from seq 1; report the first modified, missing, inserted or moved event."""
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    hashes_at: dict[int, str] = {}
    want_cp = checkpoint[0] if checkpoint else None

    def broken(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(False, count, expected_seq - 1, prev_hash, seq, problem)

    for ev in _iter_events(session):
        if ev.seq != expected_seq:
            if ev.seq > expected_seq:
                return broken(expected_seq, f"event {expected_seq} is missing (next present is {ev.seq})")
            return broken(ev.seq, f"event {ev.seq} is out of order")
        if ev.prev_hash != prev_hash:
            return broken(
                ev.seq, f"event {ev.seq} does not link to event {ev.seq - 1} (inserted, deleted or reordered)"
            )
        recomputed = event_hash(
            seq=ev.seq,
            time=ev.time,
            tenant=ev.tenant,
            actor=ev.actor,
            action=ev.action,
            subject=ev.subject,
            purpose=ev.purpose,
            details=ev.details,
            prev_hash=ev.prev_hash,
        )
        if recomputed != ev.hash:
            return broken(ev.seq, f"event {ev.seq} was modified (its content does not match its hash)")
        if want_cp is not None and ev.seq == want_cp:
            hashes_at[ev.seq] = ev.hash
        prev_hash, expected_seq, count = ev.hash, expected_seq + 1, count + 1
    last_seq = expected_seq - 1
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one_or_none()
    if head is not None:
        head_seq, head_hash = int(head[0]), str(head[1])
        if head_seq < last_seq:
            return VerifyResult(
                False,
                count,
                last_seq,
                prev_hash,
                head_seq + 1,
                f"events after {head_seq} were added outside the audit log's append (the head records {head_seq})",
            )
        if head_seq > last_seq:
            return VerifyResult(
                False,
                count,
                last_seq,
                prev_hash,
                last_seq + 1,
                f"the chain ends at event {last_seq} but its head records event {head_seq}: "
                "events were removed from the end",
            )
        if head_hash != prev_hash:
            return VerifyResult(
                False,
                count,
                last_seq,
                prev_hash,
                last_seq,
                f"event {last_seq} was rewritten (its hash differs from the one the head recorded)",
            )
    if checkpoint is not None:
        cp_seq, cp_hash = checkpoint
        if cp_seq > expected_seq - 1:
            return VerifyResult(
                False,
                count,
                expected_seq - 1,
                prev_hash,
                expected_seq,
                f"the checkpoint names event {cp_seq} but the chain ends at {expected_seq - 1}: it was truncated",
            )
        if hashes_at.get(cp_seq) != cp_hash:
            return VerifyResult(
                False,
                count,
                expected_seq - 1,
                prev_hash,
                cp_seq,
                f"event {cp_seq} does not match the checkpoint's hash: the chain was rewritten",
            )
    return VerifyResult(
        True, count, expected_seq - 1, prev_hash, checkpoint_seq=checkpoint[0] if checkpoint is not None else None
    )


def latest(session: Session) -> tuple[int, str]:
    """The chain's latest seq and hash, for a checkpoint kept outside the database."""
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).one_or_none()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def write_checkpoint(path: Path, seq: int, digest: str, now: datetime | None = None) -> None:
    """Append one checkpoint (a JSON line, fsynced) to a file kept outside the database's reach."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    audit_checkpoint.FileSink(path).write(audit_checkpoint.Checkpoint(seq, digest, stamp, "manual"))


def read_checkpoint(path: Path) -> tuple[int, str]:
    """The last checkpoint in a file written by :func:`write_checkpoint` or the file sink."""
    if not path.exists():
        raise ConfigError(f"checkpoint file {path} cannot be read: it does not exist")
    cp = audit_checkpoint.read_latest(path)
    if cp is None:
        raise ConfigError(f"checkpoint file {path} holds no checkpoint (one JSON object or 'SEQ HASH' per line)")
    return cp.seq, cp.hash


class Auditor:
    """Writes audit events through a session factory (the :class:`core.interfaces.AuditSink` port in SQL)."""

    def __init__(self, session_factory: Callable[[], Any], clock: Clock | None = None) -> None:
        self._session_factory = session_factory
        self._clock: Clock = clock or SystemClock()

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
        """Append one event in its own transaction; returns its seq."""
        with self._session_factory() as session:
            ev = append(
                session,
                actor=actor,
                action=action,
                tenant=tenant,
                subject=subject,
                purpose=purpose,
                details=details,
                now=self._clock.now(),
            )
            return ev.seq

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
        """Record a read of personal data: who, whose, from which system, why."""
        return self.record(
            actor=actor,
            action="data.read",
            tenant=tenant,
            subject=subject,
            purpose=purpose,
            details={"system": system, **(details or {})},
        )

    def events(self, after_seq: int = 0) -> list[AuditEvent]:
        """The events after ``after_seq``, in order."""
        with self._session_factory() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq)))

    def verify(self, checkpoint: tuple[int, str] | None = None) -> VerifyResult:
        """Verify the chain (see :func:`verify`)."""
        with self._session_factory() as session:
            return verify(session, checkpoint)


def require_intact(result: VerifyResult) -> None:
    """Raise AuditChainBroken naming the first bad seq unless ``result`` is ok."""
    if not result.ok:
        raise AuditChainBroken(result.problem, seq=result.bad_seq)
