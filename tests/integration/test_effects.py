"""The effects ledger end to end: measured from a real night and a real decision, on the page, in CSV, printable, JSON, CLI."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from core import effects_report
from core.storage.db import Database
from core.testing.web import WebEnv, login, make_web_env, web_client
from tests.integration.test_cli import kollega
from tests.integration.test_web_ops import seed


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    """The app on the backend under test (SQLite and PostgreSQL)."""
    return make_web_env(db, tmp_path)


async def night_and_one_decision(env: WebEnv) -> None:
    """The example robot's night (14 done, 7 to review), and Anna deciding one item 2 minutes after opening it."""
    await seed(env)
    async with web_client(env.app) as client:
        csrf = await login(client, "anna")
        review_id = env.app.state.kollega.reviews.list(queue="example.review")[0].id
        page = await client.get(f"/inbox/items/{review_id}")
        env.clock.advance(120)
        version = re.search(r'name="version" value="(\d+)"', page.text)
        assert version
        decided = await client.post(
            f"/inbox/items/{review_id}/decide",
            data={"decision": "approve", "version": version.group(1), "csrf_token": csrf},
        )
        assert decided.status_code == 303


class TestLedger:
    """Figures from what happened; time saved = outcomes × minutes (measured or labelled estimate) − review time."""

    async def test_measured_from_the_night_with_the_estimate_labelled(self, env: WebEnv) -> None:
        await night_and_one_decision(env)
        rep = effects_report.report(env.db, env.registry.robots, env.settings, "0000", "2026-11")
        (example,) = rep.robots
        assert example.measured.values == {"handled": 14.0, "review_share": pytest.approx(29.2)}
        (line,) = example.time_lines
        assert (line.count, line.minutes_each, line.measured) == (14, 6.0, False)
        assert example.review_minutes == 2.0 and example.reviews_timed == 1
        assert example.saved_minutes == 82.0 and example.estimated
        assert (
            effects_report.report(env.db, env.registry.robots, env.settings, "0000", "2026-10")
            .robots[0]
            .measured.values["handled"]
            == 0.0
        )
        assert effects_report.report(env.db, env.registry.robots, env.settings, "9999", "2026-11").saved_minutes == 0

    async def test_the_municipalitys_own_baseline_replaces_the_estimate(self, env: WebEnv) -> None:
        await night_and_one_decision(env)
        settings = env.settings.model_copy(deep=True)
        settings.tenants[0].effect_minutes = {"example.case_handled": 10.0, "ghost.outcome": 3.0}
        rep = effects_report.report(env.db, env.registry.robots, settings, "0000", "2026-11")
        (line,) = rep.robots[0].time_lines
        assert line.measured and line.minutes == 140.0 and rep.robots[0].saved_minutes == 138.0
        assert not rep.robots[0].estimated
        assert rep.unknown_baselines == ["ghost.outcome"]

    def test_a_bad_month_is_refused_by_name(self) -> None:
        for bad in ("2026-13", "26-11", "2026/11", ""):
            with pytest.raises(Exception, match="YYYY-MM"):
                effects_report.parse_month(bad)
        assert effects_report.recent_months("2026-02", 3) == ["2025-12", "2026-01", "2026-02"]


