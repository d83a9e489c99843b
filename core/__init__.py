"""Kollega's kernel: robots, work items, review queues, audit log, storage, scheduler."""

from __future__ import annotations

__version__ = "0.1.0"
