"""The personnel and payroll system ("PersonalLön"), played as a server-rendered HTML application.

Like the systems municipalities drive with RPA it has no JSON API: a robot logs in through a
form (CSRF token, server-side session that expires), searches for an employee, registers a
schedule for a period (two rows per day, for split shifts), reads the result back, and meets
Swedish error messages on the page. Pages take 100–300 ms (a deterministic sequence per seed).
Routes, all under ``/payroll``:

    GET  /login                         login form (creates an anonymous session for the CSRF token)
    POST /login                         username, password, csrf_token → 303 to /search (or ``next``)
    POST /logout                        ends the session
    GET  /search, POST /search          "Sök anställd": employee number, name or personnummer (POSTed)
    GET  /employees/{key}               employee page with a period form (fom, tom)
    GET  /employees/{key}/schedule      registration form for ?fom=&tom=, prefilled with what is registered
    POST /employees/{key}/schedule      save (validated) → 303 to the confirmation page
    GET  /employees/{key}/saved/{ref}   confirmation
    GET  /employees/{key}/registered    what is registered for ?fom=&tom= (check-before-write, read-back)

``key`` is an internal id: a personnummer never appears in a URL. In the sandbox
(``app.state.sandbox``) employees are the scheduling system's, every save is written to the
write log (action ``schedule.saved``, key ``<employee id>:<from>:<to>``), and the fault
middleware brings maintenance, latency and errors; this module acts on ``session_expiry_after``
and ``alt_layout`` itself. Mounted alone, a :class:`PayrollStore` on ``app.state.payroll``
(generated from a seed) holds everything, with its own :attr:`PayrollStore.faults`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import itertools
import random
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from sandbox.geography import RONNEBY
from sandbox.people import PersonFactory
from sandbox.scheduling import ACTIVITY_CODES as SCHEDULING_CODES

SYSTEM = "payroll"
SESSION_COOKIE = "PLSESSION"
DEFAULT_SEED = 1
MAX_PERIOD_DAYS = 31
ROWS_PER_DAY = 2  # the form has two rows per day: a split shift (07–12, 13–16) needs both

#: Activity codes the payroll system accepts: exactly those the scheduling system uses.
ACTIVITY_CODES: dict[str, str] = dict(SCHEDULING_CODES)
#: Codes the form still offers (a stale list, as in real systems) but the server refuses.
RETIRED_CODES: dict[str, str] = {"KOMP": "Kompledighet (utgått)"}
#: Demo accounts: username → password. Sandbox-only values, never real secrets.
DEFAULT_USERS: dict[str, str] = {"robot.harry": "sandlada-harry", "lonehandlaggare": "sandlada-lon"}

WEEKDAYS = ("mån", "tis", "ons", "tors", "fre", "lör", "sön")
LOGIN_REASONS = {
    "expired": "Din session har gått ut. Logga in igen.",
    "required": "Logga in för att fortsätta.",
    "loggedout": "Du är utloggad.",
}
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@dataclass(frozen=True)
class Employee:
    """A person employed by the municipality, as the payroll system knows them."""

    key: str  # the internal id used in URLs
    number: str  # anställningsnummer, what people search for
    name: str
    personnummer: str
    unit: str = ""


@dataclass(frozen=True)
class ScheduleRow:
    """One registered day: times as ``HH:MM``; an end before the start ends the next day."""

    day: date
    start: str
    end: str
    break_minutes: int
    activity: str

    def interval(self) -> tuple[datetime, datetime]:
        """Start and end as datetimes (the end on the next day for a night shift)."""
        begin = datetime.combine(self.day, datetime.strptime(self.start, "%H:%M").time())
        finish = datetime.combine(self.day, datetime.strptime(self.end, "%H:%M").time())
        return begin, finish if finish > begin else finish + timedelta(days=1)

    def label(self) -> str:
        """The row as people write it, for error messages."""
        return f"{self.day.isoformat()} {self.start}–{self.end}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "date": self.day.isoformat(),
            "start": self.start,
            "end": self.end,
            "break_minutes": self.break_minutes,
            "activity": self.activity,
        }


@dataclass(frozen=True)
class SaveRecord:
    """One save of a period, as written to the write log for tests to inspect."""

    reference: str
    employee_key: str
    employee_number: str
    period_start: date
    period_end: date
    rows: tuple[ScheduleRow, ...]
    username: str
    saved_at: datetime

    @property
    def log_key(self) -> str:
        """The write-log key: employee number and period, ``100001:2026-11-23:2026-11-29``."""
        return f"{self.employee_number}:{self.period_start.isoformat()}:{self.period_end.isoformat()}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (no personnummer)."""
        return {
            "reference": self.reference,
            "employee_number": self.employee_number,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "rows": [r.as_dict() for r in self.rows],
            "username": self.username,
            "saved_at": self.saved_at.isoformat(timespec="seconds"),
        }


