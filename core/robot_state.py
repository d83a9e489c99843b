"""A robot's own state per tenant in SQL: the :class:`~core.interfaces.RobotStateStore` port.

One row per (robot, tenant, key): a JSON object and a version. A write that demands a
version is one conditional statement (an UPDATE … WHERE version = expected, or an INSERT …
ON CONFLICT DO NOTHING for version 0), so two workers never overwrite each other's change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.clock import Clock, SystemClock
from core.errors import ConfigError
from core.storage.db import Database
from core.storage.models import RobotState

#: The longest key a robot may use (the column's width).
MAX_STATE_KEY = 200


def check_key(key: str) -> None:
    """Refuse an empty or too long key (a robot's programming error, named in English)."""
    if not key or len(key) > MAX_STATE_KEY:
        raise ConfigError(f"robot state key must be 1–{MAX_STATE_KEY} characters, got {len(key)}")


class SqlRobotStateStore:
    """Robots' state in the ``robot_state`` table."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()

    def get(self, robot: str, tenant: str, key: str) -> tuple[dict[str, Any], int] | None:
        """The value under ``key`` and its version, or None."""
        check_key(key)
        with self.db.session() as s:
            row = s.execute(
                select(RobotState.value, RobotState.version).where(
                    RobotState.robot == robot, RobotState.tenant == tenant, RobotState.key == key
                )
            ).first()
        return (dict(row[0]), int(row[1])) if row is not None else None

    def put(
        self, robot: str, tenant: str, key: str, value: dict[str, Any], *, expected_version: int | None = None
    ) -> int | None:
        """Keep ``value``; the new version, or None when ``expected_version`` is not the current one."""
        check_key(key)
        now = self.clock.now()
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        where = (RobotState.robot == robot, RobotState.tenant == tenant, RobotState.key == key)
        with self.db.session() as s:
            if expected_version in (None, 0):
                created = s.scalar(
                    insert(RobotState)
                    .values(robot=robot, tenant=tenant, key=key, value=value, version=1, updated_at=now)
                    .on_conflict_do_nothing(index_elements=["robot", "tenant", "key"])
                    .returning(RobotState.version)
                )
                if created is not None or expected_version == 0:
                    return created
            condition = where if expected_version is None else (*where, RobotState.version == expected_version)
            return s.scalar(
                update(RobotState)
                .where(*condition)
                .values(value=value, version=RobotState.version + 1, updated_at=now)
                .returning(RobotState.version)
            )
