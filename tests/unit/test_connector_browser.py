"""Unit tests of the browser connector's pure parts: finding a browser, settings, error translation."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from connectors import browser as browser_module
from connectors.base import validate_settings
from connectors.browser import CI_LAUNCH_ARGS, BrowserSettings, find_browser, translate
from core.errors import ConfigError, ConnectorError, ConnectorUnavailable


class TestFindBrowser:
    """Configured path, then Playwright's own, then a system Chromium."""

    def test_configured_path_must_exist(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="executable_path"):
            find_browser(tmp_path / "nope", None)
        exe = tmp_path / "chrome"
        exe.write_text("")
        assert find_browser(exe, None) == str(exe)

    def test_playwright_own_when_installed(self, tmp_path: Path) -> None:
        bundled = tmp_path / "chrome"
        bundled.write_text("")
        assert find_browser(None, str(bundled)) is None

    def test_system_chromium_otherwise(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        fake = tmp_path / "chromium"
        fake.write_text("")
        monkeypatch.setattr(browser_module, "SYSTEM_HEADLESS_SHELLS", (str(tmp_path / "no-shell"),))
        monkeypatch.setattr(browser_module, "SYSTEM_BROWSERS", (str(tmp_path / "absent"), str(fake)))
        assert find_browser(None, str(tmp_path / "not-installed")) == str(fake)

    def test_headless_shell_first_when_headless(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        shell, full = tmp_path / "chromium-headless-shell", tmp_path / "chromium"
        shell.write_text("")
        full.write_text("")
        monkeypatch.setattr(browser_module, "SYSTEM_HEADLESS_SHELLS", (str(shell),))
        monkeypatch.setattr(browser_module, "SYSTEM_BROWSERS", (str(full),))
        assert find_browser(None, None) == str(shell)
        # A window needs the full browser: the shell has none.
        assert find_browser(None, None, headless=False) == str(full)

    def test_none_found_says_what_to_do(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(browser_module, "SYSTEM_HEADLESS_SHELLS", ())
        monkeypatch.setattr(browser_module, "SYSTEM_BROWSERS", ())
        monkeypatch.setattr(browser_module.shutil, "which", lambda _name: None)
        with pytest.raises(ConfigError, match="playwright install chromium"):
            find_browser(None, None)

    def test_ci_flags(self) -> None:
        for flag in (
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ):
            assert flag in CI_LAUNCH_ARGS


class TestTranslate:
    """Playwright errors become connector errors with redacted messages."""

    def test_timeout_is_unavailable(self) -> None:
        err = translate(PlaywrightTimeoutError("Timeout 100ms exceeded waiting for 19121212-1212"), "x")
        assert isinstance(err, ConnectorUnavailable) and "19121212" not in str(err)

    def test_other_errors(self) -> None:
        err = translate(PlaywrightError("net::ERR_CONNECTION_REFUSED\nstack"), "opening")
        assert type(err) is ConnectorError and "stack" not in str(err)


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"connectors\.browser\.items_per_context"):
        validate_settings(BrowserSettings, {"items_per_context": 0}, "browser")
