"""A simulated municipality: the external systems Kollega's robots talk to, over real HTTP.

One FastAPI app (:func:`sandbox.app.create_app`) plays the income-support e-service, the
SSBTEK-like registers, the staffing system and its SMS gateway, the home-care system, the
scheduling system, the payroll application and an OpenID Connect provider, with
deterministic synthetic data from a seed and fault injection through ``/admin``.
The URL contract is in ``sandbox/API.md``.

Start it with :func:`sandbox.server.serve` (blocking) or, in tests and the demo, with
:func:`sandbox.testing.running_sandbox`. This package imports nothing on import, so that
system modules may import :mod:`sandbox.state` without cycles.
"""
