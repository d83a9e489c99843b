"""The case workers' inbox: visible queues, items oldest first, opening (audited) and deciding.

Shared by the pages and the JSON API, so both enforce the same scoping: a person sees the
review items of their queues and tenants only; any other id answers 404 (:class:`NotFound`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from sqlalchemy import Connection, Row, bindparam, case, func, select

from core.errors import AlreadyDecided, FourEyesViolation, ReviewError
from core.interfaces import ReviewRecord
from core.logging import get_logger
from core.storage.models import Artifact, ReviewComment, ReviewItem, ReviewKind, ReviewState, UTCDateTime
from core.storage.web_models import Role, User, UserRole
from core.web.auth import Forbidden, Grant, NotFound, Principal, review_filter_for
from core.web.deps import WebContext
from core.web.i18n import Translator, label, local_time, robot_translator
from core.web.pagecache import Candidate

log = get_logger("kollega.web.inbox")
FOUR_EYES_MESSAGE = (
    "Du har redan gjort det första godkännandet. En annan person måste godkänna ärendet (fyraögonsprincipen)."
)
FIRST_APPROVAL_MESSAGE = "Ditt godkännande är registrerat. Ärendet väntar nu på en andra person (fyraögonsprincipen)."
#: Overdue items first (earliest deadline first), then by deadline, then the oldest.
#:
#: Ordering by the deadline alone puts the overdue ones first: an item is overdue when its
#: deadline has passed (``overdue_at`` is set only then, and a deadline never moves), so
#: every overdue item's deadline is earlier than every other item's, and items without a
#: deadline come last. It is also the order of the index of open items (tenant, queue,
#: deadline, age), so a queue's first page is read from the index instead of sorting every
#: open item of the queue (10 ms of PostgreSQL's CPU per view with 2,000 open items).
ORDER = (ReviewItem.due_at.asc().nulls_last(), ReviewItem.created_at, ReviewItem.id)
#: The states of an item a person decided ("Mina beslut" lists these).
DECIDED_STATES = (ReviewState.approved, ReviewState.rejected, ReviewState.returned)
#: How long a lapsed item (closed by its robot) stays listed in the inbox with its reason.
LAPSED_SHOWN_DAYS = 7


def is_overdue(row: ReviewItem | Row[Any], now: datetime) -> bool:
    """An open item whose deadline has passed ("Försenad"): it stays in the inbox until someone decides."""
    return row.state == ReviewState.open and (
        row.overdue_at is not None or (row.due_at is not None and row.due_at < now)
    )


@dataclass(frozen=True)
class InboxFilter:
    """What the inbox shows: a queue, a tenant, a kind, only mine, only overdue."""

    queue: str | None = None
    tenant: str | None = None
    kind: str | None = None
    mine: bool = False
    overdue: bool = False


@dataclass(frozen=True)
class QueueSummary:
    """One queue the person sees: open items, overdue, oldest, next deadline."""

    tenant: str
    queue: str
    open: int
    overdue: int
    oldest: datetime | None
    next_due: datetime | None


# The statements every inbox and item page runs are built once per set of grants, their
# per-request values bound as parameters: building them, and SQLAlchemy's walk over each for
# its statement cache's key, were a good part of a page's CPU (the key is kept with the
# statement object).
@lru_cache(maxsize=1024)
def _summaries_statement(grants: frozenset[Grant]) -> Any:
    return (
        select(
            ReviewItem.tenant,
            ReviewItem.queue,
            func.count(),
            func.sum(case((ReviewItem.due_at < bindparam("now", type_=UTCDateTime()), 1), else_=0)),
            func.min(ReviewItem.created_at),
            func.min(ReviewItem.due_at),
        )
        .where(review_filter_for(grants), ReviewItem.state == ReviewState.open)
        .group_by(ReviewItem.tenant, ReviewItem.queue)
    )


@lru_cache(maxsize=1024)
def next_item_statement(grants: frozenset[Grant], excluding: bool) -> Any:
    """The next open item of a queue the person can act on (values: queue, tenant, actor, exclude); built once."""
    stmt = (
        select(ReviewItem.id)
        .where(
            review_filter_for(grants),
            ReviewItem.state == ReviewState.open,
            ReviewItem.queue == bindparam("queue"),
            ReviewItem.tenant == bindparam("tenant"),
            (ReviewItem.first_approver.is_(None)) | (ReviewItem.first_approver != bindparam("actor")),
        )
        .order_by(*ORDER)
        .limit(1)
    )
    return stmt.where(ReviewItem.id != bindparam("exclude")) if excluding else stmt


@lru_cache(maxsize=1024)
def _lapsed_statement(grants: frozenset[Grant], limit: int) -> Any:
    return (
        select(*LISTED)
        .where(
            review_filter_for(grants),
            ReviewItem.state == ReviewState.lapsed,
            ReviewItem.decided_at >= bindparam("since", type_=UTCDateTime()),
        )
        .order_by(ReviewItem.decided_at.desc(), ReviewItem.id.desc())
        .limit(limit)
    )


def queue_summaries(ctx: WebContext, p: Principal, *, kept: bool = False) -> list[QueueSummary]:
    """The person's queues with counts (queues they are granted appear even when empty).

    ``kept``: the counts as computed for this set of grants at most ``[web] inbox_cache_seconds``
    ago in this process (``ctx.queue_counts``), for the inbox page: counting a municipality's open
    items was most of PostgreSQL's work per view, and the colleagues of one municipality share one
    count. The API reads them afresh.
    """

    def read() -> dict[tuple[str, str], QueueSummary]:
        with ctx.db.read_connection() as conn:
            found = conn.execute(_summaries_statement(p.grants), {"now": ctx.clock()})
            return {(r[0], r[1]): QueueSummary(r[0], r[1], int(r[2]), int(r[3] or 0), r[4], r[5]) for r in found}

    rows = dict(ctx.queue_counts.get(p.grants, read).value) if kept and ctx.queue_counts is not None else read()
    for g in p.grants:
        if g.queue and p.can_view_queue(g.tenant, g.queue):
            rows.setdefault((g.tenant, g.queue), QueueSummary(g.tenant, g.queue, 0, 0, None, None))
    return sorted(rows.values(), key=lambda q: (q.tenant, q.queue))


def recounted(
    summaries: list[QueueSummary], f: InboxFilter, items: list[Row[Any]], now: datetime
) -> list[QueueSummary]:
    """The summaries of the queues ``f`` covers recounted from ``items``, a fresh first page that holds all the
    open items ``f`` matches (fewer than a page): exact where kept counts may be a few seconds old. Only a
    filter by queue and municipality covers whole queues; with another the summaries are returned as given."""
    if f.kind or f.mine or f.overdue:
        return summaries
    out = []
    for q in summaries:
        if (f.queue and q.queue != f.queue) or (f.tenant and q.tenant != f.tenant):
            out.append(q)
            continue
        these = [it for it in items if it.tenant == q.tenant and it.queue == q.queue]
        deadlines = [it.due_at for it in these if it.due_at is not None]
        out.append(
            QueueSummary(
                q.tenant,
                q.queue,
                len(these),
                sum(1 for due in deadlines if due < now),
                min((it.created_at for it in these), default=None),
                min(deadlines, default=None),
            )
        )
    return out


#: Items the inbox page lists at once (the next ones are a page further on).
PAGE_SIZE = 50
#: What a list of review items reads: every column but the material and the decision's data (a
#: robot's material can be large, and no list shows it).
LISTED = tuple(c for c in ReviewItem.__table__.c if c.key not in ("material", "decision_data"))


def list_items(ctx: WebContext, p: Principal, f: InboxFilter, limit: int = 200, offset: int = 0) -> list[Row[Any]]:
    """Open review items the person sees, with the deadline first, then the oldest (without their material).

    Plain rows, not ORM objects: making 50 objects per view cost more than reading them.
    """
    now = ctx.clock()
    stmt = _filtered(
        select(*LISTED).where(p.review_filter(), ReviewItem.state == ReviewState.open),
        f,
        p,
        now,
    ).order_by(*ORDER)
    with ctx.db.read_connection() as conn:
        return list(conn.execute(stmt.limit(limit).offset(offset)).all())


def count_items(ctx: WebContext, p: Principal, f: InboxFilter, summaries: list[QueueSummary] | None = None) -> int:
    """How many open items :func:`list_items` has in all; from the queue counts when the filter allows."""
    if summaries is not None and not (f.kind or f.mine or f.overdue):
        return sum(
            q.open for q in summaries if (not f.queue or q.queue == f.queue) and (not f.tenant or q.tenant == f.tenant)
        )
    stmt = _filtered(
        select(func.count()).select_from(ReviewItem).where(p.review_filter(), ReviewItem.state == ReviewState.open),
        f,
        p,
        ctx.clock(),
    )
    with ctx.db.read_connection() as conn:
        return int(conn.scalar(stmt) or 0)


def page_query(f: InboxFilter) -> str:
    """The filter as a query string, for the links to the next and previous pages."""
    fields = {
        "queue": f.queue or "",
        "tenant": f.tenant or "",
        "kind": f.kind or "",
        "mine": "true" if f.mine else "",
        "overdue": "true" if f.overdue else "",
    }
    return urlencode({k: v for k, v in fields.items() if v})


def _filtered(stmt: Any, f: InboxFilter, p: Principal, now: datetime) -> Any:
    if f.queue:
        stmt = stmt.where(ReviewItem.queue == f.queue)
    if f.tenant:
        stmt = stmt.where(ReviewItem.tenant == f.tenant)
    if f.kind in {k.value for k in ReviewKind}:
        stmt = stmt.where(ReviewItem.kind == ReviewKind(f.kind))
    if f.mine:
        stmt = stmt.where(ReviewItem.assignee == p.actor)
    if f.overdue:
        stmt = stmt.where(ReviewItem.overdue_at.is_not(None) | (ReviewItem.due_at < now))
    return stmt


def visible_item(ctx: WebContext, p: Principal, review_id: int) -> ReviewItem:
    """The review item if the person may see it; NotFound otherwise (no hint that it exists)."""
    with ctx.db.read_session() as s:
        row = s.get(ReviewItem, review_id)
    if row is None or not p.can_view_queue(row.tenant, row.queue):
        raise NotFound()
    return row


def may_decide(p: Principal) -> Callable[[ReviewRecord], None]:
    """The check of who may decide, for the review store to apply to the item it locks for the decision.

    NotFound unless the person sees the item (no hint that it exists, nor of its state);
    Forbidden unless they may decide in its queue. Applied by the store before anything else,
    in the decision's own transaction: no read of its own before it.
    """

    def check(row: ReviewRecord) -> None:
        if not p.can_view_queue(row.tenant, row.queue):
            raise NotFound()
        if not p.can_decide(row.tenant, row.queue):
            raise Forbidden()

    return check


def open_item(ctx: WebContext, p: Principal, review_id: int) -> ReviewItem:
    """Open an item: the access is written to the audit log, and the opening time kept for review time.

    One read, then one write: the store checks that the person may see the item before it
    writes the opening, and starts the person's review time of an open item with it (review
    time runs from the first opening to the decision, however often it is reopened); NotFound
    (and nothing written) when the person may not see it.
    """
    try:
        return ctx.reviews.get(
            review_id,
            viewer=p.actor,
            tenants=p.tenants(),
            visible=lambda r: p.can_view_queue(r.tenant, r.queue),
            start_review_time=True,
        )
    except ReviewError:
        raise NotFound() from None


#: An item's comments, oldest first (the columns shown; built once).
COMMENTS_STATEMENT = (
    select(ReviewComment.id, ReviewComment.author, ReviewComment.text, ReviewComment.created_at)
    .where(ReviewComment.review_id == bindparam("review_id"))
    .order_by(ReviewComment.id)
)


@contextmanager
def reading(ctx: WebContext, conn: Connection | None) -> Iterator[Connection]:
    """``conn`` when given (a page's reads on one connection), else a read connection of its own."""
    if conn is not None:
        yield conn
        return
    with ctx.db.read_connection() as own:
        yield own


def comments(ctx: WebContext, review_id: int, conn: Connection | None = None) -> list[Row[Any]]:
    """The item's comments, oldest first: rows of what a page shows (author, text, created_at), no objects."""
    with reading(ctx, conn) as c:
        return list(c.execute(COMMENTS_STATEMENT, {"review_id": review_id}).all())


def next_item_id(
    ctx: WebContext, p: Principal, queue: str, tenant: str, exclude: int | None = None, conn: Connection | None = None
) -> int | None:
    """The next open item of the same queue this person can act on (not one they approved first)."""
    values: dict[str, Any] = {"queue": queue, "tenant": tenant, "actor": p.actor}
    if exclude is not None:
        values["exclude"] = exclude
    with reading(ctx, conn) as c:
        found: int | None = c.scalar(next_item_statement(p.grants, exclude is not None), values)
        return found


def recently_lapsed(ctx: WebContext, p: Principal, limit: int = 50) -> list[Row[Any]]:
    """Items in the person's queues their robot closed as no longer needed, newest first, with the reason.

    Kept per set of grants for ``[web] inbox_cache_seconds`` in each process (``ctx.lapsed``).
    """

    def read() -> list[Row[Any]]:
        since = ctx.clock() - timedelta(days=LAPSED_SHOWN_DAYS)
        with ctx.db.read_connection() as conn:
            return list(conn.execute(_lapsed_statement(p.grants, limit), {"since": since}).all())

    if ctx.lapsed is None:
        return read()
    kept: list[Row[Any]] = ctx.lapsed.get((p.grants, limit), read).value
    return kept


@dataclass(frozen=True)
class Colleague:
    """A person an item can be handed to: they may decide in its queue."""

    actor: str
    name: str


#: Active people who may decide in a queue (built once; the tenant and queue bound per item).
COLLEAGUES_STATEMENT = (
    select(User.id, User.username, User.display_name)
    .join(UserRole, UserRole.user_id == User.id)
    .where(User.active.is_(True), UserRole.tenant == bindparam("tenant"))
    .where(
        ((UserRole.role == Role.case_worker) & (UserRole.queue == bindparam("queue")))
        | ((UserRole.role == Role.coordinator) & ((UserRole.queue == "") | (UserRole.queue == bindparam("queue"))))
    )
    .distinct()
)


def colleagues(ctx: WebContext, p: Principal, row: ReviewItem, conn: Connection | None = None) -> list[Colleague]:
    """Active people (but ``p``) who may decide in the item's queue: the same grant, or its coordinators."""
    with reading(ctx, conn) as c:
        users = c.execute(COLLEAGUES_STATEMENT, {"tenant": row.tenant, "queue": row.queue}).all()
    return colleagues_from(p, [(u.id, u.username, u.display_name) for u in users])


def colleagues_from(p: Principal, users: list[tuple[int, str, str | None]]) -> list[Colleague]:
    """The colleagues (id, username, display name) but ``p``, by name, as :func:`colleagues` gives them."""
    found = [Colleague(f"user:{username}", name or username) for uid, username, name in users if uid != p.user_id]
    return sorted(found, key=lambda c: (c.name.lower(), c.actor))


def may_hand_over(p: Principal, row: ReviewItem) -> bool:
    """A coordinator may reassign any open item of the tenant; a case worker hands on one that is theirs or free."""
    if row.state != ReviewState.open or not p.can_decide(row.tenant, row.queue):
        return False
    return p.has(Role.coordinator, row.tenant) or row.assignee in (None, p.actor)


def hand_over(
    ctx: WebContext, p: Principal, review_id: int, to: str, comment: str | None, _: Translator
) -> tuple[bool, str]:
    """Give the item to a colleague (audited): (done, the Swedish message). Forbidden when ``p`` may not."""
    row = visible_item(ctx, p, review_id)
    if not may_hand_over(p, row):
        raise Forbidden()
    wanted = {c.actor: c for c in colleagues(ctx, p, row)}.get(to)
    if wanted is None:
        return False, _("Välj en kollega som får besluta i kön {queue}.", queue=row.queue)
    try:
        ctx.reviews.hand_over(review_id, wanted.actor, actor=p.actor, comment=(comment or "").strip() or None)
    except AlreadyDecided:
        return False, _("Ärendet är redan avgjort.")
    return True, _("Ärendet är överlämnat till {who}.", who=wanted.name)


@dataclass(frozen=True)
class DecisionResult:
    """What became of a decision: ``decided``, ``first_approval``, ``conflict``, ``four_eyes`` or ``invalid``."""

    outcome: str
    message: str
    item: ReviewItem | None = None

    @property
    def ok(self) -> bool:
        """The decision (or first approval) was recorded."""
        return self.outcome in ("decided", "first_approval")


def decide(
    ctx: WebContext,
    p: Principal,
    review_id: int,
    decision: str,
    comment: str | None,
    version: int | None,
    _: Translator,
    decision_data: dict[str, Any] | None = None,
) -> DecisionResult:
    """Approve, reject or return; a concurrent decision gives a clear message instead of an error.

    ``decision_data`` holds the robot's own form fields (``data.<key>``, e.g. changed amounts).
    """
    comment = (comment or "").strip() or None
    try:
        item = ctx.reviews.decide(
            review_id,
            decision,
            actor=p.actor,
            comment=comment,
            expected_version=version,
            decision_data=decision_data or None,
            allowed=may_decide(p),
        )
    except AlreadyDecided:
        current = visible_item(ctx, p, review_id)
        if current.state != ReviewState.open:
            message = _(
                "{who} har redan fattat beslut i ärendet ({state}, {when}). Ditt beslut sparades inte.",
                who=(current.decided_by or _("systemet")).removeprefix("user:"),
                state=_(label(current.state.value)).lower(),
                when=local_time(current.decided_at, ctx.zone),
            )
        else:
            message = _("Ärendet ändrades medan du läste det. Läs igenom det igen och fatta ditt beslut på nytt.")
        return DecisionResult("conflict", message, current)
    except FourEyesViolation:
        return DecisionResult("four_eyes", _(FOUR_EYES_MESSAGE), visible_item(ctx, p, review_id))
    except ReviewError as exc:
        row = visible_item(ctx, p, review_id)
        if exc.code == "confirmation_required":
            missing = "; ".join(str(m) for m in exc.details.get("missing", []))
            return DecisionResult("invalid", _("Bekräfta innan du godkänner: {what}", what=missing), row)
        if exc.code == "reason_required":
            missing = ", ".join(str(m) for m in exc.details.get("missing", []))
            return DecisionResult(
                "invalid",
                _("Skriv ett skäl för varje ändrad post innan du godkänner. Skäl saknas för: {what}", what=missing),
                row,
            )
        return DecisionResult("invalid", _("Skriv en kommentar när du avslår eller returnerar ett ärende."), row)
    if item.state == ReviewState.open:
        return DecisionResult(
            "first_approval",
            _(FIRST_APPROVAL_MESSAGE),
            item,
        )
    _remember_decision(ctx, p, item)
    return DecisionResult("decided", _("Beslut registrerat: {state}.", state=_(label(item.state.value))), item)


class _Listed(SimpleNamespace):
    """A decided item's listed columns, as the rows of "Mina beslut" read from the database have them."""


def _remember_decision(ctx: WebContext, p: Principal, item: ReviewItem) -> None:
    """Put the person's decision in front of their kept "Mina beslut" in this process (shown at once)."""
    if ctx.my_decisions is None or item.decided_at is None:
        return
    listed = item.kind == ReviewKind.decision and item.state in DECIDED_STATES
    ctx.my_decisions.decided(
        (p.actor, p.grants),
        (item.decided_at, item.id),
        Candidate(item.id, item.callback_status, item.decided_at) if listed else None,
        _Listed(**{c.key: getattr(item, c.key) for c in LISTED}) if listed else None,
    )


def review_dict(row: ReviewItem) -> dict[str, Any]:
    """The ``review`` variable of a robot's template."""
    return {
        "id": row.id,
        "title": row.title,
        "summary": row.summary,
        "state": row.state.value,
        "kind": row.kind.value,
        "queue": row.queue,
        "created_at": row.created_at,
    }


_template_envs: dict[Path, jinja2.Environment] = {}


def robot_template_folder(ctx: WebContext, robot: str) -> tuple[Path, str] | None:
    """(templates folder, file name) of a robot's review template, when it has one."""
    cls = ctx.registry.robots.get(robot)
    name = getattr(cls, "review_template", None) if cls is not None else None
    if cls is None or not name:
        return None
    # Also accepted: the older "package:templates/file.html" form.
    file_name = str(name).rpartition(":")[2].removeprefix("templates/")
    return Path(inspect.getfile(cls)).parent / "templates", file_name


ArtifactUrl = Callable[[Any], str | None]


def no_artifacts(_artifact_id: Any) -> str | None:
    """The ``artifact_url`` of a person who may not see artifacts: never a URL."""
    return None


def artifact_url_for(allowed: bool) -> ArtifactUrl:
    """``artifact_url(id)`` for robot templates: the artifact's URL, or None when the person may not see it."""
    if not allowed:
        return no_artifacts

    def artifact_url(artifact_id: Any) -> str | None:
        try:
            return f"/ops/artifacts/{int(artifact_id)}"
        except (TypeError, ValueError):
            return None

    return artifact_url


def material_artifacts(ctx: WebContext, row: ReviewItem) -> list[Artifact]:
    """The artifacts a review item's material names (``material["artifacts"]``), of its own work item."""
    wanted = (row.material or {}).get("artifacts")
    if not isinstance(wanted, list) or row.work_item_id is None:
        return []
    ids = [a for a in wanted if isinstance(a, int) and not isinstance(a, bool)]
    if not ids:
        return []
    with ctx.db.read_session() as s:
        return list(
            s.scalars(
                select(Artifact)
                .where(Artifact.id.in_(ids), Artifact.work_item_id == row.work_item_id, Artifact.tenant == row.tenant)
                .order_by(Artifact.id)
            )
        )


def artifact_in_inbox(ctx: WebContext, p: Principal, artifact_id: int, tenants: set[str]) -> bool:
    """Whether the artifact belongs to a work item with a review item the person sees in the inbox."""
    stmt = (
        select(Artifact.id)
        .join(ReviewItem, ReviewItem.work_item_id == Artifact.work_item_id)
        .where(Artifact.id == artifact_id, Artifact.tenant.in_(tenants), p.review_filter())
        .limit(1)
    )
    with ctx.db.read_session() as s:
        return s.scalar(stmt) is not None


def render_material(
    ctx: WebContext,
    row: ReviewItem,
    lang: str,
    artifact_url: ArtifactUrl = no_artifacts,
    entered: dict[str, str] | None = None,
) -> Markup | None:
    """The robot's review template rendered as an HTML fragment; None = show the generic view.

    Exception and uncertain items get the generic view unless the robot's template says it
    renders them (``review_template_kinds``): they are a problem report, not the robot's
    prepared matter, but the robot can say in the case worker's words what happened and
    what to do. ``artifact_url(id)`` (in the template's context)
    gives an artifact's URL, or None when the person may not see artifacts. ``entered`` holds
    the robot's own decision fields a refused decision carried (``data.<key>`` → ``key``), so the
    template shows them again and nothing the person typed is lost. The template's ``_``
    translates with the robot's own ``messages`` first, then the web app's.
    """
    cls = ctx.registry.robots.get(row.robot)
    if cls is None or row.kind.value not in cls.review_template_kinds:
        return None
    found = robot_template_folder(ctx, row.robot)
    if found is None:
        return None
    folder, name = found
    env = _template_envs.get(folder)
    if env is None:
        # Sandboxed: a robot's template can format data but not reach into Python objects.
        env = _template_envs[folder] = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(folder), autoescape=True, auto_reload=False
        )
    try:
        html = env.get_template(name).render(
            review=review_dict(row),
            material=row.material or {},
            lang=lang,
            _=robot_translator(cls, lang),
            artifact_url=artifact_url,
            entered=dict(entered or {}),
        )
    except jinja2.TemplateError as exc:
        log.warning("web.review_template_failed", robot=row.robot, template=name, error=type(exc).__name__)
        return None
    return Markup(html)  # noqa: S704 - produced by an autoescaping environment
