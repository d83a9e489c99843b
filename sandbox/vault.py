"""HashiCorp Vault's KV version 2 HTTP API and AppRole login, so secrets can be tested without Vault.

It answers what Kollega's hvac client asks, the way Vault does (paths, JSON shapes, status
codes, the ``X-Vault-Token`` header), under ``/vault`` (so ``[vault] url`` is
``http://127.0.0.1:8765/vault``):

    GET    /v1/{mount}/data/{path}          the latest version: {"data": {"data": …, "metadata": …}}
    POST   /v1/{mount}/data/{path}          write a new version ({"data": {…}}): how a secret is rotated
    DELETE /v1/{mount}/data/{path}          soft-delete the latest version (reads then answer 404)
    POST   /v1/auth/{approle}/login         {"role_id", "secret_id"} → {"auth": {"client_token": …}}
    GET    /v1/auth/token/lookup-self       the calling token (hvac's is_authenticated)

Tokens: the root token :data:`ROOT_TOKEN` may do everything; a token from the AppRole login
may read only below :data:`APPROLE_READ_PREFIX` (as a Vault policy would allow), and
nothing else: other paths answer 403 "permission denied", a missing or unknown token 403
too, as Vault does. A missing secret answers 404 with ``{"errors": []}``. The mount is
``secret`` (Vault's dev-server default). The store starts with the two sandbox
municipalities' HaRry passwords at ``kollega/<kommunkod>/harry#password``.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

SYSTEM = "vault"
#: The dev server's root token: a sandbox-only value, never a real secret.
ROOT_TOKEN = "sandbox-vault-root-token"  # noqa: S105 - a published test value
#: The AppRole the sandbox knows: its RoleID and SecretID (sandbox-only values).
APPROLE_ROLE_ID = "kollega-robots"
APPROLE_SECRET_ID = "sandbox-kollega-secret-id"  # noqa: S105 - a published test value
#: What an AppRole token may read (its policy: read on secret/data/kollega/*).
APPROLE_READ_PREFIX = "kollega/"
#: The KV version 2 engine's mount.
MOUNT = "secret"
#: Secrets the sandbox starts with: the sandbox payroll's robot password, per municipality.
SEEDED: dict[str, dict[str, str]] = {
    "kollega/1081/harry": {"password": "sandlada-harry"},
    "kollega/1082/harry": {"password": "sandlada-harry"},
}

router = APIRouter(prefix="/vault", include_in_schema=False)


@dataclass
class _Version:
    data: dict[str, Any]
    created: datetime
    deleted: datetime | None = None


@dataclass
class VaultStore:
    """The KV v2 engine's secrets and the tokens issued; thread-safe."""

    secrets: dict[str, list[_Version]] = field(default_factory=dict)
    #: token → the path prefix it may read ("" = everything; the root token).
    tokens: dict[str, str] = field(default_factory=lambda: {ROOT_TOKEN: ""})
    logins: int = 0
    reads: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def seeded(cls) -> VaultStore:
        """A store holding :data:`SEEDED`."""
        store = cls()
        for path, data in SEEDED.items():
            store.write(path, data)
        return store

    def write(self, path: str, data: dict[str, Any]) -> int:
        """Add a version of ``path``; its version number."""
        with self._lock:
            versions = self.secrets.setdefault(path.strip("/"), [])
            versions.append(_Version(dict(data), datetime.now(UTC)))
            return len(versions)

    def inspect(self) -> dict[str, Any]:
        """Paths and version counts (never values), logins and reads."""
        return {
            "paths": {p: len(v) for p, v in sorted(self.secrets.items())},
            "logins": self.logins,
            "reads": self.reads,
        }


def store_for(state: Any) -> VaultStore:
    """The store kept in the shared sandbox state (new, seeded, after each reset)."""
    store: VaultStore = state.store(SYSTEM, VaultStore.seeded)
    return store


def setup(state: Any) -> None:
    """Called once by ``create_app``: the store's paths and counts join ``GET /admin/state/vault``."""
    state.register_inspector(SYSTEM, lambda st: store_for(st).inspect())


def get_store(request: Request) -> VaultStore:
    """The store: in the shared sandbox state when there is one, else on the app."""
    shared = getattr(request.app.state, "sandbox", None)
    if shared is not None:
        return store_for(shared)
    fallback: VaultStore | None = getattr(request.app.state, "vault", None)
    if fallback is None:
        fallback = request.app.state.vault = VaultStore.seeded()
    return fallback


def _errors(status: int, *messages: str) -> JSONResponse:
    return JSONResponse({"errors": list(messages)}, status_code=status)


