"""Unit tests of the drop folder and the CSV/Excel readers."""

from __future__ import annotations

import io
import os
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook
from pydantic import BaseModel, Field

from connectors.files import (
    CLAIM_TIME_FORMAT,
    DropFolder,
    DropFolderSettings,
    FileFormatError,
    FileValidationError,
    RowError,
    SwedishDecimal,
    read_csv,
    read_excel,
    sniff_delimiter,
)
from core.errors import BusinessError


class ScheduleRow(BaseModel):
    """One row of a schedule export, with Swedish headers."""

    employee: str = Field(alias="Anställningsnr")
    day: date = Field(alias="Datum")
    start: str = Field(alias="Start", pattern=r"^\d{2}:\d{2}$")
    end: str = Field(alias="Slut", pattern=r"^\d{2}:\d{2}$")
    break_minutes: int = Field(alias="Rast", ge=0)
    amount: SwedishDecimal | None = Field(default=None, alias="Belopp")


SEMICOLON_CSV = (
    "Anställningsnr;Datum;Start;Slut;Rast;Belopp\r\n"
    "1001;2026-11-23;07:00;16:00;45;1 234,50\r\n"
    "1002;2026-11-23;7;16:00;-5;\r\n"
    "\r\n"
    "1003;2026-11-3x;07:00;16:00;30;12\r\n"
)


def drop(folder: Path, name: str, content: bytes, age: float = 10) -> Path:
    path = folder / name
    path.write_bytes(content)
    old = time.time() - age
    os.utime(path, (old, old))
    return path


class TestCsv:
    """Delimiter sniffing, encodings, and validation errors naming file, row and column."""

    def test_semicolon_bom_and_errors_named(self) -> None:
        data = SEMICOLON_CSV.encode("utf-8-sig")
        table = read_csv(data, ScheduleRow, name="schema-2026-11.csv", strict=False)
        assert [r.employee for r in table.rows] == ["1001"]
        assert table.rows[0].amount == Decimal("1234.50")
        assert table.row_numbers == [2]
        where = {(e.row, e.column) for e in table.errors}
        assert where == {(3, "Start"), (3, "Rast"), (5, "Datum")}
        assert all(e.file == "schema-2026-11.csv" for e in table.errors)

    def test_strict_raises_business_error_listing_every_problem(self, tmp_path: Path) -> None:
        path = tmp_path / "schema.csv"
        path.write_bytes(SEMICOLON_CSV.encode("utf-8"))
        with pytest.raises(FileValidationError) as err:
            read_csv(path, ScheduleRow)
        assert isinstance(err.value, BusinessError)
        message = str(err.value)
        assert "schema.csv, row 3, column Start" in message
        assert "schema.csv, row 5, column Datum" in message
        assert len(err.value.errors) == 3

    def test_cp1252_fallback_and_comma(self) -> None:
        text = "Anställningsnr,Datum,Start,Slut,Rast\n1001,2026-11-23,07:00,16:00,30\n"
        table = read_csv(text.encode("cp1252"), ScheduleRow)
        assert table.rows[0].break_minutes == 30

    def test_missing_required_column_is_named(self) -> None:
        text = "Anställningsnr;Datum;Start;Slut\n1001;2026-11-23;07:00;16:00\n"
        with pytest.raises(FileValidationError) as err:
            read_csv(text.encode(), ScheduleRow, name="x.csv")
        assert err.value.errors == [RowError("x.csv", 1, "Rast", "required column is missing")]

    def test_values_never_appear_in_errors(self) -> None:
        text = "Anställningsnr;Datum;Start;Slut;Rast\n1001;19121212-1212;07:00;16:00;30\n"
        with pytest.raises(FileValidationError) as err:
            read_csv(text.encode(), ScheduleRow)
        assert "19121212" not in str(err.value)

    def test_column_map(self) -> None:
        class Simple(BaseModel):
            employee: str
            hours: int

        text = "Nr;Timmar\n7;x\n"
        table = read_csv(text.encode(), Simple, column_map={"Nr": "employee", "Timmar": "hours"}, strict=False)
        assert table.errors[0].column == "Timmar" and table.errors[0].row == 2

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("a;b;c\n1;2;3\n", ";"),
            ("a,b,c\n1,2,3\n", ","),
            ("a\tb\n1\t2\n", "\t"),
            ('a;b\n"1,5";2\n', ";"),
        ],
    )
    def test_sniff(self, text: str, expected: str) -> None:
        assert sniff_delimiter(text) == expected

    def test_empty_file(self) -> None:
        with pytest.raises(FileFormatError):
            read_csv(b"", ScheduleRow)


class TestExcel:
    """Excel rows are validated like CSV rows; the column letter is named too."""

    def workbook(self) -> bytes:
        wb = Workbook()
        ws = wb.active
        assert ws is not None
        ws.title = "Schema"
        ws.append(["Anställningsnr", "Datum", "Start", "Slut", "Rast"])
        ws.append(["1001", date(2026, 11, 23), "07:00", "16:00", 45])
        ws.append(["1002", "inte ett datum", "07:00", "16:00", 30])
        ws.append([None, None, None, None, None])
        ws.append(["1003", date(2026, 11, 24), "07:00", "16:00", "lång"])
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()

    def test_rows_and_errors(self) -> None:
        table = read_excel(self.workbook(), ScheduleRow, name="schema.xlsx", strict=False)
        assert [r.employee for r in table.rows] == ["1001"]
        assert [(e.row, e.column) for e in table.errors] == [(3, "B (Datum)"), (5, "E (Rast)")]
        assert str(table.errors[0]).startswith("schema.xlsx, row 3, column B (Datum): ")

    def test_unknown_sheet_and_bad_file(self) -> None:
        with pytest.raises(FileFormatError, match="no sheet"):
            read_excel(self.workbook(), ScheduleRow, sheet="Blad9")
        with pytest.raises(FileFormatError):
            read_excel(b"not a zip", ScheduleRow, name="x.xlsx")


