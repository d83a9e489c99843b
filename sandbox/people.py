"""Synthetic people: test personnummer, common Swedish names, addresses and phone numbers.

Personnummer
------------
Every personnummer the sandbox makes is a valid number (check digit by the Luhn algorithm,
computed with python-stdnum) whose birth number — the three digits before the check
digit — lies in 980–999 (:data:`TEST_BIRTH_NUMBERS`); numbers are stored with 12 digits,
``YYYYMMDDNNNC``.

What we checked, and what we did not (searched 2026-11 with the project's search tool):

* Skatteverket publishes a list of test personnummer as open data ("Testpersonnummer";
  skatteverket.entryscape.net, rowstore dataset b4de7df7-63c0-4e7e-bb59-1f156a591763, also
  listed on dataportal.se). Public code quoting that list includes 189001019802 and
  190001019801 (birth number 980), and a GitHub issue citing Skatteverket's reserved numbers
  (github.com/kolplattformen/embedded-api/issues/51) gives 198611239883 (988) and
  8501139995 (999) — but test numbers quoted from Skatteverket outside 980–999 exist too,
  such as 199001012385 (238) and 199006022397 (239, in github.com/KentorIT/PU-Adapter).
* We found no Skatteverket text saying that birth numbers 980–999 are reserved for tests
  or never assigned. The claim that the series 980–999 "is never assigned to real people"
  is therefore NOT verified: it is a pattern many published test numbers follow, while
  what Skatteverket guarantees is its published list itself.
* Skatteverket's rättslig vägledning on the personnummer (18 § folkbokföringslagen;
  www4.skatteverket.se/rattsligvagledning/edition/2020.9/330245.html) describes the birth
  number as one of 001–999, odd for men and even for women, and the check digit as
  modulus 10 with the weights 1 and 2 (the Luhn algorithm).

So the series is one constant here, every number is checked with
:func:`is_test_personnummer`, and a deployment that needs certainty should switch the
sandbox to numbers from Skatteverket's published list.

Phone numbers
-------------
Only numbers that PTS (the Swedish Post and Telecom Authority) reserves for use in
fiction: mobile 070-1740605 – 070-1740699 and the fixed-line series 031-3900600–699,
040-6280400–499, 08-46500400–499 and 0980-319200–299 (PTS, "Telefonnummer för användning
i böcker och filmer", as quoted in public code; 495 numbers in all).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from math import cos, pi, radians, sin
from typing import Any

from stdnum import luhn  # type: ignore[import-untyped]
from stdnum.se import personnummer as stdnum_personnummer  # type: ignore[import-untyped]

from sandbox.geography import RONNEBY, Area

__all__ = [
    "FEMALE_NAMES",
    "MALE_NAMES",
    "SURNAMES",
    "TEST_BIRTH_NUMBERS",
    "Person",
    "PersonFactory",
    "age_on",
    "is_test_personnummer",
    "make_personnummer",
    "reserved_phone_numbers",
]

#: Birth numbers used for every generated personnummer (see the module docstring).
TEST_BIRTH_NUMBERS = range(980, 1000)

FEMALE_NAMES = (
    "Anna",
    "Eva",
    "Maria",
    "Karin",
    "Sara",
    "Kristina",
    "Lena",
    "Emma",
    "Kerstin",
    "Ingrid",
    "Marie",
    "Malin",
    "Jenny",
    "Hanna",
    "Linnéa",
    "Elin",
    "Ida",
    "Johanna",
    "Sofia",
    "Elsa",
    "Maja",
    "Alice",
    "Ebba",
    "Julia",
    "Amanda",
    "Birgitta",
    "Margareta",
    "Ulla",
    "Fatima",
    "Amina",
)
MALE_NAMES = (
    "Lars",
    "Mikael",
    "Anders",
    "Johan",
    "Erik",
    "Per",
    "Karl",
    "Peter",
    "Jan",
    "Thomas",
    "Daniel",
    "Fredrik",
    "Hans",
    "Andreas",
    "Stefan",
    "Magnus",
    "Mattias",
    "Oskar",
    "Lucas",
    "William",
    "Hugo",
    "Liam",
    "Elias",
    "Axel",
    "Nils",
    "Gustav",
    "Björn",
    "Ali",
    "Mohammed",
    "Ahmad",
)
SURNAMES = (
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Gustafsson",
    "Pettersson",
    "Jonsson",
    "Jansson",
    "Hansson",
    "Bengtsson",
    "Jönsson",
    "Lindberg",
    "Jakobsson",
    "Magnusson",
    "Lindström",
    "Olofsson",
    "Lindqvist",
    "Lindgren",
    "Berg",
    "Axelsson",
    "Bergström",
    "Lundberg",
    "Lind",
    "Lundgren",
    "Mattsson",
    "Berglund",
    "Fredriksson",
    "Sandberg",
    "Henriksson",
    "Ali",
    "Mohammed",
    "Hassan",
    "Ahmed",
    "Nyström",
    "Holm",
)

STREETS = (
    "Björkvägen",
    "Granvägen",
    "Ekvägen",
    "Lärkvägen",
    "Storgatan",
    "Kyrkogatan",
    "Skolgatan",
    "Parkvägen",
    "Ängsvägen",
    "Hagvägen",
    "Tallvägen",
    "Lönnvägen",
    "Rosenvägen",
    "Villagatan",
    "Bokvägen",
    "Strandvägen",
    "Backvägen",
    "Södra vägen",
    "Norra vägen",
    "Sjövägen",
)


def make_personnummer(birth_date: date, birth_number: int) -> str:
    """The 12-digit personnummer for a birth date and birth number, check digit by stdnum's Luhn."""
    base = f"{birth_date:%y%m%d}{birth_number:03d}"
    return f"{birth_date:%Y%m%d}{birth_number:03d}{luhn.calc_check_digit(base)}"


