"""Database errors never carry the statement's values into runs.error, logs or alerts (finding M5).

A robot's collect step fails inside the database with a name and address as the statement's
value: a unique violation (PostgreSQL quotes the key in DETAIL, SQLAlchemy the parameters)
and, on PostgreSQL, a cast that quotes the value in its main message. Neither the run's
error, the logs nor the alert may show them.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from core.logging import configure_logging
from core.robot import NewItem, Robot
from core.storage.db import Database
from core.storage.models import Run
from core.storage.web_models import Alert
from core.testing import FakeClock, run_robot
from core.web import alerts
from core.web.settings import AlertSettings

NAME = "Anna Andersson, Storgatan 1"
WORDS = ("Anna", "Andersson", "Storgatan")


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    try:
        yield stream
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        for h in list(root.handlers):
            if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter):
                root.removeHandler(h)
        root.setLevel(level)


def robot_running(db: Database, statement: str) -> type[Robot]:
    """A robot whose collect runs ``statement`` with NAME as its parameter."""

    class FailingLookup(Robot):
        name = "lookup"
        display_name = "Uppslag"

        def collect(self, ctx: Any) -> list[NewItem]:
            with db.session() as s:
                s.execute(text(statement), {"v": NAME})
            return []

        async def process(self, ctx: Any, item: Any) -> Any:
            raise AssertionError("never reached")

    return FailingLookup


def leaked(value: str | None) -> list[str]:
    return [w for w in WORDS if value and w in value]


class TestDatabaseErrors:
    """The engine hides parameters; runs.error gets the class and SQLSTATE only."""

    def test_parameters_hidden_in_the_exception_itself(self, db: Database) -> None:
        with db.session() as s:
            s.execute(text("CREATE TABLE m5_people (name TEXT UNIQUE)"))
            s.execute(text("INSERT INTO m5_people (name) VALUES (:v)"), {"v": NAME})
        with pytest.raises(IntegrityError) as caught, db.session() as s:
            s.execute(text("INSERT INTO m5_people (name) VALUES (:v)"), {"v": NAME})
        assert "[parameters:" not in str(caught.value)
        assert "hidden" in str(caught.value)  # SQLAlchemy says so instead

    @pytest.mark.parametrize("kind", ["unique", "cast"])
    def test_run_error_logs_and_alert(
        self, db: Database, clock: FakeClock, captured_logs: io.StringIO, kind: str
    ) -> None:
        if kind == "cast" and db.dialect != "postgresql":
            pytest.skip("SQLite casts anything without complaint")
        with db.session() as s:
            s.execute(text("CREATE TABLE m5_people (name TEXT UNIQUE)"))
            s.execute(text("INSERT INTO m5_people (name) VALUES (:v)"), {"v": NAME})
        statement = "INSERT INTO m5_people (name) VALUES (:v)" if kind == "unique" else "SELECT CAST(:v AS INTEGER)"
        result = run_robot(robot_running(db, statement), db=db, clock=clock)
        assert result.summary.status.value == "failed"
        with db.session() as s:
            (run,) = s.scalars(select(Run))
        assert run.error and "database error" in run.error
        assert not leaked(run.error), run.error
        assert not leaked(result.summary.error)
        out = captured_logs.getvalue()
        assert "run failed" in out
        assert not leaked(out), [line for line in out.splitlines() if leaked(line)]
        alerts.detect(db, AlertSettings(), clock.now())
        with db.session() as s:
            (alert,) = s.scalars(select(Alert))
        assert not leaked(alert.message)
