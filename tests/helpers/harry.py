"""Test kit for HaRry: a sandbox you can reach into, settings pointing at it, payroll inspection.

Used by HaRry's end-to-end tests and by ``bench/harry_night.py`` (it lives under tests/, not in
robots/harry/, because it drives the engine and the sandbox: a robot imports only ``core.api``)::

    with payroll_sandbox(seed=3, employees=20) as sandbox:
        settings = harry_app_settings(tmp_path, sandbox.url)
        result = run_robot(Harry, db=db, app_settings=settings)
        assert sandbox.saves_per_period() == {...}

Unlike :func:`sandbox.testing.running_sandbox` it keeps the sandbox state at hand for
inspection (saves, registered rows); changes go through the sandbox's admin API over HTTP
(``POST /admin/payroll/locks``, ``POST /admin/scheduling/employees/{id}/versions``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from core.settings import Settings
from core.testing import make_settings
from core.testing.server import serve_app
from sandbox.app import create_app
from sandbox.payroll import DEFAULT_USERS, PayrollStore, store_for
from sandbox.state import SandboxOptions, SandboxState

PASSWORD_ENV = "KOLLEGA_TEST_HARRY_PASSWORD"


@dataclass
class PayrollSandbox:
    """A running sandbox: its URL and its state (scheduling data, payroll store)."""

    url: str
    state: SandboxState

    @property
    def payroll(self) -> PayrollStore:
        """The payroll application's store."""
        return store_for(self.state)

    def approved(self) -> list[dict[str, Any]]:
        """The approved schedules of the scheduling system."""
        return [s for s in self.state.data.schedules if s["status"] == "approved"]

    def saves_per_period(self) -> Counter[str]:
        """How many times each employee's period was saved in the payroll system (``E10001:2026-12-01:…``)."""
        return Counter(
            s.employee_number + ":" + s.period_start.isoformat() + ":" + s.period_end.isoformat()
            for s in self.payroll.saves
        )

    def registered(self, employee_id: str) -> list[dict[str, Any]]:
        """The rows registered for an employee, as the scheduling system writes rows."""
        number = {e.key: e.number for e in self.payroll.employees.values()}
        for key, rows in self.payroll.registered.items():
            if number[key] == employee_id:
                return [
                    {
                        "date": r.day.isoformat(),
                        "start": r.start,
                        "end": r.end,
                        "break_minutes": r.break_minutes,
                        "activity_code": r.activity,
                    }
                    for r in rows
                ]
        return []

    def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the sandbox's admin API over HTTP; the JSON answer."""
        response = httpx.post(f"{self.url}/admin/{path.lstrip('/')}", json=body, timeout=10)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def lock(self, first: date, last: date) -> dict[str, Any]:
        """Lock a period in the payroll system (``POST /admin/payroll/locks``)."""
        return self.admin("payroll/locks", {"from": first.isoformat(), "to": last.isoformat()})

    def approve_new_version(
        self, employee_id: str, change: dict[str, Any], period: str | None = None
    ) -> dict[str, Any]:
        """Approve a changed schedule (the first row updated with ``change``) as a new version, over HTTP."""
        body: dict[str, Any] = {"first_row": change, **({"period": period} if period else {})}
        return self.admin(f"scheduling/employees/{employee_id}/versions", body)


@contextmanager
def payroll_sandbox(seed: int = 3, **options: Any) -> Iterator[PayrollSandbox]:
    """A sandbox (``options``: SandboxOptions fields) served over real HTTP on 127.0.0.1."""
    app = create_app(seed, SandboxOptions(**options))
    with serve_app(app) as url:
        yield PayrollSandbox(url, app.state.sandbox)


def harry_app_settings(
    tmp_path: Path,
    url: str,
    *,
    robot: dict[str, Any] | None = None,
    browser: dict[str, Any] | None = None,
    worker: dict[str, Any] | None = None,
) -> Settings:
    """Application settings for a test run of HaRry against the sandbox at ``url``.

    The password is given by reference to the environment variable ``KOLLEGA_TEST_HARRY_PASSWORD``,
    which is set here to the sandbox's demo password.
    """
    os.environ[PASSWORD_ENV] = DEFAULT_USERS["robot.harry"]
    section = {"password": {"env": PASSWORD_ENV}, **(robot or {})}
    browser_section = {
        "navigation_timeout_seconds": 10,
        "timeout_seconds": 10,
        "find_timeout_seconds": 3,
        **(browser or {}),
    }
    base = make_settings(tmp_path)
    worker_settings = base.worker.model_copy(update=worker or {})
    return make_settings(
        tmp_path,
        robots={"harry": section},
        worker=worker_settings,
        connectors={
            "scheduling": {"base_url": f"{url}/scheduling"},
            "payroll": {"base_url": f"{url}/payroll"},
            "browser": browser_section,
        },
    )


def run_worker(db_url: str, url: str, var_dir: str) -> None:
    """Run HaRry once against the sandbox at ``url``, on the real clock (a worker process tests can kill)."""
    import asyncio

    from core.engine import Engine
    from core.registry import Registry
    from core.storage.db import Database
    from core.testing import TEST_TENANT
    from robots.harry.robot import Harry

    db = Database(db_url)
    try:
        engine = Engine.from_database(db, harry_app_settings(Path(var_dir), url), Registry(robots={"harry": Harry}))
        summary = asyncio.run(engine.run("harry", TEST_TENANT.code))
        print(f"SUMMARY {summary.counts}", flush=True)
    finally:
        db.dispose()


if __name__ == "__main__":  # python -m tests.helpers.harry DB_URL SANDBOX_URL VAR_DIR
    import sys

    run_worker(*sys.argv[1:4])
