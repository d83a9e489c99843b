"""The `kollega` command as operators use it: exit codes, --json, refusals with clear messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def kollega(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console script in a subprocess with var/ under tmp_path."""
    full_env = {
        **os.environ,
        "KOLLEGA_VAR_DIR": str(tmp_path / "var"),
        "KOLLEGA_LOGGING__LEVEL": "WARNING",
        **(env or {}),
    }
    full_env.pop("KOLLEGA_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


class TestCli:
    """Operators rely on exit codes 0/1/2 and on --json output."""

    def test_robots_lists_the_example_robot_as_json(self, tmp_path: Path) -> None:
        out = kollega(tmp_path, "robots", "--json", "--strict")
        assert out.returncode == 0, out.stderr
        names = {r["name"]: r for r in json.loads(out.stdout)}
        assert names["example"]["health"] == "ok"

    def test_unmigrated_database_is_refused_naming_the_command(self, tmp_path: Path) -> None:
        out = kollega(tmp_path, "run", "example")
        assert out.returncode == 2
        assert "kollega db upgrade" in out.stderr

    def test_invalid_configuration_exits_2_naming_the_key(self, tmp_path: Path) -> None:
        out = kollega(tmp_path, "items", env={"KOLLEGA_WORKER__CONCURRENCY": "0"})
        assert out.returncode == 2
        assert "worker.concurrency" in out.stderr

    def test_bad_config_file_exits_2(self, tmp_path: Path) -> None:
        cfg = tmp_path / "k.toml"
        cfg.write_text('database_url = ""\n[worker]\nconcurency = 3\n')
        out = kollega(tmp_path, "items", env={"KOLLEGA_CONFIG": str(cfg)})
        assert out.returncode == 2
        assert "worker.concurency" in out.stderr

    def test_run_review_decide_and_audit_verify(self, tmp_path: Path) -> None:
        assert kollega(tmp_path, "db", "upgrade").returncode == 0
        out = kollega(
            tmp_path, "run", "example", "--tenant", "1081", "--json", env={"KOLLEGA_ROBOTS__EXAMPLE__FLAKY_EVERY": "0"}
        )
        assert out.returncode == 0, out.stderr
        (summary,) = json.loads(out.stdout)
        assert summary["counts"]["collected"] == 24
        assert (
            summary["counts"]["needs_review"] + summary["counts"]["done"] + summary["counts"]["failed_business"] == 24
        )

        listed = json.loads(kollega(tmp_path, "review", "list", "--queue", "example.review", "--json").stdout)
        assert len(listed) == summary["counts"]["needs_review"]
        first = listed[0]["id"]
        out = kollega(tmp_path, "review", "decide", str(first), "approve", "--by", "anna")
        assert out.returncode == 0, out.stderr
        again = kollega(tmp_path, "review", "decide", str(first), "reject", "--by", "bertil", "--comment", "nej")
        assert again.returncode == 2
        assert "already approved" in again.stderr

        out = kollega(tmp_path, "audit", "verify", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["ok"] is True

    def test_unknown_robot_and_tenant_exit_2(self, tmp_path: Path) -> None:
        assert kollega(tmp_path, "db", "upgrade").returncode == 0
        out = kollega(tmp_path, "run", "nosuchrobot")
        assert out.returncode == 2 and "unknown robot 'nosuchrobot'" in out.stderr
        out = kollega(tmp_path, "run", "example", "--tenant", "9999")
        assert out.returncode == 2 and "unknown tenant '9999'" in out.stderr

    @pytest.mark.parametrize("args", [["review", "decide", "1", "maybe"], ["run"]])
    def test_usage_errors_exit_2(self, tmp_path: Path, args: list[str]) -> None:
        assert kollega(tmp_path, "db", "upgrade").returncode == 0
        assert kollega(tmp_path, *args).returncode == 2


def test_artifacts_purge_deletes_what_is_past_its_retention(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from core.artifacts import FileArtifactStore
    from core.runs import SqlRunStore
    from core.storage.db import Database
    from core.testing import FakeClock

    assert kollega(tmp_path, "db", "upgrade").returncode == 0
    db = Database(f"sqlite:///{tmp_path / 'var' / 'kollega.db'}")
    clock = FakeClock(datetime.now(UTC) - timedelta(days=31))
    SqlRunStore(db, clock).ensure_tenant("1081", "Ronneby kommun")
    store = FileArtifactStore(db, tmp_path / "var" / "artifacts", 30, clock)
    store.save(
        tenant="1081", work_item_id=None, kind="screenshot", filename="x.png", content_type="image/png", data=b"png"
    )
    db.dispose()
    out = kollega(tmp_path, "artifacts", "purge", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"deleted": 1, "retention_days": 30}
    assert json.loads(kollega(tmp_path, "artifacts", "purge", "--json").stdout)["deleted"] == 0


def test_purge_reports_per_tenant_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    assert kollega(tmp_path, "db", "upgrade").returncode == 0
    out = kollega(tmp_path, "purge", "--dry-run", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["tenant"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"1081", "1082"}
    assert rows["1081"]["work_item_days"] == 180 and rows["1081"]["review_days"] == 365
    bad = kollega(tmp_path, "purge", "--tenant", "9999")
    assert bad.returncode == 2 and "9999" in bad.stderr
