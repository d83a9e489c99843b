"""The ``kollega`` command (typer + rich). Exit codes: 0 success, 1 needs attention, 2 bad input/config.

One small module per command group; each has a ``register(app)`` that adds its commands:

- :mod:`core.cli.plugins`  ``robots``, ``new-robot``; mounts the commands plugins bring
- :mod:`core.cli.runs`     ``run``, ``night``, ``worker``, ``scheduler``, ``schedules``, ``items``
- :mod:`core.cli.review`   ``review list | show | decide``
- :mod:`core.cli.audit`    ``audit verify | checkpoint``
- :mod:`core.cli.db`       ``db upgrade | current``
- :mod:`core.cli.data`     ``artifacts purge``, ``purge``
- :mod:`core.cli.web`      ``serve``
- :mod:`core.cli.users`    ``users add | list | grant | passwd | disable | token``
- :mod:`core.cli.effects`  ``effects``: the effects ledger of one municipality and month

``kollega demo`` and ``kollega sandbox …`` are not here: the sandbox package contributes
them through the entry-point group ``kollega.commands``, and each robot may add its own
``kollega <robot> …``. :func:`main` mounts both before it runs the command.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib.metadata import EntryPoint

import typer

from core.cli import audit, data, db, effects, plugins, review, runs, users, web
from core.cli.common import Exit, err_console
from core.errors import ConfigError, KollegaError, ReviewError

__all__ = ["Exit", "app", "entry", "main", "mount_plugins"]

app = typer.Typer(
    name="kollega",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Kollega: digital colleagues that prepare the night's work for people to decide on.",
)
for _group in (plugins, runs, review, audit, db, data, web, users, effects):
    _group.register(app)


def mount_plugins(commands: Iterable[EntryPoint] | None = None) -> list[plugins.BrokenCommand]:
    """Mount the commands of ``kollega.commands`` (or of ``commands``) and the robots' own into :data:`app`."""
    return plugins.mount_plugins(app, commands)


def main(argv: list[str] | None = None, *, commands: Iterable[EntryPoint] | None = None) -> int:
    """Run the CLI; returns the process exit code.

    ``commands`` replaces the installed ``kollega.commands`` entry points (for tests).
    """
    try:
        mount_plugins(commands)
        # Without standalone mode a command's typer.Exit(code) comes back as the return value.
        rv = app(args=argv, standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except Exit as exc:
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (ConfigError, ReviewError) as exc:
        err_console.print(f"error: {exc.message}", markup=False, highlight=False)
        return 2
    except KollegaError as exc:
        err_console.print(f"error: {exc.message}", markup=False, highlight=False)
        return 1
    except Exception as exc:
        # Usage errors and aborts from the click that typer bundles (typer._click).
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            return 2
        if type(exc).__name__ == "Abort":
            return 130
        raise


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
