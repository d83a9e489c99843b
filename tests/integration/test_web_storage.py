"""The web app's tables: migration 0002 matches the models, and downgrades cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

import core.storage.web_models  # noqa: F401 - registers the web tables on Base.metadata
from core.storage.db import Database, alembic_config
from core.storage.models import Base

WEB_TABLES = {
    "web_users",
    "web_user_roles",
    "web_sessions",
    "web_login_states",
    "web_api_tokens",
    "web_review_timings",
    "schedule_pauses",
    "web_alerts",
}


def _diff_for_web_tables(db: Database) -> list[object]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)

    def table_of(diff: object) -> str | None:
        item = diff[0] if isinstance(diff, list) else diff
        for part in item[1:] if isinstance(item, tuple) else ():
            name = getattr(part, "name", None) if not isinstance(part, str) else None
            table = getattr(part, "table", None)
            if table is not None:
                return str(table.name)
            if name in WEB_TABLES:
                return str(name)
            if isinstance(part, str) and part in WEB_TABLES:
                return part
        return None

    return [d for d in diffs if table_of(d) in WEB_TABLES]


def test_migration_matches_the_models(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert tables >= WEB_TABLES
    assert _diff_for_web_tables(db) == []


def test_downgrade_and_upgrade_again(db: Database) -> None:
    with db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    assert not set(inspect(db.engine).get_table_names()) & WEB_TABLES
    db.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= WEB_TABLES


def test_a_pause_from_before_0004_keeps_pausing_every_tenant_and_survives_a_downgrade(db: Database) -> None:
    """Migration 0004_pause_tenant: an old schedule-wide pause becomes tenant "*" (every tenant)."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from core.storage.web_models import ALL_TENANTS, SchedulePause, schedule_pause

    with db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0003")
    with db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO schedule_pauses (schedule, paused_by, paused_at, reason) VALUES (:s, :b, :a, :r)"),
            {"s": "night", "b": "user:sara", "a": datetime(2026, 11, 1, tzinfo=UTC), "r": "Byte"},
        )
    db.upgrade()
    with db.session() as s:
        (row,) = s.scalars(select(SchedulePause)).all()
        assert (row.schedule, row.tenant, row.paused_by, row.reason) == ("night", ALL_TENANTS, "user:sara", "Byte")
        for tenant in ("0000", "9999"):
            found = schedule_pause(s, "night", tenant)
            assert found is not None and found.paused_by == "user:sara"
        assert schedule_pause(s, "other", "0000") is None
        s.add(SchedulePause(schedule="day", tenant="9999", paused_by="user:olle", paused_at=row.paused_at, reason=""))
    with db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0003")
    with db.engine.begin() as conn:
        rows = conn.execute(text("SELECT schedule, paused_by FROM schedule_pauses ORDER BY schedule")).all()
    assert [tuple(r) for r in rows] == [("day", "user:olle"), ("night", "user:sara")]
    db.upgrade()


INBOX_INDEXES = {"ix_review_items_open", "ix_review_items_decided_by"}


def test_the_inbox_indexes_match_the_models_and_downgrade(db: Database) -> None:
    """Migration 0016_inbox_indexes: the indexes the inbox's counts and "Mina beslut" read."""

    def indexes() -> set[str]:
        return {str(i["name"]) for i in inspect(db.engine).get_indexes("review_items")}

    assert indexes() >= INBOX_INDEXES
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    named = [d for d in diffs if isinstance(d, tuple) and getattr(d[1], "name", None) in INBOX_INDEXES]
    assert named == []
    with db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0011_robot_state")
    assert not indexes() & INBOX_INDEXES
    db.upgrade()
    assert indexes() >= INBOX_INDEXES


def test_a_read_session_reads_and_refuses_to_write(db: Database) -> None:
    """Pages read through read_session(); a change made through it is never written."""
    from datetime import UTC, datetime

    import pytest

    from core.storage.models import Tenant

    with db.session() as s:
        s.add(Tenant(code="0000", name="Testkommun", created_at=datetime(2026, 11, 1, tzinfo=UTC)))
    with db.read_session() as s:
        assert s.scalar(select(Tenant.name).where(Tenant.code == "0000")) == "Testkommun"
    with pytest.raises(RuntimeError), db.read_session() as s:
        s.add(Tenant(code="9999", name="Annan", created_at=datetime(2026, 11, 1, tzinfo=UTC)))
    with db.session() as s:
        assert s.get(Tenant, "9999") is None


def test_a_read_connection_reads_columns_one_statement_at_a_time(db: Database) -> None:
    """The pages' hot reads go through read_connection(): rows of columns; on PostgreSQL each statement on its own."""
    from datetime import UTC, datetime

    from core.storage.models import Tenant

    with db.session() as s:
        s.add(Tenant(code="0000", name="Testkommun", created_at=datetime(2026, 11, 1, tzinfo=UTC)))
    with db.read_connection() as conn:
        assert conn.execute(select(Tenant.code, Tenant.name)).all() == [("0000", "Testkommun")]
        if not db.is_sqlite:
            assert conn.connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]
