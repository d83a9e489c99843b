"""The schedules folder as the scheduler sees it while running: read tolerantly, changed in place.

:func:`scan` reads every ``*.toml`` of ``schedules/`` one by one. A file that does not
validate (bad TOML, an unknown key, robot or tenant, a name another file already uses) is
reported as a :class:`FileProblem` and does not take the others down; when it was valid
before, its last good version stays in force until the file is fixed, so a typo made
at 01:29 does not cancel the 01:30 run. The scheduler calls :func:`scan` every
``[scheduler] reload_seconds`` and applies what changed at each schedule's next fire time.

:func:`write_schedule` is how the dashboard changes a schedule: the new values are checked
by the same model, and the file is rewritten with tomlkit so operators' comments and layout
survive, atomically (a temporary file renamed over the old one).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from core.errors import ConfigError
from core.scheduler import Schedule, load_schedule_file, parse_schedule


@dataclass(frozen=True)
class FileProblem:
    """A schedule file that does not validate, and why (English, naming the key)."""

    file: str
    message: str
    #: The schedule of this file still in force (its last good version), if any.
    kept: str | None = None


@dataclass
class ScheduleFolder:
    """The valid schedules of a folder (by name), the file each came from, and the broken files."""

    schedules: dict[str, Schedule] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[FileProblem] = field(default_factory=list)
    #: Each file's content hash: a file is re-read only when it changed.
    digests: dict[str, str] = field(default_factory=dict)


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def scan(
    folder: Path, *, robots: set[str] | None, tenants: set[str], previous: ScheduleFolder | None = None
) -> ScheduleFolder:
    """Read the folder; a broken file is a problem, and its last good schedule (from ``previous``) stays."""
    result = ScheduleFolder()
    if not folder.is_dir():
        result.problems.append(FileProblem(str(folder), f"schedules folder {folder} does not exist"))
        if previous is not None:  # a folder briefly gone (a remount) cancels nothing
            result.schedules, result.files = dict(previous.schedules), dict(previous.files)
        return result
    last_good = {file: name for name, file in (previous.files.items() if previous else [])}
    for path in sorted(folder.glob("*.toml")):
        file = path.name
        digest = _digest(path)
        try:
            schedule = load_schedule_file(path, robots=robots, tenants=tenants)
            if schedule.name in result.files:
                raise ConfigError(
                    f"{path}: name: schedule name {schedule.name!r} is already used by {result.files[schedule.name]}"
                )
        except ConfigError as exc:
            kept = last_good.get(file)
            if kept is not None and previous is not None and kept not in result.schedules:
                result.schedules[kept] = previous.schedules[kept]
                result.files[kept] = file
            else:
                kept = None
            result.problems.append(FileProblem(file, exc.message.replace(f"{path}: ", ""), kept))
        else:
            result.schedules[schedule.name] = schedule
            result.files[schedule.name] = file
        if digest is not None:
            result.digests[file] = digest
    return result


def fingerprint(folder: Path) -> dict[str, str]:
    """Each ``*.toml`` file's content hash: compared between polls to notice edits, additions and removals."""
    if not folder.is_dir():
        return {}
    found = {p.name: _digest(p) for p in sorted(folder.glob("*.toml"))}
    return {name: digest for name, digest in found.items() if digest is not None}


#: The keys the dashboard may change (the robot and the name stay what the file says).
EDITABLE = ("cron", "window_end", "calendar", "enabled", "catch_up", "description", "tenants")


def write_schedule(
    folder: Path, file: str, changes: dict[str, Any], *, robots: set[str] | None, tenants: set[str]
) -> tuple[Schedule, Schedule]:
    """Change keys of schedule file ``file``; (before, after). ConfigError naming the key, file untouched.

    Only :data:`EDITABLE` keys; the file keeps its comments and layout (tomlkit); it is
    written to a temporary file in the same folder and renamed over the old one, so the
    scheduler never reads half a file.
    """
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ConfigError(f"{file}: {', '.join(unknown)}: cannot be changed from the dashboard")
    path = folder / file
    if path.parent != folder or path.suffix != ".toml" or not path.is_file():
        raise ConfigError(f"{file}: no such schedule file")
    before = load_schedule_file(path, robots=robots, tenants=tenants)
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        document[key] = value
    # Checked as the file it will be, before it replaces the old one.
    after = parse_schedule(document.unwrap(), path, robots=robots, tenants=tenants)
    fd, temporary = tempfile.mkstemp(prefix=".", suffix=".toml.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(tomlkit.dumps(document))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return before, after
