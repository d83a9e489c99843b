"""The item page's reads after the opening, in one statement.

After the opening (the review store's read and its audit event) the item page shows the
item's comments, the colleagues it can be handed to, the next item of the queue and the
person's recent decisions. As four statements (on one connection) they were a quarter of
the page's CPU, most of it each statement's own round through SQLAlchemy and the driver,
not the database's work; here they are one ``UNION ALL`` of the four reads, each as it was
(its own conditions, order and limit, in a subquery), in one row shape: the columns of a
listed review item (:data:`core.web.inbox.LISTED`) and the few the comments and colleagues
add, NULL where a read has none (cast to the column's type, which PostgreSQL needs in a
union). Each part's rows are the ones its own statement returns; the functions in
:mod:`core.web.inbox` and :mod:`core.web.decisions` keep the single reads for other pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Row, cast, literal, null, select, union_all
from sqlalchemy.types import TypeEngine

from core.interfaces import ReviewRecord
from core.storage.models import ReviewComment
from core.storage.web_models import User
from core.web import decisions, inbox
from core.web.auth import Grant, Principal
from core.web.deps import WebContext

#: Which read a row belongs to (the ``page_part`` column).
COMMENTS, COLLEAGUES, NEXT, RECENT = 0, 1, 2, 3

#: The row shape of the union: a listed review item's columns, then the comments' and colleagues' own.
_SLOTS: list[tuple[str, TypeEngine[Any]]] = [
    *((c.key, c.type) for c in inbox.LISTED),
    ("author", ReviewComment.__table__.c.author.type),
    ("text", ReviewComment.__table__.c.text.type),
    ("user_id", User.__table__.c.id.type),
    ("username", User.__table__.c.username.type),
    ("display_name", User.__table__.c.display_name.type),
]


def _shaped(stmt: Any, part: int, columns: dict[str, Any]) -> Any:
    """``stmt`` (its conditions, order and limit kept) with the union's columns, as a subquery's SELECT."""
    shaped = stmt.with_only_columns(
        literal(part).label("page_part"),
        *((columns[name] if name in columns else cast(null(), kind)).label(name) for name, kind in _SLOTS),
        maintain_column_froms=True,
    )
    return select(shaped.subquery())


@lru_cache(maxsize=1024)
def _reads_statement(grants: frozenset[Grant], with_colleagues: bool, recent_limit: int) -> Any:
    """The four reads as one statement, built once per set of grants (the values bound per request)."""
    listed = {c.key: c for c in inbox.LISTED}
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
    following = _shaped(inbox.next_item_statement(grants, excluding=True), NEXT, {"id": listed["id"]})
    recent = _shaped(decisions.recent_statement(grants, recent_limit), RECENT, listed)
    parts = [comments, following, recent]
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
    :func:`decisions.recent_decisions` give them, in one statement."""
    values = {
        "review_id": row.id,
        "tenant": row.tenant,
        "queue": row.queue,
        "actor": p.actor,
        "exclude": row.id,
        "since": ctx.clock() - timedelta(hours=decisions.RECENT_HOURS),
    }
    found = conn.execute(_reads_statement(p.grants, with_colleagues, recent_limit + 1), values).all()
    notes = sorted((r for r in found if r.page_part == COMMENTS), key=lambda r: r.id)
    users = [r for r in found if r.page_part == COLLEAGUES]
    following = next((r.id for r in found if r.page_part == NEXT), None)
    recent = sorted((r for r in found if r.page_part == RECENT), key=lambda r: (r.decided_at, r.id), reverse=True)
    return ItemReads(
        comments=notes,
        colleagues=inbox.colleagues_from(p, [(u.user_id, u.username, u.display_name) for u in users]),
        next_id=following,
        recent=[r for r in recent if r.id != row.id][:recent_limit],
    )
