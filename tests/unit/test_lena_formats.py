"""Instance formats (Solomon, HHCRSP, Kollega) and ``kollega lena solve``: small instances written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from robots.lena.check import check_plan
from robots.lena.cli import app
from robots.lena.formats import FormatError, parse_instance, read_hhcrsp, read_kollega, read_solomon
from robots.lena.solver import SolverOptions, solve

SOLOMON = """TINY

VEHICLE
NUMBER     CAPACITY
  3         20

CUSTOMER
CUST NO.   XCOORD.   YCOORD.    DEMAND   READY TIME   DUE DATE   SERVICE TIME

    0          0       0           0       0         200           0
    1          3       4          10       0          50          10
    2          6       8          10       0         100          10
    3         -3      -4          15      10          60          10
"""

HHCRSP = {
    "patients": [
        {
            "id": "p1",
            "location": [3, 4],
            "time_window": [0, 60],
            "required_caregivers": [{"service": "s1", "duration": 10}],
        },
        {
            "id": "p2",
            "location": [6, 8],
            "time_window": [20, 40],
            "required_caregivers": [{"service": "s1", "duration": 10}, {"service": "s2", "duration": 10}],
            "synchronization": {"type": "simultaneous"},
        },
        {
            "id": "p3",
            "location": [0, 5],
            "time_window": [0, 30],
            "required_caregivers": [{"service": "s1", "duration": 5}, {"service": "s2", "duration": 5}],
            "synchronization": {"type": "sequential", "distance": [5, 10]},
        },
    ],
    "services": [{"id": "s1", "default_duration": 10}, {"id": "s2", "default_duration": 10}],
    "caregivers": [{"id": "c1", "abilities": ["s1"]}, {"id": "c2", "abilities": ["s1", "s2"]}],
    "central_offices": [{"id": "d", "location": [0, 0]}],
    "distances": [[0, 5, 10, 5], [5, 0, 5, 3.162], [10, 5, 0, 6.708], [5, 3.162, 6.708, 0]],
}

KOLLEGA = {
    "day": "2026-11-24",
    "travel": {"kind": "euclidean", "scale": 1},
    "visits": [
        {
            "id": "V1",
            "client_id": "K1",
            "location": {"x": 10, "y": 0},
            "earliest": "08:00",
            "latest": "09:00",
            "duration": 30,
            "competences": ["usk"],
        },
        {
            "id": "V2",
            "location": {"x": 0, "y": 10},
            "earliest": 480,
            "latest": 540,
            "duration": 20,
            "staff_count": 2,
            "sync": {"type": "simultaneous"},
            "locked": {"staff_id": "A", "start": "08:30"},
        },
    ],
    "staff": [
        {
            "id": "A",
            "shift_start": "07:00",
            "shift_end": "16:00",
            "start_location": {"x": 0, "y": 0},
            "competences": ["usk"],
            "break": {"minutes": 30, "earliest": "10:00", "latest": "13:00"},
        },
        {"id": "B", "shift_start": "07:00", "shift_end": "12:00", "start_location": {"x": 0, "y": 0}},
    ],
    "history": [{"date": "2026-11-20", "client_id": "K1", "staff_ids": ["B"]}],
}


class TestSolomon:
    """The Solomon text format: hard windows, capacities, distance objective."""

    def test_read_and_solve(self) -> None:
        inst = read_solomon(SOLOMON, "TINY")
        p = inst.problem
        assert len(p.visits) == 3 and len(p.staff) == 3 and p.staff[0].capacity == 20
        assert p.visit("3").earliest == 10_000 and p.visit("3").load == 15
        r = solve(p, SolverOptions(time_limit=1.0, weights=inst.weights))
        assert check_plan(p, r.plan) == [] and r.plan.unassigned == ()
        out = inst.summary(r.plan, True)
        assert out["distance"] == pytest.approx(30.0, abs=1e-6)  # 0→1→2→0 and 0→3→0 (capacity)
        assert out["vehicles"] == 2 and out["objective"] == out["distance"]

    @pytest.mark.parametrize(
        ("text", "words"),
        [
            ("nothing here", "no VEHICLE section"),
            (
                SOLOMON.replace("    2          6       8          10       0         100          10", "    2  6 8"),
                "line 12 has 3 fields",
            ),
            (SOLOMON.replace(" 100 ", " 1x0 "), "not a number"),
            (SOLOMON.split("    1 ")[0], "no customers"),
            (SOLOMON.replace("      0          50", "    500          50"), "window ends"),
        ],
    )
    def test_malformed(self, text: str, words: str) -> None:
        with pytest.raises(FormatError) as info:
            read_solomon(text)
        assert any(words in p for p in info.value.problems), info.value.problems


class TestHhcrsp:
    """The Mankowska JSON format: soft windows, two services with synchronisation."""

    def test_read_and_solve(self) -> None:
        inst = read_hhcrsp(json.dumps(HHCRSP))
        p = inst.problem
        p2 = p.visit("p2")
        assert p2.staff_count == 2 and p2.roles() == (frozenset({"s1"}), frozenset({"s2"}))
        assert p.visit("p3").sync is not None and p.visit("p3").sync.min_gap == 5000
        r = solve(p, SolverOptions(time_limit=1.0, weights=inst.weights))
        assert check_plan(p, r.plan) == [] and r.plan.unassigned == ()
        rows = r.plan.assignments()["p2"]
        assert rows[1][0] == "c2" and rows[0][1] == rows[1][1]  # only c2 has s2
        out = inst.summary(r.plan, True)
        assert out["objective"] == pytest.approx(
            (out["distance"] + out["total_tardiness"] + out["max_tardiness"]) / 3, abs=1e-3
        )

    @pytest.mark.parametrize(
        ("data", "words"),
        [
            ("{", "not JSON"),
            (json.dumps({"patients": []}), "'patients' must be a non-empty list"),
            (json.dumps({**HHCRSP, "distances": [[0, 1], [1, 0]]}), "'distances' must be 4×4"),
            (json.dumps({**HHCRSP, "patients": [{"id": "p1"}, *HHCRSP["patients"][1:]]}), "patient 1 is malformed"),
        ],
    )
    def test_malformed(self, data: str, words: str) -> None:
        with pytest.raises(FormatError) as info:
            read_hhcrsp(data)
        assert any(words in p for p in info.value.problems), info.value.problems


class TestKollega:
    """Lena's own JSON format."""

    def test_read_and_solve(self) -> None:
        inst = read_kollega(json.dumps(KOLLEGA))
        p = inst.problem
        assert p.visit("V1").earliest == 480 and p.visit("V2").locked is not None
        assert p.member("A").break_rule is not None and p.member("B").end_location == p.member("B").start_location
        r = solve(p, SolverOptions(time_limit=1.0))
        assert check_plan(p, r.plan) == []

    @pytest.mark.parametrize(
        ("change", "words"),
        [
            ({"visits": "x"}, "needs an object with the lists"),
            ({"travel": {"kind": "teleport"}}, "unknown travel kind"),
            ({"visits": [{**KOLLEGA["visits"][0], "earliest": "8 am"}]}, "is not a time"),
            ({"visits": [{**KOLLEGA["visits"][0], "location": {}}]}, "a location needs"),
            ({"staff": [{"id": "A", "start_location": {"x": 0, "y": 0}}]}, "KeyError"),
            ({"visits": [{**KOLLEGA["visits"][0], "duration": 0}]}, "must be positive"),
        ],
    )
    def test_malformed(self, change: dict, words: str) -> None:
        with pytest.raises(FormatError) as info:
            read_kollega(json.dumps({**KOLLEGA, **change}))
        assert any(words in p for p in info.value.problems), info.value.problems

    def test_unknown_format(self) -> None:
        with pytest.raises(FormatError):
            parse_instance("", "vrplib")


