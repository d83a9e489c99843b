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

ErrorKind = Literal["business", "application", "uncertain"]

UNCERTAIN_TITLE = "Osäkert utfall: kontrollera om ändringen blev gjord"

#: What a case worker reads about a technical failure, by ``error_kind``.
PROBLEM_SUMMARIES: dict[str, str] = {
    "application": "Ett tekniskt fel hindrade roboten, också när den försökte igen. IT kan behöva åtgärda felet.",
    "uncertain": "Roboten avbröts medan den skrev till ett annat system. Det är osäkert om ändringen blev gjord: "
    "kontrollera i det systemet innan du beslutar.",
}


def problem_title(error_kind: ErrorKind, message: str, attempts: int) -> str:
    """The review item's title: the business error itself, or what kind of failure it was."""
    if error_kind == "business":
        return message[:500]
    if error_kind == "uncertain":
        return UNCERTAIN_TITLE
    return f"Tekniskt fel efter {attempts} försök"


def problem_summary(error_kind: ErrorKind, message: str) -> str:
    """The review item's summary: a business error's own (Swedish) words, else general ones."""
    return message if error_kind == "business" else PROBLEM_SUMMARIES[error_kind]


def problem_material(
    reference: str, code: str, message: str, artifacts: Sequence[int], error_kind: ErrorKind
) -> dict[str, Any]:
    """The review's material; artifact ids only when there are any (older items have none).

    ``error_kind`` tells the inbox whose words ``error`` is (items from before it was kept
    have none and are shown as before).
    """
    material: dict[str, Any] = {"reference": reference, "error_code": code, "error": message, "error_kind": error_kind}
    if artifacts:
        material["artifacts"] = [int(a) for a in artifacts]
    return material
