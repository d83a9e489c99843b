"""A worker process on the raw work-item queue.

    python -m tests.helpers.queue_worker claim URL ROBOT TENANT NAME BARRIER OUT [--batch N]
        claim items one statement at a time until none is left; for every claimed item
        append "<item id> <reference> <NAME>" to OUT, then complete it.
    python -m tests.helpers.queue_worker enqueue URL ROBOT TENANT NAME BARRIER OUT REFS_FILE
        enqueue the references in REFS_FILE (one per line) in one call; write the count
        enqueue() returned to OUT.

Each process builds its own Database on URL, like a separate `kollega worker`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.queue import WorkQueue
from core.robot import Done, NewItem
from core.storage.db import Database
from tests.helpers.procs import await_go


def main() -> None:
    """Parse arguments and run one worker."""
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["claim", "enqueue"])
    for name in ("url", "robot", "tenant", "name", "barrier", "out"):
        p.add_argument(name)
    p.add_argument("refs", nargs="?")
    p.add_argument("--batch", type=int, default=1)
    a = p.parse_args()
    db = Database(a.url, pool_size=2)
    queue = WorkQueue(db)
    try:
        if a.mode == "enqueue":
            refs = Path(a.refs).read_text().split()
            items = [NewItem(reference=r, payload={"by": a.name}) for r in refs]
            await_go(Path(a.barrier), a.name)
            Path(a.out).write_text(str(queue.enqueue(a.robot, a.tenant, items)))
            return
        await_go(Path(a.barrier), a.name)
        with open(a.out, "a", buffering=1) as out:
            while True:
                claimed = queue.claim(a.robot, a.tenant, a.name, limit=a.batch, lease_seconds=600)
                if not claimed:
                    return
                for item in claimed:
                    out.write(f"{item.id} {item.reference} {a.name}\n")
                    queue.complete(item, Done({"by": a.name}), actor=f"test:{a.name}")
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
