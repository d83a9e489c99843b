"""The operations pages: dashboard, runs, items, artifacts, schedules, alerts; the IT admin's user list."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import select

from core.records import RUN_LOG_LEVELS
from core.storage.models import Tenant
from core.storage.web_models import GrantSource, Role, User, UserRole
from core.transitions import BULK_ACTIONS, BULK_FAILED, can_cancel, can_retry
from core.web import alerts, dashboard, decisions, inbox, schedule_edit, useradmin
from core.web.auth import Forbidden, NotFound, Principal
from core.web.charts import stacked_bars
from core.web.deps import RowId, WebContext, csrf_guard, current_principal, redirect, render, request_lang, web_context
from core.web.i18n import translator
from core.web.pagecache import FiguresCache

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
#: Log entries a run's page shows at most (filter by level or item to see others).
RUN_LOG_SHOWN = 1000
Person = Annotated[Principal, Depends(current_principal)]


def ops_tenants(p: Principal) -> set[str]:
    """Tenants whose operations the person sees; Forbidden for everyone else."""
    tenants = p.ops_tenants
    if not tenants:
        raise Forbidden()
    return tenants


def artifact_allowed(ctx: WebContext, p: Principal, tenant: str) -> bool:
    """Whether the person may see screenshots and other artifacts of ``tenant``."""
    return any(p.has(role, tenant) for role in ctx.web.artifact_roles)


def charts_for(ctx: WebContext, tenants: set[str], lang: str) -> list[dict[str, Any]]:
    """One stacked bar chart per robot over the last 30 days, with its data for a table alternative."""
    _ = translator(lang)
    names = {"done": _("Klara"), "needs_review": _("Att granska"), "exceptions": _("Undantag")}
    out: list[dict[str, Any]] = []
    for robot, points in dashboard.trends(ctx, tenants).items():
        labels = [pt.day.strftime("%d/%m") for pt in points]
        series = {
            "done": [pt.done for pt in points],
            "needs_review": [pt.needs_review for pt in points],
            "exceptions": [pt.exceptions for pt in points],
        }
        cls = ctx.registry.robots.get(robot)
        title = _("{robot}: ärenden per dag, senaste 30 dagarna", robot=cls.display_name if cls else robot)
        out.append(
            {
                "robot": robot,
                "title": title,
                "svg": stacked_bars(title, labels, series, names),
                "points": points,
                "names": names,
            }
        )
    return out


def _alert_checks(ctx: WebContext) -> None:
    alerts.sweep_reviews(ctx.db, ctx.settings, ctx.registry, ctx.reviews, ctx.reviews.clock)
    alerts.detect(ctx.db, ctx.web.alerts, ctx.clock(), ctx.zone)


def warm_dashboard(ctx: WebContext) -> None:
    """Compute the dashboard's kept figures on the background thread (a worker's start), not on its first views.

    For each set of municipalities an active operations person or IT administrator sees, in the
    default language; a view in another language, or by someone granted since, computes its own.
    """
    figures = ctx.figures
    if figures is None:
        return
    with ctx.db.read_connection() as conn:
        grants = conn.execute(
            select(UserRole.user_id, UserRole.tenant)
            .join(User, User.id == UserRole.user_id)
            .where(User.active.is_(True), UserRole.role.in_([Role.operations, Role.it_admin]))
        ).all()
    people: dict[int, set[str]] = {}
    for user_id, tenant in grants:
        people.setdefault(user_id, set()).add(tenant)
    lang = ctx.web.default_lang
    figures.warm("alert-checks", lambda: _alert_checks(ctx))
    for tenants in {frozenset(t) for t in people.values()}:
        figures.warm(("time-saved", tenants), partial(dashboard.time_saved, ctx, set(tenants)))
        figures.warm(("trends", tenants, lang), partial(charts_for, ctx, set(tenants), lang))


@router.get("/ops")
def dashboard_page(request: Request, p: Person) -> HTMLResponse:
    """Last night at a glance, alerts, trends, time saved."""
    ctx = web_context(request)
    tenants = ops_tenants(p)
    figures = ctx.figures or FiguresCache(0, ctx.clock)
    # The overdue sweep and the alert checks (also run by `kollega serve`'s alert loop): at
    # most once per period, not on every view of every operations person.
    figures.get("alert-checks", lambda: _alert_checks(ctx))
    saved = figures.get(("time-saved", frozenset(tenants)), lambda: dashboard.time_saved(ctx, tenants))
    lang = request_lang(request)
    # The 30-day trends (a month of runs, drawn as SVG) may be as old as the time saved.
    charts = figures.get(("trends", frozenset(tenants), lang), lambda: charts_for(ctx, tenants, lang))
    start, _end = dashboard.night_window(ctx.clock(), ctx.zone)
    robots = {name: cls.display_name for name, cls in ctx.registry.robots.items()}
    return render(
        request,
        "ops.html",
        night=dashboard.last_night(ctx, tenants),
        night_start=start,
        alerts=alerts.open_alerts(ctx.db, tenants),
        charts=charts.value,
        charts_at=charts.computed_at,
        saved=saved.value,
        saved_at=saved.computed_at,
        # The page says how old they are: up to twice the period while newer ones are computed.
        now=ctx.clock(),
        figures_every_minutes=math.ceil(figures.max_age.total_seconds() / 60),
        waiting=decisions.waiting_by_robot(ctx, tenants),
        backlog=dashboard.inbox_backlog(ctx, tenants),
        decision_wait_minutes=ctx.web.alerts.decision_wait_minutes,
        robots=robots,
        tenants=sorted(tenants),
    )


@router.post("/ops/alerts/{alert_id}/ack")
def acknowledge(request: Request, p: Person, alert_id: RowId) -> Response:
    """Mark an alert as seen."""
    ctx = web_context(request)
    if not alerts.acknowledge(ctx.db, ops_tenants(p), alert_id, p.actor, ctx.clock()):
        raise NotFound()
    return redirect("/ops")


@router.get("/ops/runs")
def runs_page(request: Request, p: Person, robot: str = "", status: str = "") -> HTMLResponse:
    """Recent runs, newest first."""
    ctx = web_context(request)
    runs = dashboard.list_runs(ctx, ops_tenants(p), robot or None, status or None)
    return render(
        request, "runs.html", runs=runs, robot=robot, status_filter=status, robots=sorted(ctx.registry.robots)
    )


@router.get("/ops/runs/{run_id}")
def run_page(
    request: Request, p: Person, run_id: RowId, level: str = "", item: Annotated[int | None, Query(ge=1)] = None
) -> HTMLResponse:
    """One run with its robot's version, its items and its log (filtered by level and item)."""
    ctx = web_context(request)
    run, items = dashboard.get_run(ctx, ops_tenants(p), run_id)
    chosen = level if level in RUN_LOG_LEVELS else ""
    entries = ctx.runs.run_log(run_id, level=chosen or None, item_id=item, limit=RUN_LOG_SHOWN)
    return render(
        request,
        "run.html",
        run=run,
        items=items,
        log=entries,
        log_levels=RUN_LOG_LEVELS,
        level=chosen,
        item_filter=item,
        log_limit=RUN_LOG_SHOWN,
    )


