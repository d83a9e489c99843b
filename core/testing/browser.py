"""Chromium for tests and scripts, found and flagged as the browser connector launches it.

::

    with sync_playwright() as pw:
        browser = launch_chromium(pw)

Logging in to the web app through its form: :func:`core.testing.web.log_in_page`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright


def launch_chromium(pw: Playwright) -> Browser:
    """Headless Chromium for tests and scripts on Playwright's sync API, found and flagged as the connector does."""
    # Imported here, not at the top: core imports no connector when it is loaded (connectors
    # build on core, not the other way round), and a test that starts no browser need not
    # load Playwright at all.
    from connectors.browser import CI_LAUNCH_ARGS, find_browser

    return pw.chromium.launch(
        executable_path=find_browser(None, pw.chromium.executable_path), headless=True, args=list(CI_LAUNCH_ARGS)
    )
