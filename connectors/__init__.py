"""Connectors: the shared adapters between robots and the outside world.

- :mod:`connectors.http` — JSON APIs: auth, timeouts, retries, circuit breaker, rate limit, access log
- :mod:`connectors.browser` — Playwright/Chromium: page objects by label and role, re-login, failure evidence
- :mod:`connectors.sms` — an HTTP SMS gateway: send, delivery status, replies by polling or signed webhook
- :mod:`connectors.mail` — SMTP (aiosmtplib)
- :mod:`connectors.files` — a drop folder with atomic pick-up; CSV and Excel readers with row validation
- :mod:`connectors.sql` — read-only queries against an external database (SQLAlchemy)

Each is configured from a pydantic settings model (its section ``[connectors.<system>]``),
translates library errors into :mod:`core.errors` at its boundary, and refuses writes in a
dry run. Their test helpers (a local server, a recording context, Chromium) are in the test
kit, :mod:`core.testing`.
"""
