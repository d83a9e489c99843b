"""The rules of work-item state, defined once: which transition is allowed from which status, and backoff.

Pure (no I/O): every work-item store (SQL in core/queue.py, in memory in
core/testing/memory.py), the review callbacks (core/review.py), the web layer and the CLI
ask this module; none of them decides on its own. ::

    pending ──claim──> in_progress ──complete──> done | needs_review
       ^                  │  ──fail_business──> failed_business
       │                  │  ──fail_application──> pending (retry) | failed_application
       │                  └──timeout / lease expired (unrepeatable writes)──> uncertain
       │                                                   │ ──re-check found it done──> done
       ├──retry (operations)── failed_*, uncertain, cancelled
       ├──returned decision── needs_review
       └──cancel (operations)── pending, failed_*, uncertain ──> cancelled

``done`` never goes back to ``pending``: a finished write is never repeated by the kernel.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from core.errors import ReviewError
from core.records import ItemStatus

#: Operations may put these back in the queue (retry): a person decided the problem is dealt with.
RETRYABLE = frozenset(
    {ItemStatus.failed_business, ItemStatus.failed_application, ItemStatus.uncertain, ItemStatus.cancelled}
)

#: Operations may cancel these: nobody is working on them and they are not finished well.
CANCELLABLE = frozenset(
    {ItemStatus.pending, ItemStatus.failed_business, ItemStatus.failed_application, ItemStatus.uncertain}
)

#: A decision returned to the robot puts its item back from here (and only from here).
RETURNABLE = frozenset({ItemStatus.needs_review})

#: A carried-out decision (approved or rejected) finishes its item from here.
DECIDABLE = frozenset({ItemStatus.needs_review})

#: Only an item a worker holds can be marked uncertain (its write may have happened).
MARKABLE_UNCERTAIN = frozenset({ItemStatus.in_progress})

#: Only an uncertain item can be settled by a re-check, or released to a person.
SETTLEABLE = frozenset({ItemStatus.uncertain})

#: What a bulk retry or cancel on the items page acts on: items that failed. An uncertain item
#: (its write may have happened) is never in a bulk action: a person looks at each one.
BULK_FAILED = frozenset({ItemStatus.failed_business, ItemStatus.failed_application})

#: The bulk actions operations may take on every failed item matching a filter.
BULK_ACTIONS = ("retry", "cancel")

#: What ``requeue`` accepts: a retry by operations, or a decision returned to the robot.
REQUEUEABLE = RETRYABLE | RETURNABLE


def can_retry(status: str) -> bool:
    """Whether operations may put an item in ``status`` back in the queue."""
    return ItemStatus(status) in RETRYABLE


def can_cancel(status: str) -> bool:
    """Whether operations may cancel an item in ``status``."""
    return ItemStatus(status) in CANCELLABLE


def can_requeue(status: str) -> bool:
    """Whether an item in ``status`` may go back to ``pending`` (never a done or running one)."""
    return ItemStatus(status) in REQUEUEABLE


def backoff_delay(
    attempts: int, base_seconds: float, cap_seconds: float, *, jitter: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after ``attempts`` failed tries: exponential, capped, plus random jitter on top.

    The delay is ``min(cap, base · 2^(attempts−1))``, then up to ``jitter`` times that again
    at random (``jitter`` 0 = none; 1 = up to double). The one backoff formula of Kollega.
    """
    delay = float(min(cap_seconds, base_seconds * (2.0 ** max(attempts - 1, 0))))
    if jitter:
        fraction = rng.random() if rng is not None else random.random()
        delay += delay * jitter * fraction
    return delay


def equal_jitter_delay(
    attempts: int, base_seconds: float, cap_seconds: float, rng: random.Random | None = None
) -> float:
    """ "Equal jitter": of the capped exponential delay, half is fixed and half random (work items, callbacks)."""
    # Half the ceiling, plus up to all of that half again: [ceiling/2, ceiling].
    return backoff_delay(attempts, base_seconds / 2, cap_seconds / 2, jitter=1.0, rng=rng)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a work item is retried after a transient failure, and how long it waits."""

    max_attempts: int = 5
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempts + 1`` (equal jitter, capped)."""
        return equal_jitter_delay(attempts, self.base_seconds, self.cap_seconds, rng)


