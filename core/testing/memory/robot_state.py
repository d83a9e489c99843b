"""Robots' state in memory (the :class:`core.interfaces.RobotStateStore` port), for tests."""

from __future__ import annotations

import copy
from typing import Any

from core.robot_state import check_key
from core.testing.memory.state import MemoryState


class MemoryRobotStateStore:
    """A JSON object and a version per (robot, tenant, key), under the state's lock."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self._values: dict[tuple[str, str, str], tuple[dict[str, Any], int]] = {}

    def get(self, robot: str, tenant: str, key: str) -> tuple[dict[str, Any], int] | None:
        """The value under ``key`` and its version, or None."""
        check_key(key)
        with self.state.lock:
            found = self._values.get((robot, tenant, key))
            return (copy.deepcopy(found[0]), found[1]) if found is not None else None

    def put(
        self, robot: str, tenant: str, key: str, value: dict[str, Any], *, expected_version: int | None = None
    ) -> int | None:
        """Keep ``value``; the new version, or None when ``expected_version`` is not the current one."""
        check_key(key)
        with self.state.lock:
            current = self._values.get((robot, tenant, key))
            version = current[1] if current is not None else 0
            if expected_version is not None and expected_version != version:
                return None
            self._values[(robot, tenant, key)] = (copy.deepcopy(value), version + 1)
            return version + 1