@dataclass
class Session:
    """A server-side session; ``username`` is None until login."""

    sid: str
    csrf: str
    created: datetime
    last_seen: datetime
    username: str | None = None
    requests: int = 0


@dataclass(frozen=True)
class PayrollFaults:
    """The faults an HTML application acts on itself (maintenance, latency and errors are the middleware's)."""

    session_expiry_after: int | None = None  # requests per session before it expires
    alternative_layout: bool = False


class Layout:
    """Element ids, classes and order for the standard or the alternative layout.

    The alternative layout changes ids, classes and the order of fields and columns but
    never a label, a heading or a role: robots that select by label and role keep working.
    """

    def __init__(self, alternative: bool) -> None:
        self.alternative = alternative

    def id(self, name: str) -> str:
        """The element id for a logical field name."""
        if not self.alternative:
            return name
        return "f" + hashlib.sha256(name.encode()).hexdigest()[:8]

    def cls(self, name: str) -> str:
        """The CSS class for a logical element name."""
        return "x" + hashlib.sha256(("c" + name).encode()).hexdigest()[:6] if self.alternative else f"pl-{name}"

    def order(self, items: Iterable[Any]) -> list[Any]:
        """Items in display order: rotated by one in the alternative layout."""
        seq = list(items)
        return seq[1:] + seq[:1] if self.alternative and len(seq) > 1 else seq


def _internal_key(seed: int, number: str) -> str:
    return hashlib.sha256(f"payroll|{seed}|{number}".encode()).hexdigest()[:10]


