"""Logging in and out (password or OpenID Connect), the language switch, the profile page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from core.logging import get_logger
from core.web.auth import LANG_COOKIE, LOGIN_CSRF_COOKIE, PENDING_STEPS, Principal
from core.web.deps import (
    csrf_guard,
    current_principal,
    login_csrf_token,
    optional_principal,
    pending_principal,
    redirect,
    render,
    safe_next,
    web_context,
)
from core.web.i18n import normalise_lang, translator
from core.web.oidc import BINDING_COOKIE, OidcError
from core.web.saml import SamlError

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
log = get_logger("kollega.web")
YEAR = 365 * 24 * 3600


def _login_page(request: Request, *, error: str | None = None, status: int = 200, next_url: str = "") -> HTMLResponse:
    ctx = web_context(request)
    token, fresh = login_csrf_token(request)
    notice = None
    _ = translator(normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang))
    if request.query_params.get("expired") or getattr(request.state, "session_expired", False):
        notice = _("Du har loggats ut eftersom sessionen tog slut. Logga in igen.")
    elif request.query_params.get("out"):
        notice = _("Du är utloggad.")
    response = render(
        request,
        "login.html",
        status=status,
        login_csrf=token,
        error=error,
        notice=notice,
        next_url=safe_next(next_url or request.query_params.get("next"), ""),
        oidc=ctx.web.oidc,
        saml=ctx.web.saml,
        local_login=ctx.web.local_login,
    )
    if fresh:
        response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **ctx.cookie_args(samesite="strict"))
    return response


@router.get("/")
async def root(p: Annotated[Principal | None, Depends(optional_principal)]) -> RedirectResponse:
    """Home: the person's start page, or the login page."""
    return redirect(p.home() if p else "/login")


@router.get("/login")
async def login_form(request: Request, p: Annotated[Principal | None, Depends(optional_principal)]) -> Response:
    """The login page."""
    if p is not None:
        return redirect(p.home())
    return _login_page(request)


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the password; a new session (new id) on success."""
    ctx = web_context(request)
    _ = translator(normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang))
    if not ctx.web.local_login:
        return _login_page(request, error=_("Inloggning med lösenord är avstängd."), status=403)
    address = request.client.host if request.client else None
    attempt = await run_in_threadpool(ctx.auth.verify_password, username.strip(), password, address)
    if attempt.wait_seconds > 0:
        wait = int(attempt.wait_seconds) + 1
        slow = _login_page(
            request,
            error=_("För många misslyckade inloggningar. Vänta {seconds} sekunder och försök igen.").format(
                seconds=wait
            ),
            status=429,
            next_url=next,
        )
        slow.headers["Retry-After"] = str(wait)
        return slow
    user = attempt.user
    if user is None:
        return _login_page(request, error=_("Fel användarnamn eller lösenord."), status=401, next_url=next)
    lang = normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang)
    pending = ctx.auth.first_pending_step(user)
    token = await run_in_threadpool(
        ctx.auth.start_session,
        user,
        method="password",
        lang=lang,
        old_token=request.cookies.get(ctx.cookie_name),
        pending=pending,
    )
    target = safe_next(next, "/")
    response = redirect(
        PENDING_STEPS[pending] + (f"?next={quote(target)}" if target != "/" else "") if pending else target
    )
    response.set_cookie(ctx.cookie_name, token, **ctx.cookie_args())
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, p: Annotated[Principal, Depends(pending_principal)]) -> Response:
    """End the session on the server and drop the cookie."""
    ctx = web_context(request)
    idp_session = await run_in_threadpool(ctx.auth.end_session, p)
    response: Response = redirect("/login?out=1")
    if idp_session is not None and ctx.saml is not None:
        # Single logout: the IdP ends its session too and sends the browser back to /auth/saml/slo.
        # A page that moves on by itself, not a redirect: CSP's form-action 'self' forbids a
        # form's redirect to another origin.
        try:
            idp_url = await ctx.saml.logout_url(ctx.db, idp_session[0], idp_session[1], ctx.clock())
            response = render(request, "saml_logout.html", idp_url=idp_url)
        except SamlError:
            log.warning("web.saml_logout_unavailable")
    response.delete_cookie(ctx.cookie_name, path="/", secure=ctx.web.cookie_secure, httponly=True)
    return response


@router.post("/lang")
async def set_lang(
    request: Request,
    p: Annotated[Principal | None, Depends(optional_principal)],
    lang: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Switch language (kept in the session and in a cookie for the login page)."""
    ctx = web_context(request)
    chosen = normalise_lang(lang, ctx.web.default_lang)
    if p is not None:
        await run_in_threadpool(ctx.auth.set_lang, p, chosen)
    response = redirect(safe_next(next, "/"))
    response.set_cookie(LANG_COOKIE, chosen, max_age=YEAR, **ctx.cookie_args())
    return response


