"""The robot API's mechanics: a robot generic over its settings, and the run context robots see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ConfigDict

from core.api import NewItem, NoSettings, Outcome, Robot, RunContext, WorkItemView
from core.context import RunContext as ConcreteRunContext
from core.testing import FakeClock, make_settings


class GreeterSettings(BaseModel):
    """Settings of the test robot."""

    model_config = ConfigDict(extra="forbid")
    greeting: str = "Hej"


class LoudSettings(GreeterSettings):
    """A subclass of the type parameter, as a robot may set it explicitly."""

    loud: bool = True


class Greeter(Robot[GreeterSettings]):
    """A robot whose settings model follows from its type parameter."""

    name = "greeter"
    display_name = "Greeter"

    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:
        yield NewItem(reference="a")

    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        raise NotImplementedError


def test_the_settings_model_follows_from_the_type_parameter() -> None:
    assert Greeter.settings_model is GreeterSettings
    assert Greeter.validate_class() == []


def test_settings_default_to_the_model_and_keep_a_given_instance() -> None:
    assert Greeter().settings == GreeterSettings()
    given = GreeterSettings(greeting="Hallå")
    assert Greeter(given).settings is given


def test_settings_of_another_model_are_checked_by_the_robot_s_own() -> None:
    class Other(BaseModel):
        greeting: str = "Tjena"

    settings = Greeter(Other()).settings  # type: ignore[arg-type]  # what the check is for
    assert isinstance(settings, GreeterSettings) and settings.greeting == "Tjena"


def test_a_subclass_inherits_the_model_and_may_narrow_it() -> None:
    class Quiet(Greeter):
        name = "quiet"

    class Loud(Greeter):
        name = "loud"
        settings_model = LoudSettings

    assert Quiet.settings_model is GreeterSettings
    assert Loud.settings_model is LoudSettings and Loud.validate_class() == []


def test_a_settings_model_that_contradicts_the_type_parameter_is_reported() -> None:
    class Confused(Greeter):
        name = "confused"
        settings_model = NoSettings

    assert any("type parameter" in p for p in Confused.validate_class())


def test_a_robot_without_type_parameter_has_no_settings() -> None:
    class Plain(Robot):
        name = "plain"
        display_name = "Plain"

        def collect(self, ctx: RunContext) -> list[NewItem]:
            return []

        async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
            raise NotImplementedError

    assert Plain.settings_model is NoSettings and isinstance(Plain().settings, NoSettings)


def _context(tmp_path: Path, tenant: str, **overrides: Any) -> ConcreteRunContext:
    settings = make_settings(tmp_path, **overrides)
    return ConcreteRunContext(
        robot="greeter",
        tenant=tenant,
        run_id=None,
        settings=GreeterSettings(),
        app_settings=settings,
        clock=FakeClock(),
        audit=None,  # type: ignore[arg-type]  # not used by the properties under test
        artifacts=None,  # type: ignore[arg-type]
    )


def test_the_context_names_the_tenant_and_its_time_zone(tmp_path: Path) -> None:
    ctx: RunContext = _context(tmp_path, "0000", timezone="Europe/Helsinki")
    assert ctx.tenant_name == "Testkommun"
    assert ctx.timezone == ZoneInfo("Europe/Helsinki")
    assert ctx.actor == "robot:greeter"


def test_an_unnamed_tenant_is_called_by_its_code_and_the_zone_defaults_to_stockholm(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "1081")
    assert ctx.tenant_name == "1081"
    assert ctx.timezone == ZoneInfo("Europe/Stockholm")


@pytest.mark.parametrize("name", ["tenant", "tenant_name", "timezone", "clock", "log", "dry_run", "resources"])
def test_the_concrete_context_has_every_attribute_of_the_protocol(tmp_path: Path, name: str) -> None:
    assert hasattr(_context(tmp_path, "0000"), name)
