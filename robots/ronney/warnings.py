"""Warnings with a life across the versions of one application (pure; the robot keeps the state).

Every flag has a stable key (``income_missing:applicant:salary``). Ronney keeps, per
application, the state of each key it has shown (``ctx.state_get("warnings:<id>")``): no
texts, no personal data, only key, type, state, who and when. On each new version:

- a warning seen for the first time is **open**;
- an open or **acknowledged** (kvitterad) warning whose cause is still there keeps its state;
- an open or acknowledged warning whose cause has gone away is **closed** automatically;
  if the cause comes back, it opens again;
- a warning a case worker **closed** stays closed, whatever later versions show: never reopened;
- when a register could not be read (``register_read_failed``), the warnings that depend on
  the registers are **frozen**: not closed because they are missing, shown as they were.

A case worker acknowledges or closes warnings on the item (the decision form's
``warning.<key>`` = ``ack`` / ``close``); Ronney keeps that when the decision is carried out
(approved, rejected or returned). A municipality may require every open warning to be
acknowledged before approval (``acknowledge_before_approval``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from robots.ronney.checks import Flag

__all__ = [
    "REGISTER_DEPENDENT",
    "STATE_TEXT",
    "WARNING_TYPES",
    "apply_case_worker",
    "keyed",
    "state_key",
    "update_states",
]

#: Swedish name and the rule's source of each warning type (the catalogue in docs/robots/ronney.md).
WARNING_TYPES: dict[str, tuple[str, str]] = {
    "income_missing": ("Inkomst i registren saknas i ansökan", "SSBTEK (registren) mot ansökan; 4 kap. 1 § SoL"),
    "income_higher": ("Högre inkomst i registren än i ansökan", "SSBTEK (registren) mot ansökan"),
    "income_lower": ("Lägre inkomst i registren än i ansökan", "SSBTEK (registren) mot ansökan"),
    "income_not_in_register": ("Inkomst i ansökan finns inte i registren", "SSBTEK (registren) mot ansökan"),
    "income_unchecked": ("Inkomst som inte kan kontrolleras", "ansökan; registren saknar inkomstslaget"),
    "income_change": (
        "Inkomst ändrad mer än gränsen sedan förra beslutet",
        "förra beslutets underlag; gräns per inkomstslag (standard 12 %, som Sundsvalls Decision_inkomstTroskel)",
    ),
    "income_dropped": (
        "Inkomst i registren förra perioden men inte nu",
        "SSBTEK: jämförelseperioden mot kontrollperioden",
    ),
    "income_type_missing": ("Inkomstslag i förra beslutet saknas nu", "förra beslutets underlag; komplettering"),
    "income_changed": ("Hushållets inkomster ändrade sedan förra månaden", "förra beslutets underlag (totalt)"),
    "rent_changed": ("Hyran ändrad sedan förra månaden", "förra beslutets underlag"),
    "household_changed": ("Hushållet ändrat sedan förra månaden", "förra beslutets underlag"),
    "expense_capped": (
        "Kostnad begränsad enligt kommunens regel (delavslag)",
        "kommunens regeltabell för skäliga kostnader",
    ),
    "expense_review": (
        "Kostnad som kräver manuell bedömning",
        "kommunens regeltabell; övriga kostnader alltid manuellt",
    ),
    "rent_capped": ("Hyran över kommunens högsta boendekostnad", "kommunens högsta godtagbara boendekostnad"),
    "recovery_claim": ("Återkrav de senaste 36 månaderna", "9 kap. SoL (2001:453) om återkrav; hushållets historik"),
    "previous_decision_advance": ("Förra beslutet var förskott på förmån", "förskott på förmån och återkrav"),
    "pending_benefit": ("Förmån sökt men inte beslutad", "ansökan: sökt förmån; förskott på förmån"),
    "child_part_time": ("Barn som bor i hushållet del av tiden", "ansökan: växelvis boende; riksnormen per barn"),
    "payment_account_changed": ("Nytt utbetalningskonto", "ansökan mot förra beslutets utbetalning"),
    "register_read_failed": ("Registren kunde inte läsas", "SSBTEK (registren): frågan misslyckades"),
    "register_not_found": ("Personen finns inte i registren", "SSBTEK (registren)"),
    "other_municipality": ("Folkbokförd i annan kommun", "folkbokföringen; 2 kap. SoL om ansvarig kommun"),
    "address_differs": ("Annan adress i folkbokföringen", "folkbokföringen"),
    "vehicle": ("Äger fordon", "vägtrafikregistret; tillgångar"),
    "not_job_seeker": ("Inte inskriven som arbetssökande", "Arbetsförmedlingen; 4 kap. 1 § andra stycket SoL"),
    "job_seeker_part_time": ("Arbetssökande på deltid", "Arbetsförmedlingen"),
    "no_previous_decision": ("Återansökan utan tidigare beslut", "e-tjänsten"),
    "job_stimulus_early": ("Jobbstimulans före 6 månader", "4 kap. 1 b § SoL (2001:453)"),
}

#: Warning types that rest on the register answer: frozen when a register could not be read.
REGISTER_DEPENDENT = frozenset(
    {
        "income_missing",
        "income_higher",
        "income_lower",
        "income_not_in_register",
        "income_dropped",
        "income_type_missing",
        "register_not_found",
        "other_municipality",
        "address_differs",
        "vehicle",
        "not_job_seeker",
        "job_seeker_part_time",
    }
)

#: The states as a case worker reads them.
STATE_TEXT = {"open": "Öppen", "acknowledged": "Kvitterad", "closed": "Stängd"}


def state_key(application_id: str) -> str:
    """The robot state key of one application's warnings."""
    return f"warnings:{application_id}"


