"""Ronney's legal references and the prisbasbelopp, read from ``data/legal.toml`` (data, not code).

Every citation a calculation line or a decision shows comes from here, by the date in force,
so a jurist corrects a paragraph without touching code; the prisbasbelopp per year bounds a
pupil's disregarded income from work.
"""

from __future__ import annotations

import tomllib
from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.api import ConfigError

__all__ = ["LEGAL_FILE", "LegalData", "Prisbasbelopp", "Reference", "legal_data"]

LEGAL_FILE = Path(__file__).resolve().parent / "data" / "legal.toml"


class Reference(BaseModel):
    """One rule's citation from a date."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=1)
    in_force: date
    #: The citation as shown (Swedish).
    text: str = Field(min_length=1)
    source_url: str = Field(pattern=r"^https?://")
    #: True when the paragraph was read in the law text at ``source_url``.
    checked: bool


class Prisbasbelopp(BaseModel):
    """The prisbasbelopp of one year, with its source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int = Field(ge=2000, le=2100)
    amount: int = Field(gt=0)
    sfs: str | None = None
    source: str = Field(min_length=1)
    source_url: str = Field(pattern=r"^https?://")


class LegalData(BaseModel):
    """Everything in ``legal.toml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference: tuple[Reference, ...]
    prisbasbelopp: tuple[Prisbasbelopp, ...] = ()

    def ref(self, key: str, on: date) -> Reference:
        """The citation of ``key`` in force on ``on``; ConfigError when the table has none."""
        rows = [r for r in self.reference if r.key == key and r.in_force <= on]
        if not rows:
            raise ConfigError(f"legal.toml has no reference {key!r} in force on {on}", code="legal_reference_missing")
        return max(rows, key=lambda r: r.in_force)

    def pbb(self, year: int) -> Prisbasbelopp | None:
        """The prisbasbelopp of ``year``, or None when the table lacks it."""
        return next((p for p in self.prisbasbelopp if p.year == year), None)


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> LegalData:
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"the legal reference table {path} cannot be read: {exc}") from None
    try:
        return LegalData.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"the legal reference table {path} is invalid: {exc.error_count()} problem(s)") from None


def legal_data(path: Path = LEGAL_FILE) -> LegalData:
    """The legal references and prisbasbelopp (cached until the file changes)."""
    return _load(str(path), path.stat().st_mtime_ns)
