"""Each substitute's reply history, read from Bosse's own past offers (``robots.bosse.history``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from robots.bosse.history import PRIOR_YES, WINDOW, ReplyStats, reply_history, timely_yes
from robots.bosse.ledger import Offer, Reply, SentMessage, ShiftLedger
from robots.bosse.messages import Answer, MessageKind

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def offer(
    ledger: ShiftLedger,
    sub: str,
    sent: datetime,
    answer: Answer | None = None,
    after_minutes: float = 0,
    *,
    delivered: bool = True,
) -> None:
    msg = SentMessage(
        f"S-{ledger.shift_id}-{sub}", ledger.shift_id, MessageKind.offer, sub, 1, "+46701740000", "", sent, delivered
    )
    o = Offer(msg)
    if answer is not None:
        received = sent + timedelta(minutes=after_minutes)
        o.replies.append(Reply(f"IN-{ledger.shift_id}-{sub}", ledger.shift_id, sub, answer, answer.value, received))
    ledger.offers[sub] = o


def test_answers_and_long_silences_count_recent_silences_and_failed_sms_do_not() -> None:
    a, b, c, d = (ShiftLedger(x) for x in "ABCD")
    offer(a, "V1", NOW - timedelta(days=2), Answer.yes, 10)
    offer(b, "V1", NOW - timedelta(days=1), Answer.no, 30)
    offer(c, "V1", NOW - timedelta(hours=13))  # unanswered for longer than 12 h: counts, not answered
    offer(d, "V1", NOW - timedelta(hours=2))  # may still be answered: not counted yet
    offer(d, "V2", NOW - timedelta(days=1), delivered=False)  # never reached them
    history = reply_history([a, b, c, d], NOW)
    assert history == {"V1": ReplyStats(offers=3, answered=2, yes=1, minutes=(10.0, 30.0))}
    assert history["V1"].usual_minutes == 20


def test_a_reply_after_now_is_not_known_yet() -> None:
    a = ShiftLedger("A")
    offer(a, "V1", NOW - timedelta(hours=1), Answer.yes, 90)
    assert reply_history([a], NOW) == {}


def test_only_the_recent_months_count() -> None:
    old, recent = ShiftLedger("OLD"), ShiftLedger("NEW")
    offer(old, "V1", NOW - WINDOW - timedelta(days=1), Answer.no, 5)  # a refusal from long ago is forgotten
    offer(recent, "V1", NOW - WINDOW + timedelta(days=1), Answer.yes, 5)
    assert reply_history([old, recent], NOW) == {"V1": ReplyStats(offers=1, answered=1, yes=1, minutes=(5.0,))}


def test_estimates_lean_on_the_prior_until_there_is_history() -> None:
    assert ReplyStats().yes_share == PRIOR_YES
    assert ReplyStats().usual_minutes is None
    eager = ReplyStats(offers=8, answered=8, yes=8, minutes=(5.0,) * 8)
    silent = ReplyStats(offers=8, answered=0, yes=0)
    assert eager.yes_share == pytest.approx(0.9)
    assert silent.yes_share == pytest.approx(0.1)
    assert ReplyStats(offers=1, answered=1, yes=1, minutes=(5.0,)).yes_share < eager.yes_share


def test_someone_who_answers_after_hours_is_unlikely_to_make_a_near_deadline() -> None:
    late = ReplyStats(offers=4, answered=4, yes=3, minutes=(200.0, 240.0, 300.0, 360.0))
    assert late.usual_minutes == 270
    assert timely_yes(late, NOW, NOW + timedelta(hours=6)) == pytest.approx(late.yes_share)
    assert timely_yes(late, NOW, NOW + timedelta(hours=1)) == pytest.approx(late.yes_share * 0.25)
    assert timely_yes(None, NOW, NOW + timedelta(minutes=5)) == PRIOR_YES  # nothing known: the prior
