"""Files connector: a drop folder, and CSV/Excel readers with row-level validation.

The drop folder (``[connectors.<name>]`` with :class:`DropFolderSettings`)::

    <folder>/               files arrive here (e.g. schedule exports)
    <folder>/processing/    a worker renames a file here to own it (rename is atomic)
    <folder>/processed/     done
    <folder>/failed/        could not be processed; ``<name>.error.txt`` beside it says why
    <folder>/duplicates/    same SHA-256 as a file already taken: ignored
    <folder>/.checksums/    one marker per taken checksum (created exclusively)

Two workers never take the same file: the rename into ``processing/`` succeeds for one of
them only, and the checksum marker is created with ``O_EXCL``. A failed file's marker is
removed, so the same content dropped again is processed again.

The readers validate each row with a pydantic model; every problem is reported as
:class:`RowError` naming the file, the row (as a spreadsheet shows it: the header is row 1)
and the column (its header; for Excel also its letter), never the value itself.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import secrets
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from core.errors import BusinessError
from core.logging import get_logger

log = get_logger("kollega.connectors.files")
M = TypeVar("M", bound=BaseModel)


class DropFolderSettings(BaseModel):
    """A drop folder."""

    model_config = ConfigDict(extra="forbid")

    folder: Path = Field(description="The folder files are dropped into.")
    pattern: str = Field(default="*", description="Which files to take, as a glob (e.g. '*.csv').")
    min_age_seconds: float = Field(
        default=2, ge=0, description="Skip files modified more recently (they may still be being written)."
    )
    stale_processing_seconds: float = Field(
        default=3600, gt=0, description="A file in processing/ this old is given back by recover()."
    )


class FileFormatError(BusinessError):
    """The file cannot be read as the expected format."""

    code = "file_format"


@dataclass(frozen=True)
class RowError:
    """One problem in one cell (or row) of a file."""

    file: str
    row: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}, row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class FileValidationError(BusinessError):
    """Rows of the file are invalid."""

    code = "file_validation"

    def __init__(self, errors: list[RowError], file: str) -> None:
        shown = "; ".join(str(e) for e in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"{len(errors)} problem(s) in {file}: {shown}{more}", file=file)
        self.errors = errors


@dataclass
class Table(Generic[M]):
    """The valid rows of a file (with their row numbers) and the problems found."""

    file: str
    rows: list[M] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def raise_if_errors(self) -> Table[M]:
        """Raise FileValidationError when any row was invalid; else return self."""
        if self.errors:
            raise FileValidationError(self.errors, self.file)
        return self


def _swedish_decimal(value: Any) -> Any:
    if isinstance(value, str):
        cleaned = value.replace("\u00a0", "").replace(" ", "").replace("kr", "").replace(",", ".")
        try:
            return Decimal(cleaned)
        except InvalidOperation:
            return value
    return value


#: A decimal as Swedish spreadsheets write it: ``1 234,50`` (space thousands, comma decimals).
SwedishDecimal = Annotated[Decimal, BeforeValidator(_swedish_decimal)]


# -- the drop folder ---------------------------------------------------------------------
@dataclass(frozen=True)
class ClaimedFile:
    """A file this worker owns, in processing/."""

    path: Path
    original_name: str
    sha256: str
    size: int


class DropFolder:
    """Takes files from a drop folder atomically and files them as processed, failed or duplicate."""

    def __init__(self, settings: DropFolderSettings) -> None:
        self.settings = settings
        self.root = settings.folder
        self.processing = self.root / "processing"
        self.processed = self.root / "processed"
        self.failed = self.root / "failed"
        self.duplicates = self.root / "duplicates"
        self.markers = self.root / ".checksums"
        for d in (self.processing, self.processed, self.failed, self.duplicates, self.markers):
            d.mkdir(parents=True, exist_ok=True)

    def waiting(self) -> list[Path]:
        """Files waiting in the folder (old enough, matching the pattern), oldest first."""
        now = time.time()  # compared with file times, so the real clock
        found = []
        for p in self.root.glob(self.settings.pattern):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue  # taken by another worker meanwhile
            if p.is_file() and not p.name.startswith(".") and now - st.st_mtime >= self.settings.min_age_seconds:
                found.append((st.st_mtime, p.name, p))
        return [p for _m, _n, p in sorted(found)]

    def claim(self, path: Path) -> ClaimedFile | None:
        """Take ``path``: None if another worker took it first or it duplicates a file already taken."""
        # The claim time (UTC, to the microsecond) leads the new name: recover() judges staleness by it.
        token = f"{datetime.now(UTC).strftime(CLAIM_TIME_FORMAT)}-{secrets.token_hex(4)}"
        target = self.processing / f"{token}--{path.name}"
        try:
            os.rename(path, target)  # atomic on one file system: exactly one worker succeeds
        except FileNotFoundError:
            return None
        digest, size = _sha256(target)
        try:
            fd = os.open(self.markers / digest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            os.rename(target, self.duplicates / target.name)
            log.info("duplicate file ignored", file=path.name, sha256=digest[:12])
            return None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{path.name}\n{datetime.now(UTC).isoformat()}\n")
        log.info("file claimed", file=path.name, sha256=digest[:12], size=size)
        return ClaimedFile(target, path.name, digest, size)

    def claim_all(self, limit: int | None = None) -> list[ClaimedFile]:
        """Claim every waiting file (up to ``limit``)."""
        claimed: list[ClaimedFile] = []
        for p in self.waiting():
            if limit is not None and len(claimed) >= limit:
                break
            got = self.claim(p)
            if got is not None:
                claimed.append(got)
        return claimed

    def complete(self, claimed: ClaimedFile) -> Path:
        """Move the file to processed/ (its checksum stays known: the same content is a duplicate)."""
        target = self.processed / claimed.path.name
        os.rename(claimed.path, target)
        return target

    def fail(self, claimed: ClaimedFile, reason: str) -> Path:
        """Move the file to failed/ with ``<name>.error.txt``; forget its checksum so a fixed re-drop is taken."""
        target = self.failed / claimed.path.name
        os.rename(claimed.path, target)
        (self.failed / f"{claimed.path.name}.error.txt").write_text(reason + "\n", encoding="utf-8")
        with contextlib.suppress(FileNotFoundError):
            (self.markers / claimed.sha256).unlink()
        return target

    @contextlib.contextmanager
    def processing_of(self, claimed: ClaimedFile) -> Iterator[ClaimedFile]:
        """Complete the file when the block succeeds, fail it (with the error) when it raises."""
        try:
            yield claimed
        except Exception as exc:
            self.fail(claimed, f"{type(exc).__name__}: {exc}")
            raise
        self.complete(claimed)

    def recover(self) -> int:
        """Give files left in processing/ by a dead worker back to the folder; returns how many.

        A file's age in processing/ is the claim time written into its name by :meth:`claim`,
        not its modification time: a rename keeps the mtime, so a file written long ago and
        claimed a second ago would look stale and be taken back from the worker that has it.
        """
        now = time.time()
        count = 0
        for p in self.processing.iterdir():
            try:
                claimed_at = _claimed_at(p.name)
                if claimed_at is None:  # not named by claim(): fall back on the file's own time
                    claimed_at = p.stat().st_mtime
                if now - claimed_at < self.settings.stale_processing_seconds:
                    continue
                digest, _size = _sha256(p)
                os.rename(p, self.root / p.name.partition("--")[2])
            except FileNotFoundError:
                continue
            with contextlib.suppress(FileNotFoundError):
                (self.markers / digest).unlink()
            count += 1
        return count


#: How claim() writes the claim time at the start of a file's name in processing/.
CLAIM_TIME_FORMAT = "%Y%m%dT%H%M%S.%f"


def _claimed_at(name: str) -> float | None:
    """The claim time (epoch seconds) in a processing/ file's name, or None when it carries none."""
    stamp = name.partition("-")[0]
    for fmt in (CLAIM_TIME_FORMAT, "%Y%m%dT%H%M%S"):  # the second: names from before microseconds
        try:
            return datetime.strptime(stamp, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


# -- readers -----------------------------------------------------------------------------
def decode_text(data: bytes, file: str, encoding: str | None = None) -> str:
    """Bytes as text: the given encoding, else UTF-8 (with or without BOM), else cp1252 (old Excel)."""
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise FileFormatError(f"{file} is not encoded as {encoding}", file=file) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV text: ';' (Swedish Excel), ',', tab or '|'."""
    sample = "\n".join(text.splitlines()[:20])
    header = next((ln for ln in sample.splitlines() if ln.strip()), "")
    try:
        guess = csv.Sniffer().sniff(sample, delimiters=";,\t|").delimiter
        if header.count(guess) > 0:
            return guess
    except csv.Error:
        pass
    counts = {d: header.count(d) for d in (";", ",", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _field_columns(model: type[BaseModel], column_map: Mapping[str, str] | None) -> dict[str, str]:
    """Map pydantic error locations (alias or field name) to the file's column header."""
    cols: dict[str, str] = {}
    for name, info in model.model_fields.items():
        cols[name] = info.alias or name
        if info.alias:
            cols[info.alias] = info.alias
    for header, target in (column_map or {}).items():
        cols[target] = header
    return cols


def validate_rows(
    model: type[M],
    header: list[str],
    rows: Iterable[tuple[int, list[Any]]],
    *,
    file: str,
    column_map: Mapping[str, str] | None = None,
    letters: Mapping[str, str] | None = None,
    max_errors: int = 1000,
) -> Table[M]:
    """Validate ``(row_number, cells)`` against ``model`` by header; collect errors naming file, row, column."""
    table: Table[M] = Table(file=file)
    names = [h.strip() if isinstance(h, str) else ("" if h is None else str(h)) for h in header]
    keys = [(column_map or {}).get(n, n) for n in names]
    columns = _field_columns(model, column_map)
    present = set(keys)
    for fname, info in model.model_fields.items():
        key = info.alias or fname
        if info.is_required() and key not in present and fname not in present:
            col = columns.get(key, key)
            table.errors.append(RowError(file, 1, col, "required column is missing"))
    if table.errors:
        return table
    for number, cells in rows:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue  # blank line
        record: dict[str, Any] = {}
        for key, cell in zip(keys, cells, strict=False):
            if not key:
                continue
            value = cell.strip() if isinstance(cell, str) else cell
            record[key] = None if value == "" else value
        try:
            table.rows.append(model.model_validate(record))
            table.row_numbers.append(number)
        except ValidationError as exc:
            for err in exc.errors(include_input=False, include_url=False):
                loc = err["loc"]
                head = columns.get(str(loc[0]), str(loc[0])) if loc else None
                cell_col = f"{letters[head]} ({head})" if letters and head is not None and head in letters else head
                table.errors.append(RowError(file, number, cell_col, err["msg"]))
        if len(table.errors) >= max_errors:
            break
    return table


def read_csv(
    source: Path | bytes,
    model: type[M],
    *,
    name: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    column_map: Mapping[str, str] | None = None,
    strict: bool = True,
) -> Table[M]:
    """Read a CSV file (delimiter sniffed, UTF-8/BOM or cp1252) into validated rows.

    ``column_map`` maps file headers to model field names. With ``strict`` (the default) any
    invalid row raises :class:`FileValidationError` listing every problem.
    """
    file = name or (source.name if isinstance(source, Path) else "data.csv")
    try:
        data = source.read_bytes() if isinstance(source, Path) else source
    except OSError as exc:
        raise FileFormatError(f"{file} cannot be read ({exc.strerror})", file=file) from exc
    text = decode_text(data, file, encoding)
    sep = delimiter or sniff_delimiter(text)
    try:
        parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    except csv.Error as exc:
        raise FileFormatError(f"{file} is not valid CSV: {exc}", file=file) from exc
    if not parsed:
        raise FileFormatError(f"{file} is empty", file=file)
    table = validate_rows(
        model, parsed[0], ((i, row) for i, row in enumerate(parsed[1:], start=2)), file=file, column_map=column_map
    )
    return table.raise_if_errors() if strict else table


def read_excel(
    source: Path | bytes,
    model: type[M],
    *,
    name: str | None = None,
    sheet: str | None = None,
    header_row: int = 1,
    column_map: Mapping[str, str] | None = None,
    strict: bool = True,
) -> Table[M]:
    """Read one sheet of an .xlsx file (openpyxl, values not formulas) into validated rows; see :func:`read_csv`."""
    from openpyxl import load_workbook  # type: ignore[import-untyped]
    from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]
    from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

    file = name or (source.name if isinstance(source, Path) else "data.xlsx")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it does not read
            wb = load_workbook(
                source if isinstance(source, Path) else io.BytesIO(source), read_only=True, data_only=True
            )
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileFormatError(f"{file} is not a readable Excel (.xlsx) file", file=file) from exc
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise FileFormatError(f"{file} has no sheet {sheet!r} (it has {', '.join(wb.sheetnames)})", file=file)
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        rows = list(ws.iter_rows(min_row=header_row, values_only=True))
    finally:
        wb.close()
    if not rows:
        raise FileFormatError(f"{file} is empty", file=file)
    header = ["" if h is None else str(h).strip() for h in rows[0]]
    letters = {h: get_column_letter(i) for i, h in enumerate(header, start=1) if h}
    body = ((header_row + i, list(r)) for i, r in enumerate(rows[1:], start=1))
    table = validate_rows(model, header, body, file=file, column_map=column_map, letters=letters)
    return table.raise_if_errors() if strict else table
