"""IT's plugin kit: a robot written outside the repository is found, scheduled, run and rendered.

`kollega new-robot` writes a package in a temporary folder; it is installed (pip, into a
folder of its own on PYTHONPATH, so the project's environment is left alone) and then
used only through the public surface: the entry point, the CLI, a schedule file and the
web app's template rendering. Nothing in core/ knows about it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

NAME = "invoice_check"


def sh(
    args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=180, check=False
    )
    assert out.returncode == 0, f"{' '.join(args)}\n{out.stdout}\n{out.stderr}"
    return out


def test_a_generated_robot_installs_runs_is_scheduled_and_rendered_without_touching_core(tmp_path: Path) -> None:
    kollega = [sys.executable, "-m", "core.cli"]
    sh([*kollega, "new-robot", NAME, "--dir", str(tmp_path), "--display-name", "Fakturakollen"])
    package = tmp_path / "kollega-invoice-check"
    assert (package / "kollega_invoice_check" / "robot.py").is_file()

    site = tmp_path / "site"
    sh([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(package)])
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / f"{NAME}.toml").write_text((package / "schedules" / f"{NAME}.toml").read_text())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "F-1.json").write_text(json.dumps({"reference": "F-1", "amount": 800, "description": "Kontorsmaterial"}))
    (inbox / "F-2.json").write_text(json.dumps({"reference": "F-2", "amount": 12000, "description": "Konsult"}))
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "KOLLEGA_VAR_DIR": str(tmp_path / "var"),
        "KOLLEGA_SCHEDULER__SCHEDULES_DIR": str(schedules),
        f"KOLLEGA_ROBOTS__{NAME.upper()}__INBOX_DIR": str(inbox),
        "KOLLEGA_LOGGING__LEVEL": "WARNING",
    }
    env_no_db = {k: v for k, v in os.environ.items() if k != "KOLLEGA_DATABASE_URL"}
    os_env = {**env_no_db, **env}

    # Found through its entry point, healthy.
    robots = {r["name"]: r for r in json.loads(sh([*kollega, "robots", "--json", "--strict"], env=os_env).stdout)}
    assert robots[NAME]["health"] == "ok" and robots[NAME]["display_name"] == "Fakturakollen"

    # Its generated tests pass as generated.
    tests = sh(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=package,
        env={**os_env, "PYTHONPATH": env["PYTHONPATH"]},
    )
    assert "passed" in tests.stdout and "failed" not in tests.stdout

    # Scheduled from a plain schedule file.
    listed = json.loads(sh([*kollega, "schedules", "--json"], env=os_env).stdout)
    assert NAME in json.dumps(listed)

    # Run by the engine: one finished, one prepared for a person.
    sh([*kollega, "db", "upgrade"], env=os_env)
    [summary] = json.loads(sh([*kollega, "run", NAME, "--tenant", "1081", "--json"], env=os_env).stdout)
    assert (summary["counts"]["done"], summary["counts"]["needs_review"]) == (1, 1)

    # Rendered by the web app with its own template.
    render = textwrap.dedent(f"""
        from types import SimpleNamespace
        from sqlalchemy import select
        from core.registry import load_robots
        from core.settings import load_settings
        from core.storage.db import Database
        from core.storage.models import ReviewItem
        from core.web.inbox import render_material
        settings = load_settings()
        db = Database(settings.effective_database_url)
        with db.session() as s:
            row = s.scalars(select(ReviewItem).where(ReviewItem.robot == "{NAME}")).one()
            print(render_material(SimpleNamespace(registry=load_robots()), row, "sv"))
    """)
    html = sh([sys.executable, "-c", render], env=os_env).stdout
    assert "Ärende F-2" in html and "12000 kr" in html and "över gränsen" in html
