"""Swedish by default, English on request: the Swedish text is the message id.

``_("Inkorg")`` gives "Inkorg" in Swedish and "Inbox" in English; keyword arguments fill
``{placeholders}`` after translating. Text without an English translation is shown as
written. The web app's English texts live in ``messages_en.py``; a robot brings the
translations of its own texts (its queue labels, its review template) in its ``messages``
class attribute, looked up before the web app's, so a plugin needs no change to the core.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.web.messages_en import EN

LANGUAGES = {"sv": "Svenska", "en": "English"}
Translator = Callable[..., str]


def translator(lang: str, own: Mapping[str, str] | None = None) -> Translator:
    """The translation function for ``lang`` (``sv`` or ``en``); ``own`` texts before the web app's."""
    base: Mapping[str, str] = EN if lang == "en" else {}
    first: Mapping[str, str] = own or {}

    def _(text: str, **kwargs: Any) -> str:
        out = first.get(text) or base.get(text, text)
        return out.format(**kwargs) if kwargs else out

    return _


def robot_translator(robot: type[Any] | None, lang: str) -> Translator:
    """The translation function for a robot's texts: its own ``messages[lang]``, then the web app's."""
    own = getattr(robot, "messages", {}).get(lang) if robot is not None else None
    return translator(lang, own)


def normalise_lang(value: str | None, default: str = "sv") -> str:
    """A supported language code, else the default."""
    return value if value in LANGUAGES else default


def local_time(value: datetime | None, zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC datetime shown in the deployment's local time ('' for None)."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


STATE_LABELS = {
    "open": "Öppen",
    "approved": "Godkänd",
    "rejected": "Avslagen",
    "returned": "Returnerad",
    "expired": "Förfallen",
    "resolved": "Löst av roboten",
    "withdrawn": "Återkallad av driften",
    "lapsed": "Inaktuellt",
    "overdue": "Försenad",
    "decision": "Beslut",
    "exception": "Undantag",
    "uncertain": "Osäkert utfall",
    "pending": "Väntar",
    "in_progress": "Pågår",
    "done": "Klar",
    "needs_review": "Att granska",
    "failed_business": "Verksamhetsfel",
    "failed_application": "Tekniskt fel",
    "cancelled": "Avbruten",
    "queued": "Köad",
    "running": "Körs",
    "interrupted": "Stoppad",
    "abandoned": "Övergiven",
    "succeeded": "Lyckades",
    "attention": "Behöver åtgärd",
    "failed": "Misslyckades",
    "missed": "Missad",
    "skipped": "Hoppades över",
    "overrun": "Drog över tiden",
    "exception_jump": "Fler undantag än vanligt",
    "robot": "Larm från roboten",
    "decision_failed": "Beslut kunde inte verkställas",
    "decision_late": "Beslut dröjer",
    "review_overdue": "Försenat ärende",
    "queue_age": "Gammalt ärende i kön",
    "case_worker": "Handläggare",
    "coordinator": "Samordnare",
    "operations": "Drift",
    "it_admin": "IT-administratör",
    "auditor": "Granskare",
    # levels of a run's log
    "log_info": "Information",
    "log_warning": "Varning",
    "log_error": "Fel",
    "log_critical": "Allvarligt fel",
}


def label(value: str) -> str:
    """The Swedish label of a status, state or kind (translate it with ``_``)."""
    return STATE_LABELS.get(value, value)
