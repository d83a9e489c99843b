"""``kollega new-robot NAME``: IT's plugin kit.

Writes a new robot as its own installable package, outside the core: a robot class generic
over its settings model that imports from :mod:`core.api` only, a pure rules module, a review template, tests that use
:mod:`core.testing`, a schedule to copy, and the ``kollega.robots`` entry point. The
generated robot is small but real: it reads case files (JSON) from a folder, checks each
with its rules, finishes the clean ones and prepares the others for a person's decision.
After ``pip install -e <folder>`` it is listed by ``kollega robots``, scheduled by a file
in ``schedules/``, run by ``kollega run NAME`` and its review items are rendered in the
inbox with its own template; ``pytest <folder>/tests`` passes as generated.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from core.errors import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")

FILES: dict[str, str] = {
    "pyproject.toml": """[build-system]
requires = ["setuptools>=69", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "kollega-$dist"
version = "0.1.0"
description = "$display: a Kollega robot."
requires-python = ">=3.11"
dependencies = ["kollega"]

[project.optional-dependencies]
dev = ["pytest>=8", "pytest-asyncio>=0.23"]

# This line is what makes Kollega find the robot: `kollega robots` lists it once installed.
[project.entry-points."kollega.robots"]
$name = "$package.robot:$cls"

[tool.setuptools.packages.find]
include = ["$package*"]

[tool.setuptools.package-data]
"$package" = ["templates/*.html"]

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
""",
    "README.md": """# $display

A Kollega robot (`$name`). It reads case files (`*.json`) from `[robots.$name] inbox_dir`,
checks each with the rules in `$package/rules.py`, finishes the clean ones and prepares
the others for a person's decision in the review queue `$name.review`.

    pip install -e .            # Kollega finds it through the entry point
    kollega robots              # lists $name
    pytest                      # the generated tests
    cp schedules/$name.toml <kollega>/schedules/   # run it every night

Settings (`config/kollega.toml`):

    [robots.$name]
    inbox_dir = "/srv/kollega/$name/inbox"
    auto_limit = 5000

Replace the rules and the case format with your own; keep `rules.py` free of I/O so that
it can be tested without anything running.
""",
    "$package/__init__.py": '''"""$display: a Kollega robot."""
''',
    "$package/rules.py": '''"""The rules of $display: pure functions, no I/O, tested on their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.api import BusinessError


@dataclass(frozen=True)
class Case:
    """One case file, checked."""

    reference: str
    amount: int
    description: str


@dataclass(frozen=True)
class Verdict:
    """What the rules say: finish it, or why a person must look."""

    auto: bool
    reasons: tuple[str, ...] = ()


class CaseError(BusinessError):
    """A case file that cannot be used; the message says why, in Swedish (a person reads it)."""

    code = "${name}_bad_case"


def parse_case(data: Any) -> Case:
    """Check the shape of one case file."""
    if not isinstance(data, dict):
        raise CaseError("Ärendet är inte ett JSON-objekt")
    missing = [k for k in ("reference", "amount", "description") if k not in data]
    if missing:
        raise CaseError("Uppgifter saknas: " + ", ".join(missing))
    amount = data["amount"]
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise CaseError(f"Beloppet måste vara ett heltal i kronor, 0 eller mer (fick {amount!r})")
    return Case(str(data["reference"]), amount, str(data["description"]))


def judge(case: Case, *, auto_limit: int) -> Verdict:
    """Small, complete cases are finished; the rest go to a person with the reasons."""
    reasons = []
    if case.amount > auto_limit:
        reasons.append(f"Beloppet {case.amount} kr är över gränsen {auto_limit} kr")
    if not case.description.strip():
        reasons.append("Beskrivning saknas")
    return Verdict(auto=not reasons, reasons=tuple(reasons))
''',
    "$package/robot.py": '''"""$display: the robot class Kollega runs (found through the entry point in pyproject.toml)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.api import (
    BusinessError,
    Done,
    EffectFacts,
    EffectsDeclaration,
    Measure,
    Measured,
    NeedsReview,
    NewItem,
    OutcomeKind,
    Outcome,
    ReviewView,
    Robot,
    RunContext,
    WorkItemView,
)
from $package.rules import CaseError, judge, parse_case


class ${cls}Settings(BaseModel):
    """Settings of $display, section ``[robots.$name]``."""

    model_config = ConfigDict(extra="forbid")

    inbox_dir: Path = Field(default=Path("var/$name/inbox"), description="Folder of case files (*.json).")
    auto_limit: int = Field(default=5000, ge=0, description="Cases up to this amount (kr) are finished without a person.")


class $cls(Robot[${cls}Settings]):
    """Reads case files, checks them, finishes the clean ones and prepares the rest for a person."""

    name = "$name"
    display_name = "$display"
    description = "Checks case files and prepares the ones that need a person's decision."
    review_template = "review.html"
    # The review queue as people see it ("$display: ärenden att granska"), and its English.
    queue_labels = {"$name.review": "ärenden att granska"}
    messages = {"en": {"ärenden att granska": "cases to review"}}
    # The four questions (why, what value, when, how measured), in Swedish: shown on /effekter.
    effects = EffectsDeclaration(
        why="Ärenden kontrolleras för hand, ett i taget.",
        value="Rena ärenden blir klara direkt; en person granskar bara de som behöver det.",
        when="Från första natten.",
        how_measured="Antal ärenden klara utan handläggare; sparad tid för dem, minus uppmätt granskningstid.",
        measures=(
            Measure("auto_done", "Klara utan handläggare", "st", "Antal ärenden roboten gjorde klara själv.", decimals=0),
        ),
        outcomes=(
            OutcomeKind(
                "case_done", "Ärende klart utan handläggare", 5.0, "uppskattning, inte uppmätt: mät och ersätt"
            ),
        ),
    )

    @classmethod
    def measure_effects(cls, facts: EffectFacts) -> Measured:
        """The month's figures from what happened: cases finished without a person."""
        done = sum(1 for i in facts.items if i.status == "done")
        return Measured(values={"auto_done": float(done)}, outcomes={"case_done": done}, bases={"auto_done": done})

    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:
        """One item per case file; the file name is the reference, so a rerun finds nothing new."""
        folder = self.settings.inbox_dir
        if not folder.is_dir():
            ctx.log.warning("inbox folder missing", folder=str(folder))
            return
        for path in sorted(folder.glob("*.json")):
            yield NewItem(reference=path.stem, payload={"file": str(path)})

    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        """Check one case."""
        path = Path(item.payload["file"])
        try:
            case = parse_case(json.loads(path.read_text(encoding="utf-8")))
        except (CaseError, json.JSONDecodeError) as exc:
            raise BusinessError(f"Ärendefilen {path.name} går inte att använda: {exc}", code="bad_case") from exc
        verdict = judge(case, auto_limit=self.settings.auto_limit)
        if verdict.auto:
            return Done({"reference": case.reference, "amount": case.amount})
        return NeedsReview(
            queue="$name.review",
            title=f"Ärende {case.reference}",
            summary="; ".join(verdict.reasons),
            material={"reference": case.reference, "amount": case.amount, "description": case.description,
                      "reasons": list(verdict.reasons)},
        )

    async def on_decision(self, ctx: RunContext, review: ReviewView) -> None:
        """Record the person's decision (replace with the write to your system)."""
        ctx.record("$name.decided", details={"review_id": review.id, "state": str(review.state)})
''',
    "$package/templates/review.html": """{# $display: how a case looks in the review inbox. Autoescaped and sandboxed. #}
<section class="robot-material">
  <h2>Ärende {{ material.reference }}</h2>
  <p>Belopp: <strong>{{ material.amount }} kr</strong></p>
  <p>{{ material.description }}</p>
  {% if material.reasons %}
  <h3>Därför behöver en person titta</h3>
  <ul>{% for r in material.reasons %}<li>{{ r }}</li>{% endfor %}</ul>
  {% endif %}
</section>
""",
    "schedules/$name.toml": """# Copy to Kollega's schedules/ folder to run $display every working night.
name = "$name"
robot = "$name"
tenants = ["*"]
cron = "0 2 * * *"
timezone = "Europe/Stockholm"
calendar = "workdays"
window_end = "06:00"
catch_up = true
enabled = true
description = "$display går igenom nattens ärendefiler."
""",
    "tests/__init__.py": "",
    "tests/test_rules.py": '''"""The rules, without anything running."""

import pytest

from $package.rules import Case, CaseError, judge, parse_case


def test_a_small_complete_case_is_finished() -> None:
    assert judge(Case("A-1", 1200, "Resekostnad"), auto_limit=5000).auto


def test_a_large_case_goes_to_a_person_with_the_reason() -> None:
    verdict = judge(Case("A-2", 9000, "Dator"), auto_limit=5000)
    assert not verdict.auto and verdict.reasons == ("Beloppet 9000 kr är över gränsen 5000 kr",)


@pytest.mark.parametrize("data", [[], {"reference": "x"}, {"reference": "x", "amount": -1, "description": ""},
                                  {"reference": "x", "amount": "12", "description": ""}])
def test_malformed_cases_are_refused_with_a_reason(data: object) -> None:
    with pytest.raises(CaseError):
        parse_case(data)
''',
    "tests/test_robot.py": '''"""The robot end to end with Kollega's test kit: a real (temporary) database, a fake clock."""

import json
from pathlib import Path

from core.testing import run_robot, temporary_database
from $package.robot import $cls


def test_a_night_finishes_clean_cases_and_prepares_the_rest(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cases = {"A-1": {"amount": 1200, "description": "Resekostnad"},
             "A-2": {"amount": 9000, "description": "Dator"},
             "A-3": {"amount": "tolv", "description": "Fel format"}}
    for ref, case in cases.items():
        (inbox / f"{ref}.json").write_text(json.dumps({"reference": ref, **case}), encoding="utf-8")
    with temporary_database(tmp_path) as db:
        result = run_robot($cls, db=db, tmp_path=tmp_path, settings={"inbox_dir": str(inbox)})
        counts = result.summary.counts
        assert (counts["collected"], counts["done"], counts["needs_review"], counts["failed_business"]) == (3, 1, 1, 1)
        # A rerun finds nothing new: the file name is the reference.
        again = run_robot($cls, db=db, tmp_path=tmp_path, settings={"inbox_dir": str(inbox)})
        assert again.summary.counts["collected"] == 0
''',
}


def scaffold(name: str, dest: Path, *, display: str | None = None) -> Path:
    """Write the robot package ``kollega-<name>`` under ``dest``; returns its folder."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ConfigError(
            f"robot name {name!r}: use 2-31 lower-case letters, digits and underscores, starting with a letter"
        )
    folder = dest / f"kollega-{name.replace('_', '-')}"
    if folder.exists():
        raise ConfigError(f"{folder} already exists; choose another name or folder")
    values = {
        "name": name,
        "dist": name.replace("_", "-"),
        "package": f"kollega_{name}",
        "cls": "".join(part.capitalize() for part in name.split("_")) + "Robot",
        "display": display or name.replace("_", " ").capitalize(),
    }
    for path_template, text in FILES.items():
        path = folder / Template(path_template).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(values), encoding="utf-8")
    return folder
