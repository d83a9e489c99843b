"""The audit chain on SQLite and PostgreSQL: verification, the tamper suite, concurrent writers.

Tampering is done the way an intruder with database access would: raw SQL on the tables,
bypassing :func:`core.audit.append`. Each kind of tampering must be detected and the FIRST
bad seq named. On PostgreSQL the append-only trigger (migration 0006) refuses such statements
from every role but the owner (TestAppendOnlyGuard); the suite plays an intruder who got past
it (a superuser switching triggers off for the session) to show the chain still catches it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core import audit
from core.audit import Auditor, VerifyResult, read_checkpoint, require_intact, write_checkpoint
from core.errors import AuditChainBroken, ConfigError
from core.storage.db import Database
from core.storage.models import AuditEvent, AuditHead
from core.testing import FakeClock

N = 10


def verify(db: Database, checkpoint: tuple[int, str] | None = None) -> VerifyResult:
    with db.session() as s:
        return audit.verify(s, checkpoint)


def fill(db: Database, clock: FakeClock, n: int = N) -> Auditor:
    """Write n ordinary events (seq 1..n)."""
    auditor = Auditor(db.session, clock)
    for i in range(1, n + 1):
        clock.advance(1)
        auditor.record(
            actor=f"user:anna{i % 3}",
            action="review.opened",
            tenant="0000",
            subject=f"work_item:{i}",
            purpose="handläggning",
            details={"i": i, "queue": "example.review", "note": "åäö"},
        )
    return auditor


@contextmanager
def tamper(db: Database) -> Iterator[Session]:
    """A session that gets past the PostgreSQL append-only guard (as a superuser could)."""
    with db.session() as s:
        if db.dialect == "postgresql":
            s.execute(text("SET LOCAL session_replication_role = replica"))
        yield s


def sql(db: Database, statement: str, **params: Any) -> None:
    with tamper(db) as s:
        s.execute(text(statement), params)


def event(db: Database, seq: int) -> AuditEvent:
    with db.session() as s:
        ev = s.get(AuditEvent, seq)
        assert ev is not None
        return ev


def move_seqs(db: Database, first: int, delta: int) -> None:
    """Shift seq >= first by delta in two statements (a unique key cannot be shifted in place)."""
    sql(db, "UPDATE audit_events SET seq = -(seq + :d) WHERE seq >= :f", d=delta, f=first)
    sql(db, "UPDATE audit_events SET seq = -seq WHERE seq < 0")


def swap(db: Database, a: int, b: int) -> None:
    sql(db, "UPDATE audit_events SET seq = -1 WHERE seq = :a", a=a)
    sql(db, "UPDATE audit_events SET seq = :a WHERE seq = :b", a=a, b=b)
    sql(db, "UPDATE audit_events SET seq = :b WHERE seq = -1", b=b)


def insert_raw(
    db: Database,
    seq: int,
    prev_hash: str,
    digest: str | None = None,
    clock: FakeClock | None = None,
    actor: str = "user:mallory",
) -> None:
    """Insert an event directly; with digest None its hash is computed correctly (a careful forger)."""
    when = (clock or FakeClock()).now()
    fields: dict[str, Any] = {
        "seq": seq,
        "time": when,
        "tenant": "0000",
        "actor": actor,
        "action": "review.approved",
        "subject": "work_item:99",
        "purpose": None,
        "details": {"forged": True},
        "prev_hash": prev_hash,
    }
    fields["hash"] = digest or audit.event_hash(**fields)
    with db.session() as s:
        s.add(AuditEvent(**fields))


def assert_broken(result: VerifyResult, seq: int) -> None:
    assert not result.ok, "tampering was not detected"
    assert result.bad_seq == seq, f"first bad seq should be {seq}: {result.problem}"
    assert result.problem
    with pytest.raises(AuditChainBroken) as info:
        require_intact(result)
    assert info.value.seq == seq


class TestIntactChain:
    """Ordinary appends give a chain that verifies."""

    def test_empty_chain_verifies(self, db: Database) -> None:
        result = verify(db)
        assert result.ok
        assert (result.events, result.last_seq, result.last_hash) == (0, 0, audit.GENESIS_HASH)

    def test_chain_verifies(self, db: Database, clock: FakeClock) -> None:
        fill(db, clock)
        result = verify(db)
        assert result.ok, result.problem
        assert (result.events, result.last_seq) == (N, N)
        require_intact(result)  # does not raise

    def test_events_link_and_carry_their_fields(self, db: Database, clock: FakeClock) -> None:
        fill(db, clock, 3)
        with db.session() as s:
            events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
            head = s.get(AuditHead, 1)
            assert head is not None
            head_seq, head_hash = head.seq, head.hash
        assert [e.seq for e in events] == [1, 2, 3]
        assert events[0].prev_hash == audit.GENESIS_HASH
        assert events[1].prev_hash == events[0].hash
        assert events[2].prev_hash == events[1].hash
        assert (head_seq, head_hash) == (3, events[2].hash)
        assert events[0].time == clock.now() - timedelta(seconds=2)
        assert events[0].time.tzinfo is not None
        assert events[0].details == {"i": 1, "queue": "example.review", "note": "åäö"}

    def test_real_clock_microseconds_survive(self, db: Database) -> None:
        auditor = Auditor(db.session)  # the real clock, with microseconds
        for _ in range(3):
            auditor.record(actor="system:kollega", action="test")
        assert verify(db).ok

    @pytest.mark.parametrize(
        "details",
        [
            pytest.param({"nested": {"b": [1, 2, {"c": None}], "a": True}, "text": "Ärende åäö ÅÄÖ €"}, id="nested"),
            pytest.param({"amount": 1234.5, "ratio": 0.1, "count": 2**40}, id="numbers"),
            pytest.param({"when": FakeClock().now()}, id="datetime-as-text"),
            pytest.param({"diff": round(-0.001, 2)}, id="negative-zero"),  # an amount difference rounding to -0.0
            pytest.param({"big": 1e20}, id="large-float"),
            # PostgreSQL hashes in the database around the seq and prev_hash: text that looks like them stays text.
            pytest.param({"note": '"prev_hash":"0","seq":1,"x":"\\u00e5"', "emoji": "🙂"}, id="lookalike-keys"),
        ],
    )
    def test_details_survive_the_database_round_trip(
        self, db: Database, clock: FakeClock, details: dict[str, Any]
    ) -> None:
        # What is hashed must be exactly what the column gives back, on every backend.
        Auditor(db.session, clock).record(actor="robot:example", action="test", details=details)
        result = verify(db)
        assert result.ok, result.problem

    def test_an_append_on_its_own_keeps_no_writer_waiting(self, db: Database, clock: FakeClock) -> None:
        """On PostgreSQL the head's lock ends with the append's own statement in a statement session."""
        with db.statement_session() as s:
            first = audit.append(s, actor="user:anna", action="review.opened", tenant="0000", now=clock.now())
            if not db.is_sqlite:  # SQLite: the session is one transaction holding the file's write lock
                seq = Auditor(db.session, clock).record(actor="user:bertil", action="review.opened", tenant="0000")
                assert seq == first.seq + 1
        with db.session() as s:
            stored = s.get(AuditEvent, first.seq)
            assert stored is not None
            assert (stored.actor, stored.tenant, stored.hash, stored.prev_hash) == (
                "user:anna",
                "0000",
                first.hash,
                audit.GENESIS_HASH,
            )
        assert verify(db).ok

    def test_append_is_part_of_the_callers_transaction(self, db: Database, clock: FakeClock) -> None:
        with pytest.raises(RuntimeError), db.session() as s:
            audit.append(s, actor="user:anna", action="review.approved", now=clock.now())
            raise RuntimeError("the caller's change failed")
        seq = Auditor(db.session, clock).record(actor="user:anna", action="review.approved")
        assert seq == 1  # the rolled-back event took no seq
        assert verify(db).ok


class TestTamper:
    """Every kind of tampering is detected, and the first bad seq is named."""

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("actor", "user:mallory"),
            ("action", "review.rejected"),
            ("subject", "work_item:999"),
            ("tenant", "9999"),
            ("purpose", "nyfikenhet"),
            ("prev_hash", "f" * 64),
            ("hash", "e" * 64),
        ],
    )
    def test_modified_field(self, db: Database, clock: FakeClock, column: str, value: str) -> None:
        fill(db, clock)
        sql(db, f"UPDATE audit_events SET {column} = :v WHERE seq = 5", v=value)
        assert_broken(verify(db), 5)

    def test_modified_details(self, db: Database, clock: FakeClock) -> None:
        fill(db, clock)
        with tamper(db) as s:
            s.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(details={"i": 4, "queue": "other"}))
        assert_broken(verify(db), 4)

    def test_modified_time(self, db: Database, clock: FakeClock) -> None:
        fill(db, clock)
        original = event(db, 6).time
        with tamper(db) as s:
            s.execute(update(AuditEvent).where(AuditEvent.seq == 6).values(time=original + timedelta(seconds=1)))
        assert_broken(verify(db), 6)

    def test_modified_first_event(self, db: Database, clock: FakeClock) -> None:
        fill(db, clock)
        sql(db, "UPDATE audit_events SET actor = 'user:mallory' WHERE seq = 1")
        assert_broken(verify(db), 1)

    def test_modified_and_rehashed(self, db: Database, clock: FakeClock) -> None:
        # A careful intruder recomputes the event's hash: the next event's link breaks.
        fill(db, clock)
        ev = event(db, 5)
        digest = audit.event_hash(
            seq=5,
            time=ev.time,
            tenant=ev.tenant,
            actor="user:mallory",
            action=ev.action,
            subject=ev.subject,
            purpose=ev.purpose,
            details=ev.details,
            prev_hash=ev.prev_hash,
        )
        sql(db, "UPDATE audit_events SET actor = 'user:mallory', hash = :h WHERE seq = 5", h=digest)
        result = verify(db)
        assert_broken(result, 6)
        assert "event 5" in (result.problem or "")

    def test_last_event_modified_and_rehashed(self, db: Database, clock: FakeClock) -> None:
        # No later event links to it; the head's hash is what no longer matches, at event N.
        fill(db, clock)
        ev = event(db, N)
        digest = audit.event_hash(
            seq=N,
            time=ev.time,
            tenant=ev.tenant,
            actor="user:mallory",
            action=ev.action,
            subject=ev.subject,
            purpose=ev.purpose,
            details=ev.details,
            prev_hash=ev.prev_hash,
        )
        sql(db, "UPDATE audit_events SET actor = 'user:mallory', hash = :h WHERE seq = :s", h=digest, s=N)
        assert_broken(verify(db), N)

    def test_deleted_in_the_middle(self, db: Database, clock: FakeClock) -> None:
        fill(db, clock)
        sql(db, "DELETE FROM audit_events WHERE seq = 5")
        assert_broken(verify(db), 5)

    def test_deleted_and_renumbered(self, db: Database, clock: FakeClock) -> None:
        fill(db, clock)
        sql(db, "DELETE FROM audit_events WHERE seq = 5")
        move_seqs(db, 6, -1)
        sql(db, "UPDATE audit_head SET seq = seq - 1")
        assert_broken(verify(db), 5)

    def test_deleted_first(self, db: Database, clock: FakeClock) -> None:
        fill(db, clock)
        sql(db, "DELETE FROM audit_events WHERE seq = 1")
        assert_broken(verify(db), 1)

    def test_forged_insert_in_the_middle(self, db: Database, clock: FakeClock) -> None:
        # Made room at seq 5 and inserted an event that links correctly to 4 with a valid hash:
        # the original event 5, now at 6, no longer links.
        fill(db, clock)
        move_seqs(db, 5, +1)
        insert_raw(db, 5, prev_hash=event(db, 4).hash, clock=clock)
        sql(db, "UPDATE audit_head SET seq = seq + 1")
        assert_broken(verify(db), 6)

    def test_careless_forged_insert(self, db: Database, clock: FakeClock) -> None:
        fill(db, clock)
        move_seqs(db, 5, +1)
        insert_raw(db, 5, prev_hash=event(db, 4).hash, digest="a" * 64, clock=clock)
        sql(db, "UPDATE audit_head SET seq = seq + 1")
        assert_broken(verify(db), 5)

    def test_forged_insert_at_the_end(self, db: Database, clock: FakeClock) -> None:
        # Appended behind append()'s back (head untouched): event N + 1 is the forged one.
        fill(db, clock)
        insert_raw(db, N + 1, prev_hash=event(db, N).hash, clock=clock)
        assert_broken(verify(db), N + 1)

    @pytest.mark.parametrize(("a", "b"), [(4, 7), (5, 6), (1, 2), (N - 1, N)])
    def test_reordered(self, db: Database, clock: FakeClock, a: int, b: int) -> None:
        fill(db, clock)
        swap(db, a, b)
        assert_broken(verify(db), a)

    def test_truncated_tail_with_stale_head(self, db: Database, clock: FakeClock) -> None:
        fill(db, clock)
        sql(db, "DELETE FROM audit_events WHERE seq > 7")
        assert_broken(verify(db), 8)

    def test_truncated_tail_with_consistent_head_needs_a_checkpoint(
        self, db: Database, clock: FakeClock, tmp_path: Path
    ) -> None:
        fill(db, clock)
        cp_file = tmp_path / "outside" / "audit.checkpoint"
        with db.session() as s:
            write_checkpoint(cp_file, *audit.latest(s), now=clock.now())
        sql(db, "DELETE FROM audit_events WHERE seq > 7")
        sql(db, "UPDATE audit_head SET seq = 7, hash = :h", h=event(db, 7).hash)
        assert verify(db).ok  # without a checkpoint the shorter chain looks whole …
        checkpoint = read_checkpoint(cp_file)
        assert checkpoint[0] == N
        assert_broken(verify(db, checkpoint), 8)  # … with one, the truncation is found

    def test_checkpoint_on_a_growing_chain(self, db: Database, clock: FakeClock, tmp_path: Path) -> None:
        auditor = fill(db, clock)
        cp_file = tmp_path / "audit.checkpoint"
        with db.session() as s:
            write_checkpoint(cp_file, *audit.latest(s))
        for _ in range(3):
            auditor.record(actor="user:anna", action="review.opened")
        result = auditor.verify(read_checkpoint(cp_file))
        assert result.ok, result.problem
        assert result.last_seq == N + 3

    def test_rewritten_chain_caught_by_checkpoint(self, db: Database, clock: FakeClock) -> None:
        # An intruder rewrites event 3 and recomputes every later hash and the head: only
        # the checkpoint, kept outside the database, shows it.
        fill(db, clock)
        checkpoint = (6, event(db, 6).hash)
        with tamper(db) as s:
            prev = event(db, 2).hash
            for seq in range(3, N + 1):
                ev = s.get(AuditEvent, seq)
                assert ev is not None
                actor = "user:mallory" if seq == 3 else ev.actor
                digest = audit.event_hash(
                    seq=seq,
                    time=ev.time,
                    tenant=ev.tenant,
                    actor=actor,
                    action=ev.action,
                    subject=ev.subject,
                    purpose=ev.purpose,
                    details=ev.details,
                    prev_hash=prev,
                )
                s.execute(
                    text("UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                    {"a": actor, "p": prev, "h": digest, "s": seq},
                )
                prev = digest
            s.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
        assert verify(db).ok
        assert_broken(verify(db, checkpoint), 6)


class TestCheckpointFile:
    """Checkpoint files: appended to, the last line read back, bad files refused."""

    def test_append_and_read_last(self, tmp_path: Path) -> None:
        path = tmp_path / "cp" / "audit.checkpoint"
        write_checkpoint(path, 3, "a" * 64)
        write_checkpoint(path, 7, "b" * 64)
        assert read_checkpoint(path) == (7, "b" * 64)
        assert len(path.read_text(encoding="utf-8").splitlines()) == 2

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot be read"):
            read_checkpoint(tmp_path / "absent")

    def test_file_without_checkpoint(self, tmp_path: Path) -> None:
        path = tmp_path / "cp"
        path.write_text("garbage\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="holds no checkpoint"):
            read_checkpoint(path)


def assert_one_unforked_chain(db: Database, expected: Counter[str]) -> None:
    result = verify(db)
    assert result.ok, result.problem
    with db.session() as s:
        rows = s.execute(select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.actor).order_by(AuditEvent.seq)).all()
    seqs = [r.seq for r in rows]
    assert seqs == list(range(1, len(rows) + 1)), "seqs are not contiguous"
    prevs = [r.prev_hash for r in rows]
    assert len(set(prevs)) == len(prevs), "two events link to the same predecessor: the chain forked"
    assert Counter(r.actor for r in rows) == expected


class TestConcurrentWriters:
    """Writers appending at once never fork the chain."""

    def test_threads(self, db: Database) -> None:
        threads, per_thread = 8, 40
        auditor = Auditor(db.session)
        start = threading.Barrier(threads)
        failures: list[BaseException] = []

        def write(k: int) -> None:
            try:
                start.wait()
                for i in range(per_thread):
                    auditor.record(actor=f"thread:{k}", action="test.append", details={"i": i})
            except BaseException as exc:  # reported below, in the test's own thread
                failures.append(exc)

        workers = [threading.Thread(target=write, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=240)
        assert not failures, failures
        assert_one_unforked_chain(db, Counter({f"thread:{k}": per_thread for k in range(threads)}))

    def test_processes(self, db: Database, tmp_path: Path) -> None:
        processes, threads, per_thread = 4, 3, 25
        child = textwrap.dedent("""
            import pathlib, sys, threading, time
            from core.audit import Auditor
            from core.storage.db import Database

            url, who, threads, per_thread, go = sys.argv[1:]
            db = Database(url)
            auditor = Auditor(db.session)
            pathlib.Path(go + "." + who).touch()
            while not pathlib.Path(go).exists():
                time.sleep(0.005)

            def write(t):
                for i in range(int(per_thread)):
                    auditor.record(actor=f"proc:{who}", action="test.append", details={"t": t, "i": i})

            ts = [threading.Thread(target=write, args=(t,)) for t in range(int(threads))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            db.dispose()
        """)
        go = tmp_path / "go"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", child, db.url, str(p), str(threads), str(per_thread), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for p in range(processes)
        ]
        try:
            deadline = time.monotonic() + 60
            while not all((tmp_path / f"go.{p}").exists() for p in range(processes)):
                assert time.monotonic() < deadline, "writer processes did not start"
                assert all(pr.poll() is None for pr in procs), [pr.communicate() for pr in procs]
                time.sleep(0.01)
            go.touch()  # all start appending at once
            for pr in procs:
                _out, err = pr.communicate(timeout=240)
                assert pr.returncode == 0, err
        finally:
            for pr in procs:
                if pr.poll() is None:
                    pr.kill()
                    pr.wait()
        assert_one_unforked_chain(db, Counter({f"proc:{p}": threads * per_thread for p in range(processes)}))


class TestDataAccess:
    """Reads of personal data are audit events: who, whose, from which system, why."""

    def test_data_access_event(self, db: Database, clock: FakeClock) -> None:
        auditor = Auditor(db.session, clock)
        seq = auditor.data_access(
            actor="robot:ronney",
            tenant="0000",
            subject="191212121212",
            system="Procapita",
            purpose="beräkning av försörjningsstöd",
            details={"run_id": 4},
        )
        ev = event(db, seq)
        assert ev.action == "data.read"
        assert ev.actor == "robot:ronney"
        assert ev.subject == "191212121212"
        assert ev.purpose == "beräkning av försörjningsstöd"
        assert ev.details == {"system": "Procapita", "run_id": 4}
        assert ev.tenant == "0000"
        assert ev.time == clock.now()
        assert verify(db).ok

    def test_access_log_queryable_by_subject(self, db: Database, clock: FakeClock) -> None:
        auditor = Auditor(db.session, clock)
        auditor.data_access(
            actor="robot:ronney", tenant="0000", subject="191212121212", system="SPAR", purpose="adressuppgift"
        )
        auditor.data_access(
            actor="user:anna", tenant="0000", subject="191212121212", system="Kollega", purpose="handläggning"
        )
        auditor.data_access(
            actor="user:anna", tenant="0000", subject="201212121212", system="Kollega", purpose="handläggning"
        )
        with db.session() as s:
            who = s.execute(
                select(AuditEvent.actor, AuditEvent.details)
                .where(AuditEvent.subject == "191212121212")
                .order_by(AuditEvent.seq)
            ).all()
        assert [(r.actor, r.details["system"]) for r in who] == [("robot:ronney", "SPAR"), ("user:anna", "Kollega")]


@pytest.mark.postgres
class TestAppendOnlyGuard:
    """On PostgreSQL the database refuses UPDATE, DELETE and TRUNCATE of audit events (finding M6)."""

    @pytest.fixture
    def pg(self, pg_url: str, tmp_path: Path) -> Iterator[Database]:
        from core.testing import temporary_database

        with temporary_database(tmp_path, pg_url) as database:
            yield database

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_events SET actor = 'user:mallory' WHERE seq = 3",
            "DELETE FROM audit_events WHERE seq = 3",
            "DELETE FROM audit_events WHERE seq > 7",
            "TRUNCATE audit_events",
        ],
    )
    def test_refused_for_the_connecting_role(self, pg: Database, clock: FakeClock, statement: str) -> None:
        fill(pg, clock)
        with pytest.raises(DBAPIError, match="append-only"), pg.session() as s:
            s.execute(text(statement))
        assert verify(pg).ok and verify(pg).events == N  # nothing changed
        Auditor(pg.session, clock).record(actor="user:anna", action="still.appends")  # appending still works
        assert verify(pg).last_seq == N + 1

    def test_application_role_can_neither_rewrite_nor_switch_the_guard_off(
        self, pg: Database, clock: FakeClock
    ) -> None:
        # The grants of docs/operations.md: the application's own role, not the tables' owner.
        fill(pg, clock)
        schema = pg.engine.url.query["options"].split("search_path=")[-1]  # type: ignore[union-attr]
        role = f"kollega_app_{uuid.uuid4().hex[:8]}"
        with pg.session() as s:
            s.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
            s.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
            s.execute(text(f'GRANT SELECT, INSERT ON audit_events TO "{role}"'))
            s.execute(text(f'GRANT SELECT, UPDATE ON audit_head TO "{role}"'))
        try:
            attempts = [
                "UPDATE audit_events SET actor = 'user:mallory' WHERE seq = 3",
                "DELETE FROM audit_events WHERE seq = 3",
                "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
                "DROP TRIGGER audit_events_append_only ON audit_events",
                "SET LOCAL session_replication_role = replica",
            ]
            for attempt in attempts:
                with pytest.raises(DBAPIError), pg.session() as s:
                    s.execute(text(f'SET LOCAL ROLE "{role}"'))
                    s.execute(text(attempt))
            # … while the role appends as the application does.
            with pg.session() as s:
                s.execute(text(f'SET LOCAL ROLE "{role}"'))
                audit.append(s, actor="user:anna", action="review.opened", now=clock.now())
            result = verify(pg)
            assert result.ok and result.last_seq == N + 1
        finally:
            with pg.session() as s:
                s.execute(text(f'DROP OWNED BY "{role}"'))
                s.execute(text(f'DROP ROLE "{role}"'))
