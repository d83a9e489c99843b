"""The web app: the case workers' inbox, the operations dashboard, the audit viewer, the JSON API.

:func:`create_app` builds a FastAPI app from the deployment's settings, a migrated
database and the installed robots. Pages are server-rendered (Jinja2, plain CSS, no
JavaScript); the JSON API lives under ``/api/v1`` with its OpenAPI description at
``/api/v1/openapi.json``; ``/metrics`` speaks the Prometheus text format.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import anyio.to_thread
import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.clock import Clock, SystemClock
from core.errors import AlreadyDecided, ReviewError
from core.logging import get_logger
from core.queue import WorkQueue
from core.registry import Registry
from core.review import ReviewQueue
from core.runs import SqlRunStore
from core.settings import Settings
from core.storage.db import Database
from core.web import alerts, idp_grants
from core.web.auth import PENDING_STEPS, Auth, AuthError, CsrfError, Forbidden, NotFound
from core.web.deps import WebContext, make_environment, redirect, render, request_lang
from core.web.i18n import translator
from core.web.metrics import CONTENT_TYPE, exposition, metrics_allowed
from core.web.oidc import OidcClient
from core.web.pagecache import FiguresCache, MyDecisionsCache
from core.web.routes import access_check, account, api, audit, auth, effects, inbox, ops, saml
from core.web.saml import SamlServiceProvider
from core.web.settings import WebSettings, web_settings

log = get_logger("kollega.web")
STATIC = Path(__file__).parent / "static"


class SecurityHeaders:
    """ASGI middleware: the security headers on every response (and no-store on all but static files).

    Plain ASGI rather than ``@app.middleware("http")``: that wraps every request in a task and
    memory streams of its own, a cost each page paid for five headers.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_page(request: Request, status: int, title: str, text: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": title}, status_code=status)
    _ = translator(request_lang(request))
    return render(request, "error.html", status=status, title=_(title), text=_(text))


async def alert_loop(ctx: WebContext, stop: asyncio.Event) -> None:
    """Look for alerts and mail new ones every ``alerts.check_every_seconds`` until ``stop``."""
    smtp = alerts.mail_settings(ctx.settings.connectors) if ctx.web.alerts.mail else None
    while not stop.is_set():
        try:
            await run_in_threadpool(
                alerts.sweep_reviews, ctx.db, ctx.settings, ctx.registry, ctx.reviews, ctx.reviews.clock
            )
            await run_in_threadpool(alerts.detect, ctx.db, ctx.web.alerts, ctx.clock(), ctx.zone)
            if smtp is not None:
                await alerts.mail_new(
                    ctx.db,
                    smtp,
                    ctx.clock(),
                    ctx.web.public_url,
                    coordinators=ctx.settings.review.escalation_mail_coordinators,
                )
        except Exception:
            # A database or SMTP hiccup must not end the loop: the next check tries again.
            log.exception("web.alert_check_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=ctx.web.alerts.check_every_seconds)


def create_app(
    settings: Settings,
    db: Database,
    registry: Registry,
    *,
    web: WebSettings | None = None,
    clock: Clock | None = None,
    oidc_transport: httpx.AsyncBaseTransport | None = None,
    run_alert_loop: bool = False,
    warm_dashboard: bool = False,
) -> FastAPI:
    """The web app for one deployment (``run_alert_loop``: `kollega serve` checks and mails alerts).

    ``warm_dashboard``: `kollega serve` computes the dashboard's kept figures in the background
    as the app starts, so that its first views do not wait for them.
    """
    web = web or web_settings(settings)
    clock = clock or SystemClock()
    now: Callable[[], datetime] = clock.now
    tenants = [t.code for t in settings.tenants]
    idp_grants.check_mapping(web.idp_groups, tenants)
    oidc = None
    if web.oidc is not None:
        oidc = OidcClient(
            web.oidc,
            web.oidc.redirect_uri or f"{web.public_url}/auth/oidc/callback",
            transport=oidc_transport,
            groups=web.idp_groups,
            tenants=tenants,
            mfa_required=web.mfa_required,
        )
    saml_sp = None
    if web.saml is not None:
        saml_sp = SamlServiceProvider(
            web.saml,
            web.public_url,
            groups=web.idp_groups,
            tenants=tenants,
            mfa_required=web.mfa_required,
            transport=oidc_transport,
        )
    ctx = WebContext(
        settings=settings,
        web=web,
        db=db,
        registry=registry,
        clock=now,
        auth=Auth(db, web, now),
        reviews=ReviewQueue(db, clock),
        runs=SqlRunStore(db, clock),
        queue=WorkQueue(db, clock),
        env=make_environment(),
        oidc=oidc,
        saml=saml_sp,
        figures=FiguresCache(web.dashboard_cache_seconds, now),
        my_decisions=MyDecisionsCache(web.inbox_cache_seconds, now) if web.inbox_cache_seconds else None,
        lapsed=FiguresCache(web.inbox_cache_seconds, now, 256, background=False) if web.inbox_cache_seconds else None,
        queue_counts=FiguresCache(web.inbox_cache_seconds, now, 256, background=False)
        if web.inbox_cache_seconds
        else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The synchronous routes' threads (anyio's default limiter of this event loop: 40)
        # cut to what the connection pools hold. With more, a busy morning's requests beyond
        # the pool each opened a PostgreSQL connection and closed it again (hundreds a minute,
        # a backend started each time) and 30 threads took turns at one GIL; a request over the
        # limit waits for a thread instead (docs/benchmarks.md, "Fifth pass").
        threads = anyio.to_thread.current_default_thread_limiter()
        before, threads.total_tokens = threads.total_tokens, web.request_threads
        stop = asyncio.Event()
        task = asyncio.create_task(alert_loop(ctx, stop)) if run_alert_loop else None
        if warm_dashboard:
            try:
                await asyncio.to_thread(ops.warm_dashboard, ctx)
            except Exception:  # the first views compute them instead
                log.exception("web.dashboard_warm_failed")
        try:
            yield
        finally:
            threads.total_tokens = before
            stop.set()
            if task is not None:
                await task
            # The dashboard's figures being computed in the background finish before the database goes.
            if ctx.figures is not None:
                await asyncio.to_thread(ctx.figures.settle, 30)

    app = FastAPI(
        title="Kollega",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        description="Kollega's JSON API: review inbox, operations and the access log. Authenticate with "
        "`Authorization: Bearer <token>` (`kollega users token`).",
    )
    app.state.kollega = ctx

    app.add_middleware(SecurityHeaders, hsts=web.cookie_secure)

    @app.exception_handler(AuthError)
    async def on_auth(request: Request, exc: AuthError) -> Response:
        if _is_api(request):
            response: Response = JSONResponse(
                {"detail": "login required"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        elif exc.pending:
            return redirect(PENDING_STEPS[exc.pending])
        elif exc.expired:
            response = redirect("/login?expired=1")
        else:
            response = redirect(f"/login?next={request.url.path}")
        if exc.expired:
            response.delete_cookie(ctx.cookie_name, path="/", secure=web.cookie_secure, httponly=True)
        return response

    @app.exception_handler(Forbidden)
    async def on_forbidden(request: Request, exc: Forbidden) -> Response:
        return _error_page(request, 403, "Åtkomst nekad", "Du har inte behörighet till den här sidan.")

    @app.exception_handler(NotFound)
    async def on_not_found(request: Request, exc: NotFound) -> Response:
        return _error_page(
            request, 404, "Hittades inte", "Sidan eller ärendet finns inte, eller så har du inte behörighet till det."
        )

    @app.exception_handler(CsrfError)
    async def on_csrf(request: Request, exc: CsrfError) -> Response:
        return _error_page(
            request,
            403,
            "Formuläret har gått ut",
            "Av säkerhetsskäl kunde formuläret inte skickas. Gå tillbaka, ladda om sidan och försök igen.",
        )

    @app.exception_handler(AlreadyDecided)
    async def on_decided(request: Request, exc: AlreadyDecided) -> Response:
        return _error_page(request, 409, "Ärendet är redan avgjort", "Någon annan hann före.")

    @app.exception_handler(ReviewError)
    async def on_review_error(request: Request, exc: ReviewError) -> Response:
        return _error_page(request, 422, "Det gick inte", "Kontrollera uppgifterna och försök igen.")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return await on_not_found(request, NotFound())
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return _error_page(request, exc.status_code, "Det gick inte", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.errors()}, status_code=422)
        return _error_page(request, 422, "Det gick inte", "Formuläret var ofullständigt. Gå tillbaka och försök igen.")

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Prometheus text format: with the bearer token, or from an allowed network (default: this machine)."""
        if not metrics_allowed(web, request.headers.get("authorization", ""), request.client):
            return Response("unauthorized\n", status_code=401, media_type="text/plain")
        return Response(exposition(db, now()), media_type=CONTENT_TYPE)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: the app answers and the database is reachable."""
        db.current_revision()
        return {"status": "ok"}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, saml, account, inbox, ops, effects, audit, access_check, api):
        app.include_router(module.router)
    return app
