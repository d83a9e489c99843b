"""Unit tests of the SQL connector: the statement check and SQLite opened read-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import column, select, table

from connectors.base import validate_settings
from connectors.sql import ReadOnlyDatabase, ReadOnlyViolation, SqlSettings, check_select
from core.errors import ConfigError, ConnectorError, ConnectorUnavailable
from core.testing import RecordingContext

PNR = "19121212-1212"


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "hr.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table employees (id integer primary key, pnr text, name text, comment text)")
        conn.executemany(
            "insert into employees (pnr, name, comment) values (?, ?, ?)",
            [(PNR, "Tolvan Tolvansson", "update; drop"), ("19800101-0000", "Anna", None)],
        )
    conn.close()
    return path


class TestStatementCheck:
    """Only one SELECT is let through."""

    @pytest.mark.parametrize(
        "sql",
        [
            "select * from employees",
            "  SELECT 1;",
            "with x as (select 1 as a) select a from x",
            "values (1)",
            "select 'insert into t values (1)' as text -- delete everything",
            'select "update" from t /* drop table t */',
            "select last_update, deleted_at from t",
        ],
    )
    def test_allowed(self, sql: str) -> None:
        check_select(sql)

    @pytest.mark.parametrize(
        "sql",
        [
            "insert into t values (1)",
            "update t set a = 1",
            "delete from t",
            "drop table t",
            "select 1; delete from t",
            "with x as (delete from t returning *) select * from x",
            "select * into copy_t from t",
            "select * from t for update",
            "pragma query_only = off",
            "attach database 'x.db' as x",
            "",
        ],
    )
    def test_refused(self, sql: str) -> None:
        with pytest.raises(ReadOnlyViolation):
            check_select(sql)


class TestSqlite:
    """A SQLite file is opened read-only: even a write that passed the check would be refused."""

    def db(self, path: Path, **extra: object) -> ReadOnlyDatabase:
        return ReadOnlyDatabase(
            SqlSettings(url=f"sqlite:///{path}", **extra),
            system="hr",  # type: ignore[arg-type]
            ctx=RecordingContext(),
        )

    async def test_select_and_access_log(self, sqlite_file: Path) -> None:
        db = self.db(sqlite_file)
        try:
            rows = await db.fetch_all(
                "select name from employees where pnr = :pnr", {"pnr": PNR}, subject=PNR, purpose="lönekontroll"
            )
            assert rows == [{"name": "Tolvan Tolvansson"}]
            assert db.ctx.accesses[0]["subject"] == PNR  # type: ignore[union-attr]
            employees = table("employees", column("name"), column("comment"))
            assert (
                await db.scalar(select(employees.c.comment).where(employees.c.name == "Tolvan Tolvansson"))
                == "update; drop"
            )
        finally:
            await db.aclose()

    async def test_write_refused_by_check(self, sqlite_file: Path) -> None:
        db = self.db(sqlite_file)
        try:
            with pytest.raises(ReadOnlyViolation):
                await db.fetch_all("delete from employees")
        finally:
            await db.aclose()

    def test_write_refused_by_the_connection(self, sqlite_file: Path) -> None:
        db = self.db(sqlite_file)
        try:
            with db.engine.connect() as conn, pytest.raises(Exception, match=r"readonly|read-only"):
                conn.exec_driver_sql("delete from employees")
        finally:
            db.close()
        with sqlite3.connect(sqlite_file) as conn:
            assert conn.execute("select count(*) from employees").fetchone() == (2,)
        conn.close()

    def test_timeout_interrupts_a_long_query(self, sqlite_file: Path) -> None:
        db = self.db(sqlite_file, statement_timeout_seconds=0.2)
        slow = (
            "with recursive n(i) as (select 1 union all select i + 1 from n where i < 100000000) select count(*) from n"
        )
        try:
            with pytest.raises(ConnectorUnavailable) as err:
                db.fetch_all_sync(slow)
            assert err.value.code == "timeout"
            assert db.fetch_all_sync("select count(*) as n from employees") == [{"n": 2}]
        finally:
            db.close()

    def test_too_many_rows_and_bad_sql(self, sqlite_file: Path) -> None:
        db = self.db(sqlite_file, max_rows=1)
        try:
            with pytest.raises(ConnectorError) as err:
                db.fetch_all_sync("select * from employees")
            assert err.value.code == "too_many_rows"
            with pytest.raises(ConnectorError) as err:
                db.fetch_all_sync("select * from nowhere where pnr = :p", {"p": PNR})
            assert err.value.code == "sql" and PNR not in str(err.value)
        finally:
            db.close()

    def test_missing_file_is_unavailable(self, tmp_path: Path) -> None:
        db = self.db(tmp_path / "missing.db")
        try:
            with pytest.raises(ConnectorUnavailable):
                db.fetch_all_sync("select 1")
        finally:
            db.close()
        assert not (tmp_path / "missing.db").exists()


class TestSettings:
    """Passwords are never inline; only sqlite and postgresql."""

    def test_inline_password_refused(self) -> None:
        with pytest.raises(ConfigError, match=r"connectors\.hr\.url"):
            validate_settings(SqlSettings, {"url": "postgresql+psycopg://u:secret@db/hr"}, "hr")

    def test_unknown_backend_refused(self) -> None:
        with pytest.raises(ConfigError):
            validate_settings(SqlSettings, {"url": "mysql://u@db/hr"}, "hr")