@router.get("/auth/oidc/login")
async def oidc_login(request: Request) -> Response:
    """Start an OpenID Connect login at the provider."""
    ctx = web_context(request)
    if ctx.oidc is None:
        return _login_page(request, status=404)
    _ = translator(normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang))
    try:
        url, binding = await ctx.oidc.begin(ctx.db, ctx.clock())
    except OidcError:
        return _login_page(
            request, error=_("Kommunens inloggning svarar inte just nu. Försök igen om en stund."), status=502
        )
    response = redirect(url)
    # Lax, not Strict: the browser must send it on the provider's redirect back to us.
    response.set_cookie(BINDING_COOKIE, binding, max_age=600, **ctx.cookie_args(samesite="lax"))
    return response


@router.get("/auth/oidc/callback")
async def oidc_callback(
    request: Request, code: str = "", state: str = "", iss: str | None = None, error: str | None = None
) -> Response:
    """The provider's answer: check state, browser, issuer, code, ID token and nonce; then a new session."""
    ctx = web_context(request)
    _ = translator(normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang))
    if ctx.oidc is None:
        return _login_page(request, status=404)
    now = ctx.clock()
    try:
        login = await run_in_threadpool(ctx.oidc.take_state, ctx.db, state, request.cookies.get(BINDING_COOKIE), now)
        if error:
            raise OidcError(f"the provider answered {error}")
        claims = await ctx.oidc.finish(code, login, iss, now)
        if await run_in_threadpool(ctx.oidc.refuse_without_second_factor, ctx.db, claims, now):
            return _login_page(
                request,
                error=_(
                    "Kommunens inloggning intygade inte att du loggade in med två faktorer (till exempel BankID, SITHS-kort eller engångskod). Kollega kräver det eftersom du kan se personuppgifter. Logga in igen med tvåfaktorsinloggning, eller kontakta IT-supporten."
                ),
                status=403,
            )
        user = await run_in_threadpool(ctx.oidc.provision, ctx.db, claims, now)
    except OidcError:
        return _login_page(request, error=_("Inloggningen kunde inte slutföras. Börja om."), status=400)
    token = await run_in_threadpool(
        ctx.auth.start_session,
        user,
        method="oidc",
        lang=normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang),
        old_token=request.cookies.get(ctx.cookie_name),
    )
    response = redirect("/")
    response.set_cookie(ctx.cookie_name, token, **ctx.cookie_args())
    response.delete_cookie(BINDING_COOKIE, path="/")
    return response


@router.get("/me")
async def me(request: Request, p: Annotated[Principal, Depends(current_principal)]) -> HTMLResponse:
    """Who I am and what I may do; my password and second factor."""
    ctx = web_context(request)
    enrolled, codes_left = await run_in_threadpool(ctx.auth.mfa_status, p)
    return render(
        request,
        "me.html",
        grants=sorted(p.grants, key=lambda g: (g.tenant, g.role.value, g.queue)),
        mfa_enrolled=enrolled,
        recovery_codes_left=codes_left,
        mfa_required=ctx.web.mfa_required,
    )