class TestPage:
    """/effekter: Swedish, per municipality, month by month, every figure linked to how it is computed."""

    async def test_page_csv_report_and_api(self, env: WebEnv) -> None:
        await night_and_one_decision(env)
        async with web_client(env.app) as client:
            await login(client, "sara")
            page = await client.get("/effekter", params={"tenant": "0000", "month": "2026-11"})
            assert page.status_code == 200 and '<html lang="sv">' in page.text
            html = page.text
            assert "Effekter" in html and "Exempelroboten" in html and "Varför" in html
            row = re.search(r'<tr data-measure="handled">(.*?)</tr>', html, re.S)
            assert row and re.search(r'data-col="value">\s*14 st', row.group(1))
            saved = re.search(r'data-col="saved">([^<]*)<', html)
            assert saved and saved.group(1) == "82.0"
            assert "Uppskattning" in html and "exempelvärde" in html
            assert html.count("<svg") == 3  # two measures and the time saved, 12 months each
            # Every "how it is computed" link lands on an explanation on the page.
            targets = set(re.findall(r'href="#(how-[^"]+)"', html))
            assert "how-example-handled" in targets and "how-time" in targets
            for target in targets:
                assert f'id="{target}"' in html, target
            assert "<script" not in html  # the CSP allows no inline script, and none is needed

            bad = await client.get("/effekter", params={"month": "november"})
            assert bad.status_code == 400 and "Ogiltig månad" in bad.text

            download = await client.get("/effekter.csv", params={"tenant": "0000", "month": "2026-11"})
            assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
            rows = list(csv.reader(io.StringIO(download.text.lstrip("\ufeff"))))
            assert rows[0] == effects_report.CSV_COLUMNS
            by_key = {r[4]: r for r in rows[1:]}
            assert by_key["handled"][6] == "14" and by_key["case_handled"][9].startswith("uppskattning")
            assert by_key["saved_minutes"][6] == "82.0"
            year = await client.get("/effekter.csv", params={"tenant": "0000", "month": "2026-11", "months": 12})
            assert {r[1] for r in list(csv.reader(io.StringIO(year.text.lstrip("\ufeff"))))[1:]} == set(
                effects_report.recent_months("2026-11", 12)
            )

            printable = await client.get("/effekter/rapport", params={"tenant": "0000", "month": "2026-11"})
            assert printable.status_code == 200 and "Effektrapport" in printable.text
            assert "Antal ärenden roboten gjorde klara själv." in printable.text  # how each figure is computed

            api = (await client.get("/api/v1/effects", params={"tenant": "0000", "month": "2026-11"})).json()
            assert api["robots"][0]["time_saved"]["saved_minutes"] == 82.0
            assert api["robots"][0]["questions"]["why"]
            assert (
                await client.get("/api/v1/effects", params={"tenant": "9999", "month": "2026-11"})
            ).status_code == 404

    async def test_who_sees_which_municipality(self, env: WebEnv) -> None:
        await seed(env)
        async with web_client(env.app) as client:
            await login(client, "erik")  # coordinator
            assert (await client.get("/effekter")).status_code == 200
        async with web_client(env.app) as client:
            await login(client, "sara")
            assert (await client.get("/effekter", params={"tenant": "9999"})).status_code == 404
            assert (await client.get("/effekter.csv", params={"tenant": "9999"})).status_code == 404
        async with web_client(env.app) as client:
            await login(client, "olle")  # operations in the other municipality only
            page = await client.get("/effekter")
            assert page.status_code == 200 and 'value="9999" selected' in page.text and 'value="0000"' not in page.text
        async with web_client(env.app) as client:
            await login(client, "anna")  # a case worker
            assert (await client.get("/effekter")).status_code == 403
            assert 'href="/effekter"' not in (await client.get("/inbox")).text

    async def test_english_on_request(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "sara")
            await client.post("/lang", data={"lang": "en", "next": "/effekter", "csrf_token": csrf})
            page = await client.get("/effekter")
            assert '<html lang="en">' in page.text and "How the measures are computed" in page.text


class TestCommand:
    """``kollega effects --tenant K --month YYYY-MM --json`` prints the ledger; bad input exits 2."""

    def test_json_and_refusals(self, tmp_path: Path) -> None:
        assert kollega(tmp_path, "db", "upgrade").returncode == 0
        ran = kollega(tmp_path, "run", "example", "--tenant", "1081", env={"KOLLEGA_ROBOTS__EXAMPLE__FLAKY_EVERY": "0"})
        assert ran.returncode in (0, 1), ran.stderr
        out = kollega(tmp_path, "effects", "--tenant", "1081", "--json")
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        example = next(r for r in data["robots"] if r["robot"] == "example")
        assert example["measures"][0]["value"] > 0 and example["time_saved"]["outcomes"][0]["baseline"] == "estimate"
        assert {r["robot"] for r in data["robots"]} >= {"ronney", "bosse", "lena", "harry"}
        table = kollega(tmp_path, "effects", "--tenant", "1081")
        assert table.returncode == 0 and "time saved" in table.stdout
        as_csv = kollega(tmp_path, "effects", "--tenant", "1081", "--month", data["month"], "--csv")
        assert as_csv.stdout.startswith(",".join(effects_report.CSV_COLUMNS))
        bad = kollega(tmp_path, "effects", "--tenant", "1081", "--month", "2026-13")
        assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
        unknown = kollega(tmp_path, "effects", "--tenant", "9998")
        assert unknown.returncode == 2 and "unknown tenant" in unknown.stderr
