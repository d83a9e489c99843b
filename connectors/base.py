"""What every connector shares: the run context it needs, settings loading, audit helpers.

A connector talks to one external system for one run. It gets the run's context
(:class:`core.context.RunContext`, or anything with the same methods: see
:class:`ConnectorContext`), validates its own section ``[connectors.<system>]`` of the
settings with its pydantic model, and translates library errors into the
:mod:`core.errors` tree at its boundary.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from core.errors import ConfigError
from core.interfaces import ConnectorContext
from core.settings import describe_validation_error

M = TypeVar("M", bound=BaseModel)


def validate_settings(model: type[M], data: Any, system: str) -> M:
    """Validate one connector section; a ConfigError names every bad key as ``connectors.<system>.<key>``."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, prefix=f"connectors.{system}")) from exc


def connector_section(ctx: Any, system: str) -> dict[str, Any] | None:
    """The section of ``system`` declared for the run's tenant; None when it declares none.

    A municipality uses only its own systems: ``connectors.<system>`` in its ``[[tenants]]``
    entry, or a deployment's ``[connectors.<system>]`` that lists it in ``shared_by`` (or
    the deployment's section when the deployment serves this municipality alone). See
    :meth:`core.settings.Settings.connector_section`.
    """
    app = getattr(ctx, "app_settings", None)
    if app is None:
        return None
    section = getattr(app, "connector_section", None)
    if callable(section):
        found: dict[str, Any] | None = section(system, getattr(ctx, "tenant", None))
        return found
    sections: dict[str, Any] = getattr(app, "connectors", {}) or {}
    return sections.get(system)


def require_section(ctx: Any, system: str) -> dict[str, Any]:
    """:func:`connector_section`, or a ConfigError naming the section the run's tenant must declare."""
    app = getattr(ctx, "app_settings", None)
    require = getattr(app, "require_connector_section", None)
    if callable(require):
        found: dict[str, Any] = require(system, getattr(ctx, "tenant", None))
        return found
    section = connector_section(ctx, system)
    if section is None:
        raise ConfigError(f"connectors.{system} is not configured (add a [connectors.{system}] section)")
    return section


def one_municipality_setting(ctx: Any, key: str) -> None:
    """Refuse a robot's deployment-wide address of a system when the deployment serves several municipalities.

    One URL in ``[robots.<name>]`` would send every municipality's runs to the same system
    without anyone having declared it shared: the system belongs in each tenant's section.
    """
    app = getattr(ctx, "app_settings", None)
    tenants = getattr(app, "tenants", None) or []
    if len(tenants) > 1:
        raise ConfigError(
            f"{key} is one address for all {len(tenants)} municipalities; declare the system per "
            "municipality (connectors.<system> in each [[tenants]] entry) or shared with shared_by instead"
        )


def connector_settings(ctx: Any, system: str, model: type[M]) -> M:
    """The validated section of ``system`` declared for the run's tenant (ConfigError naming it when missing)."""
    return validate_settings(model, require_section(ctx, system), system)


def require_purpose(subject: str | None, purpose: str | None) -> None:
    """A read of personal data must say why: a subject without a purpose is a programming error."""
    if subject is not None and not (purpose and purpose.strip()):
        raise ConfigError("a read of personal data needs a purpose (the access log must say why)")


async def record_access(
    ctx: ConnectorContext, *, subject: str, system: str, purpose: str, details: dict[str, Any] | None = None
) -> int:
    """Write the data-access audit event off the event loop (the audit log is a database)."""
    return await asyncio.to_thread(ctx.record_access, subject=subject, system=system, purpose=purpose, details=details)


async def record_write(
    ctx: ConnectorContext,
    *,
    system: str,
    what: str,
    subject: str | None = None,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Write an ``external.write`` audit event: this robot changed something in ``system``."""
    return await asyncio.to_thread(
        ctx.record,
        "external.write",
        subject=subject,
        purpose=purpose,
        details={"system": system, "what": what, **(details or {})},
    )
