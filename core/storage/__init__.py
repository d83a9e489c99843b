"""Storage: SQLAlchemy 2 models, engine/session handling and alembic migrations."""

from __future__ import annotations

from core.storage.db import Database, redact_url

__all__ = ["Database", "redact_url"]
