"""``python -m core.cli``: the same as the ``kollega`` command."""

from __future__ import annotations

from core.cli import entry

if __name__ == "__main__":
    entry()
