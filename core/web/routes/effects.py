"""The effects ledger's pages: ``/effekter`` (month by month, per municipality), the CSV and the printable report.

Seen by operations staff, IT admins and coordinators, for their municipalities only.
Swedish by default; every figure links to how it is computed (the page's own
"Så räknas det" section, and docs/effects.md for IT).
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from core import effects_report
from core.effects_report import MonthReport
from core.errors import ConfigError
from core.storage.web_models import Role
from core.web.auth import Forbidden, NotFound, Principal
from core.web.charts import month_bars
from core.web.deps import WebContext, csrf_guard, current_principal, render, web_context

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
Person = Annotated[Principal, Depends(current_principal)]

#: Months shown in the page's charts.
CHART_MONTHS = 12


def effects_tenants(p: Principal) -> set[str]:
    """Municipalities whose effects the person sees (operations, IT admin, coordinator); Forbidden otherwise."""
    tenants = p.tenants(Role.operations, Role.it_admin, Role.coordinator)
    if not tenants:
        raise Forbidden()
    return tenants


def _current_month(ctx: WebContext) -> str:
    return f"{ctx.clock().astimezone(ZoneInfo(ctx.zone)):%Y-%m}"


def _choose(ctx: WebContext, p: Principal, tenant: str, month: str) -> tuple[str, str, str | None]:
    """(tenant, month, problem in Swedish or None): the person's first municipality and this month by default."""
    tenants = effects_tenants(p)
    chosen = tenant or sorted(tenants)[0]
    if chosen not in tenants:
        raise NotFound()
    if not month:
        return chosen, _current_month(ctx), None
    try:
        return chosen, effects_report.parse_month(month), None
    except ConfigError:
        return chosen, _current_month(ctx), "Ogiltig månad: ange den som ÅÅÅÅ-MM, till exempel 2026-11."


def _tenant_names(ctx: WebContext, tenants: set[str]) -> dict[str, str]:
    named = {t.code: t.name for t in ctx.settings.tenants}
    return {code: named.get(code, code) for code in sorted(tenants)}


def _charts(reports: list[MonthReport]) -> dict[str, dict[str, Any]]:
    """robot → measure key → chart (SVG and the values for the table alternative), plus time saved in hours."""
    labels = [r.month for r in reports]
    out: dict[str, dict[str, Any]] = {}
    last = reports[-1]
    for i, robot in enumerate(last.robots):
        decl = robot.declaration
        if decl is None:
            continue
        per: dict[str, Any] = {}
        for m in decl.measures:
            values = [rep.robots[i].measured.values.get(m.key) for rep in reports]
            per[m.key] = {
                "svg": month_bars(f"{robot.display_name}: {m.label}", labels, values, m.unit, m.decimals),
                "rows": list(zip(labels, values, strict=True)),
            }
        hours = [round(rep.robots[i].saved_minutes / 60, 1) for rep in reports]
        per["_saved"] = {
            "svg": month_bars(f"{robot.display_name}: sparad tid", labels, list(hours), "timmar", 1),
            "rows": list(zip(labels, hours, strict=True)),
        }
        out[robot.robot] = per
    return out


@router.get("/effekter")
def effects_page(request: Request, p: Person, tenant: str = "", month: str = "") -> HTMLResponse:
    """Every robot's measured effect for one municipality: the month's figures and 12 months of charts."""
    ctx = web_context(request)
    chosen, chosen_month, problem = _choose(ctx, p, tenant, month)
    months = effects_report.recent_months(chosen_month, CHART_MONTHS)
    reports = effects_report.series(ctx.db, ctx.registry.robots, ctx.settings, chosen, months)
    return render(
        request,
        "effects.html",
        status=400 if problem else 200,
        problem=problem,
        report=reports[-1],
        charts=_charts(reports),
        tenants=_tenant_names(ctx, effects_tenants(p)),
        tenant=chosen,
        month=chosen_month,
    )


@router.get("/effekter/rapport")
def printable_report(request: Request, p: Person, tenant: str = "", month: str = "") -> HTMLResponse:
    """One month's report for one municipality, laid out for printing or saving as PDF and publishing."""
    ctx = web_context(request)
    chosen, chosen_month, problem = _choose(ctx, p, tenant, month)
    rep = effects_report.report(ctx.db, ctx.registry.robots, ctx.settings, chosen, chosen_month)
    return render(
        request,
        "effects_report.html",
        status=400 if problem else 200,
        problem=problem,
        report=rep,
        made_at=ctx.clock(),
    )


@router.get("/effekter.csv")
def effects_csv(request: Request, p: Person, tenant: str = "", month: str = "", months: int = 1) -> Response:
    """The month's figures (or ``months`` months ending with it, at most 36) as CSV."""
    ctx = web_context(request)
    chosen, chosen_month, problem = _choose(ctx, p, tenant, month)
    if problem:
        return Response(problem + "\n", status_code=400, media_type="text/plain; charset=utf-8")
    wanted = effects_report.recent_months(chosen_month, max(1, min(months, 36)))
    reports = effects_report.series(ctx.db, ctx.registry.robots, ctx.settings, chosen, wanted)
    name = f"effekter-{chosen}-{wanted[0]}" + (f"--{wanted[-1]}" if len(wanted) > 1 else "") + ".csv"
    return Response(
        # A byte-order mark so spreadsheet programs read the Swedish letters as UTF-8.
        "\ufeff" + effects_report.csv_text(reports),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
