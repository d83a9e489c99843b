"""Alembic environment: runs against the connection handed in by core.storage.db."""

from __future__ import annotations

from alembic import context

import core.storage.web_models  # noqa: F401 - registers the web tables for autogenerate
from core.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline SQL generation is not supported
    raise RuntimeError("run migrations through `kollega db upgrade`")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
