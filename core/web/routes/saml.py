"""SAML 2.0 sign-in and single logout (the service provider's endpoints; see core.web.saml).

The assertion consumer service takes a cross-site POST from the IdP: it has no CSRF token,
and needs none — the signed Response must answer a request this browser started (its ID is
stored, used once, and bound to the browser by a cookie).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from core.logging import get_logger
from core.web.auth import LANG_COOKIE
from core.web.deps import redirect, safe_next, web_context
from core.web.i18n import normalise_lang, translator
from core.web.routes.auth import _login_page
from core.web.saml import BINDING_COOKIE, SamlError, SamlMfaMissing

router = APIRouter(include_in_schema=False)
log = get_logger("kollega.web")


@router.get("/auth/saml/metadata")
async def metadata(request: Request) -> Response:
    """Our service provider metadata: what the municipality's IdP administrators register."""
    ctx = web_context(request)
    if ctx.saml is None:
        return _login_page(request, status=404)
    xml = await run_in_threadpool(ctx.saml.metadata_xml)
    return Response(xml, media_type="application/samlmetadata+xml", headers={"Cache-Control": "max-age=3600"})


@router.get("/auth/saml/login")
async def login(request: Request, next: str = "") -> Response:
    """Send the browser to the IdP with a signed AuthnRequest."""
    ctx = web_context(request)
    if ctx.saml is None:
        return _login_page(request, status=404)
    _ = translator(normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang))
    try:
        url, binding = await ctx.saml.begin(ctx.db, ctx.clock(), safe_next(next, ""))
    except SamlError as exc:
        log.warning("web.saml_begin_failed", reason=str(exc))
        return _login_page(
            request, error=_("Kommunens inloggning svarar inte just nu. Försök igen om en stund."), status=502
        )
    response = redirect(url)
    # The IdP's answer is a cross-site POST: only SameSite=None cookies come along (Secure required);
    # without HTTPS (a test on 127.0.0.1) the IdP is same-site and Lax is enough.
    samesite = "none" if ctx.web.cookie_secure else "lax"
    response.set_cookie(BINDING_COOKIE, binding, max_age=600, **ctx.cookie_args(samesite=samesite))
    return response


@router.post("/auth/saml/acs")
async def acs(
    request: Request,
    SAMLResponse: Annotated[str, Form(max_length=500_000)],
    RelayState: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The IdP's Response: verified, then the person is provisioned and a new session starts."""
    ctx = web_context(request)
    if ctx.saml is None:
        return _login_page(request, status=404)
    _ = translator(normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang))
    now = ctx.clock()
    try:
        identity = await ctx.saml.finish(ctx.db, SAMLResponse, request.cookies.get(BINDING_COOKIE), now)
        user = await run_in_threadpool(ctx.saml.provision, ctx.db, identity, now)
    except SamlMfaMissing:
        log.warning("web.saml_refused", reason="no multi-factor authentication context")
        return _login_page(
            request,
            error=_(
                "Inloggningen gjordes utan andra faktor. Kollega visar personuppgifter och kräver inloggning med två faktorer, till exempel e-legitimation eller SITHS-kort."
            ),
            status=403,
        )
    except SamlError as exc:
        log.warning("web.saml_refused", reason=str(exc))
        return _login_page(request, error=_("Inloggningen kunde inte slutföras. Börja om."), status=400)
    token = await run_in_threadpool(
        ctx.auth.start_session,
        user,
        method="saml",
        lang=normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang),
        old_token=request.cookies.get(ctx.cookie_name),
        idp_session=(identity.name_id, identity.session_index),
    )
    response = redirect(safe_next(identity.next_url, "/"))
    response.set_cookie(ctx.cookie_name, token, **ctx.cookie_args())
    response.delete_cookie(BINDING_COOKIE, path="/")
    return response


@router.get("/auth/saml/slo")
async def slo(request: Request) -> Response:
    """Single logout: the IdP's answer to our LogoutRequest, or its own LogoutRequest."""
    ctx = web_context(request)
    if ctx.saml is None:
        return _login_page(request, status=404)
    _ = translator(normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang))
    try:
        target = await ctx.saml.logout_answer(ctx.db, dict(request.query_params), ctx.clock())
    except SamlError as exc:
        log.warning("web.saml_logout_refused", reason=str(exc))
        return _login_page(request, error=_("Utloggningen från kommunens inloggning kunde inte bekräftas."), status=400)
    return redirect(target or "/login?out=1")
