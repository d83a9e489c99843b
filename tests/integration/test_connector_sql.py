"""The SQL connector against the local PostgreSQL: read-only at the connection, timeouts, access log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc

from connectors.sql import ReadOnlyDatabase, ReadOnlyViolation, SqlSettings, translate
from core.errors import ConnectorUnavailable
from core.storage.models import AuditEvent
from core.testing import run_context, temporary_database

pytestmark = pytest.mark.postgres

PNR = "19121212-1212"


@pytest.fixture
def hr_schema(pg_url: str) -> Iterator[tuple[str, str]]:
    """A schema with an employees table and a sequence; yields (url with search_path, schema)."""
    schema = f"hr_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
        conn.execute(text(f'create table "{schema}".employees (id serial primary key, pnr text, name text)'))
        conn.execute(
            text(
                f"insert into \"{schema}\".employees (pnr, name) values ('{PNR}', 'Tolvan'), ('19800101-0000', 'Anna')"
            )
        )
    try:
        yield f"{pg_url}?options=-csearch_path%3D{schema}", schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()


def connect(url: str, **extra: object) -> ReadOnlyDatabase:
    return ReadOnlyDatabase(SqlSettings(url=url, **extra), system="hr")  # type: ignore[arg-type]


class TestPostgres:
    """Sessions are read-only and time-limited; the URL's own options are kept."""

    async def test_select_with_search_path(self, hr_schema: tuple[str, str]) -> None:
        db = connect(hr_schema[0])
        try:
            rows = await db.fetch_all("select name from employees where pnr = :pnr", {"pnr": PNR})
            assert rows == [{"name": "Tolvan"}]
            assert await db.scalar("select current_setting('default_transaction_read_only')") == "on"
        finally:
            await db.aclose()

    def test_write_refused_by_the_session(self, hr_schema: tuple[str, str]) -> None:
        db = connect(hr_schema[0])
        try:
            with db.engine.connect() as conn, pytest.raises(sa_exc.DBAPIError) as err:
                conn.exec_driver_sql("delete from employees")
            assert isinstance(translate(err.value, "hr"), ReadOnlyViolation)
            with pytest.raises(ReadOnlyViolation):
                db.fetch_all_sync("select nextval('employees_id_seq')")  # passes the check, not the database
            assert db.fetch_all_sync("select count(*) as n from employees") == [{"n": 2}]
        finally:
            db.close()

    def test_errors_never_quote_the_parameters(self, hr_schema: tuple[str, str]) -> None:
        db = connect(hr_schema[0])
        try:
            with db.engine.connect() as conn, pytest.raises(sa_exc.DBAPIError) as err:
                conn.execute(text("select name from employeez where pnr = :pnr"), {"pnr": PNR})
            assert PNR not in str(err.value) and "[parameters:" not in str(err.value)
        finally:
            db.close()

    def test_statement_timeout(self, hr_schema: tuple[str, str]) -> None:
        db = connect(hr_schema[0], statement_timeout_seconds=0.2)
        try:
            with pytest.raises(ConnectorUnavailable) as err:
                db.fetch_all_sync("select pg_sleep(3)")
            assert err.value.code == "timeout"
        finally:
            db.close()

    def test_unreachable_server(self) -> None:
        db = connect("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_timeout_seconds=1)
        try:
            with pytest.raises(ConnectorUnavailable):
                db.fetch_all_sync("select 1")
        finally:
            db.close()

    async def test_access_log(self, hr_schema: tuple[str, str], tmp_path: Path) -> None:
        with temporary_database(tmp_path) as kdb:
            ctx = run_context(kdb, tmp_path, connectors={"hr": {"url": hr_schema[0]}})
            db = ReadOnlyDatabase.for_run(ctx, "hr")
            try:
                await db.fetch_one(
                    "select name from employees where pnr = :pnr",
                    {"pnr": PNR},
                    subject=PNR,
                    purpose="kontroll av anställning",
                )
            finally:
                await db.aclose()
            with kdb.session() as s:
                ev = s.query(AuditEvent).filter(AuditEvent.action == "data.read").one()
                assert (ev.subject, ev.purpose, ev.details["system"]) == (PNR, "kontroll av anställning", "hr")
