"""Target locks in memory (the :class:`core.interfaces.LockStore` port), for one process's tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.testing.memory.state import MemoryState


class MemoryLockStore:
    """Named locks with a lease, held in memory under the state's lock."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self._held: dict[str, tuple[str, datetime]] = {}

    def acquire(self, key: str, owner: str, lease_seconds: float) -> bool:
        """Take or renew ``key`` for ``owner``; False while another holds an unexpired lease."""
        with self.state.lock:
            now = self.state.clock.now()
            held = self._held.get(key)
            if held is not None and held[0] != owner and held[1] >= now:
                return False
            self._held[key] = (owner, now + timedelta(seconds=lease_seconds))
            return True

    def release(self, key: str, owner: str) -> bool:
        """Give ``key`` up if ``owner`` holds it."""
        with self.state.lock:
            held = self._held.get(key)
            if held is None or held[0] != owner:
                return False
            del self._held[key]
            return True

    def holder(self, key: str) -> str | None:
        """Who holds ``key`` now (None when free or expired)."""
        with self.state.lock:
            held = self._held.get(key)
            return held[0] if held is not None and held[1] >= self.state.clock.now() else None
