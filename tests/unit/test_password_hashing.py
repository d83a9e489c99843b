"""Password hashing runs on its own few threads, whichever request thread asks."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.web import auth


def test_hashing_runs_on_one_thread_per_cpu_and_still_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 takes 19 MiB per hash, kept by the thread's allocator arena: 40 request threads must not all hash."""
    used: set[str] = set()
    real = auth.PASSWORD_HASHER

    class Watching:
        def hash(self, password: str) -> str:
            used.add(threading.current_thread().name)
            return real.hash(password)

        def verify(self, stored: str, password: str) -> bool:
            used.add(threading.current_thread().name)
            return real.verify(stored, password)

    monkeypatch.setattr(auth, "PASSWORD_HASHER", Watching())
    stored = auth.hash_password("rätt-häftklammer-häst")
    with ThreadPoolExecutor(16) as requests:
        results = list(
            requests.map(lambda n: auth.check_password(stored, "fel" if n % 2 else "rätt-häftklammer-häst"), range(32))
        )
    assert results == [n % 2 == 0 for n in range(32)]
    assert auth.check_password(None, "vad som helst") is False
    assert all(name.startswith("kollega-argon2") for name in used)
    assert len(used) <= max(1, os.cpu_count() or 1)
