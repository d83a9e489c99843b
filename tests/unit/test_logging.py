"""Logging: JSON lines, bound context, and redaction of personnummer and secrets everywhere.

Only test personnummer are used (Skatteverket's 19121212-1212 in its forms).

Decisions recorded here:
- Ordinary numbers stay readable: amounts, ISO dates, 8-digit numbers, and phone numbers
  written the usual Swedish way (070-123 45 67, +46 70 123 45 67, +46701234567).
- Any bare 10- or 12-digit number shaped like a personnummer is masked, even when it is
  really a phone number (0701234567) or an organisationsnummer: the redaction cannot tell
  them apart, and masking too much is the safe side.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from core.logging import (
    PERSONNUMMER_MASK,
    SECRET_MASK,
    configure_logging,
    get_logger,
    redact_text,
    redact_value,
)

# Skatteverket's test personnummer in every written form.
PNR_FORMS = ["19121212-1212", "191212121212", "121212-1212", "121212+1212", "1212121212", "19121212+1212"]


class TestRedactText:
    """redact_text masks personnummer and secrets in free text, and nothing else."""

    @pytest.mark.parametrize("pnr", PNR_FORMS)
    def test_personnummer_forms_are_masked(self, pnr: str) -> None:
        out = redact_text(f"Ärende för {pnr} saknar belopp")
        assert pnr not in out
        assert out == f"Ärende för {PERSONNUMMER_MASK} saknar belopp"

    @pytest.mark.parametrize("pnr", PNR_FORMS)
    def test_personnummer_inside_punctuation_and_json(self, pnr: str) -> None:
        for text in (f"({pnr})", f'{{"pnr": "{pnr}"}}', f"pnr={pnr};", f"/person/{pnr}/", f"{pnr}."):
            assert pnr not in redact_text(text), text

    def test_several_in_one_text(self) -> None:
        out = redact_text("191212121212 och 121212-1212 och 19121212+1212")
        assert out == f"{PERSONNUMMER_MASK} och {PERSONNUMMER_MASK} och {PERSONNUMMER_MASK}"

    @pytest.mark.parametrize(
        "text",
        [
            "2026-11-23",  # an ISO date
            "2026-11-23T01:00:00+01:00",  # an ISO timestamp
            "20261123",  # a compact date (8 digits)
            "12345678",  # any 8-digit number
            "Belopp 1234567.50 kr",  # an amount
            "Belopp 1 234 567 kr",  # an amount with thousands separators
            "kommunkod 1081",
            "070-123 45 67",  # phone, the usual Swedish way
            "+46 70 123 45 67",  # phone, international with spaces
            "+46701234567",  # phone, international compact (11 digits)
            "work item 123456",
            "12345678901234",  # a 14-digit number is not a personnummer
        ],
    )
    def test_ordinary_numbers_are_kept(self, text: str) -> None:
        assert redact_text(text) == text

    def test_bare_ten_digits_are_masked_even_if_a_phone_number(self) -> None:
        # Documented choice: indistinguishable from a 10-digit personnummer, so masked.
        assert redact_text("ring 0701234567") == f"ring {PERSONNUMMER_MASK}"

    @pytest.mark.parametrize(
        ("text", "secret"),
        [
            ("password=hunter2", "hunter2"),
            ("PASSWORD = hunter2", "hunter2"),
            ("login failed: password: hunter2", "hunter2"),
            ("token: abc123def", "abc123def"),
            ("https://api.example/v1?access_token=abc123&x=1", "abc123"),
            ("client_secret=s3cr3t", "s3cr3t"),
            ("api_key=XYZ987", "XYZ987"),
            ('{"password": "hunter2"}', "hunter2"),
            ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig-nature_x", "eyJhbGciOi.eyJzdWIi.sig-nature_x"),
            ("bearer abc.def", "abc.def"),
        ],
    )
    def test_secrets_are_masked(self, text: str, secret: str) -> None:
        out = redact_text(text)
        assert secret not in out
        assert SECRET_MASK in out

    @pytest.mark.parametrize(
        ("text", "secret"),
        [
            # Credentials inside a URL: database and HTTP errors quote URLs.
            pytest.param(
                "cannot connect to postgresql+psycopg://kollega:hemligt123@db.example/kollega",
                "hemligt123",
                id="database-url",
            ),
            pytest.param("GET https://robot:hemligt123@intranet.example/api failed", "hemligt123", id="http-url"),
            # ODBC-style connection strings (SQL Server behind many municipal systems).
            pytest.param("Driver={ODBC Driver 18};Server=db;Uid=kollega;Pwd=hemligt123;", "hemligt123", id="odbc-pwd"),
            pytest.param("passwd=hemligt123", "hemligt123", id="passwd"),
        ],
    )
    def test_credentials_in_urls_and_connection_strings_are_masked(self, text: str, secret: str) -> None:
        assert secret not in redact_text(text)

    def test_words_about_passwords_are_kept(self) -> None:
        text = "the password was refused by the system"
        assert redact_text(text) == text


class TestEveryWrittenForm:
    """Review finding L6: every personnummer/samordningsnummer form, Basic auth, key: value secrets."""

    @pytest.mark.parametrize(
        "pnr",
        [
            "19121212-1212",
            "191212121212",
            "121212-1212",
            "1212121212",
            "19121212 1212",  # with a space, as typed into forms
            "121212 1212",
            "121212+1212",  # 100 years or older
            "19121212+1212",
            "121212\u20131212",  # en dash, as a word processor writes it
            "19121212\u20131212",
            "121212\u22121212",  # minus sign
            "121212\u00a01212",  # non-breaking space
            "19121272-1212",  # samordningsnummer: day + 60
            "121272-1212",
            "121272 1212",
            "201212121212",  # born 2012
            "19121212%201212",  # percent-encoded, as an access log's URL has them
            "121212%2B1212",
            "121212%E2%80%931212",
        ],
    )
    def test_masked(self, pnr: str) -> None:
        for text in (f"Ärende för {pnr} saknar belopp", f"({pnr})", f"pnr={pnr};", f"/p/{pnr}/"):
            out = redact_text(text)
            assert pnr not in out, text
            assert PERSONNUMMER_MASK in out, text

    @pytest.mark.parametrize(
        "text",
        [
            "2026-11-23 12:30",  # a date and a time
            "den 23 november 2026 kl 1230",
            "Belopp 12 345 kr",
            "Belopp 123 456 kr",
            "Summa 123456,78 kr",
            "fakturanummer EB-202612-0001",  # not a real month
            "ordernummer 129912 1234",  # month 99: not a date
            "121232 1212",  # day 32: neither a person nor a samordningsnummer
            "1081 Ronneby, 372 80 Ronneby",  # kommunkod and postnummer
            "telefon 0457-618 000",
            "item 12345, run 678",
            "basic checks passed, Basic idea",  # the word, not a credential
        ],
    )
    def test_ordinary_text_is_kept(self, text: str) -> None:
        assert redact_text(text) == text

    @pytest.mark.parametrize(
        ("text", "secret"),
        [
            ("Authorization: Basic cm9ib3Q6aGVtbGlndDEyMw==", "cm9ib3Q6aGVtbGlndDEyMw=="),
            ("authorization=Basic cm9ib3Q6aGVtbGlndDEyMw==", "cm9ib3Q6aGVtbGlndDEyMw=="),
            ("headers: {'Authorization': 'Basic cm9ib3Q6aGVtbGlndDEyMw=='}", "cm9ib3Q6aGVtbGlndDEyMw=="),
            ("sent Basic cm9ib3Q6aGVtbGlndDEyMw== to the server", "cm9ib3Q6aGVtbGlndDEyMw=="),
            ("Authorization: Digest username-and-more", "username-and-more"),
            ("Proxy-Authorization: Bearer abc.def", "abc.def"),
            ("Authorization: Token 0123456789abcdef", "0123456789abcdef"),
            ("Cookie: kollega_session=abc123; theme=dark", "abc123"),
            ("db_password=hemligt123", "hemligt123"),
            ("X-Api-Key: k-4711-xyz", "k-4711-xyz"),
            ("apikey=k-4711-xyz", "k-4711-xyz"),
            ("secret: s3cr3t-value", "s3cr3t-value"),
            ("refresh_token=rt-abc", "rt-abc"),
            ("credentials: robot/hemligt", "robot/hemligt"),
            ("session_id=sess-123", "sess-123"),
            ("private_key: MIIEvQIBADANBg", "MIIEvQIBADANBg"),
        ],
    )
    def test_credentials_are_masked(self, text: str, secret: str) -> None:
        out = redact_text(text)
        assert secret not in out, out
        assert SECRET_MASK in out

    def test_database_error_values_are_withheld(self) -> None:
        text = (
            '(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "uq_t_name"\n'
            "DETAIL:  Key (name)=(Anna Andersson, Storgatan 1) already exists.\n"
            "[SQL: INSERT INTO t (name) VALUES (%(name)s)]\n"
            "[parameters: {'name': 'Anna Andersson, Storgatan 1'}]\n"
            "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
        )
        out = redact_text(text)
        assert "Anna" not in out and "Storgatan" not in out
        assert "uq_t_name" in out and "INSERT INTO t" in out  # what failed stays readable


class TestRedactValue:
    """redact_value walks fields: secret-named keys are masked whole, containers recursed."""

    def test_secret_named_keys(self) -> None:
        for key in ("password", "db_password", "token", "api_key", "Authorization", "cookie", "client_secret"):
            assert redact_value("x-123", key) == SECRET_MASK, key

    def test_nested_containers(self) -> None:
        value = {"user": {"password": "hunter2", "pnr": "191212121212"}, "list": ["121212-1212", 5], "n": 3}
        assert redact_value(value) == {
            "user": {"password": SECRET_MASK, "pnr": PERSONNUMMER_MASK},
            "list": [PERSONNUMMER_MASK, 5],
            "n": 3,
        }

    def test_personnummer_as_integer(self) -> None:
        assert redact_value(191212121212) == PERSONNUMMER_MASK
        assert redact_value(1250) == 1250
        assert redact_value(True) is True

    def test_exception_value(self) -> None:
        out = redact_value(ValueError("okänd person 191212121212"))
        assert out == f"ValueError: okänd person {PERSONNUMMER_MASK}"


# -- configure_logging ---------------------------------------------------------------


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Logging configured in JSON mode to a StringIO; the process's logging restored afterwards."""
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


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    raw = [line for line in stream.getvalue().splitlines() if line.strip()]
    return [json.loads(line) for line in raw]


