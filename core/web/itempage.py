"""The item page's reads after the opening, in two statements instead of four.

After the opening (the review store's read and its audit event) the item page shows the
item's comments, the colleagues it can be handed to, the next item of the queue and the
person's recent decisions. As four statements (on one connection) they were a quarter of
the page's CPU, most of it each statement's own round through SQLAlchemy and the driver,
not the database's work. Three of them are here one ``UNION ALL`` (the comments, the
colleagues, the recent decisions), each read as it was (its own conditions, order, limit
and DISTINCT, in a subquery), in one row shape: the columns of a shown decision
(:data:`RECENT_SHOWN`) and the few the comments and colleagues add, NULL where a read has
none (cast to the column's type, which PostgreSQL needs in a union). The next item stays a
statement of its own: PostgreSQL plans it afresh on every execution (a custom plan: its
generic plan, with the queue unknown, is far slower), and inside the union it made the
whole union planned afresh too (0.6 ms of PostgreSQL's CPU per page); with its LIMIT
written into the SQL the union took a generic plan whose next-item part read the whole
queue (4 ms more per page). Each part's rows are the ones its own statement returns; the
functions in :mod:`core.web.inbox` and :mod:`core.web.decisions` keep the single reads
for other pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Row, cast, literal, null, select, union_all
from sqlalchemy.types import TypeEngine

from core.interfaces import ReviewRecord
from core.storage.models import ReviewComment, ReviewItem
from core.storage.web_models import User
from core.web import decisions, inbox
from core.web.auth import Grant, Principal
from core.web.deps import WebContext

#: Which read a row belongs to (the ``page_part`` column).
COMMENTS, COLLEAGUES, RECENT = 0, 1, 2

#: The columns of a recent decision that the page shows (its link, title, state and time, and
#: what :func:`core.web.decisions.status_of` reads for its execution status).
RECENT_SHOWN = (
    "id",
    "title",
    "state",
    "decided_at",
    "callback_status",
    "callback_attempts",
    "callback_next_at",
    "callback_token",
    "callback_message",
    "callback_summary",
    "callback_reference",
    "callback_finished_at",
)

_ITEM = ReviewItem.__table__.c
#: The row shape of the union: a shown decision's columns, then the comments' and colleagues' own.
_SLOTS: list[tuple[str, TypeEngine[Any]]] = [
    *((name, _ITEM[name].type) for name in RECENT_SHOWN),
    ("author", ReviewComment.__table__.c.author.type),
    ("text", ReviewComment.__table__.c.text.type),
    ("created_at", ReviewComment.__table__.c.created_at.type),
    ("user_id", User.__table__.c.id.type),
    ("username", User.__table__.c.username.type),
    ("display_name", User.__table__.c.display_name.type),
]


def _shaped(stmt: Any, part: int, columns: dict[str, Any]) -> Any:
    """``stmt`` as it is (its conditions, order, limit and DISTINCT over ``columns``) in a subquery,
    selected in the union's shape (NULL, of the column's type, for the columns it does not have)."""
    inner = stmt.with_only_columns(
        *(column.label(name) for name, column in columns.items()), maintain_column_froms=True
    ).subquery()
    return select(
        literal(part).label("page_part"),
        *((inner.c[name] if name in columns else cast(null(), kind).label(name)) for name, kind in _SLOTS),
    )


@lru_cache(maxsize=1024)
def _reads_statement(grants: frozenset[Grant], with_colleagues: bool, recent_limit: int) -> Any:
    """The three reads as one statement, built once per set of grants (the values bound per request)."""
    comments = _shaped(
        inbox.COMMENTS_STATEMENT,
        COMMENTS,
        {
            "id": ReviewComment.id,
            "author": ReviewComment.author,
            "text": ReviewComment.text,
            "created_at": ReviewComment.created_at,
        },
    )
    recent = _shaped(
        decisions.recent_statement(grants, recent_limit),
        RECENT,
        {name: getattr(ReviewItem, name) for name in RECENT_SHOWN},
    )
    parts = [comments, recent]
    if with_colleagues:
        parts.append(
            _shaped(
                inbox.COLLEAGUES_STATEMENT,
                COLLEAGUES,
                {"user_id": User.id, "username": User.username, "display_name": User.display_name},
            )
        )
    return union_all(*parts)


@dataclass(frozen=True)
class ItemReads:
    """What the item page shows besides the item: as the single reads return it."""

    comments: list[Row[Any]]
    colleagues: list[inbox.Colleague]
    next_id: int | None
    recent: list[Row[Any]]


def item_reads(
    ctx: WebContext, p: Principal, row: ReviewRecord, *, with_colleagues: bool, conn: Connection, recent_limit: int = 3
) -> ItemReads:
    """The item's comments (oldest first), the colleagues it can be handed to (when ``with_colleagues``),
    the next item of its queue and the person's recent decisions (newest first, this item left out),
    as :func:`inbox.comments`, :func:`inbox.colleagues`, :func:`inbox.next_item_id` and
    :func:`decisions.recent_decisions` give them, in two statements (see the module's text)."""
    values = {
        "review_id": row.id,
        "tenant": row.tenant,
        "queue": row.queue,
        "actor": p.actor,
        "since": ctx.clock() - timedelta(hours=decisions.RECENT_HOURS),
    }
    found = conn.execute(_reads_statement(p.grants, with_colleagues, recent_limit + 1), values).all()
    notes = sorted((r for r in found if r.page_part == COMMENTS), key=lambda r: r.id)
    users = [r for r in found if r.page_part == COLLEAGUES]
    following = inbox.next_item_id(ctx, p, row.queue, row.tenant, exclude=row.id, conn=conn)
    recent = sorted((r for r in found if r.page_part == RECENT), key=lambda r: (r.decided_at, r.id), reverse=True)
    return ItemReads(
        comments=notes,
        colleagues=inbox.colleagues_from(p, [(u.user_id, u.username, u.display_name) for u in users]),
        next_id=following,
        recent=[r for r in recent if r.id != row.id][:recent_limit],
    )
