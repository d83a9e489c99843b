"""The JSON API under ``/api/v1``: everything the pages do, for integrations and scripts.

Authenticated with a bearer API token (``kollega users token``) or the browser session;
with the session, state-changing calls need the ``X-CSRF-Token`` header. Scoping is the
pages' own: objects outside the caller's tenants and queues answer 404.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Row

from core import effects_report
from core.errors import ConfigError
from core.logging import redact_text
from core.storage.models import Artifact, ReviewItem, Run, WorkItem
from core.storage.web_models import Role
from core.web import alerts, auditview, dashboard, inbox
from core.web.auth import Forbidden, NotFound, Principal
from core.web.deps import RowId, csrf_guard, current_principal, require_role, web_context
from core.web.i18n import translator
from core.web.routes.ops import artifact_allowed, ops_tenants

router = APIRouter(prefix="/api/v1", dependencies=[Depends(csrf_guard)])
Person = Annotated[Principal, Depends(current_principal)]


class Decision(BaseModel):
    """A decision on a review item."""

    decision: Literal["approve", "reject", "return"] = Field(description="approve, reject or return.")
    comment: str | None = Field(default=None, max_length=5000, description="Required to reject or return.")
    version: int = Field(description="The item's version as read; a changed item gives 409.")


class CommentIn(BaseModel):
    """A comment on a review item."""

    text: str = Field(min_length=1, max_length=5000)


class AssignIn(BaseModel):
    """Take an item or give it back."""

    action: Literal["take", "release"]


class HandOverIn(BaseModel):
    """Hand an item to a colleague who may decide in its queue (a coordinator: reassign it)."""

    to: str = Field(default="", max_length=210, description="The colleague, as `user:<name>`.")
    comment: str = Field(default="", max_length=5000, description="Why (kept as a comment).")


class RunIn(BaseModel):
    """A manual run."""

    robot: str
    tenant: str = Field(pattern=r"^\d{4}$")
    dry_run: bool = Field(default=False, description="Read but write nothing to other systems.")


class PauseScope(BaseModel):
    """Whose share of a schedule: one of the caller's tenants, or (left out) all of them on it."""

    tenant: str | None = Field(default=None, pattern=r"^\d{4}$")


class PauseIn(PauseScope):
    """Why a schedule is paused (for the caller's tenants on it, or the one named)."""

    reason: str = Field(default="", max_length=500)


class AuditSearch(BaseModel):
    """An access-log search (in the body: personnummer never go in URLs)."""

    personnummer: str = Field(default="", max_length=20)
    user: str = Field(default="", max_length=200)
    start: date | None = None
    end: date | None = None
    action: str = Field(default="", max_length=100)

    def query(self) -> auditview.AuditQuery:
        """As the search's query."""
        return auditview.AuditQuery(self.personnummer, self.user, self.start, self.end, self.action)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def review_json(row: ReviewItem | Row[Any], now: datetime, full: bool = False) -> dict[str, Any]:
    """A review item for the API (material only when ``full``); ``overdue``: open past its deadline."""
    out: dict[str, Any] = {
        "id": row.id,
        "tenant": row.tenant,
        "robot": row.robot,
        "queue": row.queue,
        "kind": row.kind.value,
        "title": row.title,
        "summary": row.summary,
        "state": row.state.value,
        "assignee": row.assignee,
        "due_at": _iso(row.due_at),
        "overdue": inbox.is_overdue(row, now),
        "escalated_at": _iso(row.escalated_at),
        "four_eyes": row.four_eyes,
        "first_approver": row.first_approver,
        "decided_by": row.decided_by,
        "decided_at": _iso(row.decided_at),
        "version": row.version,
        "created_at": _iso(row.created_at),
    }
    if full:
        out["material"] = row.material or {}
    return out


def item_json(item: WorkItem) -> dict[str, Any]:
    """A work item for operations (no payload: it holds personal data operations do not need)."""
    return {
        "id": item.id,
        "robot": item.robot,
        "tenant": item.tenant,
        "reference": item.reference,
        "status": item.status.value,
        "attempts": item.attempts,
        "run_id": item.run_id,
        "error_kind": item.error_kind,
        "error_code": item.error_code,
        "error_message": redact_text(item.error_message) if item.error_message else None,
        "created_at": _iso(item.created_at),
        "finished_at": _iso(item.finished_at),
    }


