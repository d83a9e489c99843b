"""The protected-identity gate (skyddade personuppgifter): fail-closed, pure, no I/O.

Before Ronney looks anything up about a household or renders anything about it, the
population register is asked one narrow question per member: does this person have a
*sekretessmarkering* or *skyddad folkbokföring*? The gate then decides:

=========================================================  ==========  =====================
what the check gave                                        outcome     reason
=========================================================  ==========  =====================
every member answered, nobody marked                       clear       ``none``
a member has skyddad folkbokföring (whatever else)         protected   ``skyddad_folkbokforing``
a member has a sekretessmarkering (and nobody skyddad f.)  protected   ``sekretessmarkering``
the register could not be reached (after the retries)      unchecked   ``register_unavailable``
the register refused the question                          unchecked   ``refused``
the answer could not be read                               unchecked   ``malformed_answer``
the answer left a member out                               unchecked   ``incomplete_answer``
a member cannot be asked (no usable personnummer)          unchecked   ``not_checkable``
=========================================================  ==========  =====================

A marking found wins over a failure (``protected``: the case worker learns the most useful
thing). Anything but ``clear`` closes the gate: no register lookup, no calculation, no
address, no names, no decision basis; the review item (:func:`restricted_material`) says
in Swedish what the case worker must do by hand, and Ronney writes nothing back.

Why: a sekretessmarkering is Skatteverket's warning that information about the person
must be examined for harm before it is disclosed (OSL 22 kap. 1 §); skyddad folkbokföring
hides where the person lives; in the social services the same information is secret
under OSL 26 kap. 1 §, and 21 kap. 3 § protects the whereabouts of a person who risks
violence or persecution. Sources: docs/robots/ronney.md, "Skyddade personuppgifter".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from robots.ronney.checks import Flag, month_name

__all__ = [
    "GateDecision",
    "MalformedProtectionAnswer",
    "Marking",
    "Outcome",
    "Reason",
    "decide",
    "parse_protection_answer",
    "restricted_material",
]

Outcome = Literal["clear", "protected", "unchecked"]
Reason = Literal[
    "none",
    "sekretessmarkering",
    "skyddad_folkbokforing",
    "register_unavailable",
    "refused",
    "malformed_answer",
    "incomplete_answer",
    "not_checkable",
]
#: Why a check failed, as the I/O side reports it.
Failure = Literal["register_unavailable", "refused", "malformed_answer", "not_checkable"]

RESTRICTED_KIND = "restricted"
MATERIAL_VERSION = 1


class MalformedProtectionAnswer(ValueError):
    """The register's answer to the protection check cannot be read (never names a person)."""


@dataclass(frozen=True)
class Marking:
    """One person's markings in the population register."""

    sekretessmarkering: bool
    skyddad_folkbokforing: bool

    @property
    def protected(self) -> bool:
        """True when the person has any kind of protected personal data."""
        return self.sekretessmarkering or self.skyddad_folkbokforing


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided for one household."""

    outcome: Outcome
    reason: Reason
    #: The roles (``sökande``, ``barn 2`` …) with protected data, in household order; never names.
    protected_roles: tuple[str, ...] = ()

    @property
    def clear(self) -> bool:
        """True only when every member was checked and nobody is protected: the gate opens."""
        return self.outcome == "clear"

    def as_json(self) -> dict[str, Any]:
        """For the audit event and the material."""
        return {"outcome": self.outcome, "reason": self.reason, "protected_roles": list(self.protected_roles)}


def parse_protection_answer(numbers: Sequence[str], raw: Any) -> dict[str, Marking]:
    """The markings per personnummer (digits) asked for; MalformedProtectionAnswer when unreadable.

    Strict: every marking must be a JSON boolean (a missing or odd value is not read as
    "not protected"). A person left out of the answer is simply absent from the result.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("persons"), list):
        raise MalformedProtectionAnswer("the protection answer has no list of persons")
    wanted = set(numbers)
    found: dict[str, Marking] = {}
    for row in raw["persons"]:
        if not isinstance(row, dict):
            raise MalformedProtectionAnswer("a person in the protection answer is not an object")
        number = str(row.get("personnummer") or "").replace("-", "")
        secret, hidden = row.get("sekretessmarkering"), row.get("skyddad_folkbokforing")
        if not isinstance(secret, bool) or not isinstance(hidden, bool):
            raise MalformedProtectionAnswer("a marking in the protection answer is not true or false")
        if number not in wanted:
            raise MalformedProtectionAnswer("the protection answer names a person that was not asked about")
        found[number] = Marking(sekretessmarkering=secret, skyddad_folkbokforing=hidden)
    return found


