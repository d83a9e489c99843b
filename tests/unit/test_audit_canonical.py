"""The pieces PostgreSQL hashes around an event's seq and prev_hash are exactly the canonical JSON."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from core import audit


@pytest.mark.parametrize(
    ("subject", "details"),
    [
        (None, {}),
        ("191212121212", {"review_id": 7, "queue": "ronney.ansökan"}),
        ("x", {"note": '"prev_hash":"0","seq":1', "nested": {"seq": [1, 2], "prev_hash": None}, "e": "🙂"}),
    ],
)
def test_pieces_with_seq_and_prev_hash_are_what_event_hash_hashes(subject: str | None, details: dict[str, Any]) -> None:
    when = datetime(2026, 12, 7, 8, 15, 30, 123456, tzinfo=UTC)
    fields: dict[str, Any] = {
        "time": when,
        "tenant": "1081",
        "actor": "user:anna",
        "action": "review.opened",
        "subject": subject,
        "purpose": "handläggning",
        "details": details,
    }
    before, between, after = audit.canonical_with_gaps(**fields)
    prev = "ab" * 32
    for seq in (1, 42, 10**12):
        joined = before + prev.encode() + between + str(seq).encode() + after
        assert hashlib.sha256(joined).hexdigest() == audit.event_hash(seq=seq, prev_hash=prev, **fields)
