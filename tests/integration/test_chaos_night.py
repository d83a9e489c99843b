"""The chaos bench, short: a night of all four robots while workers are SIGKILLed ten times.

bench/chaos_night.py with --kills 10 on a small sandbox (12 applications, 5 employees, one
round of Bosse's day):
real ``kollega worker`` processes on PostgreSQL, killed and replaced every 1.5 s, review
items decided as they appear. Nothing may be lost, nothing written twice to the
sandbox's systems (Bosse's day included: replies arrive and shifts are booked), and the
audit chain must verify.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from core.settings import PROJECT_ROOT


def load_bench() -> ModuleType:
    """bench/ is a folder of scripts, not a package: load the script as a module."""
    spec = importlib.util.spec_from_file_location("chaos_night", PROJECT_ROOT / "bench" / "chaos_night.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(1000)  # the bench's own --max-seconds (900) stops it first
def test_a_night_survives_ten_worker_kills(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOLLEGA_TEST_POSTGRES_URL", pg_url)
    out = tmp_path / "chaos.json"
    argv = ["--backend", "postgresql", "--workers", "2", "--kills", "10", "--interval", "1.5"]
    # One round of Bosse's day (replies and bookings) follows its night, under the last kills;
    # the full bench (N = 100, three rounds) is in docs/benchmarks.md. The limit is a safety
    # stop, not a timing assertion.
    argv += ["--applications", "12", "--employees", "5", "--day-rounds", "1", "--day-kills", "3"]
    argv += ["--max-seconds", "900", "--out", str(out)]
    code = load_bench().main(argv)
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["finished"], result
    assert result["kills"] == 10
    assert result["items"] > 0
    assert result["lost"] == 0, result["items_by_status"]
    assert result["duplicate_writes"] == 0, result["duplicates"]
    # Bosse's day ran and booked shifts: "no shift booked twice" was put to the test.
    assert result["day_rounds"] == 1
    assert result["bookings"]["made"] > 0, result["bookings"]
    assert result["bookings"]["shifts_with_two_active_bookings"] == 0
    assert result["audit_ok"]
    assert code == 0
