# ruff: noqa
# Experiment of 2026-12-07 (docs/benchmarks.md, Bosse, 'spending the unused SMS'): not part of Kollega.
"""Bosse variants against the list-order baseline on the same months (run from the repository root):

    PYTHONPATH=$PWD:$PWD/bench/bosse_experiments .venv/bin/python bench/bosse_experiments/variants.py DAYS SEEDS VARIANTS

e.g. ``7 1,2,3,4,5 control,reserve,asc,control@1.0``: ``control`` is Bosse as it is; ``reserve`` asks the
fast, reliable responders last while a shift has more than 4 rounds of replies left; ``asc`` asks the least
likely to say yes first; ``@Y`` lets every shift, also one waiting for replies, keep asking until the
expected yeses of its unanswered offers reach Y (waves sized by risk, not capped at wave_size).
"""

from __future__ import annotations
import sys, json, time, statistics, os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import bosse_month as bm
import robots.bosse.planning as pl
from robots.bosse.settings import BosseSettings
from datetime import date


def run(seed, days, variant, baseline=False):
    import variant_hooks

    variant_hooks.apply2(variant)
    month = bm.make_month(seed, date(2026, 11, 30), days, 120, 40)
    settings = BosseSettings(wave_size=1 if baseline else 3, reply_wait_minutes=30)
    sim = bm.Simulation(month, settings, seed, baseline=baseline, joint=not baseline)
    t = time.process_time()
    sim.run()
    r = sim.report()
    return dict(
        seed=seed,
        variant="baseline" if baseline else variant,
        booked=r["booked"],
        shifts=r["shifts"],
        offers=r["offers_sent"],
        sd=r["hours_stdev"],
        rng=r["hours_range"],
        cpu=round(time.process_time() - t, 1),
        causes=r["unfilled_analysis"]["causes"],
    )


if __name__ == "__main__":
    import multiprocessing as mp

    days = int(sys.argv[1])
    seeds = [int(s) for s in sys.argv[2].split(",")]
    variants = sys.argv[3].split(",")
    jobs = [(s, days, "x", True) for s in seeds] + [(s, days, v, False) for v in variants for s in seeds]
    with mp.get_context("spawn").Pool(int(os.environ.get("PROCS", "2"))) as pool:
        res = pool.starmap(run, jobs)
    base = {r["seed"]: r for r in res if r["variant"] == "baseline"}
    for r in res:
        b = base[r["seed"]]
        r["pp"] = round(100 * (r["booked"] - b["booked"]) / r["shifts"], 2)
        r["sms_ratio"] = round((r["offers"] / r["booked"]) / (b["offers"] / b["booked"]), 2)
        print(json.dumps(r), flush=True)
    for v in ["baseline"] + variants:
        rs = [r for r in res if r["variant"] == v]
        bk = sum(r["booked"] for r in rs)
        sh = sum(r["shifts"] for r in rs)
        bb = sum(base[r["seed"]]["booked"] for r in rs)
        print(
            f"{v:30} booked {bk}/{sh}  pp {100 * (bk - bb) / sh:+.2f}  sms/fill {sum(r['offers'] for r in rs) / bk:.2f}  "
            f"sd {statistics.mean(r['sd'] for r in rs):.2f} range {statistics.mean(r['rng'] for r in rs):.1f}"
        )