def run_json(run: Run) -> dict[str, Any]:
    """A run."""
    return {
        "id": run.id,
        "robot": run.robot,
        "tenant": run.tenant,
        "trigger": run.trigger,
        "schedule": run.schedule,
        "slot": run.slot,
        "status": run.status.value,
        "collected": run.collected,
        "done": run.done,
        "needs_review": run.needs_review,
        "failed_business": run.failed_business,
        "failed_application": run.failed_application,
        "uncertain": run.uncertain,
        "retried": run.retried,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "deadline_at": _iso(run.deadline_at),
        "error": redact_text(run.error) if run.error else None,
        "dry_run": run.dry_run,
        "robot_version": run.robot_version,
        "code_hash": run.code_hash,
    }


def _inbox(p: Principal) -> None:
    if not p.may_use_inbox:
        raise Forbidden()


@router.get("/me", summary="Who I am")
def me(p: Person) -> dict[str, Any]:
    """The caller and their grants."""
    return {
        "username": p.username,
        "display_name": p.display_name,
        "grants": [
            {"role": g.role.value, "tenant": g.tenant, "queue": g.queue or None}
            for g in sorted(p.grants, key=lambda g: (g.tenant, g.role.value, g.queue))
        ],
    }


@router.get("/inbox/queues", summary="My queues with counts")
def queues(request: Request, p: Person) -> list[dict[str, Any]]:
    """Queues the caller sees: open, overdue, oldest, next deadline."""
    _inbox(p)
    return [
        {
            "tenant": q.tenant,
            "queue": q.queue,
            "open": q.open,
            "overdue": q.overdue,
            "oldest": _iso(q.oldest),
            "next_due": _iso(q.next_due),
        }
        for q in inbox.queue_summaries(web_context(request), p)
    ]


@router.get("/reviews", summary="Open review items, deadline first, then oldest")
def reviews(
    request: Request,
    p: Person,
    queue: str = "",
    tenant: str = "",
    kind: str = "",
    mine: bool = False,
    overdue: bool = False,
) -> list[dict[str, Any]]:
    """Open items the caller sees (no material; open one to read it)."""
    _inbox(p)
    f = inbox.InboxFilter(queue or None, tenant or None, kind or None, mine, overdue)
    ctx = web_context(request)
    return [review_json(r, ctx.clock()) for r in inbox.list_items(ctx, p, f)]


@router.get("/reviews/{review_id}", summary="Open a review item (written to the access log)")
def review(request: Request, p: Person, review_id: RowId) -> dict[str, Any]:
    """One item with its material and comments; the access is audited."""
    _inbox(p)
    ctx = web_context(request)
    row = inbox.open_item(ctx, p, review_id)
    return {
        **review_json(row, ctx.clock(), full=True),
        "comments": [
            {"author": c.author, "text": c.text, "created_at": _iso(c.created_at)}
            for c in inbox.comments(ctx, review_id)
        ],
    }


@router.post(
    "/reviews/{review_id}/decision",
    summary="Approve, reject or return",
    responses={
        409: {"description": "Someone else decided first, or four-eyes"},
        422: {"description": "A comment is missing"},
    },
)
def decision(request: Request, p: Person, review_id: RowId, body: Decision) -> JSONResponse:
    """Decide; 409 with a message when someone else decided first."""
    _inbox(p)
    ctx = web_context(request)
    _ = translator(p.lang)
    result = inbox.decide(ctx, p, review_id, body.decision, body.comment, body.version, _)
    status = 200 if result.ok else 422 if result.outcome == "invalid" else 409
    return JSONResponse(
        {
            "outcome": result.outcome,
            "message": result.message,
            "review": review_json(result.item, ctx.clock()) if result.item else None,
        },
        status_code=status,
    )


@router.post("/reviews/{review_id}/comments", status_code=201, summary="Comment on an item")
def add_comment(request: Request, p: Person, review_id: RowId, body: CommentIn) -> dict[str, str]:
    """Add a comment."""
    _inbox(p)
    ctx = web_context(request)
    inbox.visible_item(ctx, p, review_id)
    ctx.reviews.comment(review_id, body.text, actor=p.actor)
    return {"status": "created"}


@router.post("/reviews/{review_id}/assign", summary="Take an item or give it back")
def assign(request: Request, p: Person, review_id: RowId, body: AssignIn) -> dict[str, Any]:
    """Assign to the caller, or unassign."""
    _inbox(p)
    ctx = web_context(request)
    row = inbox.visible_item(ctx, p, review_id)
    if not p.can_decide(row.tenant, row.queue):
        raise Forbidden()
    ctx.reviews.assign(review_id, p.actor if body.action == "take" else None, actor=p.actor)
    return review_json(inbox.visible_item(ctx, p, review_id), ctx.clock())


