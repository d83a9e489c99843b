"""The sandbox app: every simulated system under its prefix, the admin API, fault injection.

``create_app(seed, options)`` generates the data (:func:`generate_data`), puts a
:class:`sandbox.state.SandboxState` on ``app.state.sandbox``, includes the routers of the
systems — and of ``sandbox.payroll``, ``sandbox.oidc`` and ``sandbox.saml`` when those modules exist and
expose ``router`` (an optional ``setup(state)`` in them is called once, to register
inspectors or reset hooks) — and wraps everything in :class:`sandbox.faults.FaultMiddleware`.
Their routers must use the prefixes ``/payroll``, ``/oidc`` and ``/saml`` so that faults reach them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import random
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox import (
    admin,
    eservice,
    homecare,
    homecare_detail,
    open_eplatform,
    protection,
    registers,
    scheduling,
    sms,
    staffing,
)
from sandbox.common import ApiError
from sandbox.faults import FaultMiddleware
from sandbox.geography import geography
from sandbox.people import PersonFactory
from sandbox.state import SandboxData, SandboxOptions, SandboxState

__all__ = ["OPTIONAL_SYSTEMS", "create_app", "generate_data"]

#: Systems built in their own modules, included when present.
OPTIONAL_SYSTEMS = ("payroll", "oidc", "vault", "saml")


def generate_data(seed: int, options: SandboxOptions) -> SandboxData:
    """All synthetic data for ``seed``: each system draws from its own generator, people are unique."""
    used: set[str] = set()

    def rng(name: str) -> random.Random:
        return random.Random(f"{seed}:{name}")

    def people(name: str) -> PersonFactory:
        return PersonFactory(rng(f"people:{name}"), options.today, used, geography(options.tenant).areas)

    applications, anomalies = eservice.generate_applications(rng("eservice"), people("eservice"), options)
    register_data, undeclared = registers.generate_registers(rng("registers"), applications, options)
    protected, planted = protection.generate_protection(rng("protection"), applications, options)
    substitutes, shifts, behaviour = staffing.generate_staffing(rng("staffing"), people("staffing"), options)
    care = homecare.generate_homecare(rng("homecare"), people("homecare"), options)
    care = homecare_detail.add_kolada_detail(care, rng("homecare:detail"), people("homecare:detail"), options)
    employees, schedules = scheduling.generate_employees(rng("scheduling"), people("scheduling"), options)
    return SandboxData(
        applications=applications,
        registers=register_data,
        substitutes=substitutes,
        shifts=shifts,
        homecare=care,
        employees=employees,
        schedules=schedules,
        protected_identities=protected,
        truth={
            "eservice": anomalies,
            "registers": {"undeclared_income": undeclared, "protected_identity": planted},
            "staffing": {"behaviour": behaviour},
        },
    )


def _optional_module(name: str) -> Any | None:
    try:
        return importlib.import_module(f"sandbox.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"sandbox.{name}":
            raise  # the module exists but needs something missing: that is a bug to see
        return None


def create_app(seed: int = 1, options: SandboxOptions | None = None) -> FastAPI:
    """A sandbox with data from ``seed`` (see the module docstring)."""
    state = SandboxState(seed, options or SandboxOptions(), generate_data)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(sms.background(state, stop))
        try:
            yield
        finally:
            stop.set()
            await task

    app = FastAPI(title="Kollega sandbox: a simulated municipality", version="1", lifespan=lifespan)
    app.state.sandbox = state

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    for module in (eservice, registers, staffing, sms, homecare, scheduling, open_eplatform):
        app.include_router(module.router)
        state.register_inspector(module.SYSTEM, module.inspect)
    app.include_router(protection.router)
    state.register_inspector(registers.SYSTEM, lambda s: {**registers.inspect(s), **protection.inspect(s)})
    app.include_router(admin.router)
    included = [m.SYSTEM for m in (eservice, registers, staffing, sms, homecare, scheduling, open_eplatform)]
    for name in OPTIONAL_SYSTEMS:
        optional = _optional_module(name)
        router = getattr(optional, "router", None)
        if router is not None:
            app.include_router(router)
            included.append(name)
            setup = getattr(optional, "setup", None)
            if callable(setup):
                setup(state)

    @app.get("/", include_in_schema=False)
    async def index() -> dict[str, Any]:
        return {
            "sandbox": "Kollega",
            "seed": state.seed,
            "today": state.today.isoformat(),
            "systems": {s: f"/{s}" for s in included},
            "admin": "/admin",
            "docs": "/docs",
        }

    app.add_middleware(FaultMiddleware, state=state)
    return app
