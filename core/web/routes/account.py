"""The person's own account: the second factor at login (TOTP, recovery codes), enrolment, password change.

A password login that still owes a step keeps its session in ``pending`` state: only these
pages (and logging out) answer it; every other page sends the person here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from core.web import mfa
from core.web.auth import Principal
from core.web.deps import csrf_guard, current_principal, pending_principal, redirect, render, safe_next, web_context
from core.web.i18n import translator
from core.web.passwords import PasswordPolicyError

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
Pending = Annotated[Principal, Depends(pending_principal)]


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _mfa_page(request: Request, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    return render(
        request, "mfa.html", status=status, error=error, next_url=safe_next(request.query_params.get("next"), "")
    )


@router.get("/login/mfa")
async def mfa_form(request: Request, p: Pending) -> Response:
    """Ask for the code from the authenticator app (or a recovery code)."""
    if p.pending != "mfa":
        return redirect(p.home())
    return _mfa_page(request)


@router.post("/login/mfa")
async def mfa_check(
    request: Request,
    p: Pending,
    code: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the code; the session is complete when it is right."""
    ctx = web_context(request)
    _ = translator(p.lang)
    if p.pending != "mfa":
        return redirect(p.home())
    address = _address(request)
    if await run_in_threadpool(ctx.auth.check_second_factor, p, code, address):
        return redirect(safe_next(next, "/"))
    if await run_in_threadpool(ctx.auth.login_blocked_for, address) > 0:
        return _mfa_page(request, error=_("För många felaktiga koder. Vänta en stund och försök igen."), status=429)
    return _mfa_page(request, error=_("Koden stämmer inte. Försök igen med en ny kod."), status=401)


@router.get("/login/mfa/enrol")
async def enrol_form(request: Request, p: Pending) -> Response:
    """Enrolment: a new secret as a QR code, a link and text; confirmed with a first code."""
    ctx = web_context(request)
    if p.pending != "mfa_enrol":
        return redirect(p.home())
    secret = await run_in_threadpool(ctx.auth.totp_secret, p)
    if secret is None:
        secret = await run_in_threadpool(ctx.auth.begin_enrolment, p)
    return _enrol_page(request, p, secret)


def _enrol_page(request: Request, p: Principal, secret: str, *, error: str | None = None) -> HTMLResponse:
    uri = mfa.provisioning_uri(secret, p.username)
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render(
        request,
        "mfa_enrol.html",
        status=401 if error else 200,
        error=error,
        secret=spaced,
        uri=uri,
        qr=Markup(mfa.qr_svg(uri)),  # noqa: S704 - segno's own SVG of our URI, no user input in markup
        next_url=safe_next(request.query_params.get("next"), ""),
    )


@router.post("/login/mfa/enrol")
async def enrol_confirm(
    request: Request,
    p: Pending,
    code: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form()] = "",
) -> Response:
    """Confirm the secret with a first code; the recovery codes are shown once."""
    ctx = web_context(request)
    _ = translator(p.lang)
    if p.pending != "mfa_enrol":
        return redirect(p.home())
    codes = await run_in_threadpool(ctx.auth.confirm_enrolment, p, code)
    if codes is None:
        secret = await run_in_threadpool(ctx.auth.totp_secret, p)
        if secret is None:
            return redirect("/login")
        return _enrol_page(request, p, secret, error=_("Koden stämmer inte. Kontrollera klockan i telefonen."))
    return render(request, "recovery_codes.html", codes=codes, next_url=safe_next(next, "/"))


@router.post("/me/recovery-codes")
async def renew_codes(request: Request, p: Annotated[Principal, Depends(current_principal)]) -> Response:
    """New recovery codes (the old ones stop working), shown once."""
    ctx = web_context(request)
    codes = await run_in_threadpool(ctx.auth.new_recovery_codes, p)
    return render(request, "recovery_codes.html", codes=codes, next_url="/me")


@router.get("/account/password")
async def password_form(request: Request, p: Pending) -> Response:
    """Change my password (required after an admin's reset)."""
    if p.pending not in ("", "password"):
        return redirect(p.home())
    return _password_page(request, p)


def _password_page(request: Request, p: Principal, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    ctx = web_context(request)
    return render(
        request,
        "password.html",
        status=status,
        error=error,
        forced=p.pending == "password",
        min_length=ctx.web.password_min_length,
        next_url=safe_next(request.query_params.get("next"), ""),
    )


@router.post("/account/password")
async def password_change(
    request: Request,
    p: Pending,
    current: Annotated[str, Form(max_length=1024)],
    new: Annotated[str, Form(max_length=1024)],
    repeat: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the current password and the policy; my other sessions and my API tokens end."""
    ctx = web_context(request)
    _ = translator(p.lang)
    if p.pending not in ("", "password"):
        return redirect(p.home())
    if new != repeat:
        return _password_page(request, p, error=_("De två nya lösenorden är inte lika."), status=400)
    try:
        await run_in_threadpool(ctx.auth.change_password, p, current, new)
    except PasswordPolicyError as exc:
        return _password_page(request, p, error=_(str(exc)), status=400)
    if p.pending == "password":
        # The next step (the second factor) or the start page.
        fresh = await run_in_threadpool(ctx.auth.principal_for_session, request.cookies[ctx.cookie_name])
        return redirect(fresh.home() if fresh.pending else safe_next(next, fresh.home()))
    await run_in_threadpool(ctx.auth.set_flash, p, _("Ditt lösenord är bytt. Dina andra inloggningar har avslutats."))
    return redirect("/me")
