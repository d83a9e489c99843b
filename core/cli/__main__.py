"""``python -m core.cli``: the same as the ``kollega`` command."""

from __future__ import annotations

from core.cli import entry

entry()
