"""A robot started for a municipality whose systems are not declared fails the run, naming the section."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.records import RunStatus
from core.settings import TenantSettings
from core.testing import make_settings, run_robot, temporary_database
from robots.harry.robot import Harry


def test_harry_for_a_municipality_without_its_payroll_system_fails_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Secrets are read as a run starts (issue 22): give the password, so the payroll check is what fails.
    monkeypatch.setenv("KOLLEGA_TEST_UNUSED", "sandbox-value")
    settings = make_settings(
        tmp_path,
        tenants=[
            TenantSettings(
                code="1081",
                name="Ronneby kommun",
                connectors={
                    "scheduling": {"base_url": "http://127.0.0.1:9/scheduling"},
                    "payroll": {"base_url": "http://127.0.0.1:9/payroll"},
                },
            ),
            TenantSettings(code="1082", name="Karlshamns kommun"),
        ],
        # The deployment's own section is not declared shared: Karlshamn must not use it.
        connectors={"payroll": {"base_url": "http://127.0.0.1:9/payroll"}},
        robots={"harry": {"password": {"env": "KOLLEGA_TEST_UNUSED"}}},
    )
    with temporary_database(tmp_path) as db:
        result = run_robot(Harry, db=db, app_settings=settings, tenant="1082")
    assert result.summary.status == RunStatus.failed
    error = result.summary.error or ""
    assert "ConfigError" in error and "tenant 1082" in error and "connectors.payroll" in error
    assert "not shared with 1082" in error
    assert result.summary.counts["collected"] == 0  # it stopped before anything was collected or written
