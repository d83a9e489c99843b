"""The places a sandbox municipality is made of: localities, workplaces and employers.

Each municipality the sandbox can play has its own geography, chosen by its kommunkod
(``SandboxOptions.tenant``), so that the demo's two municipalities do not share one map:
addresses, home-care groups and their offices, the staffing unit's workplaces, the
payroll system's units and the employers on income-support applications all come from it.

Localities are real (their names from the municipalities' lists of tätorter); postal-code
prefixes and coordinates are approximate centres, good enough for synthetic addresses and
travel times. Workplace and company names are invented. A kommunkod without a geography
of its own plays Ronneby's (the sandbox's default municipality) under its own code.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GEOGRAPHIES", "KARLSHAMN", "RONNEBY", "Area", "Geography", "geography"]


@dataclass(frozen=True)
class Area:
    """A locality: name, postal code prefix and approximate centre."""

    name: str
    postal_code: str
    city: str
    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True)
class Geography:
    """One municipality's places (see the module docstring)."""

    municipality: str
    areas: tuple[Area, ...]
    #: Workplaces with shifts: (unit, kind, locality).
    units: tuple[tuple[str, str, str], ...]
    #: Units the payroll system files employees under (its own, coarser list).
    payroll_units: tuple[str, ...]
    #: Employers named on income-support applications.
    employers: tuple[str, ...]

    def area(self, name: str) -> Area:
        """The locality called ``name``."""
        return next(a for a in self.areas if a.name == name)


RONNEBY = Geography(
    municipality="Ronneby kommun",
    areas=(
        Area("Ronneby centrum", "372 3", "Ronneby", 56.2094, 15.2760, 2.0),
        Area("Kallinge", "372 5", "Kallinge", 56.2461, 15.2866, 1.5),
        Area("Listerby", "370 2", "Listerby", 56.2010, 15.3870, 1.2),
        Area("Bräkne-Hoby", "370 1", "Bräkne-Hoby", 56.2311, 15.1175, 1.2),
        Area("Johannishus", "370 3", "Johannishus", 56.2370, 15.4240, 1.2),
    ),
    units=(
        ("Solgården", "äldreboende", "Ronneby centrum"),
        ("Vidablick", "äldreboende", "Kallinge"),
        ("Backsippan", "äldreboende", "Bräkne-Hoby"),
        ("Lindebo", "äldreboende", "Listerby"),
        ("Hemtjänst Ronneby centrum", "hemtjänst", "Ronneby centrum"),
        ("Hemtjänst Kallinge", "hemtjänst", "Kallinge"),
        ("Hemtjänst Bräkne-Hoby", "hemtjänst", "Bräkne-Hoby"),
        ("Gruppbostaden Kilen", "LSS", "Ronneby centrum"),
        ("Korttidsboendet Ekbacken", "korttidsboende", "Johannishus"),
    ),
    payroll_units=("Hemtjänst Ronneby centrum", "Särskilt boende Lindebo", "Hemtjänst Kallinge", "Kommunkontoret"),
    employers=(
        "Ronneby kommun",
        "Region Blekinge",
        "Blekinge Bemanning AB",
        "Kallinge Bygg AB",
        "ICA Kvantum Ronneby",
        "Städservice Syd AB",
        "Ronneby Brunn Hotell AB",
        "Lagercentralen Listerby AB",
    ),
)

KARLSHAMN = Geography(
    municipality="Karlshamns kommun",
    areas=(
        Area("Karlshamn centrum", "374 3", "Karlshamn", 56.1706, 14.8619, 2.0),
        Area("Asarum", "374 5", "Asarum", 56.2036, 14.8331, 1.5),
        Area("Mörrum", "375 3", "Mörrum", 56.1897, 14.7450, 1.5),
        Area("Svängsta", "376 3", "Svängsta", 56.2667, 14.7833, 1.2),
        Area("Hällaryd", "374 9", "Hällaryd", 56.1717, 14.9530, 1.2),
    ),
    units=(
        ("Havsblick", "äldreboende", "Karlshamn centrum"),
        ("Klockaregården", "äldreboende", "Asarum"),
        ("Åbrinken", "äldreboende", "Mörrum"),
        ("Tallgården", "äldreboende", "Svängsta"),
        ("Hemtjänst Karlshamn centrum", "hemtjänst", "Karlshamn centrum"),
        ("Hemtjänst Mörrum", "hemtjänst", "Mörrum"),
        ("Hemtjänst Svängsta", "hemtjänst", "Svängsta"),
        ("Gruppbostaden Lärkan", "LSS", "Karlshamn centrum"),
        ("Korttidsboendet Strandängen", "korttidsboende", "Hällaryd"),
    ),
    payroll_units=("Hemtjänst Karlshamn centrum", "Särskilt boende Havsblick", "Hemtjänst Mörrum", "Kommunkontoret"),
    employers=(
        "Karlshamns kommun",
        "Region Blekinge",
        "Blekinge Bemanning AB",
        "Mörrums Bygg AB",
        "ICA Nära Asarum",
        "Städservice Syd AB",
        "Hamnservice Karlshamn AB",
        "Svängsta Snickeri AB",
    ),
)

#: The geographies by kommunkod.
GEOGRAPHIES: dict[str, Geography] = {"1081": RONNEBY, "1082": KARLSHAMN}


def geography(tenant: str) -> Geography:
    """The geography of kommunkod ``tenant``; Ronneby's for a code without one of its own."""
    return GEOGRAPHIES.get(tenant, RONNEBY)
