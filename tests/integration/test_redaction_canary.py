"""A canary personnummer sent through failing robots must surface nowhere it does not belong.

The canary is Skatteverket's test personnummer. A robot puts it in exception messages,
log messages and log fields; after the run, the captured logs and the error columns
(work_items.error_message, runs.error, review_items.title/summary/callback_error) and the
audit events' details must not contain it in any written form.

Where personal data legitimately lives, it is not asserted on: review material is there
for the case worker, and the subject column of audit events is the access log.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from aiosmtpd.controller import Controller
from sqlalchemy import select

from core.cli.web import uvicorn_options
from core.errors import ApplicationError, BusinessError, ConnectorError
from core.logging import PERSONNUMMER_MASK, SECRET_MASK, configure_logging
from core.problems import PROBLEM_SUMMARIES
from core.review import ReviewQueue
from core.robot import Done, NeedsReview, NewItem, Robot
from core.storage.db import Database
from core.storage.models import AuditEvent, ReviewItem, Run, RunStatus, WorkItem
from core.storage.web_models import Alert
from core.testing import FakeClock, run_robot
from core.testing.web import login, make_web_env, web_client
from core.web import alerts
from core.web.settings import AlertSettings

CANARY = "191212121212"
# Every written form of the canary; none may appear anywhere checked.
CANARY_FORMS = (
    "19121212%201212",
    "121212%E2%80%931212",
    "121212%2B1212",
    "191212121212",
    "19121212-1212",
    "121212-1212",
    "121212+1212",
    "1212121212",
    "19121212 1212",
    "121212 1212",
    "121212\u20131212",
)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Logging configured as in production (JSON lines) into a StringIO; restored afterwards."""
    root = logging.getLogger()
    level = root.level
    noisy = {
        name: logging.getLogger(name).level
        for name in ("httpx", "httpcore", "sqlalchemy.engine", "apscheduler.executors", "alembic")
    }
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    try:
        yield stream
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        for h in list(root.handlers):
            if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter):
                root.removeHandler(h)
        root.setLevel(level)
        for name, lvl in noisy.items():
            logging.getLogger(name).setLevel(lvl)


class CanaryRobot(Robot):
    """Finds one case about the canary person; process() logs the canary and raises ``error``."""

    name = "canary"
    display_name = "Kanarie"
    error: type[BaseException] = BusinessError

    def collect(self, ctx: Any) -> list[NewItem]:
        return [NewItem(reference="case-1", payload={"n": 1}, subject=CANARY)]

    async def process(self, ctx: Any, item: Any) -> Done | NeedsReview:
        ctx.log.info(
            f"looking up {CANARY}",
            person=CANARY,
            pnr_short="121212-1212",
            as_int=int(CANARY),
            nested={"who": "19121212-1212", "list": ["121212+1212"]},
        )
        logging.getLogger("vendor.sdk").warning("vendor lookup of %s returned nothing", "19121212-1212")
        raise self.error(f"Personen {CANARY} (även 121212-1212) saknar inkomstuppgift")


def robot_raising(error: type[BaseException]) -> type[CanaryRobot]:
    return type(f"Canary{error.__name__}", (CanaryRobot,), {"error": error})


class CollectFailsRobot(CanaryRobot):
    """collect() itself fails with the canary in its message: the run fails."""

    def collect(self, ctx: Any) -> list[NewItem]:
        ctx.log.info("collecting", person=CANARY)
        raise ValueError(f"register returned garbage for {CANARY}")


class DecisionFailsRobot(CanaryRobot):
    """Prepares a decision about the canary person; carrying it out fails with the canary."""

    async def process(self, ctx: Any, item: Any) -> Done | NeedsReview:
        # Review material and subject may hold personal data: they are for the case worker.
        return NeedsReview(
            queue="canary.review",
            title="Ärende case-1",
            summary="Förslag: bifall",
            material={"pnr": CANARY},
            subject=CANARY,
        )

    async def on_decision(self, ctx: Any, review: Any) -> None:
        ctx.log.warning("carrying out", person=review.material["pnr"])
        raise ConnectionError(f"payroll refused the change for {review.material['pnr']}")


