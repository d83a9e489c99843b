"""What every route needs: the app's context, the person asking, CSRF checks, page rendering."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Path as UrlPath
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from core.logging import redact_text
from core.queue import WorkQueue
from core.registry import Registry
from core.review import ReviewQueue
from core.runs import SqlRunStore
from core.settings import Settings
from core.storage.db import Database
from core.storage.web_models import Role
from core.web.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    Auth,
    AuthError,
    Forbidden,
    Principal,
    check_csrf,
    session_cookie_name,
)
from core.web.i18n import LANGUAGES, label, local_time, normalise_lang, robot_translator, translator
from core.web.oidc import OidcClient
from core.web.pagecache import FiguresCache, MyDecisionsCache
from core.web.saml import SamlServiceProvider
from core.web.settings import WebSettings

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class WebContext:
    """Everything the routes share, built once by :func:`core.web.app.create_app`."""

    settings: Settings
    web: WebSettings
    db: Database
    registry: Registry
    clock: Callable[[], datetime]
    auth: Auth
    reviews: ReviewQueue
    runs: SqlRunStore
    queue: WorkQueue
    env: jinja2.Environment
    oidc: OidcClient | None
    saml: SamlServiceProvider | None = None
    #: The dashboard's costly figures, kept ``web.dashboard_cache_seconds`` (see core.web.pagecache).
    figures: FiguresCache | None = None
    #: Each person's "Mina beslut", kept ``web.inbox_cache_seconds`` (None: read on every view).
    my_decisions: MyDecisionsCache | None = None
    #: The lapsed items of each set of grants, kept ``web.inbox_cache_seconds`` (None: read on every view).
    lapsed: FiguresCache | None = None
    #: The queue counts of each set of grants, kept ``web.inbox_cache_seconds`` (None: read on every view).
    queue_counts: FiguresCache | None = None

    @property
    def zone(self) -> str:
        """The deployment's time zone."""
        return self.settings.timezone

    @property
    def cookie_name(self) -> str:
        """The session cookie's name."""
        return session_cookie_name(self.web)

    def cookie_args(self, *, samesite: str = "lax") -> dict[str, Any]:
        """Flags for every cookie we set: HttpOnly, Secure (unless switched off), SameSite, path /."""
        return {"httponly": True, "secure": self.web.cookie_secure, "samesite": samesite, "path": "/"}


def web_context(request: Request) -> WebContext:
    """The app's context."""
    ctx: WebContext = request.app.state.kollega
    return ctx


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def request_lang(request: Request) -> str:
    """The language for this request: the session's, else the language cookie's, else the default."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        return normalise_lang(principal.lang)
    ctx = web_context(request)
    return normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang)


def load_principal(request: Request) -> Principal | None:
    """The person behind the request (bearer token or session cookie), cached on the request."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    ctx = web_context(request)
    principal: Principal | None = None
    request.state.session_expired = False
    lang = normalise_lang(request.cookies.get(LANG_COOKIE), ctx.web.default_lang)
    token = _bearer(request)
    try:
        if token is not None:
            principal = ctx.auth.principal_for_token(token, lang)
        elif request.cookies.get(ctx.cookie_name):
            principal = ctx.auth.principal_for_session(request.cookies[ctx.cookie_name])
    except AuthError as exc:
        request.state.session_expired = exc.expired and token is None
    request.state.principal = principal
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """Dependency: the person, or None when not logged in."""
    return await run_in_threadpool(load_principal, request)


async def pending_principal(request: Request) -> Principal:
    """Dependency: the person, even one who still owes a login step (the step pages use this)."""
    principal = await optional_principal(request)
    if principal is None:
        raise AuthError(expired=bool(getattr(request.state, "session_expired", False)))
    return principal


async def current_principal(request: Request) -> Principal:
    """Dependency: the fully logged-in person; AuthError (→ login page, the owed step, or 401) otherwise."""
    principal = await pending_principal(request)
    if principal.pending:
        raise AuthError(pending=principal.pending)
    return principal


def require_role(principal: Principal, *roles: Role) -> set[str]:
    """The tenants in which the person holds one of ``roles``; Forbidden when none."""
    tenants = principal.tenants(*roles)
    if not tenants:
        raise Forbidden()
    return tenants


async def csrf_guard(request: Request) -> None:
    """Router dependency: every state-changing request must carry the CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    principal = await optional_principal(request)
    provided = request.headers.get(CSRF_HEADER)
    if provided is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        provided = value if isinstance(value, str) else None
    check_csrf(request, principal, provided, web_context(request).web.public_url)


def login_csrf_token(request: Request) -> tuple[str, bool]:
    """The pre-login double-submit token, and whether the cookie must be (re)set."""
    existing = request.cookies.get(LOGIN_CSRF_COOKIE)
    if existing and len(existing) >= 32:
        return existing, False
    return secrets.token_urlsafe(32), True


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the shared layout variables; never cached by the browser."""
    ctx = web_context(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    lang = request_lang(request)
    _ = translator(lang)
    csrf = principal.csrf_token if principal is not None else context.pop("login_csrf", "")
    labels: dict[tuple[str, str | None], str] = {}

    def queue_name(queue: Any, tenant: str | None = None) -> str:
        # A list names the same few queues on every row: looked up once per page.
        key = (str(queue), tenant)
        if key not in labels:
            labels[key] = queue_label(ctx.registry, ctx.settings, key[0], tenant, lang)
        return labels[key]

    html = ctx.env.get_template(template).render(
        request=request,
        p=principal,
        lang=lang,
        languages=LANGUAGES,
        _=_,
        csrf=csrf or "",
        flash=principal.flash if principal is not None else None,
        path=request.url.path,
        Role=Role,
        when=lambda value, fmt="%Y-%m-%d %H:%M": local_time(value, ctx.zone, fmt),
        label=lambda value: _(label(str(value))),
        queue_label=queue_name,
        who=lambda actor: (actor or "").removeprefix("user:"),
        mfa_off=not ctx.web.mfa_required,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def queue_label(registry: Registry, settings: Settings, queue: str, tenant: str | None, lang: str) -> str:
    """A review queue as people see it: "Ronney: ansökningar", else the queue's name.

    The robot's name is the one its municipality shows (``display_name`` in the settings);
    the label comes from the robot's ``queue_labels`` (Swedish), translated by the robot's
    own ``messages``. The engine's own ``<robot>.exceptions`` queue is "undantag".
    """
    robot, _dot, rest = queue.partition(".")
    cls = registry.robots.get(robot)
    if cls is None:
        return queue
    text = cls.queue_labels.get(queue) or ("undantag" if rest == "exceptions" else None)
    if not text:
        return queue
    _ = robot_translator(cls, lang)
    return f"{settings.robot_display_name(robot, tenant, cls.display_name)}: {_(text)}"


def redirect(url: str) -> RedirectResponse:
    """A 303 See Other (the answer to a POST)."""
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None, default: str) -> str:
    """A local path to go back to; anything else (another host, a scheme) gives the default."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def make_environment() -> jinja2.Environment:
    """The page templates' Jinja2 environment (autoescaped)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # The templates are part of the installed package: compiled once per process, not
        # checked on disk (a stat per template and page) on every render.
        auto_reload=False,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["Markup"] = Markup
    # Error texts are masked when stored; shown through the same function again, so rows
    # written before a redaction rule existed are masked on the dashboard too.
    env.filters["redact"] = lambda text: redact_text(text) if text else text
    return env


#: A row id in a URL: a positive 64-bit integer (anything else is a 422, never a database error).
RowId = Annotated[int, UrlPath(ge=1, le=2**63 - 1)]
