"""SQL connector: read-only access to an external database through SQLAlchemy.

Reading is all a robot may do, enforced twice:

1. at the connection: PostgreSQL sessions start with ``default_transaction_read_only = on``
   (and a ``statement_timeout``); SQLite files are opened with ``mode=ro`` and
   ``PRAGMA query_only``;
2. before sending: a statement must be one SELECT (or WITH … SELECT, VALUES, TABLE) with no
   data-changing keyword outside string literals; SQLAlchemy ``select()`` constructs pass.

Errors are translated at this boundary::

    ReadOnlyViolation      a write was attempted (refused by the check or by the database)
    ConnectorUnavailable   cannot connect, connection lost, statement timeout
    ConnectorError         bad SQL, too many rows, other database errors

Queries run in a worker thread (``asyncio.to_thread``) so the event loop keeps going.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import CompoundSelect, Select, TextualSelect

from connectors.base import connector_settings, record_access, require_purpose
from core.errors import ConfigError, ConnectorError, ConnectorUnavailable
from core.interfaces import ConnectorContext
from core.logging import get_logger, redact_text
from core.settings import SecretRef

log = get_logger("kollega.connectors.sql")


class SqlSettings(BaseModel):
    """The section ``[connectors.<system>]`` for a database read through SQLAlchemy."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        description="SQLAlchemy URL without a password, e.g. postgresql+psycopg://robot@db/hr "
        "or sqlite:////srv/export.db."
    )
    password: SecretRef | None = Field(default=None, description="The database password, by reference.")
    statement_timeout_seconds: float = Field(default=30, gt=0, description="Longest a statement may run.")
    connect_timeout_seconds: int = Field(default=10, ge=1, description="Timeout for connecting.")
    max_rows: int = Field(default=100_000, ge=1, description="More rows than this is an error, never truncated.")
    pool_size: int = Field(default=2, ge=1, description="Connections kept open.")

    @field_validator("url")
    @classmethod
    def _no_inline_password(cls, value: str) -> str:
        try:
            parsed = make_url(value)
        except sa_exc.ArgumentError:
            raise ValueError("not a valid SQLAlchemy URL") from None
        if parsed.password:
            raise ValueError('the URL must not hold a password: give it as password = {env = "NAME"}')
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite and postgresql databases are supported")
        return value


class ReadOnlyViolation(ConnectorError):
    """A write to a read-only database was attempted and refused."""

    code = "read_only"
    retryable = False


# -- the statement check -----------------------------------------------------------------
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_LITERALS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$\$.*?\$\$", re.S)
_FIRST_WORDS = {"select", "with", "values", "table"}
# Statement keywords that change something; a column so named must be "quoted".
_WRITE_WORDS = re.compile(
    r"\b(insert|update|delete|merge|upsert|create|drop|alter|truncate|grant|revoke|into|copy|call|lock|"
    r"attach|detach|pragma|vacuum|reindex)\b",
    re.I,
)


def check_select(sql: str) -> None:
    """Raise ReadOnlyViolation unless ``sql`` is a single read-only query."""
    stripped = _LITERALS.sub("''", _COMMENTS.sub(" ", sql)).strip().rstrip(";").strip()
    if ";" in stripped:
        raise ReadOnlyViolation("only one statement may be sent at a time")
    first = stripped.split(None, 1)[0].lower() if stripped else ""
    if first not in _FIRST_WORDS:
        raise ReadOnlyViolation(f"only SELECT queries are allowed (got {first.upper() or 'nothing'})")
    found = _WRITE_WORDS.search(stripped)
    if found:
        raise ReadOnlyViolation(f"only SELECT queries are allowed ({found.group(1).upper()} is not)")


def _statement(stmt: str | ClauseElement) -> Executable:
    if isinstance(stmt, str):
        check_select(stmt)
        return text(stmt)
    if isinstance(stmt, TextClause):
        check_select(stmt.text)
        return stmt
    if isinstance(stmt, Select | CompoundSelect | TextualSelect):
        return stmt
    raise ReadOnlyViolation(f"only SELECT queries are allowed (got {type(stmt).__name__})")


# -- the engine --------------------------------------------------------------------------
def _sqlite_read_only_url(url: URL) -> URL:
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ConfigError("a SQLite database for the SQL connector must be a file path")
    path = Path(database).resolve()
    return make_url(f"sqlite+pysqlite:///file:{quote(str(path))}?mode=ro&uri=true")


