"""Run records: what a run logged (kept with the run, redacted and bounded) and which code ran.

While the engine runs a robot, :data:`CURRENT_RUN_LOG` holds the run's
:class:`RunLogBuffer`; the structlog processor :func:`run_log_processor` copies every event
of level INFO or above logged inside the run (by the engine, the robot, its connectors —
any task or thread started from the run, since they inherit the context) into it. The
copy is redacted with :func:`core.logging.redact_value`, the same function every log
sink uses, and bounded: at most ``[worker] run_log_max_entries`` entries per run, each
field cut at :data:`MAX_FIELD_CHARS`; entries past the bound are counted
(``runs.log_dropped``), not kept. The engine writes the buffer to the run store on every
heartbeat and at the end of the run. Retention deletes a run's log with its items' data.

:func:`code_hash` names the code that ran: a SHA-256 over the robot's package files, so
"which version handled this item?" has an answer even for an unreleased change.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog

from core.clock import Clock
from core.logging import redact_text, redact_value
from core.records import RUN_LOG_LEVELS, RunLogEntry

#: Longest text kept of one field (and of the event message) in a run's log.
MAX_FIELD_CHARS = 2000
#: Fields every entry has as columns, or that add nothing inside one run.
_SKIPPED = frozenset({"event", "level", "timestamp", "logger", "robot", "tenant", "run_id", "item_id", "exc_info"})
_METHOD_LEVELS = {"exception": "error", "warn": "warning", "msg": "info", "fatal": "critical"}


class RunLogBuffer:
    """A run's log entries not yet stored, numbered in order; thread-safe."""

    def __init__(self, clock: Clock, max_entries: int, start: int = 0) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._pending: list[RunLogEntry] = []
        #: Numbering goes on after ``start`` (the entries another worker stored for a run it lost).
        self._start = start
        self._kept = 0
        self._dropped = 0

    def add(self, method: str, event_dict: Any) -> None:
        """Keep a redacted copy of one log event (INFO and above), unless the bound is reached."""
        level = str(event_dict.get("level") or _METHOD_LEVELS.get(method, method)).lower()
        level = _METHOD_LEVELS.get(level, level)
        if level not in RUN_LOG_LEVELS:
            return
        with self._lock:
            if self._kept >= self.max_entries:
                self._dropped += 1
                return
            self._kept += 1
            seq = self._start + self._kept
        fields = {str(k): _bounded(redact_value(v, str(k))) for k, v in event_dict.items() if k not in _SKIPPED}
        if event_dict.get("exc_info") and "exception" not in fields:
            exc = sys.exc_info()[1]
            if exc is not None:
                fields["exception"] = _bounded(redact_text(f"{type(exc).__name__}: {exc}"))
        item = event_dict.get("item_id")
        entry = RunLogEntry(
            seq=seq,
            at=self.clock.now(),
            level=level,
            event=_bounded(redact_text(str(event_dict.get("event", ""))))[:500],
            item_id=item if isinstance(item, int) and not isinstance(item, bool) else None,
            fields=fields,
        )
        with self._lock:
            self._pending.append(entry)

    def drain(self) -> tuple[list[RunLogEntry], int]:
        """The entries (in order) and the count of dropped ones since the last drain."""
        with self._lock:
            entries, self._pending = sorted(self._pending, key=lambda e: e.seq), []
            dropped, self._dropped = self._dropped, 0
        return entries, dropped


def _bounded(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_FIELD_CHARS else value[:MAX_FIELD_CHARS] + "…"
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)
    return text if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS] + "…"


#: The log of the run the current task or thread works for (None outside a run).
CURRENT_RUN_LOG: ContextVar[RunLogBuffer | None] = ContextVar("kollega_run_log", default=None)


def run_log_processor(_logger: Any, method: str, event_dict: Any) -> Any:
    """structlog processor: copy the event into the current run's log (if any); passes it on unchanged."""
    buffer = CURRENT_RUN_LOG.get()
    if buffer is not None:
        # A log entry that cannot be kept must never break the logging call itself.
        with contextlib.suppress(Exception):
            buffer.add(method, event_dict)
    return event_dict


def ensure_run_log_processor() -> None:
    """Put :func:`run_log_processor` into structlog's chain (before the renderer) unless it is there."""
    processors = list(structlog.get_config()["processors"])
    if run_log_processor in processors:
        return
    processors.insert(max(len(processors) - 1, 0), run_log_processor)
    structlog.configure(processors=processors)


@lru_cache(maxsize=64)
def _hash_folder(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".py", ".html", ".toml", ".json"}):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def code_hash(cls: type) -> str | None:
    """SHA-256 of the robot's package (its .py, templates and data files), or of its module when it has none."""
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if file is None:
        return None
    path = Path(file).resolve()
    if getattr(module, "__package__", None):  # the package folder the robot's module lives in
        return _hash_folder(path.parent)
    return hashlib.sha256(path.read_bytes()).hexdigest()