@router.post("/reviews/{review_id}/hand-over", summary="Hand an item to a colleague")
def hand_over(request: Request, p: Person, review_id: RowId, body: HandOverIn) -> JSONResponse:
    """Hand an open item to a named colleague with the same grant, or reassign it as a coordinator (audited)."""
    _inbox(p)
    ctx = web_context(request)
    _ = translator(p.lang)
    done, message = inbox.hand_over(ctx, p, review_id, body.to, body.comment, _)
    review = review_json(inbox.visible_item(ctx, p, review_id), ctx.clock())
    return JSONResponse({"message": message, "review": review}, status_code=200 if done else 422)


@router.get("/ops/night", summary="Last night per robot and tenant")
def night(request: Request, p: Person) -> dict[str, Any]:
    """Runs, items, done, to review, exceptions, uncertain, duration."""
    ctx = web_context(request)
    start, end = dashboard.night_window(ctx.clock(), ctx.zone)
    rows = dashboard.last_night(ctx, ops_tenants(p))
    return {"start": start.isoformat(), "end": end.isoformat(), "rows": [r.as_dict() for r in rows]}


@router.get("/ops/trends", summary="Items per robot and day, last 30 days")
def trends(request: Request, p: Person, days: int = 30) -> dict[str, list[dict[str, Any]]]:
    """One point per day."""
    data = dashboard.trends(web_context(request), ops_tenants(p), max(1, min(days, 90)))
    return {robot: [{**pt.__dict__, "day": pt.day.isoformat()} for pt in pts] for robot, pts in data.items()}


@router.get("/ops/time-saved", summary="Time saved per municipality, robot and month")
def saved(request: Request, p: Person) -> list[dict[str, Any]]:
    """This month and the last: outcomes that replaced manual work, minus measured review time (docs/effects.md)."""
    return [r.as_dict() for r in dashboard.time_saved(web_context(request), ops_tenants(p))]


@router.get("/effects", summary="The effects ledger for one municipality and month")
def effects(request: Request, p: Person, tenant: str, month: str) -> dict[str, Any]:
    """Every robot's measures, outcomes and time saved, as ``kollega effects --json`` prints them."""
    ctx = web_context(request)
    if tenant not in p.tenants(Role.operations, Role.it_admin, Role.coordinator):
        raise NotFound()
    try:
        chosen = effects_report.parse_month(month)
    except ConfigError as exc:
        raise HTTPException(status_code=422, detail=exc.message) from exc
    return effects_report.report_json(effects_report.report(ctx.db, ctx.registry.robots, ctx.settings, tenant, chosen))


@router.get("/ops/alerts", summary="Open alerts")
def open_alerts(request: Request, p: Person) -> list[dict[str, Any]]:
    """Unacknowledged alerts, newest first."""
    ctx = web_context(request)
    tenants = ops_tenants(p)
    alerts.detect(ctx.db, ctx.web.alerts, ctx.clock(), ctx.zone)
    return [
        {
            "id": a.id,
            "kind": a.kind,
            "tenant": a.tenant,
            "robot": a.robot,
            "run_id": a.run_id,
            "message": redact_text(a.message),
            "created_at": _iso(a.created_at),
            "mailed_at": _iso(a.mailed_at),
        }
        for a in alerts.open_alerts(ctx.db, tenants)
    ]


@router.post("/ops/alerts/{alert_id}/ack", summary="Acknowledge an alert")
def ack(request: Request, p: Person, alert_id: RowId) -> dict[str, str]:
    """Mark as seen."""
    ctx = web_context(request)
    if not alerts.acknowledge(ctx.db, ops_tenants(p), alert_id, p.actor, ctx.clock()):
        raise NotFound()
    return {"status": "acknowledged"}


@router.get("/runs", summary="Recent runs")
def runs(request: Request, p: Person, robot: str = "", status: str = "", limit: int = 100) -> list[dict[str, Any]]:
    """Newest first."""
    rows = dashboard.list_runs(
        web_context(request), ops_tenants(p), robot or None, status or None, max(1, min(limit, 1000))
    )
    return [run_json(r) for r in rows]


@router.post("/runs", status_code=201, summary="Run now")
def create_run(request: Request, p: Person, body: RunIn) -> dict[str, Any]:
    """Queue a manual run; a worker starts it."""
    ctx = web_context(request)
    run_id = dashboard.run_now(ctx, ops_tenants(p), body.robot, body.tenant, p.actor, dry_run=body.dry_run)
    run = ctx.runs.get(run_id)
    assert run is not None
    return run_json(run)


@router.get("/runs/{run_id}", summary="A run with its items")
def run(request: Request, p: Person, run_id: RowId) -> dict[str, Any]:
    """The run and up to 500 items."""
    row, items = dashboard.get_run(web_context(request), ops_tenants(p), run_id)
    return {**run_json(row), "items": [item_json(i) for i in items]}


