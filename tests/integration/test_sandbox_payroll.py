"""The sandbox payroll application ("PersonalLön"): the contract HaRry's page objects rely on.

Page tests go through ``httpx.ASGITransport``; one test drives the application in a real
Chromium over real HTTP, selecting by label and role only.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from core.testing.browser import launch_chromium
from sandbox.payroll import Employee, PayrollFaults, PayrollStore, router, setup, store_for
from sandbox.state import FaultSettings, SandboxData, SandboxOptions, SandboxState
from sandbox.testing import running_sandbox

WEEK = (date(2026, 11, 23), date(2026, 11, 29))
TODAY = date(2026, 11, 23)


class Clock:
    """A settable clock for session timeouts."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Form(HTMLParser):
    """Collects labels (for → text), elements with ids, hidden inputs and links of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.labels: dict[str, str] = {}
        self.elements: dict[str, dict[str, str]] = {}
        self.hidden: dict[str, str] = {}
        self.links: list[str] = []
        self._label: str | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "label":
            self._label, self._text = a.get("for", ""), []
        if "id" in a:
            self.elements[a["id"]] = {"tag": tag, **a}
        if tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        if tag == "a":
            self.links.append(a.get("href", ""))

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label is not None:
            self.labels[" ".join("".join(self._text).split())] = self._label
            self._label = None

    def field(self, label: str) -> dict[str, str]:
        """The element a label points at."""
        return self.elements[self.labels[label]]


def week_rows(start: date = WEEK[0]) -> list[dict[str, str]]:
    """Monday–Friday 07:00–16:00 with 45 minutes' break, weekend free."""
    rows = []
    for i in range(7):
        day = start + timedelta(days=i)
        work = day.weekday() < 5
        rows.append(
            {
                "date": day.isoformat(),
                "start": "07:00" if work else "",
                "end": "16:00" if work else "",
                "break": "45" if work else "",
                "activity": "ARB" if work else "",
            }
        )
    return rows


class Robot:
    """A thin HTTP 'robot' over the payroll pages (the browser-free twin of HaRry's page objects)."""

    def __init__(self, client: httpx.AsyncClient, store: PayrollStore | None = None) -> None:
        self.client = client
        self.store = store

    async def csrf(self, path: str) -> str:
        response = await self.client.get(path)
        assert response.status_code == 200, response.text
        return Form(response.text).hidden["csrf_token"]

    async def login(self, username: str = "robot.harry", password: str = "sandlada-harry") -> httpx.Response:
        token = await self.csrf("/payroll/login")
        return await self.client.post(
            "/payroll/login", data={"csrf_token": token, "username": username, "password": password}
        )

    async def search(self, query: str) -> httpx.Response:
        token = await self.csrf("/payroll/search")
        return await self.client.post("/payroll/search", data={"csrf_token": token, "query": query})

    async def save(self, key: str, rows: list[dict[str, str]], period: tuple[date, date] = WEEK) -> httpx.Response:
        page = await self.client.get(
            f"/payroll/employees/{key}/schedule", params={"fom": period[0].isoformat(), "tom": period[1].isoformat()}
        )
        data = dict(Form(page.text).hidden)
        slots: dict[str, list[str]] = {}  # date → the form's row indices for it, two per day
        for name, value in data.items():
            if match := re.fullmatch(r"row-(\d+)-date", name):
                slots.setdefault(value, []).append(match.group(1))
        for row in rows:
            i = slots[row["date"]].pop(0)
            data.update({f"row-{i}-{k}": v for k, v in row.items() if k != "date"})
        return await self.client.post(f"/payroll/employees/{key}/schedule", data=data)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> PayrollStore:
    return PayrollStore.generate(seed=7, count=40, latency_ms=(0.0, 0.0), clock=clock, today=TODAY)


@pytest.fixture
def app(store: PayrollStore) -> FastAPI:
    application = FastAPI()
    application.include_router(router)
    application.state.payroll = store
    return application


@pytest.fixture
async def robot(app: FastAPI, store: PayrollStore) -> AsyncIterator[Robot]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", follow_redirects=True) as client:
        yield Robot(client, store)


