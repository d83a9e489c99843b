"""`kollega review decide` (M3 of issue 17): the OS account is the actor; four-eyes needs two of them.

The review found that `--by anna` then `--by bertil` met four-eyes with one person, and the
audit log named two people who never acted. Here the same OS account tries it, also with
USER and LOGNAME set to another name; only a second OS account (simulated) completes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

import core.cli.common
from core.cli import main
from core.cli.common import os_user
from core.review import create_review
from core.runs import SqlRunStore
from core.storage.db import Database
from core.storage.models import AuditEvent, ReviewItem, ReviewKind, ReviewState
from core.testing import FakeClock

PNR = "191212121212"


@pytest.fixture
def four_eyes_item(db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    """A four-eyes review item in the database the CLI opens."""
    monkeypatch.setenv("KOLLEGA_DATABASE_URL", db.url)
    monkeypatch.setenv("KOLLEGA_VAR_DIR", str(tmp_path / "var"))
    SqlRunStore(db, FakeClock()).ensure_tenant("0000", "Testkommun")
    with db.session() as s:
        row = create_review(
            s,
            tenant="0000",
            robot="example",
            work_item_id=None,
            queue="example.review",
            kind=ReviewKind.decision,
            title="Utbetalning",
            summary="",
            material={},
            subject=PNR,
            actor="robot:example",
            now=FakeClock().now(),
            four_eyes=True,
        )
        s.flush()
        return int(row.id)


def review(db: Database, review_id: int) -> ReviewItem:
    with db.session() as s:
        row = s.get(ReviewItem, review_id)
        assert row is not None
        s.expunge(row)
        return row


class TestFourEyesFromTheCommandLine:
    """One operating-system account can give one approval, whatever names it types."""

    def test_one_os_user_cannot_approve_twice_under_two_names(
        self, db: Database, four_eyes_item: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        me = f"cli:{os_user()}"
        assert main(["review", "decide", str(four_eyes_item), "approve", "--by", "anna"]) == 0
        first = review(db, four_eyes_item)
        assert first.state == ReviewState.open and first.first_approver == me
        monkeypatch.setenv("USER", "bertil")  # the variables getpass believes
        monkeypatch.setenv("LOGNAME", "bertil")
        capsys.readouterr()
        assert main(["review", "decide", str(four_eyes_item), "approve", "--by", "bertil"]) == 2
        assert "different person" in capsys.readouterr().err
        assert main(["review", "decide", str(four_eyes_item), "approve"]) == 2
        assert review(db, four_eyes_item).state == ReviewState.open
        with db.session() as s:
            events = s.execute(select(AuditEvent.actor, AuditEvent.action, AuditEvent.details)).all()
        actors = {actor for actor, _action, _details in events}
        assert not actors & {"user:anna", "user:bertil"}  # nobody named is recorded as having acted
        claims = [d["named"] for _a, action, d in events if action == "review.cli_named"]
        assert claims == ["anna"]  # the refused attempt left no claim either
        assert [a for a, action, _d in events if action == "review.first_approval"] == [me]

    def test_a_second_os_account_completes_it(
        self, db: Database, four_eyes_item: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert main(["review", "decide", str(four_eyes_item), "approve"]) == 0
        monkeypatch.setattr(core.cli.common, "os_user", lambda: "bertil-os")
        assert main(["review", "decide", str(four_eyes_item), "approve"]) == 0
        done = review(db, four_eyes_item)
        assert done.state == ReviewState.approved
        assert (done.first_approver, done.decided_by) == (f"cli:{os_user()}", "cli:bertil-os")

    def test_a_name_that_is_no_account_name_is_refused_before_deciding(self, db: Database, four_eyes_item: int) -> None:
        assert main(["review", "decide", str(four_eyes_item), "approve", "--by", "anna; drop"]) == 2
        assert review(db, four_eyes_item).first_approver is None
