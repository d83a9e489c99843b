"""The auditors' pages: search the access log (POST: no personnummer in URLs), CSV export, chain status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from core.storage.web_models import Role
from core.web import auditview
from core.web.auth import Principal
from core.web.deps import csrf_guard, current_principal, render, require_role, web_context

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
Person = Annotated[Principal, Depends(current_principal)]
Text = Annotated[str, Form(max_length=200)]


def _query(personnummer: str, user: str, start: str, end: str, action: str) -> auditview.AuditQuery:
    return auditview.AuditQuery(
        personnummer.strip(), user.strip(), auditview.parse_date(start), auditview.parse_date(end), action.strip()
    )


@router.get("/audit")
def audit_page(request: Request, p: Person) -> HTMLResponse:
    """The search form and the chain's verification status."""
    ctx = web_context(request)
    require_role(p, Role.auditor)
    return render(request, "audit.html", q=auditview.AuditQuery(), events=None, chain=auditview.chain_status(ctx))


@router.post("/audit/search")
def audit_search(
    request: Request,
    p: Person,
    personnummer: Text = "",
    user: Text = "",
    start: Text = "",
    end: Text = "",
    action: Text = "",
) -> HTMLResponse:
    """Events matching the search (the search itself is logged)."""
    ctx = web_context(request)
    tenants = require_role(p, Role.auditor)
    q = _query(personnummer, user, start, end, action)
    events = auditview.search(ctx, tenants, q, viewer=p.actor) if not q.empty else []
    if not q.empty:
        auditview.record_search(ctx, p.actor, tenants, q, len(events), export=False)
    return render(
        request, "audit.html", q=q, events=events, chain=auditview.chain_status(ctx), limit=auditview.MAX_ROWS
    )


@router.post("/audit/export")
def audit_export(
    request: Request,
    p: Person,
    personnummer: Text = "",
    user: Text = "",
    start: Text = "",
    end: Text = "",
    action: Text = "",
) -> Response:
    """The search's events as CSV for the monthly log review."""
    ctx = web_context(request)
    tenants = require_role(p, Role.auditor)
    q = _query(personnummer, user, start, end, action)
    events = auditview.search(ctx, tenants, q, viewer=p.actor)
    auditview.record_search(ctx, p.actor, tenants, q, len(events), export=True)
    stamp = ctx.clock().strftime("%Y%m%d-%H%M")
    return Response(
        "\ufeff" + auditview.to_csv(ctx, events),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="atkomstlogg-{stamp}.csv"', "Cache-Control": "no-store"},
    )
