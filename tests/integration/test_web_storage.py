"""The web app's tables: migration 0002 matches the models, and downgrades cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

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