class PayrollStore:
    """Everything the payroll system holds: employees, registrations, the write log, sessions."""

    def __init__(
        self,
        seed: int,
        employees: Iterable[Employee],
        *,
        users: Mapping[str, str] | None = None,
        activity_codes: Mapping[str, str] | None = None,
        locked_until: date | None = None,
        latency_ms: tuple[float, float] = (100.0, 300.0),
        idle_timeout: timedelta = timedelta(minutes=15),
        clock: Callable[[], datetime] | None = None,
        today: date | None = None,
    ) -> None:
        self.seed = seed
        self.employees = {e.key: e for e in employees}
        self.users = dict(users or DEFAULT_USERS)
        self.activity_codes = dict(activity_codes or ACTIVITY_CODES)
        self.clock = clock or (lambda: datetime.now(UTC))
        today = today or self.clock().date()
        self.today = today
        # Default: pay for the month before last has been calculated, so it is locked.
        self.locked_until = locked_until or (today.replace(day=1) - timedelta(days=1)).replace(day=1) - timedelta(
            days=1
        )
        self.locked_ranges: list[tuple[date, date]] = []
        self.latency_ms = latency_ms
        self.idle_timeout = idle_timeout
        self.faults = PayrollFaults()
        self.registered: dict[str, list[ScheduleRow]] = {}  # by internal key, sorted
        self.saves: list[SaveRecord] = []
        self.sessions: dict[str, Session] = {}
        self.on_save: list[Callable[[SaveRecord], None]] = []
        self._latency_rng = random.Random(f"{seed}|latency")  # deterministic on purpose

    @classmethod
    def generate(cls, seed: int = DEFAULT_SEED, count: int = 60, **kwargs: Any) -> PayrollStore:
        """A store with ``count`` deterministic employees, for use without the shared sandbox state."""
        rng = random.Random(f"{seed}|payroll")
        people = PersonFactory(rng, kwargs.get("today") or datetime.now(UTC).date())
        employees = []
        for i in range(count):
            number, person = str(100001 + i), people.person(20, 66)
            employees.append(
                Employee(
                    _internal_key(seed, number),
                    number,
                    f"{person.first_name} {person.last_name}",
                    person.personnummer,
                    rng.choice(RONNEBY.payroll_units),
                )
            )
        return cls(seed, employees, **kwargs)

    @classmethod
    def from_sandbox(cls, state: Any) -> PayrollStore:
        """A store over the shared sandbox state: its employees (id → employee number), clock and write log."""
        employees = [
            Employee(
                _internal_key(state.seed, e["id"]),
                e["id"],
                f"{e['first_name']} {e['last_name']}",
                e["personnummer"],
                e.get("unit", ""),
            )
            for e in state.employees
        ]
        store = cls(state.seed, employees, clock=state.now, today=state.today)
        page_ms = getattr(state.options, "payroll_latency_ms", None)  # used if the sandbox options get such a field
        if page_ms:
            store.latency_ms = (float(page_ms[0]), float(page_ms[1]))
        store.on_save.append(lambda r: state.log.record(SYSTEM, "schedule.saved", r.log_key, r.as_dict()))
        return store

    # -- employees and periods -------------------------------------------------------------

    def search(self, query: str) -> list[Employee]:
        """Employees whose employee number starts with the query, else by personnummer, else by every name word."""
        q = query.strip().casefold()
        hits = [e for e in self.employees.values() if q and e.number.casefold().startswith(q)]
        if hits:
            return sorted(hits, key=lambda e: e.number)
        digits = re.sub(r"[\s+-]", "", q)
        if digits.isdigit() and len(digits) in (10, 12):
            return [e for e in self.employees.values() if re.sub(r"\D", "", e.personnummer).endswith(digits)]
        words = q.split()
        return sorted(
            (e for e in self.employees.values() if words and all(w in e.name.casefold() for w in words)),
            key=lambda e: (e.name, e.number),
        )

    def by_number(self, number: str) -> Employee | None:
        """The employee with this employee number."""
        return next((e for e in self.employees.values() if e.number == number), None)

    def lock(self, start: date, end: date) -> None:
        """Lock a period for registration (pay for it has been calculated)."""
        self.locked_ranges.append((start, end))

    def is_locked(self, day: date) -> bool:
        """Whether ``day`` falls in a locked period."""
        return day <= self.locked_until or any(a <= day <= b for a, b in self.locked_ranges)

    def registered_rows(self, key: str, start: date, end: date) -> list[ScheduleRow]:
        """What is registered for an employee between two dates, by day and start time."""
        return [r for r in self.registered.get(key, []) if start <= r.day <= end]

    def save_count(self, number: str, start: date, end: date) -> int:
        """How many times this employee's period has been saved."""
        return sum(
            1 for s in self.saves if s.employee_number == number and (s.period_start, s.period_end) == (start, end)
        )

    def inspect(self) -> dict[str, Any]:
        """What tests may check: registered rows per employee number, saves, locks, open sessions."""
        numbers = {e.key: e.number for e in self.employees.values()}
        return {
            "registered": {numbers[k]: [r.as_dict() for r in rows] for k, rows in self.registered.items() if rows},
            "saves": len(self.saves),
            "locked_until": self.locked_until.isoformat(),
            "locked_ranges": [[a.isoformat(), b.isoformat()] for a, b in self.locked_ranges],
            "sessions": sum(1 for s in self.sessions.values() if s.username),
        }

    # -- validation and saving -------------------------------------------------------------

    def validate(
        self, employee: Employee, start: date, end: date, raw: list[dict[str, str]]
    ) -> tuple[list[ScheduleRow], list[tuple[str, str]]]:
        """Parse submitted rows; returns rows and errors as (field name, Swedish message)."""
        errors: list[tuple[str, str]] = []
        locked = [d for d in _days(start, end) if self.is_locked(d)]
        if locked:
            return [], [
                (
                    "",
                    f"Perioden är låst: lönen till och med {locked[-1].isoformat()} är redan beräknad "
                    "och kan inte ändras.",
                )
            ]
        named: list[tuple[ScheduleRow, str]] = []
        for i, r in enumerate(raw):
            name = f"row-{i}"
            try:
                day = date.fromisoformat(r.get("date", ""))
            except ValueError:
                errors.append((f"{name}-date", f"Rad {i + 1}: ogiltigt datum."))
                continue
            values = {k: r.get(k, "").strip() for k in ("start", "end", "break", "activity")}
            if not any(values.values()):
                continue
            if not start <= day <= end:
                errors.append((f"{name}-date", f"{day}: datumet ligger utanför perioden."))
                continue
            problems = len(errors)
            for k, what in (("start", "starttid"), ("end", "sluttid")):
                if not values[k]:
                    errors.append((f"{name}-{k}", f"{day}: {what} saknas."))
                elif not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", values[k]):
                    errors.append((f"{name}-{k}", f'{day}: ogiltig {what} "{values[k]}" (ange tt:mm).'))
            if not values["break"].isdigit() and values["break"]:
                errors.append((f"{name}-break", f"{day}: rasten ska anges i hela minuter."))
            code = values["activity"]
            if not code:
                errors.append((f"{name}-activity", f"{day}: aktivitetskod saknas."))
            elif code not in self.activity_codes:
                errors.append((f"{name}-activity", f'{day}: okänd aktivitetskod "{code}".'))
            if len(errors) > problems:
                continue
            row = ScheduleRow(day, values["start"], values["end"], int(values["break"] or 0), code)
            begin, finish = row.interval()
            if values["start"] == values["end"]:
                errors.append((f"{name}-end", f"{day}: sluttiden är densamma som starttiden."))
            elif row.break_minutes >= (finish - begin).total_seconds() / 60:
                errors.append((f"{name}-break", f"{day}: rasten är lika lång som eller längre än passet."))
            elif sum(1 for other, _ in named if other.day == day) >= ROWS_PER_DAY:
                errors.append((f"{name}-start", f"{day}: högst {ROWS_PER_DAY} rader per dag."))
            else:
                named.append((row, name))
        # Registered rows on the days just outside the period take part: a night shift overlaps the next morning.
        around = [
            (r, "")
            for r in self.registered.get(employee.key, [])
            if r.day in (start - timedelta(days=1), end + timedelta(days=1))
        ]
        for (a, _), (b, name_b) in itertools.pairwise(sorted(named + around, key=lambda pair: pair[0].interval())):
            if b.interval()[0] < a.interval()[1]:
                errors.append(
                    (f"{name_b}-start" if name_b else "", f"Överlappande rader: {a.label()} överlappar {b.label()}.")
                )
        return [r for r, _ in named], errors

    def save(self, employee: Employee, start: date, end: date, rows: list[ScheduleRow], username: str) -> SaveRecord:
        """Replace the period's registration with ``rows`` and log the save."""
        kept = [r for r in self.registered.get(employee.key, []) if not start <= r.day <= end]
        self.registered[employee.key] = sorted(kept + rows, key=ScheduleRow.interval)
        record = SaveRecord(
            f"R-{len(self.saves) + 1:06d}",
            employee.key,
            employee.number,
            start,
            end,
            tuple(rows),
            username,
            self.clock(),
        )
        self.saves.append(record)
        for listener in self.on_save:
            listener(record)
        return record

    # -- sessions and faults ---------------------------------------------------------------

    def new_session(self, username: str | None = None) -> Session:
        """Create a session with a fresh id and CSRF token (pruning expired ones)."""
        now = self.clock()
        for sid in [s.sid for s in self.sessions.values() if now - s.last_seen > self.idle_timeout]:
            del self.sessions[sid]
        session = Session(secrets.token_urlsafe(24), secrets.token_urlsafe(24), now, now, username)
        self.sessions[session.sid] = session
        return session

    def next_latency(self) -> float:
        """The next page's time in seconds: a deterministic sequence per seed, in ``latency_ms``."""
        low, high = self.latency_ms
        return self._latency_rng.uniform(low, high) / 1000 if high > 0 else 0.0


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def store_for(state: Any) -> PayrollStore:
    """The payroll store kept in the shared sandbox state (created on first use after each reset)."""
    store: PayrollStore = state.store(SYSTEM, lambda: PayrollStore.from_sandbox(state))
    return store