@router.get("/ops/items")
def items_page(
    request: Request,
    p: Person,
    robot: str = "",
    status: str = "",
    error_code: str = "",
    tenant: str = "",
    run: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """Failed items matching a filter, and one action to retry or cancel them all."""
    ctx = web_context(request)
    tenants = ops_tenants(p)
    chosen = dashboard.ItemFilter.parse(tenants, robot, status, error_code, tenant, run)
    return render(
        request,
        "items.html",
        items=dashboard.failed_items(ctx, chosen),
        filter=chosen,
        robots=sorted(ctx.registry.robots),
        statuses=[s.value for s in sorted(BULK_FAILED)],
        tenants=sorted(tenants),
    )


@router.post("/ops/items/bulk")
def bulk_items(
    request: Request,
    p: Person,
    action: Annotated[str, Form(max_length=10)],
    robot: Annotated[str, Form(max_length=64)] = "",
    status: Annotated[str, Form(max_length=32)] = "",
    error_code: Annotated[str, Form(max_length=100)] = "",
    tenant: Annotated[str, Form(max_length=4)] = "",
    run: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Retry or cancel every failed item matching the filter: one audited action."""
    ctx = web_context(request)
    _ = translator(request_lang(request))
    if action not in BULK_ACTIONS:
        raise NotFound()
    run_id = int(run) if run.isdigit() else None
    chosen = dashboard.ItemFilter.parse(ops_tenants(p), robot, status, error_code, tenant, run_id)
    changed = dashboard.bulk_items(ctx, chosen, action, p.actor)
    message = (
        _("{n} ärenden är tillbaka i kön.", n=len(changed))
        if action == "retry"
        else _("{n} ärenden är avbrutna.", n=len(changed))
    )
    ctx.auth.set_flash(p, message)
    return redirect("/ops/items?" + chosen.query())


@router.get("/ops/items/{item_id}")
def item_page(request: Request, p: Person, item_id: RowId) -> HTMLResponse:
    """One work item: status, error, attempts, artifacts (to allowed roles), retry and cancel."""
    ctx = web_context(request)
    item, artifacts = dashboard.get_item(ctx, ops_tenants(p), item_id)
    return render(
        request,
        "ops_item.html",
        item=item,
        artifacts=artifacts,
        show_artifacts=artifact_allowed(ctx, p, item.tenant),
        retryable=can_retry(item.status),
        cancellable=can_cancel(item.status),
    )


@router.get("/ops/artifacts/{artifact_id}")
def artifact(request: Request, p: Person, artifact_id: RowId) -> Response:
    """An artifact's file (audited), to roles allowed to see it."""
    ctx = web_context(request)
    tenants = {t for t in p.ops_tenants if artifact_allowed(ctx, p, t)}
    # Not only operations: when the deployment lists an inbox role among the artifact roles, a
    # person with that role sees the artifacts of the items in their own inbox, and no others.
    inbox_tenants = {g.tenant for g in p.grants if g.role in ctx.web.artifact_roles} - tenants
    if inbox_tenants and inbox.artifact_in_inbox(ctx, p, artifact_id, inbox_tenants):
        tenants |= inbox_tenants
    if not tenants:
        raise Forbidden()
    art = dashboard.get_artifact(ctx, tenants, artifact_id, p.actor)
    path = Path(art.path)
    if not path.is_file():
        raise NotFound()
    inline = art.content_type.startswith("image/")
    return FileResponse(
        path,
        media_type=art.content_type,
        filename=art.filename,
        content_disposition_type="inline" if inline else "attachment",
        headers={"Cache-Control": "no-store", "Content-Security-Policy": "sandbox"},
    )


@router.post("/ops/items/{item_id}/retry")
def retry(request: Request, p: Person, item_id: RowId) -> Response:
    """Put the item back in the queue."""
    ctx = web_context(request)
    _ = translator(request_lang(request))
    ok = dashboard.retry_item(ctx, ops_tenants(p), item_id, p.actor)
    ctx.auth.set_flash(p, _("Ärendet är tillbaka i kön.") if ok else _("Ärendet kan inte köras om i sitt läge."))
    return redirect(f"/ops/items/{item_id}")


@router.post("/ops/items/{item_id}/cancel")
def cancel(request: Request, p: Person, item_id: RowId) -> Response:
    """Cancel the item."""
    ctx = web_context(request)
    _ = translator(request_lang(request))
    ok = dashboard.cancel_item(ctx, ops_tenants(p), item_id, p.actor)
    ctx.auth.set_flash(p, _("Ärendet är avbrutet.") if ok else _("Ärendet kan inte avbrytas i sitt läge."))
    return redirect(f"/ops/items/{item_id}")


@router.get("/ops/schedules")
def schedules_page(request: Request, p: Person) -> HTMLResponse:
    """Schedules with their next run; pause, resume, run now."""
    ctx = web_context(request)
    tenants = ops_tenants(p)
    rows, _problem = dashboard.schedules(ctx, tenants)
    robots = {name: cls.display_name for name, cls in sorted(ctx.registry.robots.items())}
    return render(
        request,
        "schedules.html",
        schedules=rows,
        file_problems=dashboard.schedule_problems(ctx),
        robots=robots,
        tenants=sorted(tenants),
    )


@router.post("/ops/schedules/{name}/edit")
def edit_schedule(
    request: Request,
    p: Person,
    name: str,
    cron: Annotated[str, Form(max_length=200)],
    window_end: Annotated[str, Form(max_length=5)],
    calendar: Annotated[str, Form(max_length=20)] = "all",
    enabled: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Change a schedule's time, window, calendar or state: written back to its file, audited."""
    ctx = web_context(request)
    _ = translator(request_lang(request))
    try:
        changed = schedule_edit.change_schedule(
            ctx,
            ops_tenants(p),
            name,
            cron=cron,
            window_end=window_end,
            calendar=calendar,
            enabled=enabled == "on",
            actor=p.actor,
        )
    except schedule_edit.ScheduleEditError as exc:
        ctx.auth.set_flash(p, _(exc.message))
        return redirect("/ops/schedules")
    ctx.auth.set_flash(
        p,
        _("Schemat är ändrat; schemaläggaren använder det från nästa körning.") if changed else _("Inget ändrades."),
    )
    return redirect("/ops/schedules")


@router.post("/ops/schedules/{name}/pause")
def pause(
    request: Request,
    p: Person,
    name: str,
    reason: Annotated[str, Form(max_length=500)] = "",
    tenant: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    """Pause the person's share of a schedule (one tenant, or all theirs on it): skipped until resumed."""
    ctx = web_context(request)
    dashboard.set_paused(ctx, ops_tenants(p), name, True, p.actor, reason, tenant or None)
    ctx.auth.set_flash(p, translator(request_lang(request))("Schemat är pausat."))
    return redirect("/ops/schedules")


@router.post("/ops/schedules/{name}/resume")
def resume(request: Request, p: Person, name: str, tenant: Annotated[str, Form(max_length=4)] = "") -> Response:
    """Resume the person's share of a paused schedule (another municipality's pause stays)."""
    ctx = web_context(request)
    dashboard.set_paused(ctx, ops_tenants(p), name, False, p.actor, tenant=tenant or None)
    ctx.auth.set_flash(p, translator(request_lang(request))("Schemat är igång igen."))
    return redirect("/ops/schedules")


@router.post("/ops/run-now")
def run_now(
    request: Request,
    p: Person,
    robot: Annotated[str, Form()],
    tenant: Annotated[str, Form()],
    dry_run: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Queue a manual run (or a dry run, which writes nothing to other systems); a worker starts it."""
    ctx = web_context(request)
    dry = dry_run == "on"
    run_id = dashboard.run_now(ctx, ops_tenants(p), robot, tenant, p.actor, dry_run=dry)
    _ = translator(request_lang(request))
    ctx.auth.set_flash(p, _("Provkörning {id} är köad.", id=run_id) if dry else _("Körning {id} är köad.", id=run_id))
    return redirect(f"/ops/runs/{run_id}")


def _admin_tenants(p: Principal) -> set[str]:
    tenants = p.tenants(Role.it_admin)
    if not tenants:
        raise Forbidden()
    return tenants


def _users_page(request: Request, p: Person, *, shown_password: tuple[str, str] | None = None) -> HTMLResponse:
    ctx = web_context(request)
    tenants = _admin_tenants(p)
    with ctx.db.session() as s:
        grants = s.execute(
            select(User, UserRole)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.tenant.in_(tenants))
            .order_by(User.username, UserRole.tenant)
        ).all()
        names = dict(s.execute(select(Tenant.code, Tenant.name)).tuples().all())
    users: dict[str, dict[str, object]] = {}
    for user, grant in grants:
        # Local grants (the admin's to change) and the IdP's (changed at the IdP) are shown apart.
        entry = users.setdefault(user.username, {"user": user, "grants": [], "idp_grants": []})
        entry["idp_grants" if grant.source == GrantSource.idp else "grants"].append(grant)  # type: ignore[attr-defined]
    return render(
        request,
        "users.html",
        users=list(users.values()),
        tenant_names=names,
        admin_tenants=sorted(tenants),
        roles=[r.value for r in Role],
        shown_password=shown_password,
    )


@router.get("/admin/users")
def users_page(request: Request, p: Person) -> HTMLResponse:
    """Users with grants in the IT admin's tenants, and the forms to manage them."""
    return _users_page(request, p)


def _admin_failed(request: Request, p: Person, exc: useradmin.UserAdminError) -> Response:
    web_context(request).auth.set_flash(p, translator(request_lang(request))(str(exc)))
    return redirect("/admin/users")


@router.post("/admin/users", response_model=None)
def users_create(
    request: Request,
    p: Person,
    username: Annotated[str, Form(max_length=63)],
    role: Annotated[str, Form()],
    tenant: Annotated[str, Form()],
    display_name: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=200)] = "",
    queue: Annotated[str, Form(max_length=128)] = "",
    oidc_only: Annotated[bool, Form()] = False,
) -> Response:
    """Create a local account with a first grant; its generated password is shown once."""
    ctx = web_context(request)
    try:
        made = useradmin.create(
            ctx.db,
            p.actor,
            _admin_tenants(p),
            username=username,
            display_name=display_name,
            email=email,
            role=role,
            tenant=tenant,
            queue=queue,
            oidc_only=oidc_only,
            now=ctx.clock(),
        )
    except useradmin.UserAdminError as exc:
        return _admin_failed(request, p, exc)
    if made.password is None:
        ctx.auth.set_flash(p, translator(request_lang(request))("Användaren {u} är skapad.", u=username.lower()))
        return redirect("/admin/users")
    return _users_page(request, p, shown_password=(username.strip().lower(), made.password))


@router.post("/admin/users/grants", response_model=None)
def users_grant(
    request: Request,
    p: Person,
    username: Annotated[str, Form(max_length=63)],
    role: Annotated[str, Form()],
    tenant: Annotated[str, Form()],
    queue: Annotated[str, Form(max_length=128)] = "",
    action: Annotated[str, Form(pattern="^(grant|revoke)$")] = "grant",
) -> Response:
    """Add or remove one grant in one of the admin's tenants."""
    ctx = web_context(request)
    try:
        useradmin.change_grant(
            ctx.db,
            p.actor,
            _admin_tenants(p),
            username=username,
            role=role,
            tenant=tenant,
            queue=queue,
            revoke=action == "revoke",
            now=ctx.clock(),
        )
    except useradmin.UserAdminError as exc:
        return _admin_failed(request, p, exc)
    _ = translator(request_lang(request))
    ctx.auth.set_flash(p, _("Behörigheten är borttagen.") if action == "revoke" else _("Behörigheten är tillagd."))
    return redirect("/admin/users")


@router.post("/admin/users/{username}/active", response_model=None)
def users_active(request: Request, p: Person, username: str, active: Annotated[bool, Form()]) -> Response:
    """Disable an account (its sessions and API tokens stop working at once) or enable it."""
    ctx = web_context(request)
    try:
        useradmin.set_active(ctx.db, p.actor, _admin_tenants(p), username=username, active=active, now=ctx.clock())
    except useradmin.UserAdminError as exc:
        return _admin_failed(request, p, exc)
    _ = translator(request_lang(request))
    ctx.auth.set_flash(p, _("Kontot är aktiverat.") if active else _("Kontot är avstängt."))
    return redirect("/admin/users")


@router.post("/admin/users/{username}/password", response_model=None)
def users_password(request: Request, p: Person, username: str) -> Response:
    """A new generated password, shown once; the account is unlocked."""
    ctx = web_context(request)
    try:
        password = useradmin.reset_password(ctx.db, p.actor, _admin_tenants(p), username=username, now=ctx.clock())
    except useradmin.UserAdminError as exc:
        return _admin_failed(request, p, exc)
    return _users_page(request, p, shown_password=(username, password))
