"""The decision basis (beslutsunderlag) as HTML and PDF, and the review template's rendering.

``templates/review.html`` is the HTML fragment the web app shows a case worker (it adds the
decision buttons); ``templates/underlag.html`` wraps the same fragment into a printable
document. PDF is printed by Chromium through Playwright, which Kollega already uses for the
payroll robot: no PDF writer of our own. Pages are reused, since opening a page costs far
more than printing one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from connectors.browser import BrowserConnector, translate
from core.api import ConnectorContext, get_logger

__all__ = ["TEMPLATES_DIR", "PdfRenderer", "render_basis", "render_review", "template_environment"]

log = get_logger("kollega.robots.ronney")

#: Where Ronney's templates live (package data: ``robots/ronney/templates/*.html``).
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def _identity(text: str) -> str:
    return text


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """Ronney's Jinja2 environment: autoescaped, templates from :data:`TEMPLATES_DIR`."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _review_context(review: Mapping[str, Any] | None, material: Mapping[str, Any]) -> dict[str, Any]:
    base = {
        "id": None,
        "title": material.get("title", ""),
        "summary": material.get("summary", ""),
        "state": "open",
        "kind": "decision",
        "queue": material.get("queue", ""),
        "created_at": None,
    }
    return {**base, **(review or {})}


def render_review(
    material: Mapping[str, Any],
    review: Mapping[str, Any] | None = None,
    *,
    lang: str = "sv",
    gettext: Callable[[str], str] = _identity,
) -> str:
    """The review fragment exactly as the web app renders it (same template, same variables)."""
    template = template_environment().get_template("review.html")
    return template.render(review=_review_context(review, material), material=material, lang=lang, _=gettext)


def render_basis(material: Mapping[str, Any], review: Mapping[str, Any] | None = None) -> str:
    """The decision basis as a complete, printable HTML document."""
    template = template_environment().get_template("underlag.html")
    return template.render(review=_review_context(review, material), material=material, lang="sv", _=_identity)


class PdfRenderer:
    """Prints HTML to PDF in the run's Chromium, on a small pool of reused pages."""

    def __init__(self, browser: BrowserConnector, pages: int = 2) -> None:
        self.browser = browser
        self.size = pages
        self._idle: asyncio.Queue[Page] = asyncio.Queue()
        self._made = 0
        self._context: BrowserContext | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_run(cls, ctx: ConnectorContext, pages: int = 2) -> PdfRenderer:
        """The run's renderer (one browser per run, closed with the run)."""
        existing = ctx.resources.get("ronney:pdf")
        if isinstance(existing, PdfRenderer):
            return existing
        # Registered before the browser, so the run closes the pages before the browser.
        ctx.resources["ronney:pdf"] = None
        renderer = cls(BrowserConnector.for_run(ctx), pages)
        ctx.resources["ronney:pdf"] = renderer
        return renderer

    async def _page(self) -> Page:
        async with self._lock:
            if self._idle.empty() and self._made < self.size:
                if self._context is None:
                    browser = await self.browser.start()
                    self._context = await browser.new_context(locale="sv-SE", timezone_id="Europe/Stockholm")
                self._made += 1
                try:
                    return await self._context.new_page()
                except PlaywrightError:
                    self._made -= 1
                    raise
        return await self._idle.get()

    async def render(self, html: str) -> bytes:
        """One A4 PDF of ``html`` (a complete, self-contained document: nothing is fetched)."""
        try:
            page = await self._page()
        except PlaywrightError as exc:
            raise translate(exc, "opening a page for the PDF") from exc
        healthy = True
        try:
            await page.set_content(html, wait_until="load")
            pdf: bytes = await page.pdf(
                format="A4",
                print_background=True,
                margin={"top": "18mm", "bottom": "18mm", "left": "16mm", "right": "16mm"},
            )
            return pdf
        except PlaywrightError as exc:
            healthy = False
            raise translate(exc, "printing the decision basis to PDF") from exc
        finally:
            if healthy:
                self._idle.put_nowait(page)
            else:  # a page that failed is not reused
                self._made -= 1
                try:
                    await page.close()
                except PlaywrightError:
                    log.warning("closing a failed PDF page failed")

    async def aclose(self) -> None:
        """Close the pages' context (the browser itself is closed with the run)."""
        context, self._context = self._context, None
        if context is not None:
            try:
                await asyncio.wait_for(context.close(), timeout=10)
            except (PlaywrightError, TimeoutError):
                log.warning("closing the PDF pages failed")
