"""``kollega bosse …``: Bosse's own commands.

``kollega bosse match FILE [--json]`` checks the substitutes in FILE against one shift and
ranks the eligible ones (the contract in :mod:`robots.bosse.contract`). ``FILE`` may be
``-`` for standard input. Exit codes: 0 done (also when nobody is eligible), 2 bad input —
the message on standard error names the field.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from pydantic import ValidationError

from robots.bosse.contract import MatchResult, format_validation_error, match_json
from robots.bosse.rules import DEFAULT_RULES, BosseRules

__all__ = ["format_result", "make_app"]


def format_result(result: MatchResult) -> str:
    """The result for people: the ranked eligible with why, then the others with every reason."""
    lines = [f"{len(result['eligible'])} behöriga, {len(result['ineligible'])} ej behöriga"]
    if result["eligible"]:
        lines.append("")
        lines.append("Behöriga, bäst först:")
        lines += [f"  {e['rank']}. {e['id']}: {e['why']}" for e in result["eligible"]]
    if result["ineligible"]:
        lines.append("")
        lines.append("Ej behöriga:")
        for entry in result["ineligible"]:
            lines.append(f"  {entry['id']}:")
            lines += [f"    - {reason}" for reason in entry["reasons"]]
    return "\n".join(lines)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def make_app(rules: BosseRules | None = None) -> typer.Typer:
    """The typer app mounted as ``kollega bosse``; ``rules`` are the thresholds ``match`` applies."""
    app = typer.Typer(help="Bosse: vikarier till lediga pass.", no_args_is_help=True, add_completion=False)
    used_rules = rules or DEFAULT_RULES

    @app.callback()
    def _group() -> None:
        """Bosse's commands."""

    @app.command("match")
    def match_command(
        file: str = typer.Argument(..., help="JSON file with the shift and the substitutes ('-' = standard input)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Check every substitute against the working-time rules for one shift and rank the eligible."""
        try:
            text = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        except OSError as exc:
            raise _fail(f"cannot read {file}: {exc.strerror or exc}") from None
        try:
            result = match_json(text, used_rules)
        except ValidationError as exc:
            raise _fail(format_validation_error(exc)) from None
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        else:
            typer.echo(format_result(result))

    return app