class TestCli:
    """``kollega lena solve``: JSON out; exit 0 all planned, 1 some left out, 2 malformed."""

    def test_solve_json(self, tmp_path: Path) -> None:
        f = tmp_path / "TINY.txt"
        f.write_text(SOLOMON)
        result = CliRunner().invoke(app, ["solve", str(f), "--time-limit", "1", "--json"])
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        assert set(out) == {
            "feasible",
            "vehicles",
            "distance",
            "total_tardiness",
            "max_tardiness",
            "objective",
            "routes",
            "unassigned",
        }
        assert out["feasible"] and sorted(v for r in out["routes"] for v in r) == ["1", "2", "3"]

    def test_guesses_hhcrsp_and_reports_text(self, tmp_path: Path) -> None:
        f = tmp_path / "h.json"
        f.write_text(json.dumps(HHCRSP))
        result = CliRunner().invoke(app, ["solve", str(f), "--time-limit", "1"])
        assert result.exit_code == 0 and "feasible" in result.output

    def test_unplannable_visit_exits_1(self, tmp_path: Path) -> None:
        f = tmp_path / "k.json"
        f.write_text(json.dumps({**KOLLEGA, "visits": [{**KOLLEGA["visits"][0], "competences": ["sjuksköterska"]}]}))
        result = CliRunner().invoke(app, ["solve", str(f), "--format", "kollega", "--time-limit", "1", "--json"])
        assert result.exit_code == 1
        assert json.loads(result.output)["unassigned"][0]["code"] == "no_competence"

    def test_malformed_exits_2_naming_the_problem(self, tmp_path: Path) -> None:
        f = tmp_path / "bad.txt"
        f.write_text("VEHICLE\nNUMBER CAPACITY\n")
        result = CliRunner().invoke(app, ["solve", str(f)])
        assert result.exit_code == 2 and "no VEHICLE section" in result.output
        missing = CliRunner().invoke(app, ["solve", str(tmp_path / "none.txt")])
        assert missing.exit_code == 2
