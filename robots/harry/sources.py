"""Where HaRry finds approved schedules: the scheduling system's API and CSV exports in a drop folder.

Both yield :class:`~core.robot.NewItem` with the reference employee/period/version/hash, so
the same schedule from both sources is one work item, an unchanged schedule is never a new
item, and a changed one (a new version) is. From the API only the summaries are listed (one
request per thousand schedules); the rows are fetched when the item is processed.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from connectors.files import DropFolder, DropFolderSettings, FileFormatError
from connectors.http import HttpConnector
from core.api import NewItem, RunContext, get_logger
from robots.harry.exports import read_export
from robots.harry.schedule import reference

log = get_logger("kollega.robots.harry.sources")
PAGE_SIZE = 1000


async def from_api(
    ctx: RunContext, system: str, periods: list[str], lookback_days: int | None
) -> AsyncIterator[NewItem]:
    """Approved schedules listed by the scheduling system's API (summaries; rows come later)."""
    api = HttpConnector.for_run(ctx, system)
    params: dict[str, Any] = {"status": "approved", "limit": PAGE_SIZE}
    if lookback_days is not None:
        params["approved_since"] = (ctx.clock.now() - timedelta(days=lookback_days)).isoformat()
    wanted: list[str | None] = list(periods) or [None]
    for period in wanted:
        offset = 0
        while True:
            query = {**params, "offset": offset, **({"period": period} if period else {})}
            page = await api.get_json("schedules", params=query)
            items = page.get("items") or []
            for s in items:
                yield NewItem(
                    reference=reference(s["employee_id"], s["period"], int(s["version"]), s["content_hash"]),
                    payload=api_payload(s),
                    subject=s.get("personnummer"),
                )
            offset += len(items)
            if not items or offset >= int(page.get("total", 0)):
                break


def api_payload(summary: dict[str, Any]) -> dict[str, Any]:
    """A work item's payload from an API schedule summary (rows are fetched when processing)."""
    return {
        "kind": "schedule",
        "employee_id": summary["employee_id"],
        "period": summary["period"],
        "period_from": summary["period_from"],
        "period_to": summary["period_to"],
        "version": int(summary["version"]),
        "schedule_id": summary["schedule_id"],
        "content_hash": summary["content_hash"],
        "source": "api",
        "approved_at": summary.get("approved_at"),
        "rows": None,
    }


def items_of_file(data: bytes, name: str) -> list[NewItem]:
    """Work items for one export file: its valid schedules, its broken ones, or the whole file when unreadable."""
    try:
        contents = read_export(data, name)
    except FileFormatError as exc:
        digest = hashlib.sha256(data).hexdigest()
        return [
            NewItem(
                reference=f"fil/{digest[:16]}",
                payload={"kind": "invalid_file", "file": name, "problems": [exc.message]},
            )
        ]
    items = [
        NewItem(reference=s.reference, payload=s.payload(), subject=contents.subjects.get(s.reference))
        for s in contents.schedules
    ]
    items += [NewItem(reference=b.reference, payload=b.payload(), subject=b.subject) for b in contents.broken]
    if contents.broken or contents.superseded:
        log.info(
            "export read",
            file=name,
            schedules=len(contents.schedules),
            broken=len(contents.broken),
            superseded=contents.superseded,
        )
    return items


def from_drop_folder(settings: DropFolderSettings, *, dry_run: bool) -> Iterator[NewItem]:
    """Schedules in export files in the drop folder; files are claimed, then filed as processed or failed.

    In a dry run the files are only read, never moved, so the real run still finds them.
    """
    folder = DropFolder(settings)
    recovered = folder.recover()
    if recovered:
        log.warning("export files given back from processing/", count=recovered)
    if dry_run:
        for path in folder.waiting():
            yield from items_of_file(Path(path).read_bytes(), path.name)
        return
    for claimed in folder.claim_all():
        try:
            items = items_of_file(claimed.path.read_bytes(), claimed.original_name)
        except Exception as exc:
            folder.fail(claimed, f"{type(exc).__name__}: {exc}")
            raise
        yield from items
        if any(i.payload.get("kind") == "invalid_file" for i in items):
            folder.fail(claimed, "; ".join(items[0].payload["problems"]))
        else:
            folder.complete(claimed)


async def from_drop_folder_async(settings: DropFolderSettings, *, dry_run: bool) -> AsyncIterator[NewItem]:
    """:func:`from_drop_folder` with the file work off the event loop."""
    found = await asyncio.to_thread(lambda: list(from_drop_folder(settings, dry_run=dry_run)))
    for item in found:
        yield item
