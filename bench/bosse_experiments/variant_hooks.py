# ruff: noqa
# Experiment of 2026-12-07 (docs/benchmarks.md, Bosse, 'spending the unused SMS'): not part of Kollega.
"""Variants of Bosse's joint plan, patched in for experiments."""

from datetime import timedelta
import robots.bosse.planning as pl
import bosse_month as bm
from robots.bosse.history import timely_yes

CTX = {}
_orig_plan = pl.plan_offers
_orig_order = pl._least_needed_elsewhere_first
_orig_size = pl.adaptive_wave_size
OPTS = {}


def plan(shifts, evaluations, ledgers, people, now, settings, history=None, clash_cache=None):
    CTX.update(now=now, settings=settings, history=history or {}, ledgers=ledgers, by_id={s.id: s for s in shifts})
    return _orig_plan(shifts, evaluations, ledgers, people, now, settings, history, clash_cache)


def fast_reliable(sub):
    st = CTX["history"].get(sub)
    if st is None or st.offers < OPTS.get("min_obs", 2):
        return False
    um = st.usual_minutes
    return st.yes_share >= OPTS.get("rel", 0.6) and um is not None and um <= OPTS.get("fast", 30)


def order(sid, shift, chosen, remaining, unfilled, conflicts, people):
    base = _orig_order(sid, shift, chosen, remaining, unfilled, conflicts, people)
    now, settings = CTX["now"], CTX["settings"]
    closes = pl.close_at(shift, settings)
    rounds = (closes - now).total_seconds() / 60 / settings.reply_wait_minutes
    if rounds <= OPTS.get("reserve_rounds", 4):
        if OPTS.get("best_first_late"):
            h = CTX["history"]
            return sorted(base, key=lambda s: -timely_yes(h.get(s), now, closes))
        return base
    day = shift.local_start.date()
    h = CTX["history"]
    if OPTS.get("mode") == "ascending":
        key = lambda s: (not people[s].has_priority_on(day), round(timely_yes(h.get(s), now, closes), 1))
    else:
        key = lambda s: (not people[s].has_priority_on(day), fast_reliable(s))
    return sorted(base, key=key)


def size(remaining, now, closes, settings):
    return _orig_size(remaining, now, closes, settings)


def apply(variant):
    global OPTS
    OPTS = {}
    pl._least_needed_elsewhere_first = _orig_order
    pl.plan_offers = plan
    bm.plan_offers = plan
    if variant in ("control", "x"):
        return
    for part in variant.split("+"):
        if part == "reserve":
            OPTS["mode"] = "reserve"
            pl._least_needed_elsewhere_first = order
        elif part == "asc":
            OPTS["mode"] = "ascending"
            pl._least_needed_elsewhere_first = order
        elif part.startswith("rr"):
            OPTS["reserve_rounds"] = float(part[2:])
        elif part == "bfl":
            OPTS["best_first_late"] = True
        elif part.startswith("fast"):
            OPTS["fast"] = float(part[4:])
        else:
            raise ValueError(part)


import plan_x

_orig_next = pl.next_step
from robots.bosse.planning import Step, StepKind


def next_step_x(shift, evaluation, ledger, now, settings):
    step = _orig_next(shift, evaluation, ledger, now, settings)
    if step.code == "waiting":
        remaining = [c.id for c in evaluation.eligible if c.id not in ledger.offers and c.reachable]
        if remaining and not pl.in_quiet_hours(now, settings.quiet_hours_start, settings.quiet_hours_end):
            return Step(StepKind.wave, step.reason, "waiting", ledger.last_wave + 1, tuple(remaining))
    return step


def apply2(variant):
    apply(variant.split("@")[0] if "@" in variant else "control")
    if "@" in variant:
        plan_x.OPTS["target"] = float(variant.split("@")[1])

        def plan2(shifts, evaluations, ledgers, people, now, settings, history=None, clash_cache=None):
            # plan_x calls next_step from its own namespace: the original (waiting stays waiting there)
            return plan_x.plan_offers_x(shifts, evaluations, ledgers, people, now, settings, history, clash_cache)

        pl.plan_offers = plan2
        bm.plan_offers = plan2
        bm.next_step = next_step_x
    else:
        plan_x.OPTS.clear()
        bm.next_step = _orig_next
