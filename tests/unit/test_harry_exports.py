"""HaRry's reading of the scheduling system's CSV exports: row model, grouping, broken schedules."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from connectors.files import FileFormatError
from robots.harry.exports import ExportRow, read_export
from robots.harry.schedule import Row, reference
from robots.harry.sources import api_payload, items_of_file
from sandbox.app import generate_data
from sandbox.scheduling import CSV_COLUMNS, write_csv_export
from sandbox.state import SandboxOptions, SandboxState

HEADER = ";".join(CSV_COLUMNS)
PNR = "199001012383"


def line(
    employee: str = "E10001",
    version: int = 1,
    day: str = "2026-12-01",
    start: str = "07:00",
    end: str = "16:00",
    pause: str = "30",
    code: str = "ARB",
    period: str = "2026-12",
) -> str:
    """One export line."""
    return ";".join(
        [
            employee,
            PNR,
            f"SCH-{employee}-{period}-v{version}",
            str(version),
            period,
            day,
            start,
            end,
            pause,
            code,
            "2026-11-20T10:00:00+01:00",
        ]
    )


def export(*lines: str) -> bytes:
    """An export file's bytes."""
    return ("\n".join([HEADER, *lines]) + "\n").encode("utf-8")


class TestExportRow:
    """One line, validated."""

    def good(self, **change: str) -> dict[str, str]:
        base = dict(zip(CSV_COLUMNS, line().split(";"), strict=True))
        return {**base, **change}

    def test_valid(self) -> None:
        r = ExportRow.model_validate(self.good())
        assert r.row() == Row(date(2026, 12, 1), "07:00", "16:00", 30, "ARB")
        assert r.personnummer == PNR

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("start", "25:00"),
            ("end", "7.30"),
            ("break_minutes", "trettio"),
            ("date", "2026-02-30"),
            ("activity_code", "arb kod"),
            ("period", "2026-13"),
            ("version", "0"),
            ("date", "2027-01-01"),
            ("break_minutes", "-5"),
        ],
    )
    def test_invalid(self, column: str, value: str) -> None:
        with pytest.raises(ValidationError):
            ExportRow.model_validate(self.good(**{column: value}))


class TestReadExport:
    """Lines grouped into schedules; broken ones kept apart, never registered in part."""

    def test_groups_by_schedule(self) -> None:
        contents = read_export(export(line(day="2026-12-02"), line(), line("E10002", day="2026-12-03")), "x.csv")
        assert [s.employee_id for s in contents.schedules] == ["E10001", "E10002"]
        first = contents.schedules[0]
        assert [r.day.day for r in first.rows] == [1, 2]  # canonical order
        assert (first.first, first.last, first.version, first.source) == (
            date(2026, 12, 1),
            date(2026, 12, 31),
            1,
            "csv:x.csv",
        )
        assert contents.subjects[first.reference] == PNR
        assert first.approved_at == "2026-11-20T10:00:00+01:00"
        assert contents.broken == []

    def test_broken_schedule_is_kept_apart_whole(self) -> None:
        contents = read_export(export(line(), line(day="2026-12-02", start="25:00"), line("E10002")), "x.csv")
        assert [s.employee_id for s in contents.schedules] == ["E10002"]
        [broken] = contents.broken
        assert broken.employee_id == "E10001" and broken.period == "2026-12"
        assert broken.problems == ("rad 3, kolumn start: ogiltigt eller saknat värde",)
        assert "25:00" not in str(broken.payload())  # values are not repeated (personal data)
        assert broken.reference.startswith("E10001/2026-12/v1/ogiltig-")

    def test_newest_version_in_a_file_wins(self) -> None:
        contents = read_export(export(line(version=1), line(version=2, end="17:00")), "x.csv")
        assert [s.version for s in contents.schedules] == [2]
        assert contents.superseded == 1

    def test_missing_column_is_a_file_error(self) -> None:
        with pytest.raises(FileFormatError, match="activity_code"):
            read_export(b"employee_id;period\nE1;2026-12\n", "x.csv")

    def test_unreadable_file_becomes_one_item(self) -> None:
        [item] = items_of_file(b"", "tom.csv")
        assert item.payload["kind"] == "invalid_file" and item.reference.startswith("fil/")

    def test_items_of_file(self) -> None:
        items = items_of_file(export(line(), line("E10002", code="")), "x.csv")
        assert [i.payload["kind"] for i in items] == ["schedule", "invalid"]
        assert items[0].subject == PNR and "personnummer" not in items[0].payload


class TestSameScheduleSameReference:
    """A schedule from the API and from an export is one work item."""

    def test_export_and_api_references_agree(self, tmp_path: Path) -> None:
        options = SandboxOptions(employees=30)
        state = SandboxState(5, options, generate_data)
        summary = write_csv_export(state, tmp_path)
        contents = read_export(Path(summary["path"]).read_bytes(), summary["filename"])
        from_api = {
            reference(s["employee_id"], s["period"], s["version"], s["content_hash"])
            for s in state.data.schedules
            if s["status"] == "approved"
        }
        assert {s.reference for s in contents.schedules} == from_api
        assert contents.broken == []

    def test_malformed_export_lines_are_caught(self, tmp_path: Path) -> None:
        state = SandboxState(5, SandboxOptions(employees=30), generate_data)
        summary = write_csv_export(state, tmp_path, malformed_rows=4)
        contents = read_export(Path(summary["path"]).read_bytes(), summary["filename"])
        lines = sorted(int(p.split(",")[0].removeprefix("rad ")) for b in contents.broken for p in b.problems)
        assert lines == summary["malformed_lines"]

    def test_api_payload_has_no_rows_yet(self) -> None:
        payload = api_payload(
            {
                "employee_id": "E1",
                "period": "2026-12",
                "period_from": "2026-12-01",
                "period_to": "2026-12-31",
                "version": 2,
                "schedule_id": "S",
                "content_hash": "h",
                "personnummer": PNR,
            }
        )
        assert payload["rows"] is None and payload["version"] == 2 and "personnummer" not in payload
