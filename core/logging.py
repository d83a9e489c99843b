"""structlog setup: JSON lines off a terminal, console on one; personal data redacted.

The redaction processor runs before every renderer, on the message, every field,
exception text and formatted tracebacks. Tracebacks never include local variables.
Standard-library loggers (httpx, sqlalchemy, uvicorn …) go through the same chain.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# A Swedish personnummer or samordningsnummer: 12 or 10 digits, optionally with - or +
# before the last four. Digits on either side mean it is part of a longer number.
PERSONNUMMER_RE = re.compile(r"(?<!\d)(?:(?:19|20)?\d{6})[-+]?\d{4}(?!\d)")
PERSONNUMMER_MASK = "<personnummer>"
SECRET_MASK = "<redacted>"  # noqa: S105 - the mask, not a secret
_SECRET_KEY_RE = re.compile(r"pass(word|wd)?|pwd|secret|token|api[_-]?key|authorization|cookie|credential", re.I)
# key=value / "key": "value" pairs inside free text (URLs, exception messages).
_SECRET_PAIR_RE = re.compile(
    r"(?i)((?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|access_token|client_secret)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;]+)"
)
# user:password@ in URLs (database URLs, HTTP basic auth in links).
_URL_USERINFO_RE = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(@)")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def _mask_if_date(match: re.Match[str]) -> str:
    # Only digits whose date part is a real month and day (or a samordningsnummer day,
    # +60) are masked: ids like EB-202612-0001 stay readable in logs.
    digits = match.group(0).replace("-", "").replace("+", "")
    month, day = int(digits[-8:-6]), int(digits[-6:-4])
    if 1 <= month <= 12 and (1 <= day <= 31 or 61 <= day <= 91):
        return PERSONNUMMER_MASK
    return match.group(0)


def redact_text(text: str) -> str:
    """Mask personnummer, bearer tokens and key=value secrets in free text."""
    text = PERSONNUMMER_RE.sub(_mask_if_date, text)
    text = _URL_USERINFO_RE.sub(r"\1" + SECRET_MASK + r"\2", text)
    text = _BEARER_RE.sub(r"\1" + SECRET_MASK, text)
    return _SECRET_PAIR_RE.sub(r"\1" + SECRET_MASK, text)


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


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog and the standard library's logging once for the process."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not getattr(stream, "isatty", lambda: False)())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=True)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redaction_processor, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "sqlalchemy.engine", "apscheduler.executors", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None, **bound: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger, optionally with fields bound."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger.bind(**bound) if bound else logger
