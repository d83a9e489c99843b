"""A portfolio of searches: one day solved by N processes at once, each with its own seed; the cheapest plan wins.

On the big Mankowska days the search settles within about 15 s in one arrangement of the day that
the seed decides, and single solves of the same day differ by up to 15 points between seeds
(docs/benchmarks.md). A municipality's server plans tomorrow at night with its CPUs otherwise
idle, so N independent searches for the same wall-clock time, the plan with the lowest objective
kept (the plans' own cost, :class:`robots.lena.metrics.PlanMetrics`), buy the best of N seeds at
N times the CPU. Worker *i* searches with seed ``options.seed + i``, so worker 0's search is the
single-process search of the same seed.

Each worker is a whole :func:`robots.lena.solver.solve` in a spawned process (OR-Tools and PyVRP
keep no state that a fork could share safely); its plan has passed the solver's check there. A
worker that fails (an exception, a crash, or still running well after the limit) is left out and
logged; if every worker fails, the day is solved in this process instead, so the night keeps a plan.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from robots.lena.model import Problem
    from robots.lena.solver import SolveResult, SolverOptions

__all__ = ["Worker", "WorkerRun", "available_cpus", "solve_portfolio"]

log = structlog.get_logger("kollega.lena")

#: Below this time limit (seconds) a solve stays in one process: a spawned process spends about a second
#: importing OR-Tools and PyVRP before it searches, which a short solve cannot spare.
MIN_SECONDS = 10.0
#: Seconds a worker keeps back from the limit to hand its plan back (pickled through a pipe).
HANDBACK = 0.5
#: A worker still running this long after the time limit (the larger of the two) is stopped and left out;
#: a model being built cannot be interrupted, so a worker may overrun the limit by a few seconds.
GRACE_SECONDS, GRACE_SHARE = 10.0, 0.5
#: When every worker failed, the solve in this process gets at least this share of the time limit.
FALLBACK_SHARE = 0.25

#: One search: the day and its options (``processes=1``, the worker's seed and time) in, a checked plan out.
Worker = Callable[["Problem", "SolverOptions"], "SolveResult"]


@dataclass(frozen=True)
class WorkerRun:
    """What one worker of a portfolio did."""

    seed: int
    #: Its plan's objective (None when it failed).
    objective: float | None
    #: Wall-clock seconds from the portfolio's start to its plan (or failure).
    seconds: float
    #: CPU seconds of its search (None when it failed before saying).
    cpu_seconds: float | None = None
    #: Why it failed, in English without the day's data ("ValueError", "exit code -9", "overdue"); None if it did not.
    error: str | None = None


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity; all of the machine's where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_search(problem: Problem, options: SolverOptions) -> SolveResult:
    """The default worker: the single-process solve."""
    from robots.lena.solver import solve

    return solve(problem, replace(options, processes=1))


def _child(conn: Connection, worker: Worker, problem: Problem, options: SolverOptions, began: float) -> None:
    """A worker process: search for what is left of the portfolio's time, send the result (or the failure) back."""
    # time.monotonic is the system's monotonic clock on Linux, shared by every process, so ``began`` holds here.
    left = options.time_limit - (time.monotonic() - began) - HANDBACK
    cpu = time.process_time()
    message: tuple[str, Any, float]
    try:
        result = worker(problem, replace(options, time_limit=max(0.5, left), processes=1))
        message = ("ok", result, time.process_time() - cpu)
    except Exception as exc:  # any failure of a search is reported, never lost
        message = ("error", type(exc).__name__, time.process_time() - cpu)
    conn.send(message)
    conn.close()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def solve_portfolio(problem: Problem, options: SolverOptions, worker: Worker = run_search) -> SolveResult:
    """Solve ``problem`` in ``options.processes`` processes at once with seeds ``seed``, ``seed + 1``, …; the cheapest plan.

    The result's ``seconds`` is the portfolio's wall-clock time, ``cpu_seconds`` that of this process and
    its workers together, ``workers`` what each did and ``seed`` the seed whose plan won.
    """
    began, cpu, children = time.monotonic(), time.process_time(), _children_cpu()
    problem.validate()  # a day that is not valid fails here, once, as it does in one process
    n = options.processes
    seeds = [options.seed + i for i in range(n)]
    context = multiprocessing.get_context("spawn")
    runs: dict[int, WorkerRun] = {}
    results: dict[int, SolveResult] = {}
    pending: dict[Connection, tuple[int, multiprocessing.process.BaseProcess]] = {}

    def failed(i: int, error: str, cpu_seconds: float | None = None) -> None:
        runs[i] = WorkerRun(seeds[i], None, round(time.monotonic() - began, 3), cpu_seconds, error)
        log.warning("A portfolio worker failed; its plan is left out", seed=seeds[i], error=error, processes=n)

    try:
        for i, seed in enumerate(seeds):
            receive, send = context.Pipe(duplex=False)
            started: multiprocessing.process.BaseProcess = context.Process(
                target=_child, args=(send, worker, problem, replace(options, seed=seed), began), daemon=True
            )
            try:
                started.start()
            except Exception as exc:  # a worker that cannot start is one failed worker
                receive.close()
                failed(i, f"could not start: {type(exc).__name__}")
                continue
            finally:
                send.close()  # the child holds its own end: when it dies, our end reads end-of-file
            pending[receive] = (i, started)
        deadline = began + options.time_limit + max(GRACE_SECONDS, GRACE_SHARE * options.time_limit)
        while pending:
            ready = wait(list(pending), timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            for conn in ready:
                assert isinstance(conn, Connection)
                i, process = pending.pop(conn)
                try:
                    kind, payload, cpu_seconds = conn.recv()
                except Exception:  # end of file: the process died without a word
                    process.join(timeout=5)
                    failed(i, f"exit code {process.exitcode}")
                    continue
                finally:
                    conn.close()
                process.join(timeout=5)
                if kind != "ok":
                    failed(i, str(payload), round(cpu_seconds, 2))
                    continue
                results[i] = payload
                runs[i] = WorkerRun(
                    seeds[i],
                    payload.metrics.objective,
                    round(time.monotonic() - began, 3),
                    round(cpu_seconds, 2),
                )
        for conn, (i, process) in pending.items():
            process.kill()
            process.join(timeout=5)
            conn.close()
            failed(i, "overdue")
        pending.clear()
    finally:
        for conn, (_, process) in pending.items():  # interrupted: leave no process searching on
            process.kill()
            conn.close()
    workers = tuple(runs[i] for i in sorted(runs))
    if not results:
        seconds = max(options.time_limit - (time.monotonic() - began), FALLBACK_SHARE * options.time_limit)
        log.warning("Every portfolio worker failed; solving in this process instead", processes=n, seconds=seconds)
        winner, seed = run_search(problem, replace(options, time_limit=seconds)), options.seed
    else:
        best = min(results, key=lambda i: (results[i].status != "solved", results[i].metrics.objective, i))
        winner, seed = results[best], seeds[best]
    return replace(
        winner,
        seconds=round(time.monotonic() - began, 3),
        cpu_seconds=round(time.process_time() - cpu + _children_cpu() - children, 2),
        seed=seed,
        processes=n,
        workers=workers,
    )
