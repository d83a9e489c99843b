"""Shared fixtures: one storage suite runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
from sqlalchemy import text

from core.settings import Settings
from core.storage.db import Database
from core.testing import FakeClock, make_settings, temporary_database

# Property tests (hypothesis): on CI the examples are derived from each test's name, so a
# failure there fails again on the next run and locally under HYPOTHESIS_PROFILE=ci; on a
# developer's machine they are random and a failing example is saved in .hypothesis/.
hypothesis.settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis.settings.register_profile("dev", print_blob=True)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _reachable(url: str) -> str | None:
    try:
        db = Database(url)
        with db.engine.connect() as conn:
            conn.execute(text("select 1"))
        db.dispose()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`), the tests that drive Chromium run one after another in one
    worker (`--dist loadgroup`): side by side on a small machine they starve each other's pages."""
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL URL for tests; skipped when unreachable, except on CI where that fails."""
    url = os.environ.get("KOLLEGA_TEST_POSTGRES_URL", DEFAULT_PG)
    problem = _reachable(url)
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {url} is not reachable on CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {url} (set KOLLEGA_TEST_POSTGRES_URL): {problem}")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend under test."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """None for a SQLite file in tmp_path, else the PostgreSQL server URL."""
    return None if backend == "sqlite" else str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(tmp_path: Path, db_url: str | None) -> Iterator[Database]:
    """A migrated, empty database on the backend under test."""
    with temporary_database(tmp_path, db_url) as database:
        yield database


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting 2026-11-23 01:00 UTC."""
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings: one tenant (0000), fast retries, files under tmp_path."""
    return make_settings(tmp_path)


@pytest.fixture(autouse=True)
def _audit_checkpoints_off_after_each_test() -> Iterator[None]:
    """A CLI command run in-process configures the process's audit checkpointer: reset it."""
    yield
    from core import audit_checkpoint

    audit_checkpoint.configure(None)
