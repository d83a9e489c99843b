"""Small robots for the integration tests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.robot import Done, NewItem, Robot


class RecordingSettings(BaseModel):
    """Where the recording robot writes what it processed."""

    model_config = ConfigDict(extra="forbid")

    log_path: str = Field(description="File that gets one line per process() call.")


class RecordingRobot(Robot):
    """Finds nothing itself (items are enqueued by the test); records every process() call."""

    name = "recorder"
    display_name = "Recorder"
    settings_model = RecordingSettings

    def collect(self, ctx: Any) -> list[NewItem]:
        """Nothing: the test enqueues the items."""
        return []

    async def process(self, ctx: Any, item: Any) -> Done:
        """Append '<id> <reference>' to the log file; no await, so a task never yields mid-record."""
        path = self.settings.log_path  # type: ignore[attr-defined]
        with open(path, "a") as fh:
            fh.write(f"{item.id} {item.reference}\n")
        return Done({"recorded": True})