def build_engine(settings: SqlSettings) -> Engine:
    """An engine whose every connection is read-only and time-limited."""
    url = make_url(settings.url)
    if settings.password is not None:
        url = url.set(password=settings.password.resolve())
    timeout = settings.statement_timeout_seconds
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            _sqlite_read_only_url(url),
            pool_size=settings.pool_size,
            pool_pre_ping=True,
            hide_parameters=True,  # errors never quote a lookup's values (personnummer)
            connect_args={"check_same_thread": False, "timeout": settings.connect_timeout_seconds},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, record: Any) -> None:
            dbapi_conn.execute("PRAGMA query_only = ON")
            state: dict[str, float | None] = {"deadline": None}
            record.info["deadline"] = state
            # SQLite has no statement timeout: a progress handler interrupts a query past its deadline.
            dbapi_conn.set_progress_handler(
                lambda: 1 if state["deadline"] is not None and time.monotonic() > state["deadline"] else 0, 1000
            )

        @event.listens_for(engine, "before_cursor_execute")
        def _deadline(conn: Connection, _cursor: Any, _stmt: Any, _params: Any, _context: Any, _many: bool) -> None:
            state = conn.connection.info.get("deadline")
            if state is not None:
                state["deadline"] = time.monotonic() + timeout

        @event.listens_for(engine, "checkin")
        def _clear(_dbapi_conn: Any, record: Any) -> None:
            state = record.info.get("deadline")
            if state is not None:
                state["deadline"] = None

        return engine
    ms = int(timeout * 1000)
    options = f"-c default_transaction_read_only=on -c statement_timeout={ms}"
    given = url.query.get("options")
    if given:  # keep the URL's own options (e.g. a search_path); ours come last and win
        options = f"{given if isinstance(given, str) else ' '.join(given)} {options}"
        url = url.difference_update_query(["options"])
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        pool_pre_ping=True,
        hide_parameters=True,  # errors never quote a lookup's values (personnummer)
        connect_args={
            "options": options,
            "connect_timeout": settings.connect_timeout_seconds,
            "application_name": "kollega-readonly",
        },
    )

    @event.listens_for(engine, "connect")
    def _pg_connect(dbapi_conn: Any, _record: Any) -> None:
        # Again in SQL: a pooler may drop startup options. Autocommit so no rollback undoes it.
        was = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        with dbapi_conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = on")
            cur.execute(f"SET statement_timeout = {ms}")
        dbapi_conn.autocommit = was

    return engine


def translate(exc: sa_exc.SQLAlchemyError, system: str) -> ConnectorError:
    """A SQLAlchemy/driver error as a ConnectorError; the message never holds statement parameters."""
    orig = getattr(exc, "orig", None)
    raw = str(orig if orig is not None else exc).strip()
    first = redact_text(raw.splitlines()[0] if raw else type(exc).__name__)[:300]
    lowered = first.lower()
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == "25006" or "read-only" in lowered or "readonly" in lowered or "query_only" in lowered:
        return ReadOnlyViolation(f"{system}: the database refused a write: {first}", system=system)
    if sqlstate == "57014" or lowered == "interrupted":
        return ConnectorUnavailable(f"{system}: the statement timed out", code="timeout", system=system)
    if isinstance(orig, sqlite3.OperationalError):
        # SQLite raises OperationalError for bad SQL too; only these mean "not reachable now".
        if any(m in lowered for m in ("unable to open", "locked", "busy", "disk i/o", "closed")):
            return ConnectorUnavailable(f"{system}: database unavailable: {first}", system=system)
    elif isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or getattr(
        exc, "connection_invalidated", False
    ):
        return ConnectorUnavailable(f"{system}: database unavailable: {first}", system=system)
    return ConnectorError(f"{system}: query failed: {first}", code="sql", system=system)


class ReadOnlyDatabase:
    """Read-only queries against one external database."""

    def __init__(self, settings: SqlSettings, *, system: str = "sql", ctx: ConnectorContext | None = None) -> None:
        self.settings = settings
        self.system = system
        self.ctx = ctx
        self.engine = build_engine(settings)

    @classmethod
    def for_run(cls, ctx: ConnectorContext, system: str) -> ReadOnlyDatabase:
        """The run's connection to ``[connectors.<system>]`` (disposed with the run)."""
        key = f"sql:{system}"
        existing = ctx.resources.get(key)
        if isinstance(existing, ReadOnlyDatabase):
            return existing
        db = cls(connector_settings(ctx, system, SqlSettings), system=system, ctx=ctx)
        ctx.resources[key] = db
        return db

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- synchronous core ----------------------------------------------------------------
    def fetch_all_sync(
        self, stmt: str | ClauseElement, params: Mapping[str, Any] | None = None, *, max_rows: int | None = None
    ) -> list[dict[str, Any]]:
        """Run one read-only query and return its rows as dicts (blocking)."""
        statement = _statement(stmt)
        limit = max_rows or self.settings.max_rows
        started = time.monotonic()
        try:
            with self.engine.connect() as conn:
                result = conn.execute(statement, dict(params or {}))
                rows = [dict(r) for r in result.mappings().fetchmany(limit + 1)]
                conn.rollback()
        except sa_exc.SQLAlchemyError as exc:
            raise translate(exc, self.system) from exc
        if len(rows) > limit:
            raise ConnectorError(
                f"{self.system}: the query returned more than {limit} rows", code="too_many_rows", system=self.system
            )
        log.debug(
            "sql query", system=self.system, rows=len(rows), elapsed_ms=round((time.monotonic() - started) * 1000)
        )
        return rows

    # -- async API -----------------------------------------------------------------------
    async def fetch_all(
        self,
        stmt: str | ClauseElement,
        params: Mapping[str, Any] | None = None,
        *,
        subject: str | None = None,
        purpose: str | None = None,
        max_rows: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of one read-only query; ``subject``/``purpose`` write a data-access audit event."""
        require_purpose(subject, purpose)
        if subject is not None and self.ctx is None:
            raise ConfigError("a read of personal data needs a run context for the access log")
        rows = await asyncio.to_thread(self.fetch_all_sync, stmt, params, max_rows=max_rows)
        if subject is not None and purpose is not None and self.ctx is not None:
            await record_access(
                self.ctx, subject=subject, system=self.system, purpose=purpose, details={"rows": len(rows)}
            )
        return rows

    async def fetch_one(
        self, stmt: str | ClauseElement, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any] | None:
        """The first row, or None."""
        rows = await self.fetch_all(stmt, params, **kwargs)
        return rows[0] if rows else None

    async def scalar(self, stmt: str | ClauseElement, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetch_one(stmt, params, **kwargs)
        return next(iter(row.values())) if row else None

    async def aclose(self) -> None:
        """Dispose the engine off the loop."""
        await asyncio.to_thread(self.close)