class TestDropFolder:
    """Atomic pick-up, processed/failed, duplicates ignored."""

    def test_claim_complete_and_duplicate(self, tmp_path: Path) -> None:
        folder = DropFolder(DropFolderSettings(folder=tmp_path, pattern="*.csv"))
        drop(tmp_path, "a.csv", b"same content")
        drop(tmp_path, "b.csv", b"same content")
        drop(tmp_path, "c.txt", b"ignored by the pattern")
        drop(tmp_path, "fresh.csv", b"still being written", age=0)
        claimed = folder.claim_all()
        assert [c.original_name for c in claimed] == ["a.csv"]
        assert claimed[0].path.parent == folder.processing
        folder.complete(claimed[0])
        assert len(list(folder.processed.iterdir())) == 1
        assert len(list(folder.duplicates.iterdir())) == 1
        drop(tmp_path, "a-again.csv", b"same content")
        assert folder.claim_all() == []
        assert (tmp_path / "fresh.csv").exists() and (tmp_path / "c.txt").exists()

    def test_failed_file_can_be_dropped_again(self, tmp_path: Path) -> None:
        folder = DropFolder(DropFolderSettings(folder=tmp_path))
        drop(tmp_path, "x.csv", b"content")
        claimed = folder.claim_all()[0]
        with pytest.raises(FileValidationError), folder.processing_of(claimed):
            raise FileValidationError([RowError("x.csv", 2, "Datum", "bad date")], "x.csv")
        failed = sorted(p.name for p in folder.failed.iterdir())
        assert failed[0].endswith("x.csv") and failed[1].endswith("x.csv.error.txt")
        assert "x.csv, row 2, column Datum" in (folder.failed / failed[1]).read_text(encoding="utf-8")
        drop(tmp_path, "x.csv", b"content")
        assert [c.original_name for c in folder.claim_all()] == ["x.csv"]

    def test_two_workers_never_take_the_same_file(self, tmp_path: Path) -> None:
        for i in range(40):
            drop(tmp_path, f"f{i:02}.csv", f"file {i}".encode())
        workers = [DropFolder(DropFolderSettings(folder=tmp_path)) for _ in range(4)]
        taken: list[list[str]] = [[] for _ in workers]

        def work(n: int) -> None:
            for p in workers[n].waiting():
                got = workers[n].claim(p)
                if got is not None:
                    taken[n].append(got.original_name)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        everything = [name for names in taken for name in names]
        assert sorted(everything) == [f"f{i:02}.csv" for i in range(40)]

    def test_recover_gives_back_stale_files(self, tmp_path: Path) -> None:
        folder = DropFolder(DropFolderSettings(folder=tmp_path, stale_processing_seconds=60))
        drop(tmp_path, "x.csv", b"content")
        claimed = folder.claim_all()[0]
        # Claimed two minutes ago (by a worker that died): the claim time is in the name.
        old = datetime.now(UTC) - timedelta(seconds=120)
        stale = claimed.path.with_name(f"{old.strftime(CLAIM_TIME_FORMAT)}-dead--x.csv")
        claimed.path.rename(stale)
        assert folder.recover() == 1
        assert (tmp_path / "x.csv").exists()
        assert [c.original_name for c in folder.claim_all()] == ["x.csv"]

    def test_recover_leaves_a_file_just_claimed_even_when_written_long_ago(self, tmp_path: Path) -> None:
        """A rename keeps the mtime: an old file claimed a moment ago is not stale (worker B must not take it)."""
        folder_a = DropFolder(DropFolderSettings(folder=tmp_path, stale_processing_seconds=60, min_age_seconds=0))
        folder_b = DropFolder(DropFolderSettings(folder=tmp_path, stale_processing_seconds=60, min_age_seconds=0))
        path = drop(tmp_path, "export.csv", b"written yesterday")
        yesterday = time.time() - 86_400
        os.utime(path, (yesterday, yesterday))
        claimed = folder_a.claim_all()[0]  # worker A has it now
        assert folder_b.recover() == 0  # worker B's recovery must not give it back
        assert claimed.path.exists()
        assert folder_b.claim_all() == []
        folder_a.complete(claimed)
        assert (tmp_path / "processed" / claimed.path.name).exists()

    def test_recover_falls_back_on_mtime_for_files_not_named_by_a_claim(self, tmp_path: Path) -> None:
        folder = DropFolder(DropFolderSettings(folder=tmp_path, stale_processing_seconds=60))
        odd = tmp_path / "processing" / "manual--y.csv"
        odd.write_bytes(b"y")
        assert folder.recover() == 0  # fresh by its mtime
        old = time.time() - 120
        os.utime(odd, (old, old))
        assert folder.recover() == 1
        assert (tmp_path / "y.csv").exists()
