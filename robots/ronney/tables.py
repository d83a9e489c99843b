"""Riksnorm tables: one TOML file per year, deployment data, loaded and checked.

A table is data, not code: operations staff install a new year's amounts from
2 kap. 1 § socialtjänstförordningen (2001:937) with ``kollega ronney norms add FILE`` when
the förordning is published. Tables are looked for in the deployment's folder first
(``norm_tables_dir``, or ``<var_dir>/ronney/norms``), then among the tables shipped with
Ronney (``robots/ronney/data``). A table that has not been checked against the official text
carries ``official = false`` and may be incomplete; a calculation that needs a figure the
table lacks stops with a ConfigError naming the figure, because a guessed norm amount is
worse than no amount. A sandbox table (``sandbox = true``, the demo's invented figures) is
refused unless the settings allow sandbox tables, which only the demo's configuration does.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from core.api import ConfigError

#: Where the shipped tables live (package data: ``robots/ronney/data/norm-*.toml``).
DATA_DIR = Path(__file__).resolve().parent / "data"
#: The sandbox municipality's tables (invented figures for the demo; never official).
SANDBOX_DIR = DATA_DIR / "sandbox"

_FILE_RE = re.compile(r"^norm-(\d{4})\.toml$")

#: The förordning gives common household costs for 1..7 members; more are extrapolated.
MAX_TABULATED_HOUSEHOLD = 7


@dataclass(frozen=True)
class AgeBand:
    """An age band of the riksnorm's child table ("0", "1-2", …, "19-20")."""

    key: str
    low: int
    high: int
    #: Only ages 0–6 have a lower amount when the child does not eat lunch at home.
    lunch_matters: bool

    @property
    def label(self) -> str:
        """Swedish label as printed in the förordning, e.g. ``4–6 år``."""
        return f"{self.low} år" if self.low == self.high else f"{self.low}–{self.high} år"


AGE_BANDS: tuple[AgeBand, ...] = (
    AgeBand("0", 0, 0, True),
    AgeBand("1-2", 1, 2, True),
    AgeBand("3", 3, 3, True),
    AgeBand("4-6", 4, 6, True),
    AgeBand("7-10", 7, 10, False),
    AgeBand("11-14", 11, 14, False),
    AgeBand("15-18", 15, 18, False),
    AgeBand("19-20", 19, 20, False),
)
_BAND_KEYS = tuple(b.key for b in AGE_BANDS)
_LUNCH_BAND_KEYS = tuple(b.key for b in AGE_BANDS if b.lunch_matters)


def band_for_age(age: int) -> AgeBand:
    """The age band a child of ``age`` (0–20) belongs to."""
    for band in AGE_BANDS:
        if band.low <= age <= band.high:
            return band
    raise ValueError(f"no riksnorm age band for a child aged {age} (children are 0–20)")