def keyed(flags: Sequence[Flag]) -> list[Flag]:
    """The flags with a unique key each: a second flag of a key gets ``#2``, and so on (in order)."""
    seen: dict[str, int] = {}
    out = []
    for flag in flags:
        key = flag.stable_key
        seen[key] = seen.get(key, 0) + 1
        out.append(replace(flag, key=key if seen[key] == 1 else f"{key}#{seen[key]}"))
    return out


def update_states(
    previous: Mapping[str, Any] | None, flags: Sequence[Flag], *, version: str, registers_failed: bool, now: str
) -> tuple[dict[str, Any], list[Flag], list[dict[str, str]]]:
    """The new state, the flags with their states, and the warnings closed or frozen now (for the item).

    ``previous`` is the kept state (``{"warnings": {key: {...}}}``) or None for a first version.
    """
    kept: dict[str, dict[str, Any]] = {k: dict(v) for k, v in ((previous or {}).get("warnings") or {}).items()}
    out_flags: list[Flag] = []
    current = {f.stable_key for f in flags}
    for flag in flags:
        key = flag.stable_key
        entry = kept.get(key)
        if entry is None:
            entry = {"code": flag.code, "state": "open", "since": version, "by": "robot:ronney", "at": now}
        elif entry.get("state") == "closed" and entry.get("by") == "robot:ronney":
            # closed because its cause went away, and the cause is back: open again
            entry = {**entry, "state": "open", "since": version, "by": "robot:ronney", "at": now}
        entry["seen"] = version
        entry.pop("frozen", None)
        kept[key] = entry
        out_flags.append(replace(flag, state=str(entry["state"])))
    gone: list[dict[str, str]] = []
    for key, entry in kept.items():
        if key in current:
            continue
        code = str(entry.get("code") or key.split(":")[0])
        name = WARNING_TYPES.get(code, (code, ""))[0]
        if registers_failed and code in REGISTER_DEPENDENT and entry.get("state") != "closed":
            entry["frozen"] = True
            gone.append({"key": key, "name": name, "state": str(entry["state"]), "why": "frozen"})
        elif entry.get("state") in ("open", "acknowledged"):
            entry.update(state="closed", by="robot:ronney", at=now, closed_in=version)
            entry.pop("frozen", None)
            gone.append({"key": key, "name": name, "state": "closed", "why": "cause_gone"})
    return {"warnings": kept}, out_flags, gone


def apply_case_worker(
    state: Mapping[str, Any] | None, choices: Mapping[str, Any], *, by: str, now: str, keys: Iterable[str]
) -> tuple[dict[str, Any], list[str]]:
    """The kept state after a case worker acknowledged or closed warnings (``warning.<key>`` = ack/close).

    Only keys the item showed count; a closed warning is never changed back. Returns the new
    state and the keys changed (for the audit trail).
    """
    kept: dict[str, dict[str, Any]] = {k: dict(v) for k, v in ((state or {}).get("warnings") or {}).items()}
    changed = []
    for key in keys:
        choice = str(choices.get(f"warning.{key}") or "").strip()
        entry = kept.get(key)
        if entry is None or entry.get("state") == "closed" or choice not in ("ack", "close"):
            continue
        new = "acknowledged" if choice == "ack" else "closed"
        if entry.get("state") == new:
            continue
        entry.update(state=new, by=by, at=now)
        changed.append(key)
    return {"warnings": kept}, changed