def _allowed(store: VaultStore, request: Request, path: str, *, write: bool) -> JSONResponse | None:
    """None when the request's token may do this; else Vault's 403."""
    token = request.headers.get("X-Vault-Token", "")
    prefix = store.tokens.get(token)
    if prefix is None or (prefix and (write or not path.startswith(prefix))):
        return _errors(403, "permission denied")
    return None


def _metadata(version: _Version, number: int) -> dict[str, Any]:
    return {
        "created_time": version.created.isoformat().replace("+00:00", "Z"),
        "custom_metadata": None,
        "deletion_time": version.deleted.isoformat().replace("+00:00", "Z") if version.deleted else "",
        "destroyed": False,
        "version": number,
    }


def _envelope(data: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "request_id": secrets.token_hex(8),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
    }


@router.get("/v1/auth/token/lookup-self")
async def lookup_self(request: Request) -> JSONResponse:
    """The calling token, as hvac's ``is_authenticated`` asks."""
    store = get_store(request)
    token = request.headers.get("X-Vault-Token", "")
    if token not in store.tokens:
        return _errors(403, "permission denied")
    return JSONResponse(_envelope({"id": token, "policies": ["root"] if token == ROOT_TOKEN else ["kollega"]}))


@router.post("/v1/auth/{mount}/login")
async def approle_login(mount: str, request: Request) -> JSONResponse:
    """AppRole login: a RoleID and SecretID for a token that may read below ``kollega/``."""
    store = get_store(request)
    try:
        body = await request.json()
    except ValueError:
        return _errors(400, "failed to parse JSON input")
    if mount != "approle":
        return _errors(404, "no handler for route")  # Vault's answer for an auth mount that does not exist
    role_id = body.get("role_id") if isinstance(body, dict) else None
    secret_id = body.get("secret_id") if isinstance(body, dict) else None
    if not role_id:
        return _errors(400, "missing role_id")
    if role_id != APPROLE_ROLE_ID or secret_id != APPROLE_SECRET_ID:
        return _errors(400, "invalid role or secret ID")
    token = "hvs.sandbox-" + secrets.token_urlsafe(18)
    with store._lock:
        store.tokens[token] = APPROLE_READ_PREFIX
        store.logins += 1
    answer = _envelope(None)
    answer["auth"] = {
        "client_token": token,
        "accessor": secrets.token_hex(8),
        "policies": ["default", "kollega"],
        "token_policies": ["default", "kollega"],
        "lease_duration": 3600,
        "renewable": True,
    }
    return JSONResponse(answer)


@router.get("/v1/{mount}/data/{path:path}")
async def read_secret(mount: str, path: str, request: Request) -> JSONResponse:
    """The latest version of a secret; 404 when none exists or the latest is deleted."""
    store = get_store(request)
    refused = _allowed(store, request, path, write=False)
    if refused is not None:
        return refused
    if mount != MOUNT:
        return _errors(403, "permission denied")  # Vault: no policy allows an unknown mount
    with store._lock:
        store.reads += 1
        versions = store.secrets.get(path.strip("/"))
        if not versions or versions[-1].deleted is not None:
            return _errors(404)
        latest = versions[-1]
        return JSONResponse(_envelope({"data": dict(latest.data), "metadata": _metadata(latest, len(versions))}))


@router.post("/v1/{mount}/data/{path:path}")
@router.put("/v1/{mount}/data/{path:path}")
async def write_secret(mount: str, path: str, request: Request) -> JSONResponse:
    """Write a new version (the root token only): ``{"data": {"key": "value"}}``."""
    store = get_store(request)
    refused = _allowed(store, request, path, write=True)
    if refused is not None:
        return refused
    try:
        body = await request.json()
    except ValueError:
        return _errors(400, "failed to parse JSON input")
    data = body.get("data") if isinstance(body, dict) else None
    if mount != MOUNT or not isinstance(data, dict):
        return _errors(400, "no data provided")
    number = store.write(path, data)
    return JSONResponse(_envelope(_metadata(store.secrets[path.strip("/")][-1], number)))


@router.delete("/v1/{mount}/data/{path:path}")
async def delete_latest(mount: str, path: str, request: Request) -> Response:
    """Soft-delete the latest version, as ``vault kv delete`` does."""
    store = get_store(request)
    refused = _allowed(store, request, path, write=True)
    if refused is not None:
        return refused
    with store._lock:
        versions = store.secrets.get(path.strip("/"))
        if versions:
            versions[-1].deleted = datetime.now(UTC)
    return Response(status_code=204)