class AdultAmounts(BaseModel):
    """Personal costs of adults: one adult alone, or a couple (sambor) together."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    single: PositiveInt | None = None
    cohabiting: PositiveInt | None = None


class NormTable(BaseModel):
    """One year's riksnorm as read from ``norm-YYYY.toml`` (kr/month)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int = Field(ge=2000, le=2100)
    #: True only when every figure is checked against the official text (the förordning).
    official: bool
    #: The SFS number of the förordning that sets the amounts (``2020:1013``), when known.
    sfs: str | None = Field(default=None, pattern=r"^\d{4}:\d{1,4}$")
    #: The date the amounts apply from (1 January of the year).
    in_force: date | None = None
    #: Where the amounts were read (the förordning or Socialstyrelsen's page).
    source_url: str | None = Field(default=None, pattern=r"^https?://")
    #: A sandbox municipality's invented table (the demo's); refused unless sandbox tables are allowed.
    sandbox: bool = False
    #: Short citation used in every calculation line, e.g. "Socialstyrelsen".
    cite: str = Field(min_length=1)
    source: str = Field(min_length=1)
    source_urls: tuple[str, ...] = ()
    adults: AdultAmounts = AdultAmounts()
    #: Per age band: the amount with lunch at home (the only amount for ages 7–20).
    children: dict[str, PositiveInt] = Field(default_factory=dict)
    #: Ages 0–6 only: the amount when the child does not eat lunch at home 5 days a week.
    children_without_lunch: dict[str, PositiveInt] = Field(default_factory=dict)
    #: Common household costs by number of members, 1..7.
    household_common: dict[int, PositiveInt] = Field(default_factory=dict)
    #: Officially announced totals (personal + common costs), used only as a cross-check.
    announced_totals: AdultAmounts | None = None
    #: The file the table was read from (set by the loader; used in error messages).
    file: str = ""

    @model_validator(mode="before")
    @classmethod
    def _legacy_verified(cls, data: object) -> object:
        # Tables written before issue 18 say ``verified``; it meant what ``official`` means now.
        if isinstance(data, dict) and "verified" in data and "official" not in data:
            data = {**data, "official": data["verified"]}
            del data["verified"]
        return data

    @property
    def verified(self) -> bool:
        """The same as :attr:`official` (the name the calculation's output contract uses)."""
        return self.official

    def install_problems(self) -> list[str]:
        """What keeps this table from being installed as deployment data (empty when it may be)."""
        problems = [f"missing figure {f}" for f in self.missing_figures()]
        if self.sfs is None:
            problems.append('sfs: the SFS number of the förordning is missing (e.g. sfs = "2025:1234")')
        if self.in_force is None:
            problems.append("in_force: the date the amounts apply from is missing (e.g. in_force = 2027-01-01)")
        elif self.in_force.year != self.year:
            problems.append(f"in_force: {self.in_force} is not in {self.year}")
        if self.source_url is None:
            problems.append("source_url: where the amounts were read is missing")
        if self.sandbox:
            problems.append("sandbox = true: a sandbox table is the demo's and cannot be installed")
        return problems

    @model_validator(mode="after")
    def _check(self) -> NormTable:
        unknown = sorted(set(self.children) - set(_BAND_KEYS))
        if unknown:
            raise ValueError(f"children: unknown age band(s) {unknown}; the bands are {list(_BAND_KEYS)}")
        unknown = sorted(set(self.children_without_lunch) - set(_LUNCH_BAND_KEYS))
        if unknown:
            raise ValueError(
                f"children_without_lunch: unknown age band(s) {unknown}; the bands are {list(_LUNCH_BAND_KEYS)}"
            )
        sizes = sorted(self.household_common)
        if any(not 1 <= s <= MAX_TABULATED_HOUSEHOLD for s in sizes):
            raise ValueError(f"household_common: sizes must be 1..{MAX_TABULATED_HOUSEHOLD}, got {sizes}")
        # Typo guards: every official table has these properties.
        for key, amount in self.children_without_lunch.items():
            if key in self.children and amount > self.children[key]:
                raise ValueError(f"children_without_lunch.{key}: {amount} is more than the amount with lunch at home")
        for small, big in pairwise(sizes):
            if self.household_common[big] < self.household_common[small]:
                raise ValueError(
                    f"household_common.{big}: {self.household_common[big]} is less than for {small} members"
                )
        if self.official:
            missing = self.missing_figures()
            if missing:
                raise ValueError(f"official = true but figures are missing: {', '.join(missing)}")
            if self.sandbox:
                raise ValueError("a sandbox table (sandbox = true) cannot be official")
        totals = self.announced_totals
        if totals is not None:
            self._check_total("single", totals.single, self.adults.single, self.household_common.get(1))
            self._check_total("cohabiting", totals.cohabiting, self.adults.cohabiting, self.household_common.get(2))
        return self

    @staticmethod
    def _check_total(kind: str, total: int | None, personal: int | None, common: int | None) -> None:
        if total is not None and personal is not None and common is not None and personal + common != total:
            raise ValueError(
                f"announced_totals.{kind}: {total} but adults.{kind} + household_common = "
                f"{personal} + {common} = {personal + common}"
            )

    def missing_figures(self) -> list[str]:
        """Dotted names of the figures this table lacks (empty for a complete table)."""
        missing = [f"adults.{k}" for k in ("single", "cohabiting") if getattr(self.adults, k) is None]
        missing += [f"children.{k}" for k in _BAND_KEYS if k not in self.children]
        missing += [f"children_without_lunch.{k}" for k in _LUNCH_BAND_KEYS if k not in self.children_without_lunch]
        missing += [
            f"household_common.{n}" for n in range(1, MAX_TABULATED_HOUSEHOLD + 1) if n not in self.household_common
        ]
        return missing

    def _missing(self, figure: str, what: str) -> ConfigError:
        # details["what"] is Swedish (``barn 4–6 år``): the case worker's text names it.
        return ConfigError(
            f"the riksnorm table for {self.year} ({Path(self.file).name or f'norm-{self.year}.toml'}) has no amount "
            f"for {what} ({figure}): install the full table with `kollega ronney norms add FILE`",
            code="norm_figure_missing",
            year=self.year,
            what=what,
        )

    def adult_single(self) -> int:
        """Personal costs of a single adult (ensamstående)."""
        if self.adults.single is None:
            raise self._missing("adults.single", "ensamstående vuxen")
        return self.adults.single

    def adults_cohabiting(self) -> int:
        """Personal costs of a couple (sambor), both adults together."""
        if self.adults.cohabiting is None:
            raise self._missing("adults.cohabiting", "sambor")
        return self.adults.cohabiting

    def child(self, band: AgeBand, lunch_at_home: bool) -> int:
        """Personal costs of a child in ``band``; lunch matters only for ages 0–6."""
        if band.lunch_matters and not lunch_at_home:
            amount = self.children_without_lunch.get(band.key)
            if amount is None:
                raise self._missing(f"children_without_lunch.{band.key}", f"barn {band.label} utan lunch hemma")
            return amount
        amount = self.children.get(band.key)
        if amount is None:
            raise self._missing(f"children.{band.key}", f"barn {band.label}")
        return amount

    def common(self, size: int) -> int:
        """Common household costs for a tabulated household of 1..7 members."""
        if not 1 <= size <= MAX_TABULATED_HOUSEHOLD:
            raise ValueError(f"household size {size} is not tabulated (1..{MAX_TABULATED_HOUSEHOLD})")
        amount = self.household_common.get(size)
        if amount is None:
            raise self._missing(f"household_common.{size}", f"gemensamma hushållskostnader {size} personer")
        return amount

    def extra_member(self) -> int:
        """Common costs per member above 7: the difference between 7 and 6 members (the förordning's rule)."""
        return self.common(7) - self.common(6)


