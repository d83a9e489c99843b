"""Artifacts: files attached to work items (screenshots, HTML snapshots, traces, documents).

They often contain personal data: stored under ``var/artifacts`` with owner-only
permissions, flagged ``sensitive`` by default, deleted after the retention period.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select

from core.clock import Clock
from core.storage.db import Database
from core.storage.models import Artifact

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class FileArtifactStore:
    """Saves, finds and expires artifacts: files under ``root``, rows in the database (the ArtifactStore port)."""

    def __init__(self, db: Database, root: Path, retention_days: int, clock: Clock) -> None:
        self.db = db
        self.root = root
        self.retention = timedelta(days=retention_days)
        self.clock = clock

    def save(
        self,
        *,
        tenant: str,
        work_item_id: int | None,
        kind: str,
        filename: str,
        content_type: str,
        data: bytes,
        sensitive: bool = True,
    ) -> int:
        """Store one file and its row; returns the artifact id."""
        now = self.clock.now()
        folder = self.root / tenant / str(work_item_id or "run")
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        digest = hashlib.sha256(data).hexdigest()
        name = f"{now.strftime('%Y%m%dT%H%M%S')}-{digest[:8]}-{_SAFE_NAME.sub('_', filename)[:100]}"
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        with self.db.session() as s:
            art = Artifact(
                tenant=tenant,
                work_item_id=work_item_id,
                kind=kind,
                filename=filename,
                content_type=content_type,
                path=str(path),
                sha256=digest,
                size=len(data),
                sensitive=sensitive,
                created_at=now,
                expires_at=now + self.retention,
            )
            s.add(art)
            s.flush()
            return art.id

    def for_item(self, work_item_id: int) -> list[Artifact]:
        """The artifacts of one work item."""
        with self.db.session() as s:
            return list(
                s.scalars(select(Artifact).where(Artifact.work_item_id == work_item_id).order_by(Artifact.id)).all()
            )

    def purge_expired(self) -> int:
        """Delete files and rows past their retention; returns how many."""
        now = self.clock.now()
        with self.db.session() as s:
            rows = s.scalars(select(Artifact).where(Artifact.expires_at < now)).all()
            for art in rows:
                Path(art.path).unlink(missing_ok=True)
            s.execute(delete(Artifact).where(Artifact.id.in_([a.id for a in rows])))
            return len(rows)
