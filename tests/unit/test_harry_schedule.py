"""HaRry's pure schedule logic: content hash, reference, form values, comparison."""

from __future__ import annotations

from datetime import date

import pytest

from robots.harry.schedule import (
    ROWS_PER_DAY,
    Difference,
    Row,
    Schedule,
    canonical,
    changed_fields,
    compare,
    content_hash,
    form_label,
    form_values,
    period_bounds,
    problems,
    reference,
    side_by_side,
    summary_of,
)
from sandbox.app import generate_data
from sandbox.state import SandboxOptions

DEC = (date(2026, 12, 1), date(2026, 12, 31))


def row(day: int, start: str = "07:00", end: str = "16:00", pause: int = 30, code: str = "ARB") -> Row:
    """A row in December 2026."""
    return Row(date(2026, 12, day), start, end, pause, code)


def schedule(*rows: Row, version: int = 1) -> Schedule:
    """A December schedule for E10001."""
    return Schedule("E10001", "2026-12", *DEC, version, f"SCH-E10001-2026-12-v{version}", tuple(rows), "api")


class TestContentHash:
    """The hash identifies a schedule's content, whatever the order of its rows."""

    def test_order_does_not_matter(self) -> None:
        a = [row(1), row(2, "13:30", "21:30")]
        assert content_hash(a) == content_hash(list(reversed(a)))

    def test_any_field_changes_it(self) -> None:
        base = content_hash([row(1)])
        for changed in (row(2), row(1, start="07:30"), row(1, end="15:00"), row(1, pause=0), row(1, code="UTB")):
            assert content_hash([changed]) != base

    def test_equals_the_scheduling_systems_hash(self) -> None:
        """API and CSV give the same reference for the same schedule only if this holds."""
        data = generate_data(11, SandboxOptions(employees=40))
        for s in data.schedules:
            assert content_hash(Row.from_dict(r) for r in s["rows"]) == s["content_hash"], s["schedule_id"]

    def test_empty_schedule_has_a_hash(self) -> None:
        assert len(content_hash([])) == 64


class TestReference:
    """employee/period/version/hash: unchanged → same item; changed or new version → new item."""

    def test_shape(self) -> None:
        assert reference("E10001", "2026-12", 2, "ab" * 32) == "E10001/2026-12/v2/" + "ab" * 8

    def test_schedule_reference_follows_content(self) -> None:
        first = schedule(row(1), row(2))
        assert first.reference == schedule(row(2), row(1)).reference
        assert first.reference != schedule(row(1), row(2, end="17:00")).reference

    def test_version_is_part_of_it(self) -> None:
        """A schedule changed back (A → B → A) is a new version, so it is registered again."""
        assert schedule(row(1), version=1).reference != schedule(row(1), version=3).reference

    def test_payload_round_trip(self) -> None:
        s = schedule(row(3), row(1))
        again = Schedule.from_payload(s.payload())
        assert again == s
        assert again.reference == s.reference
        assert "personnummer" not in s.payload()


class TestPeriod:
    """Months as periods."""

    @pytest.mark.parametrize(
        ("period", "first", "last"),
        [
            ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
            ("2027-02", date(2027, 2, 1), date(2027, 2, 28)),
            ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        ],
    )
    def test_bounds(self, period: str, first: date, last: date) -> None:
        assert period_bounds(period) == (first, last)

    @pytest.mark.parametrize("bad", ["2026-13", "2026-1", "december", ""])
    def test_not_a_period(self, bad: str) -> None:
        with pytest.raises(ValueError, match="not a period"):
            period_bounds(bad)


class TestProblems:
    """What the payroll form cannot hold is found before the browser is opened."""

    def test_fine_schedule(self) -> None:
        assert problems(schedule(row(1), row(2, "07:00", "12:00", 0), row(2, "13:00", "16:00", 0, "APT"))) == []

    def test_three_rows_a_day(self) -> None:
        found = problems(
            schedule(row(4, "06:00", "08:00", 0), row(4, "09:00", "11:00", 0), row(4, "12:00", "14:00", 0))
        )
        assert found == [f"2026-12-04 har 3 rader; PersonalLön tar emot högst {ROWS_PER_DAY} per dag."]

    def test_outside_period(self) -> None:
        s = Schedule("E1", "2026-12", *DEC, 1, "x", (Row(date(2027, 1, 1), "07:00", "16:00", 30, "ARB"),), "api")
        assert problems(s) == ["2027-01-01 ligger utanför perioden 2026-12."]

    def test_bad_time(self) -> None:
        assert problems(schedule(row(5, start="7.00"))) == ["2026-12-05: ogiltig starttid (ange tt:mm)."]


