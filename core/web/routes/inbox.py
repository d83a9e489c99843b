"""The inbox pages: queues, items oldest first, the item page, decisions, comments, assignment.

Items are addressed by their numeric id only; nothing personal ever goes in a URL.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from core.errors import ReviewError
from core.storage.models import ReviewKind, ReviewState
from core.web import decisions, inbox, itempage
from core.web.auth import Forbidden, Principal
from core.web.deps import (
    RowId,
    csrf_guard,
    current_principal,
    redirect,
    render,
    request_lang,
    web_context,
)
from core.web.i18n import translator
from core.web.routes.ops import artifact_allowed

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
Person = Annotated[Principal, Depends(current_principal)]


def _inbox_user(p: Principal) -> Principal:
    if not p.may_use_inbox:
        raise Forbidden()
    return p


@router.get("/inbox")
def inbox_page(
    request: Request,
    p: Person,
    queue: str = "",
    tenant: str = "",
    kind: str = "",
    mine: bool = False,
    overdue: bool = False,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """The person's queues with counts, the items oldest first (a page at a time), and "Mina beslut"."""
    ctx = web_context(request)
    _inbox_user(p)
    f = inbox.InboxFilter(queue or None, tenant or None, kind or None, mine, overdue)
    _ = translator(request_lang(request))
    now = ctx.clock()
    mine_rows = [
        (row, decisions.status_of(row, now, ctx.zone, ctx.web.alerts, _)) for row in decisions.my_decisions(ctx, p)
    ]
    # The counts may be a few seconds old (kept per set of grants); the list is read afresh, and
    # where it ends on the first page it is the exact count.
    queues = inbox.queue_summaries(ctx, p, kept=True)
    total = inbox.count_items(ctx, p, f, queues)
    first = (page - 1) * inbox.PAGE_SIZE
    items = inbox.list_items(ctx, p, f, limit=inbox.PAGE_SIZE, offset=first) if first < total or page == 1 else []
    if page == 1 and len(items) < inbox.PAGE_SIZE:
        total = len(items)
        queues = inbox.recounted(queues, f, items, now)
    return render(
        request,
        "inbox.html",
        queues=queues,
        items=items,
        total=total,
        page=page,
        first=first + 1,
        more=first + len(items) < total,
        page_query=inbox.page_query(f),
        lapsed=inbox.recently_lapsed(ctx, p),
        is_overdue=inbox.is_overdue,
        f=f,
        now=now,
        my_decisions=mine_rows,
        attention=sum(1 for _row, st in mine_rows if st.code == decisions.Status.failed or st.late),
    )


@router.get("/inbox/decisions/status")
def decision_statuses(request: Request, p: Person, ids: str = "") -> JSONResponse:
    """What became of the listed decisions (the pages poll this; ids the person may not see are left out)."""
    ctx = web_context(request)
    _inbox_user(p)
    wanted = [int(x) for x in ids.split(",") if x.strip().isdigit()][:100]
    _ = translator(request_lang(request))
    found = decisions.statuses(ctx, p, wanted, _)
    return JSONResponse({"decisions": [s.as_dict() for s in found]}, headers={"Cache-Control": "no-store"})


@router.post("/inbox/items/{review_id}/retry-decision")
def retry_decision(request: Request, p: Person, review_id: RowId) -> Response:
    """ "Försök igen": carry a failed decision out once more (audited); its decider or anyone who may decide."""
    ctx = web_context(request)
    _inbox_user(p)
    row = inbox.visible_item(ctx, p, review_id)
    if row.decided_by != p.actor and not p.can_decide(row.tenant, row.queue):
        raise Forbidden()
    _ = translator(request_lang(request))
    if ctx.my_decisions is not None:
        ctx.my_decisions.forget(p.actor)  # its status shows at once on this process's pages
    if ctx.reviews.retry_callback(review_id, actor=p.actor):
        ctx.auth.set_flash(p, _("Roboten försöker genomföra beslutet igen."))
    else:
        ctx.auth.set_flash(p, _("Beslutet har inte misslyckats, så det finns inget att försöka igen."))
    return redirect(f"/inbox/items/{review_id}")


def _item_page(
    request: Request,
    p: Principal,
    review_id: RowId,
    *,
    message: str | None = None,
    message_kind: str = "info",
    status: int = 200,
    comment: str = "",
    entered: dict[str, str] | None = None,
) -> HTMLResponse:
    ctx = web_context(request)
    lang = request_lang(request)
    _ = translator(lang)
    row = inbox.open_item(ctx, p, review_id)
    decision = decisions.status_of(row, ctx.clock(), ctx.zone, ctx.web.alerts, _)
    # Screenshots hold personal data: only roles allowed to see artifacts get their URLs.
    show_artifacts = artifact_allowed(ctx, p, row.tenant)
    rendered = inbox.render_material(ctx, row, lang, inbox.artifact_url_for(show_artifacts), entered=entered)
    cls = ctx.registry.robots.get(row.robot)
    # The page's four reads (comments, colleagues, next item, recent decisions) in two statements.
    with ctx.db.read_connection() as conn:
        reads = itempage.item_reads(ctx, p, row, with_colleagues=inbox.may_hand_over(p, row), conn=conn)
    notes, others, next_id, recent = reads.comments, reads.colleagues, reads.next_id, reads.recent
    now = ctx.clock()
    return render(
        request,
        "item.html",
        status=status,
        item=row,
        rendered=rendered,
        # A decision's template shows its own attachments; a problem report's are listed here.
        artifacts=[] if rendered and row.kind == ReviewKind.decision else inbox.material_artifacts(ctx, row),
        show_artifacts=show_artifacts,
        comments=notes,
        can_decide=row.state == ReviewState.open and p.can_decide(row.tenant, row.queue),
        overdue=inbox.is_overdue(row, ctx.clock()),
        colleagues=others,
        # Each municipality may name its robots ([tenants.robots.<name>] display_name).
        robot_name=ctx.settings.robot_display_name(row.robot, row.tenant, cls.display_name if cls else row.robot),
        message=message,
        message_kind=message_kind,
        comment=comment,
        now=ctx.clock(),
        next_id=next_id,
        decision=decision,
        may_retry=row.decided_by == p.actor or p.can_decide(row.tenant, row.queue),
        recent=[(r, decisions.status_of(r, now, ctx.zone, ctx.web.alerts, _)) for r in recent],
    )