@pytest.fixture
def employee(store: PayrollStore) -> Employee:
    found = store.by_number("100005")
    assert found is not None
    return found


class TestLogin:
    """Login needs the form's CSRF token; sessions live on the server and expire."""

    async def test_login_with_csrf_token_reaches_search(self, robot: Robot) -> None:
        response = await robot.login()
        assert response.status_code == 200
        assert "<h1>Sök anställd</h1>" in response.text
        assert "Inloggad som robot.harry" in response.text

    async def test_new_session_id_at_login(self, robot: Robot) -> None:
        await robot.client.get("/payroll/login")
        anonymous = robot.client.cookies.get("PLSESSION")
        await robot.login()
        assert robot.client.cookies.get("PLSESSION") not in (None, anonymous)

    async def test_missing_or_wrong_csrf_token_is_refused(self, robot: Robot, store: PayrollStore) -> None:
        await robot.client.get("/payroll/login")
        for data in ({}, {"csrf_token": "forged"}):
            response = await robot.client.post(
                "/payroll/login", data={**data, "username": "robot.harry", "password": "sandlada-harry"}
            )
            assert response.status_code == 403
            assert "Säkerhetstoken saknas eller är ogiltig" in response.text
        assert not any(s.username for s in store.sessions.values())

    async def test_wrong_password_shows_swedish_error(self, robot: Robot) -> None:
        response = await robot.login(password="fel")
        assert "Fel användarnamn eller lösenord." in response.text
        assert 'role="alert"' in response.text

    async def test_pages_need_login(self, robot: Robot, employee: Employee) -> None:
        response = await robot.client.get(f"/payroll/employees/{employee.key}", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/payroll/login?reason=required&next=%2Fpayroll%2Femployees")
        await robot.client.get("/payroll/login")  # an anonymous session is not an expired one
        response = await robot.client.get("/payroll/search")
        assert "Logga in för att fortsätta." in response.text

    async def test_login_returns_to_next_page_but_never_elsewhere(self, robot: Robot, employee: Employee) -> None:
        token = await robot.csrf("/payroll/login")
        response = await robot.client.post(
            "/payroll/login",
            follow_redirects=False,
            data={
                "csrf_token": token,
                "username": "robot.harry",
                "password": "sandlada-harry",
                "next": f"/payroll/employees/{employee.key}",
            },
        )
        assert response.headers["location"] == f"/payroll/employees/{employee.key}"
        token = await robot.csrf("/payroll/login")
        response = await robot.client.post(
            "/payroll/login",
            follow_redirects=False,
            data={
                "csrf_token": token,
                "username": "robot.harry",
                "password": "sandlada-harry",
                "next": "//evil.example/",
            },
        )
        assert response.headers["location"] == "/payroll/search"

    async def test_session_expires_after_n_requests(
        self, robot: Robot, store: PayrollStore, employee: Employee
    ) -> None:
        store.faults = PayrollFaults(session_expiry_after=3)
        await robot.login()  # the search page after login is request 1
        for _ in range(2):
            assert (await robot.client.get("/payroll/search")).status_code == 200
        response = await robot.client.get(f"/payroll/employees/{employee.key}", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/payroll/login?reason=expired")
        page = await robot.client.get(response.headers["location"])
        assert "Din session har gått ut. Logga in igen." in page.text
        # Logging in again gives a fresh allowance of requests.
        assert "<h1>Sök anställd</h1>" in (await robot.login()).text

    async def test_expired_session_refuses_a_save(self, robot: Robot, store: PayrollStore, employee: Employee) -> None:
        await robot.login()
        page = await robot.client.get(
            f"/payroll/employees/{employee.key}/schedule",
            params={"fom": WEEK[0].isoformat(), "tom": WEEK[1].isoformat()},
        )
        store.faults = PayrollFaults(session_expiry_after=1)
        data = {
            **Form(page.text).hidden,
            **{f"row-{i}-{k}": v for i, r in enumerate(week_rows()) for k, v in r.items()},
        }
        response = await robot.client.post(
            f"/payroll/employees/{employee.key}/schedule", data=data, follow_redirects=False
        )
        assert response.headers["location"] == "/payroll/login?reason=expired"
        assert store.saves == []

    async def test_idle_session_expires(self, robot: Robot, clock: Clock) -> None:
        await robot.login()
        clock.now += timedelta(minutes=16)
        response = await robot.client.get("/payroll/search")
        assert "Din session har gått ut. Logga in igen." in response.text

    async def test_logout_ends_the_session_on_the_server(self, robot: Robot, store: PayrollStore) -> None:
        await robot.login()
        token = await robot.csrf("/payroll/search")
        response = await robot.client.post("/payroll/logout", data={"csrf_token": token})
        assert "Du är utloggad." in response.text
        assert not any(s.username for s in store.sessions.values())


class TestSearch:
    """Search by employee number, name or personnummer; results link to an internal id."""

    async def test_by_employee_number(self, robot: Robot, employee: Employee) -> None:
        await robot.login()
        response = await robot.search(employee.number)
        assert "Sökresultat (1 träff)" in response.text
        assert f'<a href="/payroll/employees/{employee.key}">{employee.name}</a>' in response.text

    async def test_by_name_and_by_personnummer(self, robot: Robot, employee: Employee) -> None:
        await robot.login()
        assert f"/payroll/employees/{employee.key}" in (await robot.search(employee.name.lower())).text
        response = await robot.search(employee.personnummer)
        assert "(1 träff)" in response.text

    async def test_no_match_and_empty_query(self, robot: Robot) -> None:
        await robot.login()
        assert "Ingen anställd matchar sökningen." in (await robot.search("Zzyzx")).text
        response = await robot.search("  ")
        assert response.status_code == 422
        assert "Ange anställningsnummer eller namn." in response.text

    async def test_personnummer_never_in_a_url(self, robot: Robot, employee: Employee) -> None:
        await robot.login()
        digits = re.sub(r"\D", "", employee.personnummer)
        pages = [
            await robot.search(employee.personnummer),
            await robot.client.get(f"/payroll/employees/{employee.key}"),
        ]
        assert f"{digits[:8]}-{digits[8:]}" in pages[1].text  # shown on the page, as in the real system
        for page in pages:
            assert str(page.url).find(digits) == -1
            for link in Form(page.text).links:
                assert digits not in re.sub(r"\D", "", link)


class TestRegistration:
    """Register a period, see the confirmation, read it back; validation errors on the page."""

    async def test_register_confirm_and_read_back(self, robot: Robot, store: PayrollStore, employee: Employee) -> None:
        await robot.login()
        response = await robot.save(employee.key, week_rows())
        assert response.status_code == 200
        assert "<h1>Schemat är sparat</h1>" in response.text
        assert "Registrering R-000001 är sparad." in response.text
        read = await robot.client.get(
            f"/payroll/employees/{employee.key}/registered",
            params={"fom": WEEK[0].isoformat(), "tom": WEEK[1].isoformat()},
        )
        cells = re.findall(r"<td>([^<]*)</td>", read.text)
        assert cells[:6] == ["2026-11-23", "07:00", "16:00", "45", "ARB", "Arbetstid"]
        assert "Antal rader: 5. Summa arbetstid: 41:15." in read.text
        assert store.save_count(employee.number, *WEEK) == 1
        assert store.saves[0].rows[0].activity == "ARB"
        assert store.inspect()["registered"][employee.number][4]["date"] == "2026-11-27"

    async def test_form_is_prefilled_and_a_save_replaces_the_period(
        self, robot: Robot, store: PayrollStore, employee: Employee
    ) -> None:
        await robot.login()
        await robot.save(employee.key, week_rows())
        page = await robot.client.get(
            f"/payroll/employees/{employee.key}/schedule",
            params={"fom": WEEK[0].isoformat(), "tom": WEEK[1].isoformat()},
        )
        form = Form(page.text)
        assert form.field("Starttid 2026-11-24 rad 1")["value"] == "07:00"
        assert form.field("Starttid 2026-11-24 rad 2")["value"] == ""
        assert "Perioden har redan registrerade rader. Spara ersätter dem." in page.text
        rows = week_rows()
        rows[0].update(start="08:00", end="12:00", **{"break": "0"})
        rows[4].update(start="", end="", activity="", **{"break": ""})
        await robot.save(employee.key, rows)
        registered = store.registered_rows(employee.key, *WEEK)
        assert [(r.day.day, r.start) for r in registered] == [
            (23, "08:00"),
            (24, "07:00"),
            (25, "07:00"),
            (26, "07:00"),
        ]
        assert store.save_count(employee.number, *WEEK) == 2

    async def test_locked_period(self, robot: Robot, store: PayrollStore, employee: Employee) -> None:
        store.lock(date(2026, 11, 1), date(2026, 11, 30))
        await robot.login()
        page = await robot.client.get(
            f"/payroll/employees/{employee.key}/schedule",
            params={"fom": WEEK[0].isoformat(), "tom": WEEK[1].isoformat()},
        )
        assert "Perioden är låst" in page.text
        response = await robot.save(employee.key, week_rows())
        assert response.status_code == 422
        assert "Perioden är låst" in response.text
        assert store.saves == []

    async def test_periods_before_last_payroll_run_are_locked_by_default(
        self, robot: Robot, employee: Employee
    ) -> None:
        await robot.login()
        response = await robot.save(employee.key, week_rows(date(2026, 9, 21)), (date(2026, 9, 21), date(2026, 9, 27)))
        assert "Perioden är låst" in response.text

    async def test_overlapping_rows(self, robot: Robot, store: PayrollStore, employee: Employee) -> None:
        await robot.login()
        rows = week_rows()
        rows[0].update(start="22:00", end="07:00")  # a night shift into Tuesday 07:00
        rows[1].update(start="06:00")
        response = await robot.save(employee.key, rows)
        assert response.status_code == 422
        assert "Överlappande rader: 2026-11-23 22:00–07:00 överlappar 2026-11-24 06:00–16:00." in response.text
        assert 'aria-invalid="true"' in response.text
        assert Form(response.text).field("Starttid 2026-11-24 rad 1")["value"] == "06:00"  # input kept
        assert store.saves == []

    async def test_overlap_with_a_registered_day_outside_the_period(self, robot: Robot, employee: Employee) -> None:
        await robot.login()
        sunday = [{"date": "2026-11-22", "start": "22:00", "end": "07:30", "break": "0", "activity": "JOUR"}]
        await robot.save(employee.key, sunday, (date(2026, 11, 22), date(2026, 11, 22)))
        response = await robot.save(employee.key, week_rows())
        assert "Överlappande rader: 2026-11-22 22:00–07:30 överlappar 2026-11-23 07:00–16:00." in response.text

    async def test_unknown_activity_code(self, robot: Robot, store: PayrollStore, employee: Employee) -> None:
        await robot.login()
        rows = week_rows()
        rows[2]["activity"] = "KOMP"  # offered by the form's stale list, refused by the server
        rows[3]["activity"] = "XYZ"
        response = await robot.save(employee.key, rows)
        assert response.status_code == 422
        assert "2026-11-25: okänd aktivitetskod &#34;KOMP&#34;." in response.text
        assert "2026-11-26: okänd aktivitetskod &#34;XYZ&#34;." in response.text
        assert store.saves == []

    async def test_malformed_rows(self, robot: Robot, employee: Employee) -> None:
        await robot.login()
        rows = week_rows()
        rows[0]["start"] = "25:00"
        rows[1]["end"] = ""
        rows[2]["break"] = "600"
        rows[3]["break"] = "en halvtimme"
        response = await robot.save(employee.key, rows)
        for message in (
            "2026-11-23: ogiltig starttid &#34;25:00&#34; (ange tt:mm).",
            "2026-11-24: sluttid saknas.",
            "2026-11-25: rasten är lika lång som eller längre än passet.",
            "2026-11-26: rasten ska anges i hela minuter.",
        ):
            assert message in response.text

    async def test_a_split_day_has_two_rows(self, robot: Robot, store: PayrollStore, employee: Employee) -> None:
        await robot.login()
        rows = week_rows()
        rows[1].update(end="12:00", **{"break": "0"})
        rows.append({"date": "2026-11-24", "start": "13:00", "end": "16:00", "break": "0", "activity": "APT"})
        assert "Schemat är sparat" in (await robot.save(employee.key, rows)).text
        tuesday = store.registered_rows(employee.key, date(2026, 11, 24), date(2026, 11, 24))
        assert [(r.start, r.end, r.activity) for r in tuesday] == [("07:00", "12:00", "ARB"), ("13:00", "16:00", "APT")]
        page = await robot.client.get(
            f"/payroll/employees/{employee.key}/schedule",
            params={"fom": WEEK[0].isoformat(), "tom": WEEK[1].isoformat()},
        )
        assert Form(page.text).field("Starttid 2026-11-24 rad 2")["value"] == "13:00"

    async def test_overlap_within_a_day(self, robot: Robot, employee: Employee) -> None:
        await robot.login()
        rows = [*week_rows(), {"date": "2026-11-25", "start": "15:00", "end": "17:00", "break": "0", "activity": "APT"}]
        response = await robot.save(employee.key, rows)
        assert "Överlappande rader: 2026-11-25 07:00–16:00 överlappar 2026-11-25 15:00–17:00." in response.text

    async def test_at_most_two_rows_a_day(self, robot: Robot, employee: Employee) -> None:
        await robot.login()
        data = {"csrf_token": await robot.csrf("/payroll/search"), "fom": "2026-11-23", "tom": "2026-11-23"}
        for i, (begin, finish) in enumerate((("06:00", "08:00"), ("09:00", "10:00"), ("11:00", "12:00"))):
            data.update(
                {
                    f"row-{i}-date": "2026-11-23",
                    f"row-{i}-start": begin,
                    f"row-{i}-end": finish,
                    f"row-{i}-activity": "ARB",
                }
            )
        response = await robot.client.post(f"/payroll/employees/{employee.key}/schedule", data=data)
        assert "2026-11-23: högst 2 rader per dag." in response.text

    async def test_employee_not_found(self, robot: Robot) -> None:
        await robot.login()
        for path in (
            "/payroll/employees/nosuchkey",
            "/payroll/employees/nosuchkey/schedule?fom=2026-11-23&tom=2026-11-29",
        ):
            response = await robot.client.get(path)
            assert response.status_code == 404
            assert "<h1>Anställd hittades inte</h1>" in response.text

    async def test_invalid_period(self, robot: Robot, employee: Employee) -> None:
        await robot.login()
        response = await robot.client.get(
            f"/payroll/employees/{employee.key}/schedule", params={"fom": "2026-11-01", "tom": "2026-12-31"}
        )
        assert response.status_code == 422
        assert "En period får vara högst 31 dagar." in response.text

    async def test_save_without_csrf_token_is_refused(
        self, robot: Robot, store: PayrollStore, employee: Employee
    ) -> None:
        await robot.login()
        data = {
            "fom": WEEK[0].isoformat(),
            "tom": WEEK[1].isoformat(),
            **{f"row-{i}-{k}": v for i, r in enumerate(week_rows()) for k, v in r.items()},
        }
        response = await robot.client.post(f"/payroll/employees/{employee.key}/schedule", data=data)
        assert response.status_code == 403
        assert store.saves == []

    async def test_nothing_registered(self, robot: Robot, employee: Employee) -> None:
        await robot.login()
        response = await robot.client.get(
            f"/payroll/employees/{employee.key}/registered",
            params={"fom": WEEK[0].isoformat(), "tom": WEEK[1].isoformat()},
        )
        assert "Inget schema är registrerat för perioden." in response.text


class TestFaults:
    """Alternative layout and page latency (maintenance and errors come from the sandbox middleware)."""

    LABELS = (
        "Starttid 2026-11-23 rad 1",
        "Sluttid 2026-11-23 rad 1",
        "Rast (minuter) 2026-11-23 rad 1",
        "Aktivitetskod 2026-11-23 rad 2",
    )

    async def test_alternative_layout_keeps_labels_and_roles(
        self, robot: Robot, store: PayrollStore, employee: Employee
    ) -> None:
        await robot.login()
        params = {"fom": WEEK[0].isoformat(), "tom": WEEK[1].isoformat()}
        path = f"/payroll/employees/{employee.key}/schedule"
        standard = Form((await robot.client.get(path, params=params)).text)
        store.faults = PayrollFaults(alternative_layout=True)
        alternative_html = (await robot.client.get(path, params=params)).text
        alternative = Form(alternative_html)
        for label in self.LABELS:
            assert standard.field(label)["name"] == alternative.field(label)["name"]
            assert standard.labels[label] != alternative.labels[label]  # ids changed
        assert "pl-row" not in alternative_html  # classes changed
        assert alternative_html.index("Aktivitetskod</th>") < alternative_html.index("Starttid</th>")  # order changed
        assert '<button type="submit"' in alternative_html and ">Spara</button>" in alternative_html
        login = Form((await robot.client.get("/payroll/login")).text)
        assert login.field("Användarnamn")["name"] == "username" and login.labels["Användarnamn"] != "username"
        # And a save through the alternative layout works the same.
        assert "Schemat är sparat" in (await robot.save(employee.key, week_rows())).text

    async def test_pages_take_realistic_deterministic_time(self, app: FastAPI, store: PayrollStore) -> None:
        store.latency_ms = (100.0, 300.0)
        twin = PayrollStore.generate(seed=7, count=1)
        sequence = [store.next_latency() for _ in range(5)]
        assert sequence == [twin.next_latency() for _ in range(5)]
        assert all(0.1 <= s <= 0.3 for s in sequence)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            began = time.perf_counter()
            await client.get("/payroll/login")
            assert time.perf_counter() - began >= 0.1


class TestSharedState:
    """Mounted in the sandbox: employees, clock, faults and the write log come from the shared state."""

    EMPLOYEES = [
        {"id": "E0001", "first_name": "Linnéa", "last_name": "Berg", "personnummer": "198507149803"},
        {"id": "E0002", "first_name": "Nils", "last_name": "Lind", "personnummer": "197203029815"},
    ]

    @pytest.fixture
    def state(self) -> SandboxState:
        state = SandboxState(11, SandboxOptions(), lambda seed, options: SandboxData(employees=list(self.EMPLOYEES)))
        setup(state)
        return state

    @pytest.fixture
    async def shared(self, state: SandboxState) -> AsyncIterator[Robot]:
        application = FastAPI()
        application.include_router(router)
        application.state.sandbox = state
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver", follow_redirects=True
        ) as client:
            robot = Robot(client, store_for(state))
            assert robot.store is not None
            robot.store.latency_ms = (0.0, 0.0)
            yield robot

    async def test_saves_reach_the_write_log_and_the_inspector(self, shared: Robot, state: SandboxState) -> None:
        await shared.login()
        response = await shared.search("E0001")
        key = re.search(r'href="/payroll/employees/(\w+)">Linnéa Berg</a>', response.text)
        assert key is not None
        assert "Schemat är sparat" in (await shared.save(key.group(1), week_rows())).text
        assert state.log.count("payroll", "schedule.saved", "E0001:2026-11-23:2026-11-29") == 1
        entry = state.log.entries("payroll")[0]
        assert entry.details["rows"][0] == {
            "date": "2026-11-23",
            "start": "07:00",
            "end": "16:00",
            "break_minutes": 45,
            "activity": "ARB",
        }
        assert "198507149803" not in str(entry.as_dict())
        inspected = state.inspect("payroll")
        assert inspected["write_counts"] == {"schedule.saved": {"E0001:2026-11-23:2026-11-29": 1}}
        assert len(inspected["registered"]["E0001"]) == 5

    async def test_faults_from_the_admin_settings(self, shared: Robot, state: SandboxState) -> None:
        state.set_faults("payroll", FaultSettings(alt_layout=True, session_expiry_after=2))
        login = await shared.client.get("/payroll/login")
        assert Form(login.text).labels["Användarnamn"] != "username"
        await shared.login()
        await shared.client.get("/payroll/search")
        response = await shared.client.get("/payroll/search")
        assert "Din session har gått ut. Logga in igen." in response.text

    async def test_reset_forgets_registrations_and_sessions(self, shared: Robot, state: SandboxState) -> None:
        await shared.login()
        state.reset()
        response = await shared.client.get("/payroll/search")
        assert "Din session har gått ut" in response.text
        assert store_for(state) is not shared.store


SMALL = {
    "employees": 12,
    "applications": 5,
    "substitutes": 5,
    "open_shifts": 3,
    "homecare_visits": 10,
    "homecare_staff": 3,
}


async def test_in_the_sandbox_over_real_http() -> None:
    """In create_app: the scheduling system's employees and codes, admin faults, and the write log."""
    with running_sandbox(seed=4, **SMALL) as base:
        async with httpx.AsyncClient(base_url=base, follow_redirects=True, timeout=30) as client:
            first = (await client.get("/scheduling/employees")).json()["items"][0]
            robot = Robot(client)
            assert "Sök anställd" in (await robot.login()).text
            found = await robot.search(first["id"])
            key = re.search(r'href="/payroll/employees/(\w+)"', found.text)
            assert key is not None
            rows = [
                {"date": "2026-12-01", "start": "07:00", "end": "12:00", "break": "0", "activity": "ARB"},
                {"date": "2026-12-01", "start": "13:00", "end": "16:00", "break": "0", "activity": "APT"},
            ]
            saved = await robot.save(key.group(1), rows, (date(2026, 12, 1), date(2026, 12, 31)))
            assert "Schemat är sparat" in saved.text
            inspected = (await client.get("/admin/state/payroll")).json()
            assert inspected["write_counts"] == {"schedule.saved": {f"{first['id']}:2026-12-01:2026-12-31": 1}}
            assert len(inspected["registered"][first["id"]]) == 2

            await client.post("/admin/faults/payroll", json={"alt_layout": True})
            login = Form((await client.get("/payroll/login")).text)
            assert login.field("Användarnamn")["name"] == "username" and login.labels["Användarnamn"] != "username"
            await client.post("/admin/faults/payroll", json={"maintenance": True})
            maintenance = await client.get("/payroll/search")
            assert maintenance.status_code == 503 and "underhåll" in maintenance.text


async def test_admin_routes_lock_a_period_and_approve_a_new_schedule_version() -> None:
    """POST /admin/payroll/locks and POST /admin/scheduling/employees/{id}/versions, over real HTTP."""
    with running_sandbox(seed=4, **SMALL) as base:
        async with httpx.AsyncClient(base_url=base, follow_redirects=True, timeout=30) as client:
            locked = await client.post("/admin/payroll/locks", json={"from": "2026-12-01", "to": "2026-12-31"})
            assert locked.status_code == 201
            assert locked.json()["locked_ranges"] == [["2026-12-01", "2026-12-31"]]
            bad = await client.post("/admin/payroll/locks", json={"from": "2026-12-31", "to": "2026-12-01"})
            assert bad.status_code == 422
            assert (await client.get("/admin/state/payroll")).json()["locked_ranges"] == [["2026-12-01", "2026-12-31"]]
            first = (await client.get("/scheduling/employees")).json()["items"][0]
            robot = Robot(client)
            await robot.login()
            found = await robot.search(first["id"])
            key = re.search(r'href="/payroll/employees/(\w+)"', found.text)
            assert key is not None
            rows = [{"date": "2026-12-01", "start": "07:00", "end": "12:00", "break": "0", "activity": "ARB"}]
            refused = await robot.save(key.group(1), rows, (date(2026, 12, 1), date(2026, 12, 31)))
            assert refused.status_code == 422 and "Perioden är låst" in refused.text

            summaries = (await client.get("/scheduling/schedules")).json()["items"]
            current = next(s for s in summaries if s["row_count"] > 0)
            employee, period = current["employee_id"], current["period"]
            made = await client.post(
                f"/admin/scheduling/employees/{employee}/versions",
                json={"period": period, "first_row": {"end": "17:45"}},
            )
            assert made.status_code == 201
            new = made.json()
            assert new["version"] == current["version"] + 1 and new["rows"][0]["end"] == "17:45"
            assert new["schedule_id"] == f"SCH-{employee}-{period}-v{new['version']}"
            assert new["content_hash"] != current["content_hash"]
            old = (await client.get(f"/scheduling/schedules/{current['schedule_id']}")).json()
            assert old["status"] == "superseded"
            shown = (await client.get(f"/scheduling/employees/{employee}/schedule", params={"period": period})).json()
            assert shown["schedule_id"] == new["schedule_id"]

            replaced = await client.post(
                f"/admin/scheduling/employees/{employee}/versions", json={"period": period, "rows": new["rows"][1:]}
            )
            assert replaced.status_code == 201 and len(replaced.json()["rows"]) == len(new["rows"]) - 1
            both = await client.post(
                f"/admin/scheduling/employees/{employee}/versions", json={"rows": [], "first_row": {"end": "17:00"}}
            )
            assert both.status_code == 422
            missing = await client.post("/admin/scheduling/employees/E99999/versions", json={"first_row": {}})
            assert missing.status_code == 404 and missing.json()["error"] == "no_schedule"


# -- a real browser ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(app: FastAPI) -> Iterator[str]:
    """The app under real uvicorn on a free port."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.browser
def test_browser_registers_a_week_and_reads_it_back(served: str, store: PayrollStore, employee: Employee) -> None:
    """Log in, find the employee, register a week and read it back: labels and roles only."""
    from playwright.sync_api import expect, sync_playwright

    store.latency_ms = (100.0, 300.0)  # realistic page times, as HaRry meets them
    store.faults = PayrollFaults(alternative_layout=True)  # ids and classes must not matter
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_context(locale="sv-SE").new_page()
            page.goto(f"{served}/payroll/search")
            expect(page.get_by_role("heading", name="Logga in")).to_be_visible()
            page.get_by_label("Användarnamn").fill("robot.harry")
            page.get_by_label("Lösenord").fill("sandlada-harry")
            page.get_by_role("button", name="Logga in").click()

            page.get_by_label("Anställningsnummer eller namn").fill(employee.number)
            page.get_by_role("button", name="Sök").click()
            page.get_by_role("link", name=employee.name).click()
            expect(page.get_by_role("heading", name=employee.name)).to_be_visible()
            page.get_by_label("Från och med").fill(WEEK[0].isoformat())
            page.get_by_label("Till och med").fill(WEEK[1].isoformat())
            page.get_by_role("button", name="Registrera schema").click()

            for row in week_rows():
                if not row["start"]:
                    continue
                page.get_by_label(f"Starttid {row['date']} rad 1").fill(row["start"])
                page.get_by_label(f"Sluttid {row['date']} rad 1").fill(row["end"])
                page.get_by_label(f"Rast (minuter) {row['date']} rad 1").fill(row["break"])
                page.get_by_label(f"Aktivitetskod {row['date']} rad 1").select_option(row["activity"])
            page.get_by_role("button", name="Spara").click()
            expect(page.get_by_role("heading", name="Schemat är sparat")).to_be_visible()
            expect(page.get_by_role("status")).to_contain_text("är sparad")

            page.get_by_role("link", name="Visa registrerat schema").click()
            table = page.get_by_role("table", name=re.compile("Registrerat schema"))
            headers = table.get_by_role("columnheader").all_inner_texts()
            shown = []
            for row in table.get_by_role("row").all()[1:]:
                cells = dict(zip(headers, row.get_by_role("cell").all_inner_texts(), strict=True))
                shown.append(
                    (
                        cells["Datum"],
                        cells["Starttid"],
                        cells["Sluttid"],
                        cells["Rast (minuter)"],
                        cells["Aktivitetskod"],
                    )
                )
            expected = [(r["date"], r["start"], r["end"], r["break"], r["activity"]) for r in week_rows() if r["start"]]
            assert shown == expected
        finally:
            browser.close()
    assert store.save_count(employee.number, *WEEK) == 1
