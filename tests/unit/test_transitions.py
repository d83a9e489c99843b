"""The work-item transition rules and the one backoff formula (core/transitions.py)."""

from __future__ import annotations

import random

import pytest

from core.records import FINAL_ITEM_STATUSES, ItemStatus
from core.transitions import (
    CANCELLABLE,
    REQUEUEABLE,
    RETRYABLE,
    RetryPolicy,
    backoff_delay,
    can_cancel,
    can_requeue,
    can_retry,
    equal_jitter_delay,
)


class TestTransitions:
    """Which status may go where."""

    def test_done_and_running_items_are_never_put_back_or_cancelled(self) -> None:
        for status in (ItemStatus.done, ItemStatus.in_progress):
            assert not can_retry(status) and not can_cancel(status) and not can_requeue(status)

    def test_a_cancelled_item_may_be_retried_but_not_cancelled_again(self) -> None:
        assert can_retry("cancelled") and not can_cancel("cancelled")

    def test_a_pending_item_may_be_cancelled_but_not_retried(self) -> None:
        assert can_cancel("pending") and not can_retry("pending")

    def test_the_sets(self) -> None:
        assert FINAL_ITEM_STATUSES - {ItemStatus.done} >= RETRYABLE
        assert RETRYABLE | {ItemStatus.needs_review} == REQUEUEABLE
        assert ItemStatus.needs_review not in CANCELLABLE


class TestBackoff:
    """Exponential, capped, with jitter on top."""

    def test_without_jitter_it_doubles_up_to_the_cap(self) -> None:
        assert [backoff_delay(n, 1, 5, jitter=0) for n in (0, 1, 2, 3, 4, 10)] == [1, 1, 2, 4, 5, 5]

    @pytest.mark.parametrize("attempts", [1, 2, 5, 30])
    def test_jitter_adds_at_most_its_fraction(self, attempts: int) -> None:
        base = min(60.0, 2.0 * 2 ** (attempts - 1))
        for seed in range(50):
            assert base <= backoff_delay(attempts, 2, 60, jitter=0.5, rng=random.Random(seed)) <= base * 1.5

    def test_equal_jitter_is_half_fixed_half_random(self) -> None:
        # The formula the queue and the review callbacks used before they shared this one.
        for attempts in (0, 1, 3, 8, 20):
            ceiling = float(min(3600, 30 * 2 ** max(attempts - 1, 0)))
            old = ceiling / 2 + random.Random(attempts).uniform(0, ceiling / 2)
            assert equal_jitter_delay(attempts, 30, 3600, random.Random(attempts)) == pytest.approx(old)
            assert RetryPolicy(5, 30, 3600).delay(attempts, random.Random(attempts)) == pytest.approx(old)
