"""The auditors' random check of the access log (slumpvis kontroll): draw a sample, review each event."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from core.storage.web_models import Role
from core.web import accesscheck, auditview
from core.web.auth import Principal
from core.web.deps import csrf_guard, current_principal, redirect, render, require_role, web_context
from core.web.i18n import translator
from core.web.useradmin import UserAdminError

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
Person = Annotated[Principal, Depends(current_principal)]
Text = Annotated[str, Form(max_length=200)]


def _page(request: Request, p: Principal, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    ctx = web_context(request)
    tenants = require_role(p, Role.auditor)
    today = ctx.clock().date()
    return render(
        request,
        "access_check.html",
        status=status,
        error=error,
        tenants=sorted(tenants),
        start=(today - timedelta(days=30)).isoformat(),
        end=today.isoformat(),
        waiting=accesscheck.rows(ctx.db, tenants, reviewed=False),
        reviewed=accesscheck.rows(ctx.db, tenants, reviewed=True, limit=50),
        max_sample=accesscheck.MAX_SAMPLE,
    )


@router.get("/audit/checks")
def checks_page(request: Request, p: Person) -> HTMLResponse:
    """Drawn events waiting for review, the latest verdicts, and the form to draw more."""
    return _page(request, p)


@router.post("/audit/checks/draw", response_model=None)
async def checks_draw(
    request: Request, p: Person, tenant: Text, start: Text = "", end: Text = "", size: Text = "20"
) -> Response:
    """Draw a random sample of the municipality's access events (audited)."""
    ctx = web_context(request)
    _ = translator(p.lang)
    tenants = require_role(p, Role.auditor)
    first, last = auditview.parse_date(start), auditview.parse_date(end)
    if tenant not in tenants:
        return _page(request, p, error=_("Välj en av dina kommuner."), status=400)
    if first is None or last is None or not size.strip().isdigit():
        return _page(request, p, error=_("Ange period (ÅÅÅÅ-MM-DD) och antal."), status=400)
    try:
        await run_in_threadpool(
            accesscheck.draw,
            ctx.db,
            p.actor,
            tenant,
            first,
            last,
            int(size),
            zone=ctx.zone,
            now=ctx.clock(),
        )
    except UserAdminError as exc:
        return _page(request, p, error=_(str(exc)), status=400)
    return redirect("/audit/checks")


@router.post("/audit/checks/{check_id}", response_model=None)
async def checks_review(
    request: Request,
    p: Person,
    check_id: int,
    verdict: Text = "",
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Record the verdict on one drawn event (audited)."""
    ctx = web_context(request)
    _ = translator(p.lang)
    tenants = require_role(p, Role.auditor)
    try:
        await run_in_threadpool(accesscheck.review, ctx.db, p.actor, tenants, check_id, verdict, note, now=ctx.clock())
    except UserAdminError as exc:
        return _page(request, p, error=_(str(exc)), status=400)
    return redirect("/audit/checks")
