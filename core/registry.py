"""Robots are found through the entry-point group ``kollega.robots``.

Loading is explicit (:func:`load_robots`), never an import side effect. A plugin that
fails to import, or is not a valid Robot, is reported and skipped; the others keep
working. ``strict=True`` (CI, ``kollega robots --strict``) turns a broken plugin into an error.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from core.errors import ConfigError, PluginError
from core.logging import redact_text
from core.robot import Robot

GROUP = "kollega.robots"


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded, and why."""

    name: str
    target: str
    error: str


@dataclass
class Registry:
    """The robots that loaded, and the plugins that did not."""

    robots: dict[str, type[Robot]] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> type[Robot]:
        """The robot class called ``name``; ConfigError naming the installed ones if unknown."""
        try:
            return self.robots[name]
        except KeyError:
            known = ", ".join(sorted(self.robots)) or "none"
            broken = next((b for b in self.broken if b.name == name), None)
            if broken:
                raise ConfigError(f"robot {name!r} is installed but broken: {broken.error}") from None
            raise ConfigError(f"unknown robot {name!r}; installed robots: {known}") from None


def _load_one(ep: EntryPoint) -> type[Robot]:
    try:
        obj = ep.load()
    except Exception as exc:  # any import-time failure of a third-party plugin
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise PluginError(f"import failed: {redact_text(last)}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Robot)):
        raise PluginError(f"{ep.value} is not a subclass of core.robot.Robot")
    problems = obj.validate_class()
    if problems:
        raise PluginError("; ".join(problems))
    if obj.name != ep.name:
        raise PluginError(f"entry-point name {ep.name!r} differs from the class's name {obj.name!r}")
    return obj


def load_robots(*, strict: bool = False, eps: list[EntryPoint] | None = None) -> Registry:
    """Load every robot registered under ``kollega.robots``."""
    reg = Registry()
    found = eps if eps is not None else list(entry_points(group=GROUP))
    for ep in sorted(found, key=lambda e: e.name):
        if ep.name in reg.robots:
            reg.broken.append(BrokenPlugin(ep.name, ep.value, "another plugin already registered this name"))
            continue
        try:
            reg.robots[ep.name] = _load_one(ep)
        except PluginError as exc:
            reg.broken.append(BrokenPlugin(ep.name, ep.value, exc.message))
            continue
        dist = getattr(ep, "dist", None)
        reg.versions[ep.name] = getattr(dist, "version", "") or ""
    if strict and reg.broken:
        lines = "; ".join(f"{b.name} ({b.target}): {b.error}" for b in reg.broken)
        raise PluginError(f"broken robot plugins: {lines}")
    return reg