class TestConfigureLogging:
    """configure_logging: JSON lines off a terminal, bound fields, redaction on every path."""

    def test_json_lines(self, log_stream: io.StringIO) -> None:
        get_logger("kollega.test").info("run started", dry_run=False, count=3)
        get_logger("kollega.test").warning("second line")
        lines = _lines(log_stream)
        assert len(lines) == 2
        first = lines[0]
        assert first["event"] == "run started"
        assert first["level"] == "info"
        assert first["logger"] == "kollega.test"
        assert first["count"] == 3
        assert first["dry_run"] is False
        assert first["timestamp"].endswith("Z")

    def test_auto_format_is_json_when_not_a_terminal(self) -> None:
        stream = io.StringIO()
        root = logging.getLogger()
        level = root.level
        try:
            configure_logging(stream=stream)
            get_logger("kollega.test").info("hello")
            assert json.loads(stream.getvalue().strip())["event"] == "hello"
        finally:
            structlog.reset_defaults()
            for h in list(root.handlers):
                if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter):
                    root.removeHandler(h)
            root.setLevel(level)

    def test_contextvars_fields_appear(self, log_stream: io.StringIO) -> None:
        with structlog.contextvars.bound_contextvars(robot="example", run_id=17, item_id=42, tenant="0000"):
            get_logger("kollega.test").info("item done")
        get_logger("kollega.test").info("after the unit of work")
        inside, after = _lines(log_stream)
        assert (inside["robot"], inside["run_id"], inside["item_id"], inside["tenant"]) == ("example", 17, 42, "0000")
        assert "item_id" not in after

    def test_contextvars_also_on_stdlib_records(self, log_stream: io.StringIO) -> None:
        with structlog.contextvars.bound_contextvars(robot="example", run_id=17):
            logging.getLogger("some.library").warning("library says hello")
        (line,) = _lines(log_stream)
        assert line["event"] == "library says hello"
        assert line["robot"] == "example"
        assert line["logger"] == "some.library"

    def test_message_and_fields_are_redacted(self, log_stream: io.StringIO) -> None:
        get_logger("kollega.test").info(
            "looked up 191212121212",
            person="121212-1212",
            password="hunter2",
            token="abc123",
            nested={"pnr": "19121212-1212", "api_key": "k-999"},
            url="https://x.example/?token=abc123",
        )
        out = log_stream.getvalue()
        for secret in ("191212121212", "121212-1212", "19121212-1212", "hunter2", "abc123", "k-999"):
            assert secret not in out
        (line,) = _lines(log_stream)
        assert line["event"] == f"looked up {PERSONNUMMER_MASK}"
        assert line["person"] == PERSONNUMMER_MASK
        assert line["password"] == SECRET_MASK

    def test_bound_context_is_redacted(self, log_stream: io.StringIO) -> None:
        with structlog.contextvars.bound_contextvars(subject="191212121212"):
            get_logger("kollega.test").info("x")
        assert "191212121212" not in log_stream.getvalue()

    def test_stdlib_logger_is_redacted(self, log_stream: io.StringIO) -> None:
        std = logging.getLogger("some.library")
        std.warning("lookup of %s failed with password=%s", "19121212-1212", "hunter2")
        std.error("Authorization: Bearer abc.def.ghi")
        out = log_stream.getvalue()
        assert "19121212-1212" not in out
        assert "hunter2" not in out
        assert "abc.def.ghi" not in out
        first, _second = _lines(log_stream)
        assert first["event"] == f"lookup of {PERSONNUMMER_MASK} failed with password={SECRET_MASK}"
        assert first["level"] == "warning"

    def test_structlog_exception_traceback_is_redacted(self, log_stream: io.StringIO) -> None:
        try:
            _fail_with("121212-1212")
        except ValueError:
            get_logger("kollega.test").exception("robot failed")
        out = log_stream.getvalue()
        (line,) = _lines(log_stream)
        assert "Traceback" in line["exception"]
        assert "ValueError" in line["exception"]
        assert PERSONNUMMER_MASK in line["exception"]
        assert "121212-1212" not in out
        assert "hunter2" not in out

    def test_stdlib_exception_traceback_is_redacted(self, log_stream: io.StringIO) -> None:
        try:
            _fail_with("191212121212")
        except ValueError:
            logging.getLogger("some.library").exception("library failed")
        out = log_stream.getvalue()
        (line,) = _lines(log_stream)
        assert "Traceback" in line["exception"]
        assert "191212121212" not in out
        assert "hunter2" not in out

    def test_tracebacks_have_no_local_variables(self, log_stream: io.StringIO) -> None:
        try:
            _fail_with_local()
        except RuntimeError:
            get_logger("kollega.test").exception("failed")
            logging.getLogger("some.library").exception("failed")
        out = log_stream.getvalue()
        assert "_fail_with_local" in out  # the traceback is there …
        assert "lokal-hemlighet-4711" not in out  # … without local variables

    def test_exception_as_field_is_redacted(self, log_stream: io.StringIO) -> None:
        get_logger("kollega.test").error("failed", error=ValueError("person 19121212-1212"))
        assert "19121212-1212" not in log_stream.getvalue()

    def test_console_mode_is_redacted_without_locals(self) -> None:
        stream = io.StringIO()
        root = logging.getLogger()
        level = root.level
        try:
            configure_logging(fmt="console", stream=stream)
            try:
                _fail_with_local()
            except RuntimeError:
                get_logger("kollega.test").exception("failed for 191212121212")
            out = stream.getvalue()
            assert "Traceback" in out
            assert "191212121212" not in out
            assert "lokal-hemlighet-4711" not in out
        finally:
            structlog.reset_defaults()
            for h in list(root.handlers):
                if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter):
                    root.removeHandler(h)
            root.setLevel(level)

    def test_level_filters(self, log_stream: io.StringIO) -> None:
        configure_logging(level="WARNING", fmt="json", stream=log_stream)
        get_logger("kollega.test").info("hidden")
        get_logger("kollega.test").warning("shown")
        assert [line["event"] for line in _lines(log_stream)] == ["shown"]


def _fail_with(pnr: str) -> None:
    password = "hunter2"  # a local variable that must never be rendered
    raise ValueError(f"no person {pnr} found (password={password})")


def _fail_with_local() -> None:
    secret_local = "lokal-hemlighet-4711"
    if secret_local:
        raise RuntimeError("boom")


def test_default_output_follows_stderr_when_it_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a stream, records go to standard error as it is now: a replaced, closed one is never written to."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    try:
        configure_logging(level="INFO", fmt="json")
        monkeypatch.setattr(sys, "stderr", second)
        first.close()  # what a test's captured output or a daemon's redirected descriptor does
        logging.getLogger("kollega.test").info("after the swap")
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert [line["event"] for line in _lines(second)] == ["after the swap"]
