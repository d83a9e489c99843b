"""Secrets from HashiCorp Vault: ``{vault = "path#key"}`` read from a KV version 2 engine with hvac.

``[vault]`` (:class:`core.settings.VaultSettings`) says where Vault is and how Kollega logs
in: a token (by env or file reference) or AppRole (RoleID plus a SecretID by reference).
A reference ``kollega/1081/harry#password`` is key ``password`` of the secret
``kollega/1081/harry`` under the KV v2 mount (``mount_point``, default ``secret``), i.e.
``GET /v1/secret/data/kollega/1081/harry``.

The engine calls :func:`load_secrets` on a robot's settings when a run starts: every
secret reference in them is read then, one Vault login per run, so a secret rotated in
Vault (or in its env var or file) is used from the next run on without a restart. A secret
that cannot be read fails the run with :class:`core.errors.SecretUnavailable`, whose message
names the reference and why (missing, refused, Vault unreachable), never a value.
"""

from __future__ import annotations

from typing import Any

import hvac  # type: ignore[import-untyped]
import hvac.exceptions  # type: ignore[import-untyped]
import requests
from pydantic import BaseModel

from core.errors import SecretUnavailable
from core.settings import SecretRef, VaultSettings

#: The deployment's [vault], for secrets resolved outside a run (the web app's); set by load_settings.
_configured: VaultSettings | None = None


def configure(settings: VaultSettings | None) -> None:
    """Use ``settings`` for vault references resolved without an explicit [vault] (the process's own)."""
    global _configured
    _configured = settings


def split_reference(reference: str) -> tuple[str, str]:
    """``"path#key"`` as (path, key)."""
    path, _, key = reference.rpartition("#")
    return path.strip("/"), key


class VaultReader:
    """Reads KV v2 secrets for one unit of work (a run's start): logs in once, reads many."""

    def __init__(self, settings: VaultSettings) -> None:
        self.settings = settings
        self._client: Any = None

    def _login(self) -> Any:
        s = self.settings
        verify: bool | str = str(s.ca_file) if s.ca_file is not None else True
        try:
            if s.auth == "token":
                assert s.token is not None
                client = hvac.Client(
                    url=s.url, token=s.token.read(), namespace=s.namespace, verify=verify, timeout=s.timeout_seconds
                )
            else:
                assert s.secret_id is not None
                client = hvac.Client(url=s.url, namespace=s.namespace, verify=verify, timeout=s.timeout_seconds)
                client.auth.approle.login(role_id=s.role_id, secret_id=s.secret_id.read(), mount_point=s.approle_mount)
        except SecretUnavailable as exc:
            raise SecretUnavailable(f"Vault login at {s.url} needs its own credential: {exc.message}") from None
        except (hvac.exceptions.Unauthorized, hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest):
            raise SecretUnavailable(f"Vault at {s.url} refused the {s.auth} login (role_id or secret_id)") from None
        except hvac.exceptions.VaultError as exc:
            raise SecretUnavailable(f"Vault at {s.url} failed the {s.auth} login ({type(exc).__name__})") from None
        except requests.exceptions.RequestException as exc:
            raise SecretUnavailable(f"Vault at {s.url} cannot be reached ({type(exc).__name__})") from None
        return client

    def read(self, reference: str) -> str:
        """The value of ``path#key``; SecretUnavailable naming the reference and why, never a value."""
        s = self.settings
        path, key = split_reference(reference)
        if self._client is None:
            self._client = self._login()
        where = f"vault secret {reference} (mount {s.mount_point!r} at {s.url})"
        try:
            answer = self._client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=s.mount_point, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            raise SecretUnavailable(f"{where} does not exist (or its latest version is deleted)") from None
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            raise SecretUnavailable(f"{where}: permission denied for Kollega's Vault token") from None
        except hvac.exceptions.VaultError as exc:
            raise SecretUnavailable(f"{where} cannot be read ({type(exc).__name__})") from None
        except requests.exceptions.RequestException as exc:
            raise SecretUnavailable(f"{where}: Vault cannot be reached ({type(exc).__name__})") from None
        data = ((answer or {}).get("data") or {}).get("data")
        if not isinstance(data, dict) or key not in data:
            raise SecretUnavailable(f"{where} has no key {key!r}")
        value = data[key]
        if not isinstance(value, str) or not value:
            raise SecretUnavailable(f"{where}: key {key!r} is empty or not a string")
        return value


def read_vault_secret(reference: str, settings: VaultSettings | None = None) -> str:
    """Read one vault reference with ``settings`` (default: the process's [vault])."""
    chosen = settings or _configured
    if chosen is None:
        raise SecretUnavailable(f"vault secret {reference}: no [vault] is configured (url and auth)")
    return VaultReader(chosen).read(reference)


def secret_refs(value: Any) -> list[SecretRef]:
    """Every SecretRef in a settings model (nested models, lists and dicts included)."""
    found: list[SecretRef] = []
    if isinstance(value, SecretRef):
        found.append(value)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found += secret_refs(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            found += secret_refs(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            found += secret_refs(item)
    return found


def load_secrets(model: BaseModel, vault: VaultSettings | None) -> int:
    """Read every secret of ``model`` now (a run's start); how many. SecretUnavailable on the first missing.

    Vault references share one login; without a [vault] they fail naming the reference.
    """
    refs = secret_refs(model)
    reader = VaultReader(vault) if vault is not None else None
    for ref in refs:
        if ref.vault is not None:
            if reader is None:
                raise SecretUnavailable(f"vault secret {ref.vault}: no [vault] is configured (url and auth)")
            ref._loaded = reader.read(ref.vault)
        else:
            ref.load()
    return len(refs)
