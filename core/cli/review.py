"""``kollega review list | show | decide``: the review queues from the command line."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from core.cli.common import cli_actor, console, emit_json, load_cli_settings, open_database
from core.storage.models import ReviewState

review_app = typer.Typer(no_args_is_help=True, help="Review queues: list, show and decide items.")


def register(app: typer.Typer) -> None:
    """Add ``kollega review …`` to ``app``."""
    app.add_typer(review_app, name="review")


@review_app.command("list")
def review_list(
    queue: str | None = typer.Option(None, "--queue"),
    tenant: str | None = typer.Option(None, "--tenant"),
    state: ReviewState = typer.Option(ReviewState.open, "--state"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Review items, oldest first."""
    from core.review import ReviewQueue

    settings = load_cli_settings()
    rq = ReviewQueue(open_database(settings))
    rows = rq.list(tenants={tenant} if tenant else None, queue=queue, state=state)
    data = [
        {
            "id": r.id,
            "tenant": r.tenant,
            "queue": r.queue,
            "kind": r.kind.value,
            "title": r.title,
            "state": r.state.value,
            "four_eyes": r.four_eyes,
            "due_at": r.due_at.isoformat() if r.due_at else None,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]
    if as_json:
        emit_json(data)
        return
    table = Table("Id", "Tenant", "Queue", "Kind", "Title", "Due", "State")
    for d in data:
        table.add_row(*(str(d[k] or "") for k in ("id", "tenant", "queue", "kind", "title", "due_at", "state")))
    console.print(table)


@review_app.command("show")
def review_show(
    review_id: int = typer.Argument(...),
    by: str | None = typer.Option(None, "--by", help="Who is looking (written to the access log)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one review item (an audited access to personal data)."""
    from core.review import ReviewQueue

    settings = load_cli_settings()
    rq = ReviewQueue(open_database(settings))
    r = rq.get(review_id, viewer=cli_actor(by))
    data = {
        "id": r.id,
        "tenant": r.tenant,
        "robot": r.robot,
        "queue": r.queue,
        "kind": r.kind.value,
        "title": r.title,
        "summary": r.summary,
        "material": r.material,
        "state": r.state.value,
        "four_eyes": r.four_eyes,
        "first_approver": r.first_approver,
        "decided_by": r.decided_by,
        "decision_comment": r.decision_comment,
        "version": r.version,
        "comments": [{"author": c.author, "text": c.text} for c in rq.comments(r.id)],
    }
    if as_json:
        emit_json(data)
        return
    console.print(f"[bold]{r.title}[/bold]  ({r.queue}, {r.state.value})")
    if r.summary:
        console.print(r.summary)
    console.print_json(json.dumps(r.material, ensure_ascii=False, default=str))


@review_app.command("decide")
def review_decide(
    review_id: int = typer.Argument(...),
    decision: str = typer.Argument(..., help="approve, reject or return."),
    comment: str | None = typer.Option(None, "--comment", help="Required to reject or return."),
    by: str | None = typer.Option(None, "--by", help="Who decides (default: the logged-in OS user)."),
) -> None:
    """Decide a review item; the robot carries the decision out on its next run or worker pass."""
    from core.review import ReviewQueue

    settings = load_cli_settings()
    rq = ReviewQueue(open_database(settings))
    row = rq.decide(review_id, decision, actor=cli_actor(by), comment=comment)
    if row.state == ReviewState.open:
        console.print(f"review {review_id}: first approval recorded; a second person must approve (four-eyes)")
    else:
        console.print(f"review {review_id}: {row.state.value}")