def _artifact_json(a: Artifact) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "created_at": _iso(a.created_at),
        "url": f"/ops/artifacts/{a.id}",
    }


@router.get("/items/{item_id}", summary="A work item")
def item(request: Request, p: Person, item_id: RowId) -> dict[str, Any]:
    """Status, error, attempts; artifacts for roles allowed to see them."""
    ctx = web_context(request)
    row, artifacts = dashboard.get_item(ctx, ops_tenants(p), item_id)
    shown = artifacts if artifact_allowed(ctx, p, row.tenant) else []
    return {**item_json(row), "artifacts": [_artifact_json(a) for a in shown]}


@router.post("/items/{item_id}/retry", summary="Retry an item")
def retry(request: Request, p: Person, item_id: RowId) -> JSONResponse:
    """Back in the queue; 409 when its status does not allow it."""
    ok = dashboard.retry_item(web_context(request), ops_tenants(p), item_id, p.actor)
    return JSONResponse({"status": "requeued" if ok else "not_retryable"}, status_code=200 if ok else 409)


@router.post("/items/{item_id}/cancel", summary="Cancel an item")
def cancel(request: Request, p: Person, item_id: RowId) -> JSONResponse:
    """Cancelled; 409 when its status does not allow it."""
    ok = dashboard.cancel_item(web_context(request), ops_tenants(p), item_id, p.actor)
    return JSONResponse({"status": "cancelled" if ok else "not_cancellable"}, status_code=200 if ok else 409)


@router.get("/schedules", summary="Schedules with their next run")
def schedules(request: Request, p: Person) -> dict[str, Any]:
    """Schedules touching the caller's tenants."""
    rows, problem = dashboard.schedules(web_context(request), ops_tenants(p))
    return {
        "problem": problem,
        "schedules": [{**r.as_dict(), "next_run": _iso(r.next_run), "paused_at": _iso(r.paused_at)} for r in rows],
    }


@router.post("/schedules/{name}/pause", summary="Pause a schedule")
def pause(request: Request, p: Person, name: str, body: PauseIn) -> dict[str, Any]:
    """Its slots are skipped for the caller's tenants until resumed; other municipalities' run on."""
    changed = dashboard.set_paused(web_context(request), ops_tenants(p), name, True, p.actor, body.reason, body.tenant)
    return {"status": "paused", "tenants": changed}


@router.post("/schedules/{name}/resume", summary="Resume a schedule")
def resume(request: Request, p: Person, name: str, body: PauseScope | None = None) -> dict[str, Any]:
    """Fires again for the caller's tenants (another municipality's pause stays)."""
    tenant = body.tenant if body else None
    changed = dashboard.set_paused(web_context(request), ops_tenants(p), name, False, p.actor, tenant=tenant)
    return {"status": "resumed", "tenants": changed}


@router.post("/audit/search", summary="Search the access log")
def audit_search(request: Request, p: Person, body: AuditSearch) -> list[dict[str, Any]]:
    """Events in the auditor's tenants (the search is logged)."""
    ctx = web_context(request)
    tenants = require_role(p, Role.auditor)
    q = body.query()
    events = auditview.search(ctx, tenants, q, viewer=p.actor)
    auditview.record_search(ctx, p.actor, tenants, q, len(events), export=False)
    return [
        {
            "seq": e.seq,
            "time": _iso(e.time),
            "tenant": e.tenant,
            "actor": e.actor,
            "action": e.action,
            "subject": e.subject,
            "purpose": e.purpose,
            "details": e.details,
            "hash": e.hash,
        }
        for e in events
    ]


@router.post(
    "/audit/export",
    summary="The access log as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def audit_export(request: Request, p: Person, body: AuditSearch) -> Response:
    """CSV (semicolon separated, UTF-8 with BOM)."""
    ctx = web_context(request)
    tenants = require_role(p, Role.auditor)
    q = body.query()
    events = auditview.search(ctx, tenants, q, viewer=p.actor)
    auditview.record_search(ctx, p.actor, tenants, q, len(events), export=True)
    return Response("\ufeff" + auditview.to_csv(ctx, events), media_type="text/csv; charset=utf-8")


@router.get("/audit/chain", summary="The audit chain's verification status")
def chain(request: Request, p: Person) -> dict[str, Any]:
    """Walks the chain now."""
    require_role(p, Role.auditor)
    result = auditview.chain_status(web_context(request))
    return {
        "ok": result.ok,
        "events": result.events,
        "last_seq": result.last_seq,
        "bad_seq": result.bad_seq,
        "problem": result.problem,
        "checkpoint_seq": result.checkpoint_seq,
    }