def setup(state: Any) -> None:
    """Called once by ``create_app``: payroll's own state joins ``GET /admin/state/payroll``."""
    state.register_inspector(SYSTEM, lambda st: store_for(st).inspect())


def get_store(request: Request) -> PayrollStore:
    """The payroll store: in the shared sandbox state when there is one, else on the app, from a seed."""
    shared = getattr(request.app.state, "sandbox", None)
    if shared is not None:
        return store_for(shared)
    fallback: PayrollStore | None = getattr(request.app.state, "payroll", None)
    if fallback is None:
        fallback = request.app.state.payroll = PayrollStore.generate()
    return fallback


def current_faults(request: Request, store: PayrollStore) -> PayrollFaults:
    """Fault settings for this request.

    With the shared sandbox state its middleware applies maintenance, latency and errors to
    every system; only what an HTML application acts on itself is taken from it here.
    """
    shared = getattr(request.app.state, "sandbox", None)
    if shared is None:
        return store.faults
    settings = shared.faults_for(SYSTEM)
    return PayrollFaults(session_expiry_after=settings.session_expiry_after, alternative_layout=settings.alt_layout)


# -- the web application ---------------------------------------------------------------------

router = APIRouter(prefix="/payroll", include_in_schema=False)
P = ParamSpec("P")


