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
    # The clairvoyant bound: no policy books more, and the legal plan it found is within it.
    bound = results["bound"]
    assert bound["shifts"] == 45
    assert results["bosse"]["booked"] <= bound["bound"] and results["baseline"]["booked"] <= bound["bound"]
    assert 0 < bound["plan_found"] <= bound["bound"]


def test_the_bound_s_plan_breaks_no_rule_and_replies_are_fixed_per_offer(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench(monkeypatch)
    import bosse_bound

    # The n-th offer to a person gets the same answer whichever shift it is for and whoever sends it.
    assert bosse_bound.reply(1, "eager", "V001", 3) == bosse_bound.reply(1, "eager", "V001", 3)
    assert bosse_bound.reply(1, "silent", "V001", 1) is None
    month = bench.make_month(1, bench.date(2026, 11, 30), 2, 40, 12)
    settings = bench.BosseSettings()
    candidates = {
        s.id: [p.id for p in month.pool.values() if bench._static_ok(s, p)] for _, d in month.nights for s in d
    }
    found = bosse_bound.oracle_bound(month.nights, month.pool, candidates, month.behaviour, 1, settings, time_limit=30)
    assert found.solution <= found.bound <= 24
    assert found.plan, "a short month with 40 people has something to book"
    for person_id, shift_ids in found.plan.items():
        shifts = [s for _, d in month.nights for s in d if s.id in shift_ids]
        assert all(person_id in candidates[s.id] for s in shifts)
        assert bosse_bound._broken(month.pool[person_id], shifts, settings) is None


def test_the_expected_bound_is_the_chance_of_a_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/bosse_expected_bound.py: a shift that two people could take, each asked once, is
    booked at most as often as one of them says yes (1 - 0.55² for two selective responders),
    and someone who never answers adds nothing."""
    bench = load_bench(monkeypatch)
    import bosse_expected_bound

    month = bench.make_month(1, bench.date(2026, 11, 30), 1, 40, 12)
    settings = bench.BosseSettings()
    night, shifts = month.nights[0]
    shift, people = next(
        (s, ok)
        for s in shifts
        if len(
            ok := [
                p.id
                for p in month.pool.values()
                if bench._static_ok(s, p) and not bench.check_eligibility(s.to_rules(), p.to_rules(s), settings.rules)
            ]
        )
        >= 3
    )
    a, b, c = people[:3]

    def bound(behaviour: dict[str, str]) -> float:
        found = bosse_expected_bound.expected_bound(
            [(night, [shift])], month.pool, {shift.id: [a, b, c]}, behaviour, settings
        )
        return found.bound

    assert bound({a: "selective", b: "selective", c: "silent"}) == pytest.approx(1 - 0.55**2, abs=1e-6)
    assert bound({a: "reluctant", b: "silent", c: "silent"}) == pytest.approx(0.10, abs=1e-6)
    assert bound({a: "eager", b: "eager", c: "late"}) == pytest.approx(1 - 0.15**2 * 0.30, abs=1e-6)
