"""Engine and session handling for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ConfigError, DatabaseNotMigrated

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def redact_url(url: str) -> str:
    """The database URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own transaction handling is switched off (isolation_level=None) so
    # that we can open every transaction with BEGIN IMMEDIATE: a reader that later
    # writes would otherwise fail with "database is locked" instead of waiting.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


#: A pooled connection idle longer than this is pinged before use (see _ping_when_idle).
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for a busy pool: ping only connections that sat idle.

    ``pool_pre_ping`` pings on every checkout, one extra round trip per statement on the
    queue's hot path. A connection that was returned moments ago is as alive as a ping
    would show; one that sat idle (a restarted server, a firewall timeout) is pinged, and
    a dead one is replaced by raising DisconnectionError, which the pool retries
    (SQLAlchemy's documented checkout-event pattern).
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is not None and time.monotonic() - returned < idle_seconds:
            return
        try:
            cur = dbapi_conn.cursor()
            cur.execute("SELECT 1")
            cur.close()
        except Exception as exc:  # any failure of the ping means the connection is unusable
            raise DisconnectionError("pooled connection failed its ping") from exc


def _refuse_changes(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("read_session() is for reading; use session() to write")


class Database:
    """An engine plus a session factory for one database URL."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"database_url is not a valid SQLAlchemy URL: {redact_url(url)}") from exc
        self.url = url
        self.dialect = parsed.get_backend_name()
        self._pool_size = pool_size
        self._autocommit: Engine | None = None
        self._autocommit_lock = threading.Lock()
        # hide_parameters: a database error's text never quotes the statement's values (names,
        # addresses, personnummer), so they cannot reach logs, runs.error or alert mail.
        kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": True}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        elif self.dialect == "postgresql":
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        else:
            raise ConfigError(f"database_url: unsupported database {self.dialect!r}; use sqlite or postgresql")
        self.engine: Engine = create_engine(parsed, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            # A web page opens several short sessions; a ping before each was a round trip each.
            _ping_when_idle(self.engine, IDLE_PING_SECONDS)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite backend."""
        return self.dialect == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A connection for work that is ONE statement, atomic on its own.

        On PostgreSQL it runs in autocommit mode: no BEGIN and COMMIT round trips, which
        are most of the cost of a queue claim on a local server. On SQLite it is an
        ordinary ``BEGIN IMMEDIATE`` transaction (cheap there, and it keeps the writer
        lock discipline).
        """
        if self.dialect == "postgresql":
            with self._autocommit_engine().connect() as conn:
                yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reading only (a page's lists and counts); nothing it holds is written.

        On PostgreSQL each statement runs on its own in autocommit mode, so a read costs one
        round trip instead of three (BEGIN, the query, COMMIT); statements in one block may
        see different snapshots, which reads of independent things do not mind. On SQLite
        it is an ordinary session. A change made through it is refused, never half-written.
        """
        if self.dialect != "postgresql":
            with self.sessions(autoflush=False) as session, session.begin():
                yield session
                _refuse_changes(session)
            return
        with Session(self._autocommit_engine(), expire_on_commit=False, autoflush=False) as session:
            yield session
            _refuse_changes(session)

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A connection for reading columns (no ORM objects): a page's hot reads, without a session.

        As :meth:`read_session` (on PostgreSQL each statement on its own in autocommit mode; on
        SQLite one transaction, here ended by a rollback), minus the ORM session's work around
        each statement: about half of a small read's CPU in this process. For reading only.
        """
        engine = self._autocommit_engine() if self.dialect == "postgresql" else self.engine
        with engine.connect() as conn:
            yield conn

    @contextmanager
    def statement_session(self) -> Iterator[Session]:
        """A session whose every statement stands on its own: each is committed as it runs.

        For work made of statements that are each atomic (a read, then one audit append: on
        PostgreSQL :func:`core.audit.append` is one statement). On PostgreSQL it runs in
        autocommit mode, so a row lock a statement takes (the audit head's) ends with that
        statement instead of waiting for this process to send COMMIT; the session's commit
        at the end only fires its after-commit hooks (the audit checkpoint). On SQLite it is
        an ordinary transaction. Never for changes that must commit together.
        """
        if self.dialect != "postgresql":
            with self.session() as session:
                yield session
            return
        with Session(self._autocommit_engine(), expire_on_commit=False) as session:
            yield session
            session.commit()

    def _autocommit_engine(self) -> Engine:
        with self._autocommit_lock:
            if self._autocommit is None:
                # Its own pool of connections that stay in autocommit mode: switching a
                # pooled connection back and forth would cost round trips of its own.
                self._autocommit = create_engine(
                    make_url(self.url),
                    isolation_level="AUTOCOMMIT",
                    hide_parameters=True,
                    pool_size=self._pool_size,
                    max_overflow=self._pool_size,
                )
                _ping_when_idle(self._autocommit, IDLE_PING_SECONDS)
            return self._autocommit

    def upgrade(self, revision: str = "head") -> None:
        """Apply alembic migrations up to ``revision``."""
        from alembic import command

        with self.engine.begin() as conn:
            cfg = alembic_config(conn)
            command.upgrade(cfg, revision)

    def current_revision(self) -> str | None:
        """The schema revision the database is at (None when never migrated)."""
        from alembic.runtime.migration import MigrationContext

        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except OperationalError as exc:
            raise ConfigError(f"cannot connect to the database at {redact_url(self.url)}: {exc.orig}") from None

    @staticmethod
    def head_revision() -> str:
        """The newest schema revision this code knows."""
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(alembic_config(None))
        head = script.get_current_head()
        assert head is not None
        return head

    def check_migrated(self) -> None:
        """Raise DatabaseNotMigrated unless the schema is at the code's head revision."""
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            at = f"at revision {current}" if current else "not migrated"
            raise DatabaseNotMigrated(
                f"The database {redact_url(self.url)} is {at}; this version needs {head}. Run `kollega db upgrade`."
            )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self._autocommit is not None:
            self._autocommit.dispose()


def alembic_config(connection: Any) -> Any:
    """An alembic Config for our migrations, optionally bound to an open connection."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg
