# ruff: noqa
"""Per person and day: shifts they were eligible for, offers they got, whether they said yes (run from the repository root):

PYTHONPATH=$PWD .venv/bin/python bench/bosse_experiments/tries.py SEED DAYS
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import bosse_month as bm
from robots.bosse.settings import BosseSettings
from robots.bosse.messages import Answer
from sandbox.staffing import BEHAVIOURS
from datetime import date

seed, days = int(sys.argv[1]), int(sys.argv[2])
month = bm.make_month(seed, date(2026, 11, 30), days, 120, 40)
for name, base in (("bosse", False), ("baseline", True)):
    sim = bm.Simulation(month, BosseSettings(wave_size=1 if base else 3), seed, baseline=base, joint=not base)
    sim.run()
    pd = {}
    for st in sim.states:
        d = st.shift.local_start.date()
        for sub in st.eligible_first or ():
            pd.setdefault((sub, d), [0, 0, 0, 0])[0] += 1
        for sub, o in st.ledger.offers.items():
            row = pd.setdefault((sub, d), [0, 0, 0, 0])
            row[1] += 1
            row[2] |= o.answer is Answer.yes
        if st.booked_at is not None:
            pd[(st.shift.booked_substitute_id, d)][3] = 1
    agg = {}
    for (sub, d), (k, asked, yes, booked) in pd.items():
        kind = month.behaviour[sub]
        q = BEHAVIOURS[kind][1]
        a = agg.setdefault(kind, [0, 0, 0, 0, 0, 0.0, 0.0])
        a[0] += 1
        a[1] += k
        a[2] += asked
        a[3] += yes
        a[4] += booked
        a[5] += 1 - (1 - q) ** k
        a[6] += 1 - (1 - q) ** min(asked, k)
    print(name)
    print(
        f"{'behaviour':10} {'person-days':>11} {'eligible/day':>12} {'asked/day':>9} {'with a yes':>10} {'booked':>6} {'1-(1-q)^k':>9} {'1-(1-q)^asked':>13}"
    )
    for kind, (n, k, asked, yes, booked, full, used) in sorted(agg.items()):
        print(f"{kind:10} {n:11} {k / n:12.2f} {asked / n:9.2f} {yes:10} {booked:6} {full:9.1f} {used:13.1f}")