def check_confirmations(material: dict[str, Any] | None, decision_data: dict[str, Any] | None) -> None:
    """Refuse an approval that lacks a confirmation the robot asked for in its material.

    A robot lists, under ``material["required_on_approve"]``, keys whose value in the
    decision's data must be truthy (a checkbox the person ticked), each with the Swedish text
    that says what is confirmed. Raises ReviewError (code ``confirmation_required``) naming them.
    """
    required = (material or {}).get("required_on_approve")
    if not isinstance(required, dict):
        return
    given = decision_data or {}
    missing = [str(text) for key, text in required.items() if not given.get(key)]
    if missing:
        raise ReviewError(
            "the approval needs a confirmation: " + "; ".join(missing), code="confirmation_required", missing=missing
        )


def bulk_statuses(action: str, status: ItemStatus | None) -> list[ItemStatus]:
    """The statuses a bulk ``action`` works on (``status`` narrows them); ValueError when not allowed."""
    if action not in BULK_ACTIONS:
        raise ValueError(f"unknown bulk action {action!r}; one of {', '.join(BULK_ACTIONS)}")
    if status is not None and status not in BULK_FAILED:
        raise ValueError(f"a bulk {action} works on failed items only, not {status.value!r}")
    return [status] if status is not None else sorted(BULK_FAILED)


def bulk_details(
    ids: list[int], robot: str | None, statuses: list[ItemStatus], error_code: str | None, run_id: int | None
) -> dict[str, object]:
    """The audit details of a bulk action: the filter and the items it changed."""
    return {
        "filter": {
            "robot": robot,
            "status": [s.value for s in statuses],
            "error_code": error_code,
            "run_id": run_id,
        },
        "items": ids,
        "count": len(ids),
    }


def _normalised(value: Any) -> str:
    return "".join(str(value if value is not None else "").split()).lower()


#: The decisions a person may make on an open review item.
DECISIONS = ("approve", "reject", "return")


def check_decision(decision: str, comment: str | None) -> None:
    """ReviewError unless ``decision`` is one of :data:`DECISIONS`, with the comment a rejection or return needs."""
    if decision not in DECISIONS:
        raise ReviewError(f"unknown decision {decision!r}; use one of {', '.join(DECISIONS)}")
    if decision in ("reject", "return") and not (comment and comment.strip()):
        raise ReviewError(f"a comment is required to {decision} an item")


def check_reasons(material: dict[str, Any] | None, decision_data: dict[str, Any] | None) -> None:
    """Refuse an approval that changes a part of the proposal without the reason the robot asks for.

    A robot lists, under ``material["reasons_on_change"]``, the parts a person may change, each
    ``{"label": Swedish name, "reason": key, "unchanged": {key: [values that are no change]}}``:
    when a field of the decision's data holds a value outside its unchanged values (compared
    without spaces and case; a missing field is unchanged), the ``reason`` key must hold text.
    Raises ReviewError (code ``reason_required``) naming the parts, so nothing half-decided is kept.
    """
    parts = (material or {}).get("reasons_on_change")
    if not isinstance(parts, list):
        return
    given = decision_data or {}
    missing: list[str] = []
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("unchanged"), dict):
            continue
        changed = any(
            key in given and _normalised(given[key]) not in {_normalised(v) for v in allowed}
            for key, allowed in part["unchanged"].items()
            if isinstance(allowed, list)
        )
        if changed and not str(given.get(str(part.get("reason")), "") or "").strip():
            missing.append(str(part.get("label") or part.get("reason")))
    if missing:
        raise ReviewError(
            "a changed part of the proposal needs a reason: " + "; ".join(missing),
            code="reason_required",
            missing=missing,
        )