class TestFormValues:
    """Every field of the month's form, by its label."""

    def test_labels_and_blanks(self) -> None:
        s = schedule(row(2), row(1, "07:00", "12:00", 0), row(1, "13:00", "16:00", 0, "APT"))
        values = form_values(s)
        assert len(values) == 31 * ROWS_PER_DAY * 4
        assert values["Starttid 2026-12-01 rad 1"] == "07:00"
        assert values["Sluttid 2026-12-01 rad 1"] == "12:00"
        assert values["Starttid 2026-12-01 rad 2"] == "13:00"
        assert values["Aktivitetskod 2026-12-01 rad 2"] == "APT"
        assert values["Rast (minuter) 2026-12-02 rad 1"] == "30"
        assert values["Starttid 2026-12-02 rad 2"] == ""
        assert values["Aktivitetskod 2026-12-31 rad 1"] == ""

    def test_form_label(self) -> None:
        assert form_label("break_minutes", date(2026, 12, 24), 2) == "Rast (minuter) 2026-12-24 rad 2"

    def test_only_changed_fields_are_entered(self) -> None:
        wanted = {"a": "07:00", "b": "", "c": "30"}
        assert changed_fields(wanted, {"a": "07:00", "b": "08:00", "c": " 30 "}) == {"b": ""}
        assert changed_fields(wanted, {}) == {"a": "07:00", "c": "30"}


class TestCompare:
    """Approved and registered rows compared field by field."""

    def test_identical(self) -> None:
        rows = [row(1), row(2, "07:00", "12:00", 0), row(2, "13:00", "16:00", 0, "APT")]
        assert compare(rows, list(reversed(rows))) == []

    def test_empty_registration(self) -> None:
        found = compare([row(1), row(3)], [])
        assert [(d.day.day, d.slot, d.field, d.shown) for d in found] == [(1, 1, "row", None), (3, 1, "row", None)]
        assert found[0].expected == "2026-12-01 07:00–16:00"

    def test_field_differences(self) -> None:
        found = compare([row(1), row(2)], [row(1, end="17:00"), row(2, pause=45, code="UTB")])
        assert [(d.day.day, d.field, d.expected, d.shown) for d in found] == [
            (1, "end", "16:00", "17:00"),
            (2, "break_minutes", "30", "45"),
            (2, "activity_code", "ARB", "UTB"),
        ]

    def test_extra_row_in_payroll(self) -> None:
        found = compare([row(1)], [row(1), row(9)])
        assert found == [Difference(date(2026, 12, 9), 1, "row", None, "2026-12-09 07:00–16:00")]

    def test_second_row_missing(self) -> None:
        found = compare([row(1, "07:00", "12:00", 0), row(1, "13:00", "16:00", 0)], [row(1, "07:00", "12:00", 0)])
        assert [(d.slot, d.field) for d in found] == [(2, "row")]

    def test_side_by_side_marks_what_differs(self) -> None:
        lines = side_by_side([row(1), row(2)], [row(1, end="17:00")])
        assert lines[0]["differs"] == ["end"]
        assert lines[1]["shown"] is None and lines[1]["differs"] == ["start", "end", "break_minutes", "activity_code"]
        assert lines[0]["expected"]["end"] == "16:00" and lines[0]["shown"]["end"] == "17:00"

    def test_summary_is_swedish(self) -> None:
        found = compare([row(1)], [row(1, end="17:00")])
        assert summary_of(found) == "1 skillnad(er): 2026-12-01 rad 1, sluttid: godkänt 16:00, i PersonalLön 17:00."
        assert summary_of([]) == "Inga skillnader."

    def test_canonical_order(self) -> None:
        assert canonical([row(2), row(1, "13:00", "16:00"), row(1)]) == [row(1), row(1, "13:00", "16:00"), row(2)]
