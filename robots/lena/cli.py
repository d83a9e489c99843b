"""``kollega lena solve INSTANCE [--format solomon|hhcrsp|kollega] [--time-limit S] [--seed N] [--processes N] [--json]``.

Prints ``{"feasible", "vehicles", "distance", "total_tardiness", "max_tardiness", "objective",
"routes", "unassigned"}``; exit code 0 when every visit is planned, 1 when some are left
out, 2 when the file is malformed (naming what is wrong).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from robots.lena.check import check_plan
from robots.lena.formats import FORMATS, FormatError, parse_instance
from robots.lena.solver import SolverOptions, solve

app = typer.Typer(no_args_is_help=True, help="Lena: plan home-care days and solve routing benchmarks.")


@app.callback()
def main() -> None:
    """Lena's own commands."""


def _guess(path: Path) -> str:
    if path.suffix.lower() == ".txt":
        return "solomon"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "kollega"
    return "hhcrsp" if isinstance(data, dict) and "patients" in data else "kollega"


@app.command("solve")
def solve_command(
    instance: Path = typer.Argument(..., help="The instance file."),
    fmt: str | None = typer.Option(None, "--format", help=f"One of {', '.join(FORMATS)} (default: guessed)."),
    time_limit: float = typer.Option(10.0, "--time-limit", min=0.1, help="Seconds of search."),
    seed: int = typer.Option(1, "--seed", min=0, help="Seed of the search."),
    processes: int = typer.Option(
        1,
        "--processes",
        min=1,
        help="Searches at once, one process and seed each (seed, seed + 1, ...); the cheapest plan.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Solve one instance and print the plan's figures."""
    try:
        text = instance.read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"cannot read {instance}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    chosen = fmt or _guess(instance)
    try:
        inst = parse_instance(text, chosen, instance.stem)
    except FormatError as exc:
        typer.echo(f"{instance}: malformed {chosen} instance: " + "; ".join(exc.problems), err=True)
        raise typer.Exit(2) from exc
    result = solve(
        inst.problem, SolverOptions(time_limit=time_limit, seed=seed, weights=inst.weights, processes=processes)
    )
    feasible = not check_plan(inst.problem, result.plan) and not result.plan.unassigned
    objective = result.metrics.objective if inst.format == "kollega" else None
    out = inst.summary(result.plan, feasible, objective)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        typer.echo(
            f"{instance.name}: {'feasible' if feasible else 'NOT all planned'}, {out['vehicles']} routes, "
            f"distance {out['distance']}, tardiness {out['total_tardiness']} (max {out['max_tardiness']}), "
            f"objective {out['objective']} [{result.engine}, {result.seconds} s, {result.cpu_seconds} CPU s"
            + (f", {result.processes} processes, seed {result.seed}'s plan" if result.processes > 1 else "")
            + "]"
        )
        for u in out["unassigned"]:
            typer.echo(f"  unassigned {u['visit_id']}: {u['reason']}")
    raise typer.Exit(0 if feasible else 1)
