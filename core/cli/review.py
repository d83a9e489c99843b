"""``kollega review list | show | decide``: the review queues from the command line.

Who acted is the operating-system account running the command, recorded as
``cli:<osuser>`` (the process's real user id, not the USER variable). ``--by NAME`` names
the person at the keyboard; the machine cannot vouch for it, so it is written to the
audit log as a claim (``review.cli_named``, actor ``cli:<osuser>``) and never as the actor.
A four-eyes item therefore needs two operating-system accounts (or the web inbox) for
its two approvals: the second approval from the same account is refused, whatever
``--by`` says.
"""

from __future__ import annotations

import json
import re

import typer
from rich.table import Table

from core import audit
from core.cli.common import cli_actor, console, emit_json, err_console, load_cli_settings, open_database
from core.errors import ConfigError
from core.storage.db import Database
from core.storage.models import ReviewItem, ReviewState

#: What --by may name: an account name as the web app's user admin allows them.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

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
    now = rq.clock.now()
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
            "overdue": r.state == ReviewState.open and r.due_at is not None and r.due_at < now,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]
    if as_json:
        emit_json(data)
        return
    table = Table("Id", "Tenant", "Queue", "Kind", "Title", "Due", "State")
    for d in data:
        state_text = f"{d['state']} (overdue)" if d["overdue"] else str(d["state"])
        table.add_row(*(str(d[k] or "") for k in ("id", "tenant", "queue", "kind", "title", "due_at")), state_text)
    console.print(table)


@review_app.command("show")
def review_show(
    review_id: int = typer.Argument(...),
    by: str | None = typer.Option(
        None, "--by", help="Who is looking; logged as a claim next to the OS user, who is the one recorded."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one review item (an audited access to personal data)."""
    from core.review import ReviewQueue

    _check_name(by)
    settings = load_cli_settings()
    db = open_database(settings)
    rq = ReviewQueue(db)
    try:
        r = rq.get(review_id, viewer=cli_actor())
        _note_named(db, review_id, by, "show")
        comments = [{"author": c.author, "text": c.text} for c in rq.comments(r.id)]
    finally:
        db.dispose()
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
        "comments": comments,
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
    by: str | None = typer.Option(
        None, "--by", help="Who decides; logged as a claim: the decision is recorded as the OS user's."
    ),
) -> None:
    """Decide a review item as ``cli:<osuser>``; the robot carries it out on its next run or worker pass.

    The second approval of a four-eyes item must come from another operating-system
    account (or from the web inbox).
    """
    from core.review import ReviewQueue

    _check_name(by)
    settings = load_cli_settings()
    db = open_database(settings)
    rq = ReviewQueue(db)
    try:
        # The store refuses a second approval by the same actor in the same transaction that
        # records it; the actor is the OS account, so one person cannot pose as two.
        row = rq.decide(review_id, decision, actor=cli_actor(), comment=comment)
        _note_named(db, review_id, by, decision)
    finally:
        db.dispose()
    if row.state == ReviewState.open:
        console.print(
            f"review {review_id}: first approval recorded; a second person must approve (four-eyes: "
            "another OS account or the web inbox)"
        )
    else:
        console.print(f"review {review_id}: {row.state.value}")


def _check_name(by: str | None) -> None:
    if by is not None and not _NAME.match(by):
        raise ConfigError(f"--by {by!r} is not an account name (letters, digits, . _ -)")


def _note_named(db: Database, review_id: int, by: str | None, what: str) -> None:
    """Write the name given with --by to the audit log as a claim by the OS user (no-op without one)."""
    if by is None:
        return
    _check_name(by)
    actor = cli_actor()
    with db.session() as s:
        row = s.get(ReviewItem, review_id)
        audit.append(
            s,
            actor=actor,
            action="review.cli_named",
            tenant=row.tenant if row else None,
            details={"review_id": review_id, "command": what, "named": by},
        )
    err_console.print(f"recorded as {actor}; --by {by} is logged as a claim, not as the actor")
