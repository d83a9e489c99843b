"""Starting worker subprocesses from tests, with a start barrier so they really overlap."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def spawn(module: str, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m tests.helpers.<module> ARGS`` in the project root, output to ``log``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("KOLLEGA_CONFIG", None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"tests.helpers.{module}", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_ready(barrier: Path, n: int, procs: Sequence[subprocess.Popen[bytes]], timeout: float = 120) -> None:
    """Wait until ``n`` workers have written their ready file in ``barrier``, then let them go."""
    deadline = time.monotonic() + timeout
    while len(list(barrier.glob("ready-*"))) < n:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise AssertionError(f"a worker exited before the start: rc={dead[0].returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(list(barrier.glob('ready-*')))} of {n} workers got ready")
        time.sleep(0.02)
    (barrier / "go").touch()


def await_go(barrier: Path, name: str) -> None:
    """Worker side of :func:`wait_ready`: announce readiness and wait for the go signal."""
    (barrier / f"ready-{name}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.005)


def finish(procs: Sequence[subprocess.Popen[bytes]], logs: Sequence[Path], timeout: float = 180) -> None:
    """Wait for every worker; fail with its output when one did not exit 0."""
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    bad = [(p.returncode, log) for p, log in zip(procs, logs, strict=True) if p.returncode != 0]
    if bad:
        rc, log = bad[0]
        raise AssertionError(f"worker exited {rc}:\n{log.read_text(errors='replace')[-4000:]}")
