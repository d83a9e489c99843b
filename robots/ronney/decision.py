"""The case worker's changes to a proposal, applied to the decision Ronney writes back (pure).

On the item page every line of the calculation can be changed (Ronney's review template puts
the fields in the kernel's decision form): *bifall* (as proposed), *delvis bifall* (a lower
amount) or *avslag* (nothing) for the norm and every cost, a different amount for an income,
each with a reason. The kernel hands the fields to on_decision as ``review.decision_data``
(``line.<i>.decision``, ``line.<i>.amount``, ``line.<i>.reason``); this module turns them into
the decision: its kind, its amount, its lines and its reasons, in the applicant's Swedish.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.api import BusinessError

__all__ = ["LINE_CHOICES", "ChangedDecision", "apply_changes"]

#: The choices per line, as the form sends them, and how the letter names them.
LINE_CHOICES = {"bifall": "Bifall", "delvis": "Delvis bifall", "avslag": "Avslag"}


def _kr(amount: int) -> str:
    return f"{amount:,}".replace(",", " ")


@dataclass
class ChangedDecision:
    """The decision after the case worker's changes."""

    decision: str
    amount: int
    #: The letter's lines: ``{"text", "amount"}``.
    lines: list[dict[str, Any]] = field(default_factory=list)
    #: One sentence per changed line, for the reasons of the decision.
    reasons: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the case worker changed anything."""
        return bool(self.reasons)


def _whole_kronor(text: str, label: str) -> int:
    cleaned = text.replace(" ", "").replace("\u00a0", "").removesuffix("kr")
    if not cleaned.isdigit():
        raise BusinessError(
            f"Beloppet för {label.lower()} är inte ett belopp i hela kronor ({text!r}): beslutet skrevs inte",
            code="invalid_line_change",
        )
    return int(cleaned)


def apply_changes(lines: Sequence[Mapping[str, Any]], data: Mapping[str, Any] | None) -> ChangedDecision:
    """The decision from the calculation's ``lines`` (``label``, ``section``, ``amount``) and the changes.

    A changed line without a reason, an amount that is not whole kronor, or a *delvis bifall*
    that is not lower than proposed is a BusinessError naming the line (nothing is written).
    """
    data = data or {}
    out = ChangedDecision(decision="approved", amount=0)
    reduced = False
    total = 0
    for i, line in enumerate(lines):
        label = str(line.get("label") or "")
        original = int(line.get("amount") or 0)
        # A cost Ronney's rules capped or left out is a delavslag unless the case worker grants it in full.
        requested = int(line.get("requested") or original)
        choice = str(data.get(f"line.{i}.decision") or "bifall").strip() or "bifall"
        amount_text = str(data.get(f"line.{i}.amount") or "").strip()
        reason = str(data.get(f"line.{i}.reason") or "").strip()
        if choice not in LINE_CHOICES:
            raise BusinessError(f"Okänt val för {label.lower()}: {choice!r}", code="invalid_line_change")
        income = original < 0
        new = original
        if choice == "avslag" and not income:
            new = 0
        elif choice == "delvis" and not income:
            new = _whole_kronor(amount_text, label)
            if new >= requested:
                raise BusinessError(
                    f"Delvis bifall för {label.lower()} ska vara lägre än {_kr(requested)} kr: beslutet skrevs inte",
                    code="invalid_line_change",
                )
        elif amount_text:
            given = _whole_kronor(amount_text, label)
            new = -given if income else given
        if new != original:
            if not reason:
                raise BusinessError(
                    f"Ändringen av {label.lower()} saknar motivering: beslutet skrevs inte", code="reason_missing"
                )
            if income:
                what = f"räknas med {_kr(-new)} kr i stället för {_kr(-original)} kr"
            else:
                kind = LINE_CHOICES["avslag" if new == 0 else "delvis" if new < requested else "bifall"]
                what = f"{kind.lower()}, {_kr(new)} kr av {_kr(requested)} kr"
            out.reasons.append(f"{label}: {what}. Skäl: {reason}")
            text = f"{label} – {what}"
        elif not income and new < requested:
            text = f"{label} – delavslag, {_kr(new)} kr av {_kr(requested)} kr"
        else:
            text = label
        reduced = reduced or (new < original if income else new < requested)
        out.lines.append({"text": text, "amount": new})
        total += new
    out.amount = max(0, total)
    if out.amount == 0:
        out.decision = "rejected"
    elif reduced:
        out.decision = "partially_approved"
    return out
