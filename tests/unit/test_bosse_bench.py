"""bench/bosse_month.py runs, and on a short seeded stretch Bosse meets its targets."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from core.settings import PROJECT_ROOT


def load_bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bosse_month", PROJECT_ROOT / "bench" / "bosse_month.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up while the class is made
    monkeypatch.setitem(sys.modules, "bosse_month", module)
    spec.loader.exec_module(module)
    return module


def test_short_month(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "bosse.json"
    code = load_bench(monkeypatch).main(["--days", "3", "--shifts", "15", "--substitutes", "60", "--out", str(out)])
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["bosse"]["shifts"] == results["baseline"]["shifts"] == 45
    assert results["bosse"]["rule_violations"] == results["baseline"]["rule_violations"] == 0
    assert results["bosse"]["independent_check_violations"] == 0  # robots/bosse/audit_check.py agrees
    assert results["targets"]["zero_violations"]
    assert code in (0, 1)
