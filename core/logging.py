"""structlog setup: JSON lines off a terminal, console on one; personal data redacted.

The redaction processor runs before every renderer, on the message, every field,
exception text and formatted tracebacks. Tracebacks never include local variables.
Standard-library loggers (httpx, sqlalchemy, uvicorn …) go through the same chain.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# A Swedish personnummer or samordningsnummer: 12 or 10 digits, optionally with a separator
# before the last four: hyphen, plus (100 years or older), a space, or the dashes a word
# processor puts in (en dash, minus sign, non-breaking space). Digits on either side mean
# it is part of a longer number.
_PNR_SEPARATORS = "-+\u2010\u2011\u2012\u2013\u2014\u2212 \u00a0\u202f"
# The same separators percent-encoded, as they stand in an access log's URL (%20, %2B, en dash).
_PNR_ENCODED = r"%20|%2[bB]|%[eE]2%80%9[0-5]|%[eE]2%88%92|%[cC]2%[aA]0"
PERSONNUMMER_RE = re.compile(
    rf"(?<!\d)(?P<date>(?:19|20)?\d{{6}})(?:[{_PNR_SEPARATORS}]|{_PNR_ENCODED})?(?P<last>\d{{4}})(?!\d)"
)
PERSONNUMMER_MASK = "<personnummer>"
SECRET_MASK = "<redacted>"  # noqa: S105 - the mask, not a secret
_SECRET_KEY_RE = re.compile(r"pass(word|wd)?|pwd|secret|token|api[_-]?key|authorization|cookie|credential", re.I)
# key=value / key: value / "key": "value" pairs inside free text (URLs, exception messages,
# connection strings): the key may carry a prefix (db_password, X-Api-Key, client_secret).
_SECRET_PAIR_RE = re.compile(
    r"(?i)((?<![A-Za-z])[\w.-]*?(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|apikey|credentials?"
    r"|private[_-]?key|session[_-]?(?:id|key))[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;]+)"
)
# An Authorization or Proxy-Authorization header in free text, whatever its scheme.
_AUTH_HEADER_RE = re.compile(r"(?i)((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:[A-Za-z][\w-]*\s+)?)[^\s\"',;]+")
# Cookie / Set-Cookie headers: everything up to the end of the line.
_COOKIE_HEADER_RE = re.compile(r"(?im)((?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)[^\r\n\"']+")
# user:password@ in URLs (database URLs, HTTP basic auth in links).
_URL_USERINFO_RE = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(@)")
_BEARER_RE = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+")
# "Basic dXNlcjpwYXNz" on its own: masked when the token really is base64 of user:password,
# so that "basic checks" in prose stays readable.
_BASIC_RE = re.compile(r"(?i)(\bbasic\s+)([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])")
# Database errors: SQLAlchemy's "[parameters: …]" block and PostgreSQL's DETAIL line quote
# the values of the failing statement (names, addresses, personnummer).
_SQL_PARAMS_RE = re.compile(r"\[parameters: .*?\](?=\s*(?:\n|\(Background|$))", re.S)
_PG_DETAIL_RE = re.compile(r"(?m)^(\s*(?:DETAIL|CONTEXT):\s*).*$")
# PostgreSQL's main message quotes the value it could not read ("invalid input syntax for
# type integer: \"Anna Andersson\"").
_PG_INPUT_RE = re.compile(r"(?i)(invalid input (?:syntax|value) for [^:\n]*: )\"[^\"\n]*\"")


def _mask_if_date(match: re.Match[str]) -> str:
    # Only digits whose date part is a real month and day (or a samordningsnummer day,
    # +60) are masked: ids like EB-202612-0001 stay readable in logs.
    date = match.group("date")
    month, day = int(date[-4:-2]), int(date[-2:])
    if 1 <= month <= 12 and (1 <= day <= 31 or 61 <= day <= 91):
        return PERSONNUMMER_MASK
    return match.group(0)


def _mask_basic(match: re.Match[str]) -> str:
    try:
        decoded = base64.b64decode(match.group(2), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return match.group(0)
    return match.group(1) + SECRET_MASK if ":" in decoded else match.group(0)


def redact_text(text: str) -> str:
    """Mask personnummer, credentials and SQL values in free text.

    The one redaction function: logs (structlog and every standard-library logger,
    uvicorn's included), ``runs.error``, item and callback errors, alerts and their mail
    all pass through it. Masked: personnummer and samordningsnummer in every written form,
    ``Authorization`` headers (Bearer, Basic, any scheme), cookies, ``key=value`` and
    ``key: value`` secrets, passwords in URLs, and the parameter values database errors quote.
    """
    text = _SQL_PARAMS_RE.sub("[parameters withheld]", text)
    text = _PG_DETAIL_RE.sub(r"\1(withheld)", text)
    text = _PG_INPUT_RE.sub(r'\1"(withheld)"', text)
    text = PERSONNUMMER_RE.sub(_mask_if_date, text)
    text = _URL_USERINFO_RE.sub(r"\1" + SECRET_MASK + r"\2", text)
    text = _AUTH_HEADER_RE.sub(r"\1" + SECRET_MASK, text)
    text = _COOKIE_HEADER_RE.sub(r"\1" + SECRET_MASK, text)
    text = _BEARER_RE.sub(r"\1" + SECRET_MASK, text)
    text = _BASIC_RE.sub(_mask_basic, text)
    return _SECRET_PAIR_RE.sub(r"\1" + SECRET_MASK, text)


def error_text(exc: BaseException) -> str:
    """An exception as text fit for an error column (``runs.error``) and the dashboard.

    A database error gives its class and SQLSTATE only: the driver's message may quote the
    values of the failing statement ("invalid input syntax …: \"Anna Andersson\"").
    """
    orig = getattr(exc, "orig", None)
    if orig is not None and type(exc).__module__.startswith("sqlalchemy"):
        code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
        which = f" {code}" if code else ""
        return f"{type(exc).__name__}: database error{which} ({type(orig).__name__}); statement and values withheld"
    return redact_text(f"{type(exc).__name__}: {exc}")


def redact_value(value: Any, key: str | None = None) -> Any:
    """Redact one value, recursing into containers; secret-named keys are masked whole."""
    if key is not None and _SECRET_KEY_RE.search(key) and value is not None:
        return SECRET_MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return (
            type(value)(redact_value(v) for v in value)
            if not isinstance(value, set)
            else [redact_value(v) for v in value]
        )
    if isinstance(value, int) and not isinstance(value, bool) and PERSONNUMMER_RE.fullmatch(str(value)):
        return redact_text(str(value))
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redaction_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: redact every field of the event (run after format_exc_info)."""
    for key in list(event_dict):
        event_dict[key] = redact_value(event_dict[key], key if key != "event" else None)
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Plain tracebacks as text, no local variables, so redaction can see all of it.
        structlog.processors.format_exc_info,
        redaction_processor,
    ]


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes to whatever ``sys.stderr`` is when a record is emitted.

    ``logging.StreamHandler()`` keeps the ``sys.stderr`` of the moment it was made; when that
    stream is later replaced and closed (a test's captured output, a daemon's redirected
    descriptors), every record after it would fail with "I/O operation on closed file".
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # always the current sys.stderr


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog and the standard library's logging once for the process.

    Records go to ``stream``, or, by default, to the process's standard error as it is at
    the time of each record.
    """
    probe = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not getattr(probe, "isatty", lambda: False)())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=True)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    shared = _shared_processors()
    from core.runlog import run_log_processor

    structlog.configure(
        # After redaction: a run's own log (core.runlog) keeps what the sinks would print.
        processors=[*shared, run_log_processor, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redaction_processor, renderer],
    )
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "sqlalchemy.engine", "apscheduler.executors", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


#: The web server's own loggers: uvicorn gives them handlers of its own unless told not to.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def route_uvicorn_logs() -> None:
    """Send uvicorn's access lines and tracebacks through the redacting root handler.

    ``kollega serve`` starts uvicorn with ``log_config=None`` (so uvicorn installs none of
    its own handlers, which print unredacted); this also removes any such handlers an
    earlier start left behind and lets the records propagate to the root handler.
    """
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def get_logger(name: str | None = None, **bound: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger, optionally with fields bound."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger.bind(**bound) if bound else logger