def leaks(text: str | None) -> list[str]:
    return [form for form in CANARY_FORMS if text and form in text]


def assert_no_canary_stored(db: Database) -> None:
    with db.session() as s:
        for item in s.scalars(select(WorkItem)):
            assert not leaks(item.error_message), f"work_items.error_message: {item.error_message}"
            assert not leaks(json.dumps(item.result)), f"work_items.result: {item.result}"
        for run in s.scalars(select(Run)):
            assert not leaks(run.error), f"runs.error: {run.error}"
        for review in s.scalars(select(ReviewItem)):
            assert not leaks(review.title), f"review_items.title: {review.title}"
            assert not leaks(review.summary), f"review_items.summary: {review.summary}"
            assert not leaks(review.callback_error), f"review_items.callback_error: {review.callback_error}"
            assert not leaks(review.decision_comment), f"review_items.decision_comment: {review.decision_comment}"
        for ev in s.scalars(select(AuditEvent)):
            # ev.subject is the access log and may hold the personnummer; the rest may not.
            for field in (ev.actor, ev.action, ev.purpose, json.dumps(ev.details, ensure_ascii=False)):
                assert not leaks(field), f"audit event {ev.seq} ({ev.action}): {field}"


def assert_no_canary_logged(stream: io.StringIO) -> str:
    out = stream.getvalue()
    assert out.strip(), "nothing was logged: the logging capture is not working"
    assert not leaks(out), f"the canary leaked into the logs: {leaks(out)}"
    for line in out.splitlines():
        json.loads(line)  # every line is a JSON object
    return out


class TestCanary:
    """The canary goes in through a failing robot and comes out masked everywhere."""

    @pytest.mark.parametrize(
        "error", [BusinessError, ApplicationError, ConnectorError, ValueError, KeyError, RuntimeError]
    )
    def test_failing_process(
        self, db: Database, captured_logs: io.StringIO, clock: FakeClock, error: type[BaseException]
    ) -> None:
        result = run_robot(robot_raising(error), db=db, clock=clock)
        counts = result.summary.counts
        if error is BusinessError:
            assert counts["failed_business"] == 1
        else:
            assert counts["failed_application"] == 1  # retried, then failed for good
        out = assert_no_canary_logged(captured_logs)
        assert PERSONNUMMER_MASK in out  # the robot's lines were logged, masked
        assert "vendor lookup of" in out  # the standard-library logger went through the same chain
        assert_no_canary_stored(db)
        with db.session() as s:
            (item,) = s.scalars(select(WorkItem))
            assert item.error_message and PERSONNUMMER_MASK in item.error_message
            assert item.subject == CANARY  # the subject column keeps it, for the access log
            (review,) = s.scalars(select(ReviewItem))
            # The message (a business error's for the case worker, a technical one's for IT) is kept masked.
            assert PERSONNUMMER_MASK in review.material["error"]
            assert review.summary == (
                review.material["error"] if error is BusinessError else PROBLEM_SUMMARIES["application"]
            )

    def test_unexpected_error_traceback_is_logged_masked(
        self, db: Database, captured_logs: io.StringIO, clock: FakeClock
    ) -> None:
        run_robot(robot_raising(ValueError), db=db, clock=clock)
        out = assert_no_canary_logged(captured_logs)
        tracebacks = [json.loads(line).get("exception", "") for line in out.splitlines()]
        assert any("Traceback" in tb and "ValueError" in tb for tb in tracebacks)

    def test_failing_collect(self, db: Database, captured_logs: io.StringIO, clock: FakeClock) -> None:
        result = run_robot(CollectFailsRobot, db=db, clock=clock)
        assert result.summary.status.value == "failed"
        assert result.summary.error and not leaks(result.summary.error)
        assert_no_canary_logged(captured_logs)
        assert_no_canary_stored(db)
        with db.session() as s:
            (run,) = s.scalars(select(Run))
            assert run.error and PERSONNUMMER_MASK in run.error

    def test_failing_decision(self, db: Database, captured_logs: io.StringIO, clock: FakeClock) -> None:
        first = run_robot(DecisionFailsRobot, db=db, clock=clock)
        assert first.summary.counts["needs_review"] == 1
        with db.session() as s:
            (review,) = s.scalars(select(ReviewItem))
        ReviewQueue(db, clock).decide(review.id, "approve", actor="user:anna")
        run_robot(DecisionFailsRobot, db=db, clock=clock)  # carries out the decision, which fails
        assert_no_canary_logged(captured_logs)
        assert_no_canary_stored(db)
        with db.session() as s:
            (review,) = s.scalars(select(ReviewItem))
            assert review.callback_error and PERSONNUMMER_MASK in review.callback_error
            assert review.material == {"pnr": CANARY}  # the case worker's material is untouched