@router.get("/inbox/items/{review_id}")
def item_page(request: Request, p: Person, review_id: RowId) -> HTMLResponse:
    """One item, rendered with the robot's template; opening it is written to the access log."""
    _inbox_user(p)
    return _item_page(request, p, review_id)


#: A robot's own decision fields (``data.<key>``): at most this many, each at most this long.
MAX_DECISION_FIELDS = 400
MAX_DECISION_VALUE = 2000


async def decision_data(request: Request) -> dict[str, str]:
    """The robot's own fields of the decision form (``data.<key>`` → ``key``), e.g. changed amounts.

    Its review template puts them in the kernel's decision form (``form="decide-form"``); the
    robot reads them in on_decision as ``review.decision_data``. Too many or too long is refused.
    """
    form = await request.form()
    data: dict[str, str] = {}
    for name, value in form.multi_items():
        if not name.startswith("data.") or not isinstance(value, str):
            continue
        if len(data) >= MAX_DECISION_FIELDS or len(value) > MAX_DECISION_VALUE or len(name) > 200:
            raise HTTPException(status_code=422, detail="decision data too large")
        data[name.removeprefix("data.")] = value
    return data


@router.post("/inbox/items/{review_id}/decide")
def decide(
    request: Request,
    p: Person,
    review_id: RowId,
    decision: Annotated[str, Form()],
    version: Annotated[int, Form()],
    data: Annotated[dict[str, str], Depends(decision_data)],
    comment: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Approve, reject or return; then on to the next item of the queue."""
    ctx = web_context(request)
    _inbox_user(p)
    _ = translator(request_lang(request))
    result = inbox.decide(ctx, p, review_id, decision, comment, version, _, decision_data=data)
    if not result.ok:
        status = 422 if result.outcome == "invalid" else 409
        # The page comes back with everything typed: the comment and the robot's own fields.
        return _item_page(
            request,
            p,
            review_id,
            message=result.message,
            message_kind="error",
            status=status,
            comment=comment,
            entered=data,
        )
    assert result.item is not None
    ctx.auth.set_flash(p, result.message)
    following = inbox.next_item_id(ctx, p, result.item.queue, result.item.tenant)
    # The next page shows what becomes of this decision ("Dina senaste beslut", kept current).
    return redirect(f"/inbox/items/{following}" if following else "/inbox")


@router.post("/inbox/items/{review_id}/comment")
def comment(request: Request, p: Person, review_id: RowId, text: Annotated[str, Form(max_length=5000)]) -> Response:
    """Add a comment to an item."""
    ctx = web_context(request)
    _inbox_user(p)
    inbox.visible_item(ctx, p, review_id)
    _ = translator(request_lang(request))
    try:
        ctx.reviews.comment(review_id, text, actor=p.actor)
    except ReviewError:
        return _item_page(
            request, p, review_id, message=_("En kommentar kan inte vara tom."), message_kind="error", status=422
        )
    ctx.auth.set_flash(p, _("Kommentaren är sparad."))
    return redirect(f"/inbox/items/{review_id}")


@router.post("/inbox/items/{review_id}/assign")
async def assign(request: Request, p: Person, review_id: RowId, action: Annotated[str, Form()]) -> Response:
    """Take an item (assign it to me) or give it back."""
    ctx = web_context(request)
    _inbox_user(p)
    row = await run_in_threadpool(inbox.visible_item, ctx, p, review_id)
    if not p.can_decide(row.tenant, row.queue):
        raise Forbidden()
    _ = translator(request_lang(request))
    try:
        await run_in_threadpool(ctx.reviews.assign, review_id, p.actor if action == "take" else None, actor=p.actor)
    except ReviewError:
        return await run_in_threadpool(
            lambda: _item_page(
                request, p, review_id, message=_("Ärendet är redan avgjort."), message_kind="error", status=409
            )
        )
    await run_in_threadpool(
        ctx.auth.set_flash, p, _("Ärendet är ditt.") if action == "take" else _("Ärendet är tillbaka i kön.")
    )
    return redirect(f"/inbox/items/{review_id}")


@router.post("/inbox/items/{review_id}/hand-over")
def hand_over(
    request: Request,
    p: Person,
    review_id: RowId,
    to: Annotated[str, Form(max_length=210)] = "",
    comment: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Hand the item to a named colleague who may decide in its queue (a coordinator: reassign it); audited."""
    ctx = web_context(request)
    _inbox_user(p)
    _ = translator(request_lang(request))
    done, message = inbox.hand_over(ctx, p, review_id, to, comment, _)
    if not done:
        return _item_page(request, p, review_id, message=message, message_kind="error", status=422, comment=comment)
    ctx.auth.set_flash(p, message)
    return redirect("/inbox")
