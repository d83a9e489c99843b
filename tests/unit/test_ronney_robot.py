"""Ronney as a plugin: its class contract, settings documentation, review template and process()
against stand-ins of the e-service and the registers (httpx.MockTransport).

The full night against the real sandbox over HTTP is in tests/integration/test_ronney_sandbox.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jinja2 import Environment, FileSystemLoader
from jinja2.sandbox import SandboxedEnvironment

from connectors.http import BreakerRegistry, HttpConnector, HttpSettings, TokenCache
from core.context import RunContext
from core.engine import Engine
from core.errors import BusinessError
from core.records import WorkItemView
from core.registry import Registry
from core.robot import NeedsReview, Robot
from core.storage.db import Database
from core.testing import FakeClock, make_settings, temporary_database
from robots.ronney.documents import TEMPLATES_DIR, render_basis, render_review
from robots.ronney.robot import Ronney
from robots.ronney.settings import RonneySettings
from tests.unit.test_ronney_checks import AGREEING, ANNA, application, fk_row

ROOT = Path(__file__).resolve().parents[2]


def test_class_contract() -> None:
    assert Ronney.validate_class() == []
    assert (Ronney.name, Ronney.display_name, Ronney.review_template) == ("ronney", "Ronney", "review.html")
    assert Ronney.settings_model is RonneySettings and Ronney.effects is not None
    assert (TEMPLATES_DIR / Ronney.review_template).is_file()
    assert issubclass(Ronney, Robot) and Ronney.description


def test_every_setting_is_documented() -> None:
    # Field by field, as STYLE.md asks: an undocumented setting fails here.
    for name, field in RonneySettings.model_fields.items():
        assert field.description and len(field.description) > 20, name
    docs = (ROOT / "docs" / "robots" / "ronney.md").read_text(encoding="utf-8")
    for name in RonneySettings.model_fields:
        assert f"`{name}`" in docs, f"docs/robots/ronney.md does not describe the setting {name}"


def test_schedule_file_is_after_midnight_outside_two_to_three() -> None:
    import tomllib

    schedule = tomllib.loads((ROOT / "schedules" / "ronney.toml").read_text(encoding="utf-8"))
    _minute, hour = schedule["cron"].split()[:2]
    assert schedule["robot"] == "ronney" and hour.isdigit() and 0 <= int(hour) < 6 and int(hour) != 2
    assert schedule["calendar"] in ("workdays", "all") and schedule["timezone"] == "Europe/Stockholm"


# --- process() against stand-ins ------------------------------------------------------------


class Systems:
    """Stand-ins for the e-service and the registers, answering from dicts; requests are recorded."""

    def __init__(self, app: dict[str, Any]) -> None:
        self.app = app
        self.registers: dict[str, Any] = {ANNA: AGREEING}
        self.requests: list[tuple[str, str, Any]] = []
        self.listing: list[dict[str, Any]] = []
        #: personnummer → markings in the population register (everyone else has none).
        self.protected: dict[str, dict[str, bool]] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        path = request.url.path
        if path.endswith("/applications"):
            return httpx.Response(
                200,
                json={"month": "2026-12", "total": len(self.listing), "offset": 0, "limit": 200, "items": self.listing},
            )
        if path.endswith("/applications/EB-BROKEN"):
            return httpx.Response(500, json={"error": "internal"})
        if path.endswith(f"/applications/{self.app.get('id')}"):
            return httpx.Response(200, json={**self.app})
        if path.endswith("/protection"):
            assert "personnummer" not in str(request.url)
            unmarked = {"sekretessmarkering": False, "skyddad_folkbokforing": False}
            persons = [{"personnummer": n, **self.protected.get(n, unmarked)} for n in body["personnummer"]]
            return httpx.Response(200, json={"request_id": "FOLK-0000001", "persons": persons})
        if path.endswith("/lookup"):
            assert "personnummer" not in str(request.url)
            return httpx.Response(200, json=self.registers[body["personnummer"]])
        return httpx.Response(404, json={"error": "not_found"})


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with temporary_database(tmp_path) as db:
        yield db


def context(db: Database, tmp_path: Path, systems: Systems, **robot_settings: Any) -> tuple[Ronney, RunContext]:
    settings = make_settings(tmp_path, robots={"ronney": {"pdf": False, **robot_settings}})
    engine = Engine.from_database(db, settings, Registry(robots={"ronney": Ronney}), clock=FakeClock())
    robot = engine.robot_instance("ronney")
    assert isinstance(robot, Ronney)
    ctx = engine.context(robot, "0000", None, dry_run=True)
    transport = httpx.MockTransport(systems.handler)
    for system in ("eservice", "registers"):
        ctx.resources[f"http:{system}"] = HttpConnector(
            ctx,
            system,
            HttpSettings(base_url=f"http://{system}.test/"),
            transport=transport,
            breakers=BreakerRegistry(),
            token_cache=TokenCache(),
        )
    return robot, ctx


def item(reference: str = "EB-202612-0001@20261112T074100", **payload: Any) -> WorkItemView:
    return WorkItemView(
        id=0,
        robot="ronney",
        tenant="0000",
        reference=reference,
        payload={"kind": "application", "application_id": "EB-202612-0001", **payload},
        subject=ANNA,
        attempts=1,
        lease_token=None,
    )


def verified_2021(app: dict[str, Any]) -> dict[str, Any]:
    """The same application, for December 2021: the official, verified table applies."""
    app = copy.deepcopy(app)
    app.update(month="2021-12", tenant="0000", income_period={"from": "2021-11-01", "to": "2021-11-30"})
    app["previous_decision"]["month"] = "2021-11"
    return app


def in_2021(answer: dict[str, Any]) -> dict[str, Any]:
    """A register answer moved to 2021, to go with :func:`verified_2021`."""
    return json.loads(json.dumps(answer).replace('"2026-', '"2021-'))


def process(robot: Ronney, ctx: RunContext, it: WorkItemView | None = None) -> Any:
    return asyncio.run(robot.process(ctx, it or item()))


class TestProcess:
    """process() end to end on stand-ins: the proposal, its flags, and bad data."""

    def test_prepares_a_review_with_proposal_flags_and_register_data(self, database: Database, tmp_path: Path) -> None:
        app = verified_2021(application())
        systems = Systems(app)
        answer = in_2021(AGREEING)
        answer["sources"]["forsakringskassan"]["payments"] = [
            fk_row("2021-11", "child_allowance", 1250, "barnbidrag"),
            fk_row("2021-11", "sickness_benefit", 3450, "sjukpenning"),
        ]
        systems.registers[ANNA] = answer
        robot, ctx = context(database, tmp_path, systems, max_rent={"0000": {"2": 6500}})
        outcome = process(robot, ctx)
        assert isinstance(outcome, NeedsReview)
        assert outcome.queue == "ronney.application" and outcome.subject == ANNA
        m = outcome.material
        # 6 460 norm + rent capped at 6 500 + 300 + 150 + 500 = 13 910; − (9 000 + 1 250 + 3 450 from the
        # register) = 210; with the declared incomes only: 13 910 − 10 250 = 3 660
        # the rent is capped by the municipality's limit: a delavslag on that cost
        assert m["proposal"]["amount"] == 210 and m["proposal"]["decision"] == "partially_approved"
        assert m["as_declared"] == {"support": 3660}
        codes = [f["code"] for f in m["flags"]]
        assert codes[0] == "income_missing" and "rent_capped" in codes
        assert m["flags"][0]["text"].startswith("Inkomst från Försäkringskassan 3 450 kr saknas i ansökan")
        assert json.loads(json.dumps(m)) == m  # plain JSON only
        lookup = next(body for method, path, body in systems.requests if path.endswith("/lookup"))
        assert lookup["case_id"] == "EB-202612-0001" and lookup["purpose"] and lookup["legal_basis"]
        assert lookup["period"] == {"from": "2021-09-01", "to": "2021-11-30"}
        assert ANNA not in outcome.title and ANNA not in outcome.summary
        assert "210 kr föreslås" in outcome.title

    def test_a_protected_household_is_neither_looked_up_nor_rendered(self, database: Database, tmp_path: Path) -> None:
        app = verified_2021(application())
        systems = Systems(app)
        systems.protected[ANNA] = {"sekretessmarkering": True, "skyddad_folkbokforing": False}
        robot, ctx = context(database, tmp_path, systems)
        outcome = process(robot, ctx)
        assert isinstance(outcome, NeedsReview) and outcome.queue == "ronney.application"
        assert outcome.material["kind"] == "restricted" and outcome.material["gate"]["reason"] == "sekretessmarkering"
        assert [path for _, path, _ in systems.requests if path.endswith("/lookup")] == []
        text = json.dumps(outcome.material, ensure_ascii=False) + outcome.title + outcome.summary
        assert ANNA not in text and "address" not in outcome.material and "registers" not in outcome.material
        html = render_review(outcome.material)
        assert "Handläggs manuellt" in html and "kommunens rutin för skyddade personuppgifter" in html
        assert "Ronney kunde inte förbereda" not in html and ANNA not in html

    def test_unverified_table_without_the_figure_gives_a_review_without_amount(
        self, database: Database, tmp_path: Path
    ) -> None:
        systems = Systems(application(tenant="0000"))
        robot, ctx = context(database, tmp_path, systems)
        outcome = process(robot, ctx)
        assert isinstance(outcome, NeedsReview)
        assert outcome.material["proposal"]["amount"] is None
        # Issue 18: the figure is named in Swedish (no technical key or path for the case
        # worker), everything but the norm is calculated, and operations get one alert.
        assert "barn 4–6 år utan lunch hemma" in outcome.material["calculation_error"]
        assert "children_without_lunch" not in str(outcome.material)
        assert "beloppet väntar på riksnormen för 2026" in outcome.title
        calc = outcome.material["calculation"]
        assert calc["norm"] is None and calc["support"] is None and calc["reasonable_costs"] > 0

    def test_malformed_application_is_a_business_error(self, database: Database, tmp_path: Path) -> None:
        raw = application(tenant="0000")
        del raw["costs"]
        robot, ctx = context(database, tmp_path, Systems(raw))
        with pytest.raises(BusinessError, match="costs saknas") as info:
            process(robot, ctx)
        assert info.value.code == "malformed_application"

    def test_invalid_personnummer_is_a_business_error_before_any_lookup(
        self, database: Database, tmp_path: Path
    ) -> None:
        raw = application(tenant="0000")
        raw["applicant"]["personnummer"] = ANNA[:-1] + str((int(ANNA[-1]) + 1) % 10)
        systems = Systems(raw)
        robot, ctx = context(database, tmp_path, systems)
        with pytest.raises(BusinessError) as info:
            process(robot, ctx)
        assert info.value.code == "invalid_personnummer" and ANNA[:-1] not in info.value.message
        assert not any(path.endswith("/lookup") for _m, path, _b in systems.requests)

    def test_application_removed_from_the_e_service(self, database: Database, tmp_path: Path) -> None:
        robot, ctx = context(database, tmp_path, Systems(application(id="EB-OTHER")))
        with pytest.raises(BusinessError, match="finns inte längre"):
            process(robot, ctx)

    def test_already_decided_is_done(self, database: Database, tmp_path: Path) -> None:
        systems = Systems(application(tenant="0000", decision={"decision_id": "BES-1"}))
        robot, ctx = context(database, tmp_path, systems)
        outcome = process(robot, ctx)
        assert outcome.result == {"application_id": "EB-202612-0001", "already_decided": True, "decision_id": "BES-1"}

    def test_returned_item_shows_the_comment(self, database: Database, tmp_path: Path) -> None:
        robot, ctx = context(database, tmp_path, Systems(application(tenant="0000")))
        it = WorkItemView(**{**item().__dict__, "return_comment": "Kontrollera hyran mot hyresavin"})
        outcome = process(robot, ctx, it)
        assert outcome.material["return_comment"] == "Kontrollera hyran mot hyresavin"
        assert "Kontrollera hyran mot hyresavin" in render_review(outcome.material)


class TestCollect:
    """collect() reads only, finds what needs preparing, and survives one unreadable application."""

    @staticmethod
    def summary(app_id: str, status: str = "submitted", **extra: Any) -> dict[str, Any]:
        return {
            "id": app_id,
            "kind": "reapplication",
            "month": "2026-12",
            "status": status,
            "submitted_at": "2026-11-12T07:41:00+01:00",
            "updated_at": "2026-11-12T07:41:00+01:00",
            "has_decision": False,
            "awaiting_complement": status == "awaiting_complement",
            **extra,
        }

    def collect(self, robot: Ronney, ctx: RunContext) -> list[Any]:
        async def run() -> list[Any]:
            return [it async for it in robot.collect(ctx)]

        return asyncio.run(run())

    def test_items_and_one_unreadable_application(self, database: Database, tmp_path: Path) -> None:
        systems = Systems(application(tenant="0000"))
        systems.listing = [
            self.summary("EB-202612-0001"),
            self.summary("EB-BROKEN"),
            self.summary("EB-DONE", has_decision=True),
            self.summary("EB-OLD", status="decided"),
        ]
        robot, ctx = context(database, tmp_path, systems)
        ctx.resources["http:eservice"].settings.retry.attempts = 1
        found = self.collect(robot, ctx)
        assert [(i.reference, i.subject) for i in found] == [
            ("EB-202612-0001@20261112T074100", ANNA),
            ("EB-BROKEN@20261112T074100", None),
        ]
        assert found[0].payload == {
            "application_id": "EB-202612-0001",
            "month": "2026-12",
            "application_kind": "reapplication",
            "kind": "application",
            "version": "20261112T074100",
        }
        assert all(method == "GET" for method, _p, _b in systems.requests)

    def test_overdue_complement_becomes_its_own_item(self, database: Database, tmp_path: Path) -> None:
        waiting = application(
            tenant="0000",
            status="awaiting_complement",
            complement_requests=[
                {
                    "id": "EB-202612-0001-K1",
                    "what": "Hyresavi",
                    "requested_at": "2026-11-10T10:00:00+01:00",
                    "due": "2026-11-17",
                    "arrived_at": None,
                },
                {
                    "id": "EB-202612-0001-K2",
                    "what": "Intyg",
                    "requested_at": "2026-11-20T10:00:00+01:00",
                    "due": "2026-11-27",
                    "arrived_at": None,
                },
            ],
        )
        systems = Systems(waiting)
        systems.listing = [self.summary("EB-202612-0001", status="awaiting_complement")]
        robot, ctx = context(database, tmp_path, systems, complement_reminder_days=10)
        found = self.collect(robot, ctx)
        assert [i.reference for i in found] == ["EB-202612-0001/komplettering/EB-202612-0001-K1"]
        outcome = asyncio.run(
            robot.process(
                ctx,
                WorkItemView(
                    id=0,
                    robot="ronney",
                    tenant="0000",
                    reference=found[0].reference,
                    payload=found[0].payload,
                    subject=ANNA,
                    attempts=1,
                    lease_token=None,
                ),
            )
        )
        assert isinstance(outcome, NeedsReview) and outcome.queue == "ronney.complement"
        assert outcome.title.startswith(
            "Begär komplettering? EB-202612-0001: Hyresavi har inte kommit, begärd för 13 dagar sedan"
        )
        assert outcome.material["proposed_request"] == {"what": "Hyresavi", "due": "2026-11-30"}


# --- the review template ---------------------------------------------------------------------

COMPLEMENT = {
    "kind": "complement",
    "application_id": "EB-202612-0005",
    "month_text": "december 2026",
    "applicant_name": "Anna Berg",
    "applicant_personnummer": ANNA,
    "flags": [{"severity": "warning", "code": "complement_missing", "text": "Hyresavi har inte kommit in"}],
    "complement": {
        "id": "EB-202612-0005-K1",
        "what": "Hyresavi",
        "requested": "2026-11-13 10:00",
        "requested_by": "handläggare",
        "due": "2026-11-20",
        "days_waiting": 10,
    },
    "proposed_request": {"what": "Hyresavi", "due": "2026-11-30"},
    "attachments": [],
}


@pytest.fixture(scope="module")
def application_material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("material")
    with temporary_database(tmp) as db:
        systems = Systems(verified_2021(application(other_household_members=1)))
        answer = in_2021(AGREEING)
        answer["sources"]["transportstyrelsen"]["vehicles"] = [{"registration": "ABC 12D", "model_year": 2012}]
        systems.registers[ANNA] = answer
        robot, ctx = context(db, tmp, systems)
        outcome = process(robot, ctx)
    return dict(outcome.material)


def environments() -> list[Environment]:
    # The web app may render with a plain or a sandboxed environment; both must work.
    return [
        Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True),
        SandboxedEnvironment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True),
    ]


REVIEW = {
    "id": 42,
    "title": "Återansökan EB-202612-0001",
    "summary": "Hushåll: 1 vuxen, 1 barn.",
    "state": "open",
    "kind": "decision",
    "queue": "ronney.application",
    "created_at": "2026-11-23T01:10",
}


class TestTemplate:
    """What a case worker sees: flags first, accessible tables, a fragment without buttons."""

    @pytest.mark.parametrize("env", environments(), ids=["plain", "sandboxed"])
    def test_application(self, env: Environment, application_material: dict[str, Any]) -> None:
        html = env.get_template("review.html").render(
            review=REVIEW, material=application_material, lang="sv", _=lambda s: s
        )
        for forbidden in ("<html", "<body", "<button", "<form", "<script"):
            assert forbidden not in html
        headings = re.findall(r"<h3[^>]*>([^<]+)</h3>", html)
        assert headings[:3] == ["Att granska först", "Förslag", "Hushåll"]
        assert html.index("Att granska först") < html.index("Beräkning")
        assert 'scope="col"' in html and 'scope="row"' in html and "<caption>" in html
        assert "äger fordon ABC 12D" in html
        assert "3\u00a0160\u00a0kr" in html  # amounts never break across lines
        assert 'aria-labelledby="ronney-42-title"' in html
        assert "Registrens inkomster månad för månad" in html

    def test_text_is_escaped(self, application_material: dict[str, Any]) -> None:
        material = copy.deepcopy(application_material)
        material["flags"].insert(0, {"severity": "warning", "code": "x", "text": "<script>alert(1)</script>"})
        html = render_review(material, REVIEW)
        assert "<script>" not in html and "&lt;script&gt;" in html

    def test_translation_function_is_used(self, application_material: dict[str, Any]) -> None:
        html = render_review(
            application_material, REVIEW, lang="en", gettext=lambda s: {"Förslag": "Proposal"}.get(s, s)
        )
        assert ">Proposal</h3>" in html

    @pytest.mark.parametrize("env", environments(), ids=["plain", "sandboxed"])
    def test_complement(self, env: Environment) -> None:
        template = env.get_template("review.html")
        html = template.render(
            review={**REVIEW, "queue": "ronney.complement"}, material=COMPLEMENT, lang="sv", _=lambda s: s
        )
        assert "Begär komplettering?" in html and "2026-11-30" in html

    def test_a_material_kind_it_does_not_know_says_so_in_swedish(self) -> None:
        # An item written by another version; failed items are the web app's problem report.
        html = render_review({"kind": "something_newer", "application_id": "EB-202612-0015"}, {"title": "x"})
        assert "Underlaget kan inte visas" in html and "EB-202612-0015" in html
        assert "something_newer" not in html
        assert "Underlaget kan inte visas" in render_review({}, {"title": "x"})

    def test_decision_basis_is_a_complete_document(self, application_material: dict[str, Any]) -> None:
        html = render_basis(application_material)
        assert html.lstrip().startswith("<!doctype html>") and "<body>" in html and "</html>" in html
        assert "Beslutsunderlag – ekonomiskt bistånd" in html and "Handläggare" in html
