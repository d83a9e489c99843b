# ruff: noqa
"""What routing could still win in a Bosse month, with hindsight (run from the repository root):

PYTHONPATH=$PWD .venv/bin/python bench/bosse_experiments/rematch.py SEED DAYS

Runs Bosse, then per day (shifts by their start date): the shifts left open by start time;
the person-days of people eligible for one of that day's shifts (when it was first looked
at) but booked on none, by reply behaviour, and how many of them got no offer at all; and a
re-matching of that day: everyone booked that day counts 1 (their yes is known), everyone
eligible but unbooked counts their behaviour's chance of a yes to one more offer, on a shift
they were not already asked for; the best assignment (OR-Tools min-cost flow) is what perfect
routing of the day's yeses plus one more offer to each unbooked person could expect. It
knows who said yes and ignores clashes across days, so it overstates what a policy could do.
"""

import sys
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import bosse_month as bm
from ortools.graph.python import min_cost_flow
from robots.bosse.settings import BosseSettings
from sandbox.staffing import BEHAVIOURS

seed, days = int(sys.argv[1]), int(sys.argv[2])
month = bm.make_month(seed, date(2026, 11, 30), days, 120, 40)
sim = bm.Simulation(month, BosseSettings(wave_size=3), seed, baseline=False, joint=True)
sim.run()
beh = month.behaviour
booked_on: dict = {}
for st in sim.states:
    if st.booked_at:
        booked_on.setdefault(st.shift.local_start.date(), {})[st.shift.booked_substitute_id] = st
by_time, open_by_time = Counter(), Counter()
for st in sim.states:
    key = st.shift.local_start.strftime("%H:%M")
    by_time[key] += 1
    open_by_time[key] += st.booked_at is None
print("left open by start time:", {k: f"{open_by_time[k]}/{by_time[k]}" for k in sorted(by_time)})
free, never = Counter(), Counter()
actual, rematched = 0, 0.0
for d in sorted({s.shift.local_start.date() for s in sim.states}):
    day = [s for s in sim.states if s.shift.local_start.date() == d]
    bo = booked_on.get(d, {})
    people = sorted({p for s in day for p in (s.eligible_first or ())})
    weight = {}
    for p in people:
        if p in bo:
            weight[p] = 100
            continue
        free[beh[p]] += 1
        never[beh[p]] += not any(p in s.ledger.offers for s in day)
        if BEHAVIOURS[beh[p]][1] > 0:
            weight[p] = round(BEHAVIOURS[beh[p]][1] * 100)
    flow = min_cost_flow.SimpleMinCostFlow()
    node = {p: i + 2 for i, p in enumerate(weight)}
    snode = {s.shift.id: len(node) + 2 + j for j, s in enumerate(day)}
    for p, i in node.items():
        flow.add_arc_with_capacity_and_unit_cost(0, i, 1, -weight[p])
    for s in day:
        for p in s.eligible_first or ():
            if p in node and (p in bo or p not in s.ledger.offers):
                flow.add_arc_with_capacity_and_unit_cost(node[p], snode[s.shift.id], 1, 0)
        flow.add_arc_with_capacity_and_unit_cost(snode[s.shift.id], 1, 1, 0)
    flow.add_arc_with_capacity_and_unit_cost(0, 1, len(node), 0)
    flow.set_node_supply(0, len(node))
    flow.set_node_supply(1, -len(node))
    flow.solve()
    actual += len(bo)
    rematched += -flow.optimal_cost() / 100
print(
    "eligible, booked on none of the day's shifts (person-days):", dict(free), "of which no offer at all:", dict(never)
)
print(f"booked {actual}; re-matched with hindsight and one more offer each: {rematched:.1f}")