# Control flow, not an error: it carries an ordinary answer (a login redirect, a page) out of a
# handler's helpers and never leaves the handler, so it stays outside the KollegaError tree.
class _Halt(Exception):
    """Stop handling the request and answer with ``response`` (login redirect, refusal, fault page)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _halts(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Let a handler's helpers end the request by raising :class:`_Halt`."""

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except _Halt as halt:
            return halt.response

    return wrapper


def _weekday(value: str) -> str:
    try:
        return WEEKDAYS[date.fromisoformat(value).weekday()]
    except ValueError:
        return ""


@dataclass
class Page:
    """What every handler needs: the store, the session (if logged in) and the layout."""

    request: Request
    store: PayrollStore
    faults: PayrollFaults
    session: Session | None = None

    @property
    def layout(self) -> Layout:
        """The layout for this request."""
        return Layout(self.faults.alternative_layout)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """Render a template from templates/payroll with the common context."""
        context.update(L=self.layout, session=self.session, weekday=_weekday)
        response = TEMPLATES.TemplateResponse(self.request, f"payroll/{template}", context, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        return response

    def halt(self, status: int, title: str, text: str) -> _Halt:
        """A page with only a heading and a message (errors, maintenance, refusals), to raise."""
        return _Halt(self.render("message.html", status, title=title, text=text))

    async def form(self) -> dict[str, str]:
        """The POSTed form; refused (403) when its CSRF token is missing or wrong."""
        form = {k: v for k, v in (await self.request.form()).items() if isinstance(v, str)}
        token = form.get("csrf_token", "")
        if self.session is None or not token or not hmac.compare_digest(token, self.session.csrf):
            raise self.halt(
                403, "Begäran nekades", "Säkerhetstoken saknas eller är ogiltig. Ladda om sidan och försök igen."
            )
        return form

    def employee(self, key: str) -> Employee:
        """The employee with internal id ``key``, or a 404 page."""
        employee = self.store.employees.get(key)
        if employee is None:
            raise self.halt(
                404,
                "Anställd hittades inte",
                "Den anställda finns inte i PersonalLön. Sök igen med anställningsnummer eller namn.",
            )
        return employee

    def period(self, employee: Employee, fom: str, tom: str) -> tuple[date, date]:
        """A valid period, or the employee page with a Swedish error."""
        try:
            start, end = date.fromisoformat(fom), date.fromisoformat(tom)
            problem = (
                "Periodens sista dag ligger före den första."
                if end < start
                else f"En period får vara högst {MAX_PERIOD_DAYS} dagar."
                if (end - start).days >= MAX_PERIOD_DAYS
                else ""
            )
        except ValueError:
            problem = "Ange perioden som två datum (ÅÅÅÅ-MM-DD)."
        if problem:
            raise _Halt(self.render("employee.html", 422, employee=employee, fom=fom, tom=tom, error=problem))
        return start, end


async def _begin(request: Request, *, login_required: bool = True) -> Page:
    """Apply latency and faults, then find the session (expired ones go to the login page)."""
    store = get_store(request)
    faults = current_faults(request, store)
    page = Page(request, store, faults)
    delay = store.next_latency()
    if delay:
        await asyncio.sleep(delay)
    sid = request.cookies.get(SESSION_COOKIE, "")
    session, now = store.sessions.get(sid), store.clock()
    if session is not None and session.username is not None:
        session.requests += 1
    limit = faults.session_expiry_after
    if session is not None and (
        now - session.last_seen > store.idle_timeout or (limit is not None and session.requests > limit)
    ):
        del store.sessions[sid]
        session = None
    if login_required and (session is None or session.username is None):
        # No cookie, or a session that never logged in: "required"; a session that is gone: "expired".
        target = f"/payroll/login?reason={'required' if session is not None or not sid else 'expired'}"
        if request.method == "GET":
            target += "&next=" + quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe=""
            )
        raise _Halt(RedirectResponse(target, status_code=303))
    if session is not None:
        session.last_seen = now
    page.session = session
    return page


