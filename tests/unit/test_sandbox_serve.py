"""``kollega sandbox serve`` plays today's date in Stockholm, or the day ``--today`` pins."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import sandbox.server
from core.testing import FakeClock
from sandbox.commands import sandbox_app, stockholm_today


def invoke(*args: str) -> Any:
    """``kollega sandbox …`` as the CLI mounts it."""
    app = typer.Typer()
    app.add_typer(sandbox_app, name="sandbox")
    return CliRunner().invoke(app, ["sandbox", *args])


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Capture what the command would serve instead of serving it."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(sandbox.server, "serve", lambda **kw: calls.append(kw))
    return calls


class TestSandboxToday:
    """The robots count "the coming month" and "tomorrow" from the Stockholm date; so does the sandbox."""

    def test_after_midnight_in_stockholm_it_is_already_the_next_day(self) -> None:
        # 00:43 on 7 December in Stockholm is still 6 December in UTC.
        assert stockholm_today(FakeClock(datetime(2026, 12, 6, 23, 43, tzinfo=UTC))) == date(2026, 12, 7)
        summer = FakeClock(datetime(2026, 7, 1, 21, 30, tzinfo=UTC))  # 23:30 in summer time
        assert stockholm_today(summer) == date(2026, 7, 1)

    def test_by_default_it_serves_todays_stockholm_date(self, served: list[dict[str, Any]]) -> None:
        result = invoke("serve", "--port", "9999")
        assert result.exit_code == 0, result.output
        [call] = served
        assert call["today"] == stockholm_today()
        assert call["port"] == 9999 and call["tenant"] == "1081"

    def test_today_pins_the_day_and_tenant_the_municipality(self, served: list[dict[str, Any]]) -> None:
        result = invoke("serve", "--today", "2026-12-07", "--tenant", "1082", "--seed", "2")
        assert result.exit_code == 0, result.output
        assert served == [{"seed": 2, "host": "127.0.0.1", "port": 8765, "today": date(2026, 12, 7), "tenant": "1082"}]
        assert "2026-12-07" in result.output

    def test_a_bad_date_is_refused_naming_the_option(self, served: list[dict[str, Any]]) -> None:
        result = invoke("serve", "--today", "7 dec")
        assert result.exit_code == 2
        assert "--today" in result.output and served == []