def is_test_personnummer(number: str) -> bool:
    """Whether ``number`` (12 digits) is valid by stdnum and its birth number is in :data:`TEST_BIRTH_NUMBERS`."""
    if len(number) != 12 or not number.isdigit() or not stdnum_personnummer.is_valid(number):
        return False
    return int(number[8:11]) in TEST_BIRTH_NUMBERS


def age_on(birth_date: date, day: date) -> int:
    """Age in whole years on ``day``."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def reserved_phone_numbers() -> list[str]:
    """The 495 phone numbers PTS reserves for fiction, in E.164 form, mobile numbers first."""
    numbers = [f"+467017406{n:02d}" for n in range(5, 100)]
    numbers += [f"+46313900{n:03d}" for n in range(600, 700)]
    numbers += [f"+46406280{n:03d}" for n in range(400, 500)]
    numbers += [f"+468465{n:05d}" for n in range(400, 500)]
    numbers += [f"+46980319{n:03d}" for n in range(200, 300)]
    return numbers


@dataclass(frozen=True)
class Person:
    """A synthetic person."""

    personnummer: str
    first_name: str
    last_name: str
    sex: str  # "F" or "M", as the birth number says
    birth_date: date

    def age(self, day: date) -> int:
        """Age in whole years on ``day``."""
        return age_on(self.birth_date, day)

    def as_dict(self, today: date) -> dict[str, Any]:
        """The person as the systems serve them."""
        return {
            "personnummer": self.personnummer,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "age": self.age(today),
        }


class PersonFactory:
    """Makes unique people with test personnummer from one random generator."""

    def __init__(
        self,
        rng: random.Random,
        today: date,
        used: set[str] | None = None,
        areas: tuple[Area, ...] = RONNEBY.areas,
    ) -> None:
        self.rng = rng
        self.today = today
        self.used: set[str] = used if used is not None else set()
        #: The localities addresses are drawn from (the municipality's, see sandbox.geography).
        self.areas = areas

    def birth_date(self, min_age: int, max_age: int) -> date:
        """A birth date giving an age in [min_age, max_age] today."""
        earliest = _years_before(self.today, max_age + 1) + timedelta(days=1)
        latest = _years_before(self.today, min_age)
        return earliest + timedelta(days=self.rng.randint(0, (latest - earliest).days))

    def personnummer(self, birth_date: date, sex: str) -> str:
        """An unused test personnummer for ``birth_date`` (odd birth number for men, even for women)."""
        parity = 1 if sex == "M" else 0
        candidates = [n for n in TEST_BIRTH_NUMBERS if n % 2 == parity]
        day = birth_date
        for _ in range(400):  # ten numbers a day and sex; move to a nearby day when all are taken
            for n in self.rng.sample(candidates, len(candidates)):
                number = make_personnummer(day, n)
                if number not in self.used:
                    self.used.add(number)
                    return number
            day += timedelta(days=1)
        raise RuntimeError("no free test personnummer near the birth date")  # pragma: no cover

    def person(self, min_age: int, max_age: int, sex: str | None = None, last_name: str | None = None) -> Person:
        """A new person aged ``min_age``–``max_age`` today."""
        sex = sex or self.rng.choice("FM")
        born = self.birth_date(min_age, max_age)
        number = self.personnummer(born, sex)
        first = self.rng.choice(FEMALE_NAMES if sex == "F" else MALE_NAMES)
        return Person(
            personnummer=number,
            first_name=first,
            last_name=last_name or self.rng.choice(SURNAMES),
            sex=sex,
            birth_date=date(int(number[:4]), int(number[4:6]), int(number[6:8])),
        )

    def address(self, area: Area | None = None) -> dict[str, Any]:
        """A street address in ``area`` (default: any), with coordinates near the area's centre."""
        area = area or self.rng.choice(self.areas)
        lat, lon = self.point_near(area.lat, area.lon, area.radius_km)
        return {
            "street": f"{self.rng.choice(STREETS)} {self.rng.randint(1, 60)}",
            "postal_code": f"{area.postal_code}{self.rng.randint(0, 9)}",
            "city": area.city,
            "area": area.name,
            "lat": lat,
            "lon": lon,
        }

    def point_near(self, lat: float, lon: float, radius_km: float) -> tuple[float, float]:
        """A point uniformly within ``radius_km`` of (lat, lon), rounded to 5 decimals (about a metre)."""
        r = radius_km * self.rng.random() ** 0.5
        angle = self.rng.uniform(0, 2 * pi)
        dlat = r * cos(angle) / 111.32
        dlon = r * sin(angle) / (111.32 * cos(radians(lat)))
        return round(lat + dlat, 5), round(lon + dlon, 5)
