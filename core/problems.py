"""A failed or uncertain work item's problem report: the review material and what a person reads.

The SQL queue (:mod:`core.queue`) and the in-memory one (:mod:`core.testing.memory`) build the
same report here. A :class:`core.errors.BusinessError`'s message is written for the case
worker, in Swedish (docs/writing-a-robot.md), and is shown as it is. A technical failure's
message is English, for logs, the CLI and IT: the case worker reads the general Swedish words
of :data:`PROBLEM_SUMMARIES`, and the inbox shows the message under "Teknisk information".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from core.records import ReviewKind

ErrorKind = Literal["business", "application", "uncertain"]

UNCERTAIN_TITLE = "Osäkert utfall: kontrollera om ändringen blev gjord"

#: What a case worker reads about a technical failure, by ``error_kind``.
PROBLEM_SUMMARIES: dict[str, str] = {
    "application": "Ett tekniskt fel hindrade roboten, också när den försökte igen. IT kan behöva åtgärda felet.",
    "uncertain": "Roboten avbröts medan den skrev till ett annat system. Det är osäkert om ändringen blev gjord: "
    "kontrollera i det systemet innan du beslutar.",
}


def problem_report(
    error_kind: ErrorKind, reference: str, code: str, message: str, attempts: int, artifacts: Sequence[int] = ()
) -> dict[str, Any]:
    """The review item's kind, title, summary and material (keyword arguments of ``create_review``).

    Title and summary: a business error's own (Swedish) words, else what kind of failure it was
    in general words. The material keeps the reference, the code, the message and ``error_kind``
    (whose words ``error`` is; items from before it was kept have none and are shown as business
    errors); artifact ids only when there are any.
    """
    material: dict[str, Any] = {"reference": reference, "error_code": code, "error": message, "error_kind": error_kind}
    if artifacts:
        material["artifacts"] = [int(a) for a in artifacts]
    if error_kind == "business":
        title, summary = message[:500], message
    elif error_kind == "uncertain":
        title, summary = UNCERTAIN_TITLE, PROBLEM_SUMMARIES["uncertain"]
    else:
        title, summary = f"Tekniskt fel efter {attempts} försök", PROBLEM_SUMMARIES["application"]
    kind = ReviewKind.uncertain if error_kind == "uncertain" else ReviewKind.exception
    return {"kind": kind, "title": title, "summary": summary, "material": material}


def decision_failure_material(review_id: int, decision: str, error: str) -> dict[str, Any]:
    """The material of the exception item for a decision that could not be carried out.

    ``error`` is the technical text (English, for IT): the inbox shows it folded away, and links
    the decided item instead of showing its id.
    """
    return {"review_id": review_id, "decision": decision, "error": error, "error_kind": "application"}
