"""One exception tree for the whole project.

Every error Kollega raises on purpose derives from :class:`KollegaError`. Library errors
are translated at the boundary where they occur (``raise … from exc``), so callers only
ever need to know this tree::

    KollegaError
    ├── ConfigError                 bad or missing configuration (CLI exit code 2)
    │   ├── DatabaseNotMigrated     the schema is older than the code: run `kollega db upgrade`
    │   └── SecretUnavailable       a secret reference (env, file, vault) cannot be read now
    ├── PluginError                 a robot plugin failed to import or is not a valid Robot
    ├── RobotError                  raised by a robot while processing a work item
    │   ├── BusinessError           bad or missing data: never retried, goes to a person
    │   │   ├── FileFormatError     a file cannot be read as its format (connectors.files)
    │   │   └── FileValidationError rows of a file are invalid (connectors.files)
    │   └── ApplicationError        transient trouble: retried with backoff
    │       ├── ItemTimeout         a work item took longer than its per-item timeout
    │       └── TargetLocked        another run holds the lock on a write's target: retried later
    ├── ConnectorError              an external system misbehaved (ApplicationError-like)
    │   ├── ConnectorUnavailable    connection refused, 5xx, circuit open: retry later
    │   │   └── CircuitOpen         the system failed repeatedly; its breaker is open (connectors.http)
    │   ├── ConnectorAuthError      credentials refused
    │   │   └── WebhookRejected     a webhook's signature is missing, wrong or stale (connectors.sms)
    │   ├── DryRunRefusal           a write was refused because the run is a dry run
    │   ├── PageLayoutError         a page lacks a field or button, or has two (connectors.browser)
    │   ├── UnsafePath              a path that would leave the system's base URL (connectors.http)
    │   ├── OepMalformedXml         Open ePlatform answered XML that cannot be read (connectors.open_eplatform)
    │   ├── OepFault                Open ePlatform's SOAP callback answered a fault (connectors.open_eplatform)
    │   └── ReadOnlyViolation       a write to a read-only database (connectors.sql)
    ├── QueueError                  work-item queue misuse
    │   └── LeaseLost               the worker's lease on an item has expired or moved on
    ├── ReviewError                 an invalid review decision (web: 422)
    │   ├── AlreadyDecided          somebody else decided first (web: 409)
    │   └── FourEyesViolation       the second approval must come from another person
    ├── AuditChainBroken            the audit chain failed verification
    ├── Exit                        a CLI command ends with this exit code, its output printed (core.cli.common)
    ├── WebError                    a web request that cannot be served as asked
    │   ├── AuthError               not logged in, or the session ended: login page, API 401 (core.web.auth)
    │   ├── Forbidden               logged in but not allowed: 403 (core.web.auth)
    │   ├── NotFound                no such object, or one the person may not see: 404 (core.web.auth)
    │   ├── CsrfError               a form without a valid CSRF token or from another origin: 403 (core.web.auth)
    │   ├── OidcError               an OpenID Connect login could not be completed (core.web.oidc)
    │   ├── SamlError               a SAML sign-in or logout could not be completed (core.web.saml)
    │   │   └── SamlMfaMissing      the IdP asserted no multi-factor authentication (core.web.saml)
    │   ├── PasswordPolicyError     a new password too short, too common or breached (core.web.passwords)
    │   ├── UserAdminError          a user-admin request the admin can correct (core.web.useradmin)
    │   └── ScheduleEditError       a schedule change from the dashboard that does not validate (core.web.schedule_edit)
    └── ApiError                    an error answer of a simulated system (sandbox.common)

Each class has a stable ``code`` of its own (stored in ``work_items.error_code`` when an
item fails); its docstring's first line is its default message. The classes named with a
module live there, next to the code that raises them; the rest live here. Robots derive
their own errors from ``BusinessError``, ``ApplicationError`` or ``ConnectorError``, with
codes of their own. tests/unit/test_errors.py fails when a class is missing from this
drawing, sits under another parent, lacks a docstring or shares a code.

``ConnectorError`` is treated by the engine like an :class:`ApplicationError` (retried),
except where its class says ``retryable = False`` (a changed page layout, a refused write):
then the item goes to a person at once. A ``retry_after`` in an error's details (seconds,
from a server's Retry-After) delays the retry at least that long.

Messages never contain personal data: a personnummer, password or token must not be put
in an exception message. The logging redaction is a second line of defence, not the first.
"""

from __future__ import annotations

from typing import Any


class KollegaError(Exception):
    """Base class of every error Kollega raises on purpose."""

    #: A short stable code for machines (stored in ``work_items.error_code``).
    code: str = "kollega_error"
    #: Whether trying the same thing again later may succeed (the engine retries only then).
    retryable: bool = False

    def __init__(self, message: str | None = None, *, code: str | None = None, **details: Any) -> None:
        message = message or (self.__class__.__doc__ or self.__class__.__name__).strip().splitlines()[0]
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def __str__(self) -> str:
        return self.message


class ConfigError(KollegaError):
    """The configuration is invalid or incomplete."""

    code = "config"


class DatabaseNotMigrated(ConfigError):
    """The database schema is not up to date: run `kollega db upgrade`."""

    code = "db_not_migrated"


class SecretUnavailable(ConfigError):
    """A secret reference cannot be read: its variable, file or vault entry is missing or refused."""

    code = "secret_unavailable"


class PluginError(KollegaError):
    """A robot plugin could not be loaded."""

    code = "plugin"


class RobotError(KollegaError):
    """An error raised by a robot while it processes a work item."""

    code = "robot"


class BusinessError(RobotError):
    """The item cannot be processed as it stands; a person must look at it."""

    code = "business"


class ApplicationError(RobotError):
    """A transient technical problem; the item is retried later."""

    code = "application"
    retryable = True


class ItemTimeout(ApplicationError):
    """The work item took longer than its timeout."""

    code = "timeout"


class TargetLocked(ApplicationError):
    """Another run holds the lock on this write's target; the item is retried later."""

    code = "target_locked"


class ConnectorError(KollegaError):
    """An external system did not answer as expected."""

    code = "connector"
    retryable = True


class ConnectorUnavailable(ConnectorError):
    """The external system is unavailable right now."""

    code = "unavailable"


class ConnectorAuthError(ConnectorError):
    """The external system refused our credentials."""

    code = "auth"


class DryRunRefusal(ConnectorError):
    """A write to an external system was refused because this is a dry run."""

    code = "dry_run"
    retryable = False


class QueueError(KollegaError):
    """The work-item queue was used in a way it does not allow."""

    code = "queue"


class LeaseLost(QueueError):
    """This worker no longer holds the lease on the work item; nothing was changed."""

    code = "lease_lost"


class ReviewError(KollegaError):
    """The review decision is not allowed."""

    code = "review"


class AlreadyDecided(ReviewError):
    """Somebody else has already decided this review item."""

    code = "already_decided"


class FourEyesViolation(ReviewError):
    """The second approval must be made by a different person."""

    code = "four_eyes"


class AuditChainBroken(KollegaError):
    """The audit chain failed verification."""

    code = "audit_chain_broken"

    def __init__(self, message: str | None = None, *, seq: int | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.seq = seq


class WebError(KollegaError):
    """The web request cannot be served as asked."""

    code = "web"
