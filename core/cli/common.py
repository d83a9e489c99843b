"""What every command group shares: the consoles, bootstrapping, JSON output, the exit signal."""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Any

from rich.console import Console

from core import audit_checkpoint
from core.engine import Engine
from core.errors import ConfigError, KollegaError
from core.logging import configure_logging
from core.registry import Registry, load_robots
from core.settings import Settings, load_settings
from core.storage.db import Database

#: Tables and messages for people (standard output).
console = Console()
#: Progress, warnings and errors (standard error), so that ``--json`` output stays clean.
err_console = Console(stderr=True, soft_wrap=True)

_registry: Registry | None = None


class Exit(KollegaError):
    """The command has finished and leaves with this exit code (its output is already printed).

    Exit codes: 0 success, 1 the job ran but something needs attention, 2 bad input or
    configuration.
    """

    code = "cli_exit"

    def __init__(self, exit_code: int) -> None:
        super().__init__(f"exit code {exit_code}", exit_code=exit_code)
        self.exit_code = exit_code


def load_cli_settings() -> Settings:
    """The deployment's settings, with logging configured from them."""
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


def open_database(settings: Settings, *, migrated: bool = True) -> Database:
    """The deployment's database; ``migrated`` refuses one whose schema is behind the code."""
    db = Database(settings.effective_database_url)
    if migrated:
        db.check_migrated()
    # The process's audit checkpoints (every N events, end of each run) go where [audit] says.
    audit_checkpoint.configure(audit_checkpoint.build(settings))
    return db


def registry() -> Registry:
    """The robots installed, loaded once per process."""
    global _registry
    if _registry is None:
        _registry = load_robots()
    return _registry


def use_registry(reg: Registry | None) -> None:
    """Use ``reg`` as the installed robots from now on (None: load them again when asked)."""
    global _registry
    _registry = reg


def build_engine(settings: Settings, db: Database) -> Engine:
    """An engine on the database for the installed robots, their settings checked first.

    Every robot's section, the deployment's and each municipality's effective one, is
    validated here: a bad key stops the command at start, named, not a run at night.
    """
    reg = registry()
    settings.check_robot_sections({name: cls.settings_model for name, cls in reg.robots.items()})
    return Engine.from_database(db, settings, reg)


def emit_json(data: Any) -> None:
    """Write ``data`` as indented JSON on standard output."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def chosen_tenants(settings: Settings, tenant: str | None) -> list[str]:
    """The kommunkoder a command works on: ``tenant`` if given (and configured), else all configured."""
    codes = [t.code for t in settings.tenants]
    if tenant is not None:
        if tenant not in codes:
            raise ConfigError(f"unknown tenant {tenant!r}; configured tenants: {', '.join(codes) or 'none'}")
        return [tenant]
    if not codes:
        raise ConfigError("no tenants configured: add a [[tenants]] section to config/kollega.toml")
    return codes


def os_user() -> str:
    """The operating-system account running this process, by its real user id.

    Not ``getpass.getuser()`` alone: that believes the LOGNAME and USER variables, which
    anyone can set to another person's name.
    """
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # not POSIX: no user id to look up
        return getpass.getuser()
    try:
        import pwd

        return pwd.getpwuid(getuid()).pw_name
    except KeyError:
        # No passwd entry (a container run with an arbitrary uid): the number still tells them apart.
        return f"uid{getuid()}"


def cli_actor() -> str:
    """The audit actor of a command: the operating-system account that runs it (``cli:<osuser>``).

    That is what the machine can vouch for; a name typed on the command line is not
    (issue 17, M3: ``--by anna`` then ``--by bertil`` met four-eyes with one person).
    """
    return f"cli:{os_user()}"