def _safe_next(value: str) -> str:
    """Only redirect back into the payroll application (no open redirects)."""
    if (
        value.startswith("/payroll/")
        and "//" not in value
        and "\\" not in value
        and not value.startswith("/payroll/log")
    ):
        return value
    return "/payroll/search"


def _session_cookie(response: Response, sid: str) -> Response:
    response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="lax", path="/payroll")
    return response


@router.get("")
@router.get("/")
async def start(request: Request) -> Response:
    """The start page is the search page."""
    return RedirectResponse("/payroll/search", status_code=303)


@router.get("/login")
@_halts
async def login_form(request: Request, reason: str = "", next: str = "") -> Response:
    """The login form; an anonymous session carries its CSRF token."""
    page = await _begin(request, login_required=False)
    fresh = page.session is None
    page.session = page.session or page.store.new_session()
    response = page.render("login.html", notice=LOGIN_REASONS.get(reason, ""), next=next, error="", username="")
    return _session_cookie(response, page.session.sid) if fresh else response


@router.post("/login")
@_halts
async def login(request: Request) -> Response:
    """Check CSRF and credentials; a new session id is issued at login."""
    page = await _begin(request, login_required=False)
    form = await page.form()
    assert page.session is not None
    username, password = form.get("username", "").strip(), form.get("password", "")
    expected = page.store.users.get(username)
    if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
        return page.render(
            "login.html",
            notice="",
            next=form.get("next", ""),
            username=username,
            error="Fel användarnamn eller lösenord.",
        )
    page.store.sessions.pop(page.session.sid, None)
    session = page.store.new_session(username)
    return _session_cookie(RedirectResponse(_safe_next(form.get("next", "")), status_code=303), session.sid)


