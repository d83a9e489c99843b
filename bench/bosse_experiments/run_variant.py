# ruff: noqa
"""One policy over N nights of one seed, as one JSON line (run from the repository root):

PYTHONPATH=$PWD .venv/bin/python bench/bosse_experiments/run_variant.py SEED DAYS bosse|base

With the evening's variants patch applied to commit 1b8d315 (the patch is in the history at
commit d0ebc1c, bench/bosse_experiments/variants_evening.patch: ``patch -p1 < …``), BOSSE_X chooses
the variants of the 2026-12-07 evening experiments (comma-separated: ``wd=30`` withdrawal after
the learnt reply time, ``wdsilent``, ``today``, ``par=1``, ``silentlast``, ``lowlast``,
``likely``, ``sn=2``). With the night's patch (in the history at the commit that added
bench/bosse_experiments/variants_night.patch, commit 49a44cf; apply it to 07b48fb) BOSSE_X chooses
``rollwait,rollswap`` / ``rollswap`` / ``rollwait`` (lookahead by simulated continuations), ``mcorder`` /
``mcall`` / ``mcalone`` (simulated risk), ``assign`` / ``assign2`` (greedy stochastic
assignment) or ``late2`` (a second person when the first's reply time does not fit); see
docs/benchmarks.md, "2026-12-07 night". BOSSE_SET=NAME=VALUE sets a module constant of robots.bosse.planning
(e.g. ``KEEP_FOR_SCARCER_FROM=0.05``, ``SILENT_AFTER_OFFERS=2``) on the code as it is.
"""

import json
import os
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import bosse_month as bm
import robots.bosse.planning as planning
from robots.bosse.settings import BosseSettings

for kv in filter(None, os.environ.get("BOSSE_SET", "").split(",")):
    name, value = kv.split("=")
    setattr(planning, name, type(getattr(planning, name))(float(value)))

seed, days, base = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "base"
t0 = time.process_time()
month = bm.make_month(seed, date(2026, 11, 30), days, 120, 40)
sim = bm.Simulation(month, BosseSettings(wave_size=1 if base else 3), seed, baseline=base, joint=not base)
sim.run()
r = sim.report()
keys = ("booked", "offers_sent", "sms_per_filled_shift", "rule_violations", "independent_check_violations")
out = {k: r[k] for k in (*keys, "hours_stdev", "hours_range")}
out["cpu"] = round(time.process_time() - t0, 1)
out["withdrawn_late_yes"] = getattr(sim, "withdrawn", 0)
variant = os.environ.get("BOSSE_X", "") + os.environ.get("BOSSE_SET", "")
print(json.dumps({"seed": seed, "days": days, "variant": variant, "base": base, **out}))