# -- the served app: uvicorn's own logs, real HTTP, alert mail, the dashboard --------------

SECRET = "kanarie-hemlis-4711"  # the canary secret, published on purpose
BASIC = base64.b64encode(f"robot:{SECRET}".encode()).decode()
SECRET_FORMS = (SECRET, BASIC)


def secret_leaks(text: str | None) -> list[str]:
    return leaks(text) + [form for form in SECRET_FORMS if text and form in text]


class SecretCollectRobot(CanaryRobot):
    """collect() fails quoting the canary, a password and an Authorization header."""

    def collect(self, ctx: Any) -> list[NewItem]:
        logging.getLogger("vendor.sdk").warning("login with Authorization: Basic %s", BASIC)
        raise ConnectionError(
            f"register refused 19121212 1212 (121212\u20131212): password={SECRET}; Authorization: Basic {BASIC}"
        )


class SecretProcessRobot(CanaryRobot):
    """process() fails quoting the canary and the secret: the item's error column."""

    error = RuntimeError

    async def process(self, ctx: Any, item: Any) -> Done | NeedsReview:
        raise RuntimeError(f"lookup of {CANARY} failed: token: {SECRET}")


@pytest.fixture
def served_logs() -> Iterator[io.StringIO]:
    """Production logging (JSON lines, INFO) into a StringIO, as `kollega serve` configures it."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    try:
        yield stream
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        for h in list(root.handlers):
            if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter):
                root.removeHandler(h)
        root.setLevel(level)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Inbox:
    def __init__(self) -> None:
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(bytes(envelope.content))
        return "250 Message accepted"


def _serve(app: Any) -> tuple[Any, threading.Thread, str]:
    """uvicorn in a thread, configured exactly as `kollega serve` configures it."""
    port = _free_port()
    config = uvicorn.Config(
        app, **uvicorn_options(host="127.0.0.1", port=port, forwarded_allow_ips="127.0.0.1", level="INFO")
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    return server, thread, f"http://127.0.0.1:{port}"


class TestServedCanary:
    """The canary through the served app and a failing robot: masked in every output."""

    async def test_nowhere_in_logs_error_columns_or_mail(
        self,
        db: Database,
        tmp_path: Path,
        clock: FakeClock,
        served_logs: io.StringIO,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        env = make_web_env(db, tmp_path, clock=clock)

        async def boom(pnr: str) -> None:
            raise ValueError(f"no case for {pnr}; password={SECRET}; Authorization: Basic {BASIC}")

        env.app.add_api_route("/canary/{pnr}", boom)
        server, thread, base = _serve(env.app)
        try:
            async with httpx.AsyncClient(base_url=base) as client:
                await client.get(f"/login?pnr=19121212-1212&token={SECRET}")
                await client.get("/ops/items/191212121212", headers={"Authorization": f"Basic {BASIC}"})
                await client.get(f"/ops/runs?q=121212%2B1212&password={SECRET}")
                await client.get("/login?a=19121212%201212&b=121212%E2%80%931212&c=121212+1212")
                await client.post("/login", data={"username": "19121212-1212", "password": SECRET})
                try:  # last: a crashed request may take its connection with it
                    crashed = await client.get("/canary/19121212 1212", headers={"Authorization": f"Bearer {SECRET}"})
                    assert crashed.status_code == 500
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    pass  # the server may drop the connection of a crashed request instead
        finally:
            server.should_exit = True
            thread.join(timeout=30)

        # A failing robot: the run's error (collect) and an item's error (process).
        failed = await asyncio.to_thread(run_robot, SecretCollectRobot, db=db, clock=clock)
        assert failed.summary.status.value == "failed"
        await asyncio.to_thread(run_robot, SecretProcessRobot, db=db, clock=clock)

        # Alerts: detected, shown, mailed.
        inbox = _Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
        controller.start()
        try:
            alerts.detect(db, AlertSettings(), clock.now())
            smtp = alerts.mail_settings(
                {"mail": {"host": "127.0.0.1", "port": controller.port, "security": "none", "sender": "k@test.example"}}
            )
            assert smtp is not None
            assert await alerts.mail_new(db, smtp, clock.now(), "https://kollega.test") >= 1
        finally:
            controller.stop()
        mail = b"\n".join(inbox.raw).decode("utf-8", "replace")
        assert "misslyckades" in mail or "=?utf-8?" in mail
        assert not secret_leaks(mail), secret_leaks(mail)

        # The dashboard: the failed run's page and the API show the stored error, redacted.
        async with web_client(env.app) as client:
            await login(client, "sara")
            run_page = await client.get(f"/ops/runs/{failed.summary.run_id}")
            assert run_page.status_code == 200
            api_runs = await client.get(f"/api/v1/runs/{failed.summary.run_id}")
            assert api_runs.status_code == 200
            ops = await client.get("/ops")
        for page in (run_page.text, api_runs.text, ops.text):
            assert not secret_leaks(page), secret_leaks(page)
        assert PERSONNUMMER_MASK in html.unescape(run_page.text)

        # Every output the process wrote: the logs (structlog, uvicorn's access lines and
        # tracebacks) and anything printed to stdout/stderr past them (a handler of uvicorn's own).
        out, err = capfd.readouterr()
        captured = served_logs.getvalue() + out + err
        assert '"logger": "uvicorn.access"' in captured, "uvicorn's access lines were not captured"
        assert "Exception in ASGI application" in captured and "Traceback" in captured
        assert "run failed" in captured
        assert not secret_leaks(captured), [line for line in captured.splitlines() if secret_leaks(line)][:5]
        assert PERSONNUMMER_MASK in captured and SECRET_MASK in captured

        # The database's error columns.
        assert_no_canary_stored(db)
        with db.session() as s:
            for item in s.scalars(select(WorkItem)):
                assert not secret_leaks(item.error_message), item.error_message
            for run in s.scalars(select(Run)):
                assert not secret_leaks(run.error), run.error
            for alert in s.scalars(select(Alert)):
                assert not secret_leaks(alert.message), alert.message
                assert not secret_leaks(alert.mail_error), alert.mail_error
            for ev in s.scalars(select(AuditEvent)):
                assert not secret_leaks(json.dumps(ev.details, ensure_ascii=False)), ev.details


class TestDashboardMasksOlderRows:
    """Rows stored before a redaction rule existed are masked when shown (same function)."""

    async def test_run_item_and_alert(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        env = make_web_env(db, tmp_path, clock=clock)
        await asyncio.to_thread(run_robot, robot_raising(RuntimeError), db=db, clock=clock)
        old = f"lookup of 19121212 1212 failed; Authorization: Basic {BASIC}"
        with db.session() as s:  # as an older version stored them
            (run,) = s.scalars(select(Run))
            (item,) = s.scalars(select(WorkItem))
            run.status, run.error = RunStatus.failed, old
            item.error_message = old
            run_id, item_id = run.id, item.id
        alerts.detect(db, AlertSettings(), clock.now())
        with db.session() as s:
            for alert in s.scalars(select(Alert)):
                alert.message = old
        async with web_client(env.app) as client:
            await login(client, "sara")
            pages = [
                await client.get(f"/ops/runs/{run_id}"),
                await client.get(f"/ops/items/{item_id}"),
                await client.get("/ops"),
                await client.get("/api/v1/runs"),
                await client.get(f"/api/v1/runs/{run_id}"),
                await client.get(f"/api/v1/items/{item_id}"),
                await client.get("/api/v1/ops/alerts"),
            ]
        for page in pages:
            assert page.status_code == 200, page.url
            assert not secret_leaks(page.text), (page.url, secret_leaks(page.text))
        assert "lookup of" in html.unescape(pages[0].text) and "lookup of" in html.unescape(pages[1].text)
        assert "lookup of" in pages[2].text