def decide(
    household: Sequence[tuple[str, str | None]],
    markings: Mapping[str, Marking] | None,
    failure: Failure | None = None,
) -> GateDecision:
    """The decision table of the module docstring.

    ``household`` is every member as (role, personnummer digits or None when it cannot be
    asked); ``markings`` what the register answered (None when there is no answer);
    ``failure`` why there is no (complete) answer.
    """
    answered = markings or {}
    protected = [
        (role, answered[number])
        for role, number in household
        if number is not None and number in answered and answered[number].protected
    ]
    if protected:
        reason: Reason = (
            "skyddad_folkbokforing" if any(m.skyddad_folkbokforing for _, m in protected) else "sekretessmarkering"
        )
        return GateDecision("protected", reason, tuple(role for role, _ in protected))
    if failure is not None:
        return GateDecision("unchecked", failure)
    if markings is None:
        return GateDecision("unchecked", "register_unavailable")
    if any(number is None for _, number in household):
        return GateDecision("unchecked", "not_checkable")
    if any(number not in answered for _, number in household):
        return GateDecision("unchecked", "incomplete_answer")
    return GateDecision("clear", "none")


# --- what the case worker gets ----------------------------------------------------------------

_WHY_UNCHECKED: dict[str, str] = {
    "register_unavailable": "folkbokföringsregistret svarade inte",
    "refused": "folkbokföringsregistret nekade frågan",
    "malformed_answer": "folkbokföringsregistrets svar gick inte att läsa",
    "incomplete_answer": "svaret saknade uppgift om någon i hushållet",
    "not_checkable": "någon i hushållet saknar ett personnummer som kan kontrolleras",
}

_PROTECTED_STEPS: tuple[str, ...] = (
    "Handlägg ansökan manuellt enligt kommunens rutin för skyddade personuppgifter.",
    "Öppna ansökan direkt i e-tjänsten eller verksamhetssystemet. Skriv inte ut, spara inte och skicka "
    "inte vidare uppgifter om var hushållet bor.",
    "Se till att beslut, brev och utbetalningsunderlag inte röjer adress eller vistelseort.",
    "Godkänn här när ärendet är överlämnat till manuell handläggning. Ronney skriver ingenting till e-tjänsten.",
)
_UNCHECKED_STEPS: tuple[str, ...] = (
    "Kontrollera själv om någon i hushållet har sekretessmarkering eller skyddad folkbokföring (i "
    "folkbokföringen via verksamhetssystemet).",
    "Har ingen skyddade personuppgifter: returnera ärendet till Ronney, så kontrolleras det igen och bereds "
    "på vanligt sätt.",
    "Har någon skyddade personuppgifter: handlägg ansökan manuellt enligt kommunens rutin för skyddade "
    "personuppgifter och godkänn här när den är överlämnad. Ronney skriver ingenting till e-tjänsten.",
)


def _who(roles: Sequence[str]) -> str:
    if not roles:
        return ""
    if len(roles) == 1:
        return f" Det gäller {roles[0]}."
    return f" Det gäller {', '.join(roles[:-1])} och {roles[-1]}."


def restricted_material(
    *,
    decision: GateDecision,
    queue: str,
    reference: str,
    application_id: str,
    application_kind: str,
    month: str,
    prepared_at: datetime,
    prepared_at_text: str,
    return_comment: str | None = None,
) -> dict[str, Any]:
    """The only material of a household the gate did not let through: what to do, nothing about who.

    It carries no name, personnummer, address, amount, register data, attachment or
    document; the application id and month are what the case worker needs to find the
    application by hand.
    """
    if decision.clear:
        raise ValueError("a clear household is prepared as usual, not restricted")
    kind_text = "Nyansökan" if application_kind == "new" else "Återansökan"
    month_text = month_name(month) if len(month) == 7 else month
    if decision.outcome == "protected":
        kinds = "skyddad folkbokföring" if decision.reason == "skyddad_folkbokforing" else "sekretessmarkering"
        headline = "handläggs manuellt (skyddade personuppgifter)"
        text = (
            f"Någon i hushållet har skyddade personuppgifter ({kinds}).{_who(decision.protected_roles)} Ronney "
            "har därför inte hämtat registeruppgifter, inte räknat fram något belopp och inte skapat något "
            "beslutsunderlag, och visar varken namn, personnummer eller adress här."
        )
        steps = _PROTECTED_STEPS
        code = "protected_identity"
    else:
        headline = "handläggs manuellt (skyddade personuppgifter kunde inte kontrolleras)"
        text = (
            f"Ronney kunde inte kontrollera om någon i hushållet har skyddade personuppgifter: "
            f"{_WHY_UNCHECKED.get(decision.reason, 'kontrollen misslyckades')}. Ronney har därför inte hämtat "
            "registeruppgifter, inte räknat fram något belopp och inte skapat något beslutsunderlag."
        )
        steps = _UNCHECKED_STEPS
        code = "protected_identity_unchecked"
    title = f"{kind_text} {application_id}, {month_text}: {headline}"
    return {
        "kind": RESTRICTED_KIND,
        "version": MATERIAL_VERSION,
        "queue": queue,
        "title": title,
        "summary": "Ronney har inte berett ärendet. Se vad du behöver göra.",
        "reference": reference,
        "application_id": application_id,
        "application_kind": application_kind,
        "application_kind_text": kind_text,
        "month": month,
        "month_text": month_text,
        "gate": decision.as_json(),
        "flags": [Flag("warning", code, text).as_json()],
        "what_to_do": list(steps),
        "return_comment": return_comment,
        "documents": [],
        "prepared_at": prepared_at.isoformat(),
        "prepared_at_text": prepared_at_text,
    }