@router.post("/logout")
@_halts
async def logout(request: Request) -> Response:
    """End the session on the server."""
    page = await _begin(request)
    await page.form()
    assert page.session is not None
    page.store.sessions.pop(page.session.sid, None)
    response = RedirectResponse("/payroll/login?reason=loggedout", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/payroll")
    return response


@router.api_route("/search", methods=["GET", "POST"])
@_halts
async def search(request: Request) -> Response:
    """Search by employee number, name or personnummer; the query is POSTed, never put in a URL."""
    page = await _begin(request)
    if request.method == "GET":
        return page.render("search.html", query="", results=None, error="", total=0)
    query = (await page.form()).get("query", "").strip()
    if not query:
        return page.render(
            "search.html", 422, query="", results=None, total=0, error="Ange anställningsnummer eller namn."
        )
    hits = page.store.search(query)
    return page.render("search.html", query=query, results=hits[:50], total=len(hits), error="")


@router.get("/employees/{key}")
@_halts
async def employee_page(request: Request, key: str, fom: str = "", tom: str = "") -> Response:
    """The employee with a period form (open the registration form or what is registered)."""
    page = await _begin(request)
    employee = page.employee(key)
    today = page.store.clock().date()
    monday = today - timedelta(days=today.weekday())
    return page.render(
        "employee.html",
        employee=employee,
        fom=fom or monday.isoformat(),
        tom=tom or (monday + timedelta(days=6)).isoformat(),
        error="",
    )


def _nth(rows: list[ScheduleRow], n: int) -> ScheduleRow | None:
    return rows[n] if n < len(rows) else None


def _render_form(
    page: Page,
    employee: Employee,
    start: date,
    end: date,
    rows: list[dict[str, str]],
    errors: list[tuple[str, str]],
    status: int = 200,
) -> Response:
    codes = {
        **page.store.activity_codes,
        **{k: v for k, v in RETIRED_CODES.items() if k not in page.store.activity_codes},
    }
    return page.render(
        "schedule.html",
        status,
        employee=employee,
        fom=start.isoformat(),
        tom=end.isoformat(),
        rows=rows,
        codes=codes,
        errors=errors,
        error_fields={f for f, _ in errors if f},
        existing=bool(page.store.registered_rows(employee.key, start, end)),
        locked=any(page.store.is_locked(d) for d in _days(start, end)),
        columns=page.layout.order(["start", "end", "break", "activity"]),
        rows_per_day=ROWS_PER_DAY,
    )


@router.get("/employees/{key}/schedule")
@_halts
async def schedule_form(request: Request, key: str, fom: str = "", tom: str = "") -> Response:
    """The registration form: two rows per day, prefilled with what is registered."""
    page = await _begin(request)
    employee = page.employee(key)
    start, end = page.period(employee, fom, tom)
    by_day: dict[date, list[ScheduleRow]] = {}
    for r in page.store.registered_rows(employee.key, start, end):
        by_day.setdefault(r.day, []).append(r)
    blank = {"start": "", "end": "", "break": "", "activity": ""}
    rows = [
        {
            "date": d.isoformat(),
            **(
                {"start": x.start, "end": x.end, "break": str(x.break_minutes), "activity": x.activity}
                if (x := _nth(by_day.get(d, []), n))
                else blank
            ),
        }
        for d in _days(start, end)
        for n in range(ROWS_PER_DAY)
    ]
    return _render_form(page, employee, start, end, rows, [])


@router.post("/employees/{key}/schedule")
@_halts
async def save_schedule(request: Request, key: str) -> Response:
    """Validate and save the period; errors are shown on the form, success on a confirmation page."""
    page = await _begin(request)
    form = await page.form()
    employee = page.employee(key)
    start, end = page.period(employee, form.get("fom", ""), form.get("tom", ""))
    raw: list[dict[str, str]] = []
    while f"row-{len(raw)}-date" in form and len(raw) < ROWS_PER_DAY * MAX_PERIOD_DAYS:
        raw.append({k: form.get(f"row-{len(raw)}-{k}", "") for k in ("date", "start", "end", "break", "activity")})
    rows, errors = page.store.validate(employee, start, end, raw)
    if errors:
        return _render_form(page, employee, start, end, raw, errors, 422)
    assert page.session is not None and page.session.username is not None
    record = page.store.save(employee, start, end, rows, page.session.username)
    return RedirectResponse(f"/payroll/employees/{key}/saved/{record.reference}", status_code=303)


@router.get("/employees/{key}/saved/{reference}")
@_halts
async def confirmation(request: Request, key: str, reference: str) -> Response:
    """The receipt after a save."""
    page = await _begin(request)
    employee = page.employee(key)
    record = next((s for s in page.store.saves if s.reference == reference and s.employee_key == key), None)
    if record is None:
        raise page.halt(404, "Registreringen hittades inte", "Det finns ingen sådan registrering.")
    return page.render("saved.html", employee=employee, record=record)


@router.get("/employees/{key}/registered")
@_halts
async def registered(request: Request, key: str, fom: str = "", tom: str = "") -> Response:
    """What is registered for the period, for check-before-write and read-back."""
    page = await _begin(request)
    employee = page.employee(key)
    start, end = page.period(employee, fom, tom)
    rows = page.store.registered_rows(employee.key, start, end)
    minutes = sum(int((r.interval()[1] - r.interval()[0]).total_seconds() // 60) - r.break_minutes for r in rows)
    return page.render(
        "registered.html",
        employee=employee,
        fom=start.isoformat(),
        tom=end.isoformat(),
        rows=rows,
        codes=page.store.activity_codes,
        total=f"{minutes // 60}:{minutes % 60:02d}",
        columns=page.layout.order(["date", "start", "end", "break", "activity", "description"]),
    )


__all__ = [
    "ACTIVITY_CODES",
    "DEFAULT_USERS",
    "Employee",
    "PayrollFaults",
    "PayrollStore",
    "SaveRecord",
    "ScheduleRow",
    "get_store",
    "router",
    "setup",
    "store_for",
]
