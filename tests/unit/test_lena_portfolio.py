"""Lena's portfolio: N searches in N processes, the cheapest plan kept, a failed worker left out, never the night lost."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

import robots.lena.portfolio as portfolio_module
from robots.lena.check import check_plan
from robots.lena.model import Problem
from robots.lena.portfolio import available_cpus, solve_portfolio
from robots.lena.robot import LenaSettings
from robots.lena.samples import day
from robots.lena.solver import SolveResult, SolverOptions, solve
from tests.unit.test_lena_solver import random_day

#: A work limit ends these searches long before the time limit, which only has to be above the portfolio's minimum.
OPTIONS = SolverOptions(time_limit=portfolio_module.MIN_SECONDS, seed=1, work_limit=5, processes=3)
#: Each seed's objective as the priced worker reports it: seed 2's plan is the cheapest, and not the first worker's.
PRICES = {1: 300.0, 2: 100.0, 3: 200.0}


def priced(problem: Problem, options: SolverOptions) -> SolveResult:
    """A worker whose plan costs what :data:`PRICES` says for its seed (the plan itself is a real one)."""
    result = solve(problem, options)
    return replace(result, metrics=replace(result.metrics, objective=PRICES[options.seed]))


def crashes_on_seed_2(problem: Problem, options: SolverOptions) -> SolveResult:
    """The real search, except that seed 2's process dies at once, as a process killed by the system would."""
    if options.seed == 2:
        os._exit(9)
    return solve(problem, options)


def raises_on_seed_1(problem: Problem, options: SolverOptions) -> SolveResult:
    """The real search, except that seed 1's raises."""
    if options.seed == 1:
        raise MemoryError
    return solve(problem, options)


def always_crashes(problem: Problem, options: SolverOptions) -> SolveResult:
    """Every worker dies."""
    os._exit(1)


class TestPortfolio:
    """The cheapest worker's plan wins; failed workers are left out and logged; processes=1 is the single path."""

    def test_the_cheapest_workers_plan_is_kept(self) -> None:
        result = solve_portfolio(day(), OPTIONS, worker=priced)
        assert result.seed == 2 and result.metrics.objective == 100.0
        assert [(w.seed, w.objective, w.error) for w in result.workers] == [
            (1, 300.0, None),
            (2, 100.0, None),
            (3, 200.0, None),
        ]
        assert result.processes == 3 and check_plan(day(), result.plan) == []

    def test_the_portfolio_is_the_best_of_its_seeds(self) -> None:
        # The real searches, deterministic for a seed when the work limit ends them (the time limit, far
        # above what they take, only bounds a machine under load): the portfolio's plan is the
        # single-process plan of the cheapest seed. On this day the seeds' plans differ in cost.
        p, options = random_day(40, 5, 3), replace(OPTIONS, time_limit=120.0)
        alone = {s: solve(p, replace(options, seed=s, processes=1)) for s in (1, 2, 3)}
        assert len({r.metrics.objective for r in alone.values()}) > 1
        result = solve(p, options)
        cheapest = min(alone, key=lambda s: (alone[s].metrics.objective, s))
        assert result.seed == cheapest and result.plan == alone[cheapest].plan
        assert result.metrics.objective == min(r.metrics.objective for r in alone.values())
        assert result.cpu_seconds > 0

    def test_a_crashed_worker_is_left_out_and_logged(self) -> None:
        with capture_logs() as logs:
            result = solve_portfolio(day(), OPTIONS, worker=crashes_on_seed_2)
        assert result.seed in (1, 3) and check_plan(day(), result.plan) == []
        assert not result.plan.unassigned
        failed = [w for w in result.workers if w.error]
        assert [(w.seed, w.error) for w in failed] == [(2, "exit code 9")]
        assert [e["seed"] for e in logs if e["log_level"] == "warning"] == [2]

    def test_a_worker_that_raises_is_left_out(self) -> None:
        result = solve_portfolio(day(), OPTIONS, worker=raises_on_seed_1)
        assert result.seed in (2, 3)
        assert [(w.seed, w.error) for w in result.workers if w.error] == [(1, "MemoryError")]

    def test_when_every_worker_fails_the_day_is_solved_in_this_process(self) -> None:
        with capture_logs() as logs:
            result = solve_portfolio(day(), OPTIONS, worker=always_crashes)
        assert [w.error for w in result.workers] == ["exit code 1"] * 3
        assert result.seed == 1 and not result.plan.unassigned and check_plan(day(), result.plan) == []
        assert result.plan == solve(day(), replace(OPTIONS, processes=1)).plan
        assert any("solving in this process" in e["event"] for e in logs)

    def test_one_process_is_the_single_path(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def no_portfolio(*_: object, **__: object) -> None:
            raise AssertionError("a portfolio was started")

        monkeypatch.setattr(portfolio_module, "solve_portfolio", no_portfolio)
        result = solve(day(), replace(OPTIONS, processes=1))
        assert result.processes == 1 and result.workers == () and result.seed == 1
        # A time limit too short for starting processes keeps the single path too.
        short = solve(day(), replace(OPTIONS, time_limit=portfolio_module.MIN_SECONDS / 2))
        assert short.processes == 1

    def test_processes_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            SolverOptions(processes=0)

    def test_available_cpus_is_the_affinity(self) -> None:
        assert available_cpus() == len(os.sched_getaffinity(0)) >= 1


class TestSetting:
    """``[robots.lena] solver_processes``: one search by default, the CPUs available when empty, or as set."""

    def test_default_is_one_search(self) -> None:
        assert LenaSettings().solver_options().processes == 1
        assert LenaSettings(solver_processes=0).solver_options().processes == available_cpus()

    def test_set(self) -> None:
        assert LenaSettings(solver_processes=1).solver_options().processes == 1
        assert LenaSettings(solver_processes=3).solver_options().processes == 3
        with pytest.raises(ValidationError):
            LenaSettings(solver_processes=-1)