class TableInfo(BaseModel):
    """One shipped table and its status, for ``kollega ronney norms``."""

    model_config = ConfigDict(frozen=True)

    year: int
    verified: bool
    official: bool
    sandbox: bool
    sfs: str | None
    in_force: date | None
    source_url: str | None
    source: str
    file: str
    complete: bool


def table_path(year: int, directory: Path | None = None) -> Path:
    """The file that holds (or would hold) the table for ``year``."""
    return (directory or DATA_DIR) / f"norm-{year}.toml"


def load_table(year: int, directory: Path | None = None) -> NormTable:
    """Read and check the table for ``year``; a missing or invalid file is a ConfigError naming it."""
    path = table_path(year, directory)
    if not path.is_file():
        raise ConfigError(
            f"no riksnorm table for {year}: add the file {path} with the amounts of "
            f"2 kap. 1 § socialtjänstförordningen (2001:937) for {year}, its source and a verified flag"
        )
    stat = path.stat()
    table = _load_file(str(path), stat.st_mtime_ns, stat.st_size)
    if table.year != year:
        raise ConfigError(f"the riksnorm table {path} says year = {table.year}; its file name says {year}")
    return table


def list_tables(directory: Path | None = None) -> list[TableInfo]:
    """Every table file in the directory, by year, with its verified flag and source."""
    infos = []
    for path in sorted((directory or DATA_DIR).glob("norm-*.toml")):
        match = _FILE_RE.match(path.name)
        if match is None:
            continue  # not a table (e.g. an editor's backup); tables are exactly norm-YYYY.toml
        table = load_table(int(match.group(1)), path.parent)
        infos.append(
            TableInfo(
                year=table.year,
                verified=table.official,
                official=table.official,
                sandbox=table.sandbox,
                sfs=table.sfs,
                in_force=table.in_force,
                source_url=table.source_url,
                source=table.source,
                file=str(path),
                complete=not table.missing_figures(),
            )
        )
    return infos


def deployment_dir(norm_tables_dir: Path | None, var_dir: Path) -> Path:
    """The deployment's table folder: the configured one, or ``<var_dir>/ronney/norms``."""
    return norm_tables_dir or var_dir / "ronney" / "norms"


def search_dirs(deployment: Path | None, *, sandbox: bool) -> list[Path]:
    """Where tables are looked for, in order: the deployment's folder, the shipped ones, the sandbox's."""
    dirs = [deployment] if deployment is not None else []
    dirs.append(DATA_DIR)
    if sandbox:
        dirs.append(SANDBOX_DIR)
    return dirs


def find_table(year: int, dirs: Sequence[Path], *, allow_sandbox: bool) -> NormTable | None:
    """The table for ``year`` from the first folder that has one; None when none has.

    A sandbox table is refused (ConfigError) unless ``allow_sandbox``: production settings
    never allow it, so the demo's invented figures cannot reach a real decision.
    """
    for directory in dirs:
        if table_path(year, directory).is_file():
            table = load_table(year, directory)
            if table.sandbox and not allow_sandbox:
                raise ConfigError(
                    f"the riksnorm table for {year} in {directory} is a sandbox table (sandbox = true, the demo's "
                    "invented figures) and these settings do not allow sandbox tables: remove it and install the "
                    "official table with `kollega ronney norms add FILE`"
                )
            return table
    return None


def install_table(source: Path, folder: Path) -> NormTable:
    """Check ``source`` completely and copy it into ``folder`` as ``norm-YYYY.toml``; ConfigError when it may not."""
    if not source.is_file():
        raise ConfigError(f"{source}: no such file")
    stat = source.stat()
    table = _load_file(str(source), stat.st_mtime_ns, stat.st_size)
    problems = table.install_problems()
    if problems:
        raise ConfigError(f"{source} cannot be installed: " + "; ".join(problems))
    folder.mkdir(parents=True, exist_ok=True)
    target = table_path(table.year, folder)
    tmp = target.with_suffix(".toml.tmp")
    tmp.write_bytes(source.read_bytes())
    tmp.replace(target)  # atomic: a night run never reads half a table
    return table


@lru_cache(maxsize=64)
def _load_file(path: str, mtime_ns: int, size: int) -> NormTable:
    # Cached on modification time and size: a night run calculates thousands of households
    # from the same table, and an edited file is still picked up.
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the riksnorm table {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"the riksnorm table {path} cannot be read: {exc.strerror}") from None
    try:
        return NormTable.model_validate({**raw, "file": path})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"the riksnorm table {path} is invalid: {problems}") from None
