"""Secrets from HashiCorp Vault (KV v2, token or AppRole) over real HTTP, per municipality, read as a run starts.

Against the sandbox playing Vault's API always; against a real Vault dev server too when
KOLLEGA_TEST_VAULT_ADDR and KOLLEGA_TEST_VAULT_TOKEN name one (skipped otherwise: this
machine has no `vault` binary).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field

from core.engine import Engine
from core.errors import ConfigError, SecretUnavailable
from core.records import RunStatus
from core.registry import Registry
from core.robot import Done, NewItem, Robot
from core.settings import SecretRef, Settings, TenantSettings, VaultSettings
from core.testing import FakeClock, make_settings
from core.testing.memory import MemoryStores
from core.vault import VaultReader, load_secrets
from sandbox import vault as sandbox_vault
from sandbox.testing import running_sandbox

RONNEBY = TenantSettings(code="1081", name="Ronneby kommun")
KARLSHAMN = TenantSettings(code="1082", name="Karlshamns kommun")


@pytest.fixture(scope="module")
def vault_url() -> Iterator[str]:
    with running_sandbox(seed=3, applications=5) as base:
        yield f"{base}/vault"


def _write(url: str, path: str, data: dict[str, str], token: str = sandbox_vault.ROOT_TOKEN) -> None:
    answer = httpx.post(f"{url}/v1/secret/data/{path}", json={"data": data}, headers={"X-Vault-Token": token})
    answer.raise_for_status()


def _token_settings(url: str, monkeypatch: pytest.MonkeyPatch, token: str = sandbox_vault.ROOT_TOKEN) -> VaultSettings:
    monkeypatch.setenv("KOLLEGA_TEST_VAULT_TOKEN_VALUE", token)
    return VaultSettings(url=url, auth="token", token=SecretRef(env="KOLLEGA_TEST_VAULT_TOKEN_VALUE"))


def _approle_settings(url: str, monkeypatch: pytest.MonkeyPatch, secret_id: str) -> VaultSettings:
    monkeypatch.setenv("KOLLEGA_TEST_VAULT_SECRET_ID", secret_id)
    return VaultSettings(
        url=url,
        auth="approle",
        role_id=sandbox_vault.APPROLE_ROLE_ID,
        secret_id=SecretRef(env="KOLLEGA_TEST_VAULT_SECRET_ID"),
    )


class TestReading:
    """A reference reads one key of a KV v2 secret; every failure names the reference, never a value."""

    def test_token_auth_reads_the_key(self, vault_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        _write(vault_url, "kollega/test/read", {"password": "s3cret-read", "other": "x"})
        reader = VaultReader(_token_settings(vault_url, monkeypatch))
        assert reader.read("kollega/test/read#password") == "s3cret-read"

    def test_approle_reads_what_its_policy_allows_and_nothing_else(
        self, vault_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _write(vault_url, "kollega/test/approle", {"password": "s3cret-approle"})
        _write(vault_url, "other-team/db", {"password": "not-ours-value"})
        reader = VaultReader(_approle_settings(vault_url, monkeypatch, sandbox_vault.APPROLE_SECRET_ID))
        assert reader.read("kollega/test/approle#password") == "s3cret-approle"
        with pytest.raises(SecretUnavailable, match=r"other-team/db#password.*permission denied") as caught:
            reader.read("other-team/db#password")
        assert "not-ours-value" not in str(caught.value)

    def test_a_wrong_secret_id_is_a_refused_login(self, vault_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        reader = VaultReader(_approle_settings(vault_url, monkeypatch, "wrong-secret-id"))
        with pytest.raises(SecretUnavailable, match="refused the approle login") as caught:
            reader.read("kollega/1081/harry#password")
        assert "wrong-secret-id" not in str(caught.value)

    @pytest.mark.parametrize(
        ("reference", "why"),
        [("kollega/test/absent#password", "does not exist"), ("kollega/1081/harry#pasword", "has no key 'pasword'")],
    )
    def test_a_missing_secret_or_key_names_the_reference(
        self, vault_url: str, monkeypatch: pytest.MonkeyPatch, reference: str, why: str
    ) -> None:
        reader = VaultReader(_token_settings(vault_url, monkeypatch))
        with pytest.raises(SecretUnavailable, match=why) as caught:
            reader.read(reference)
        assert reference in caught.value.message and "sandlada" not in caught.value.message

    def test_an_unreachable_vault_is_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        settings = _token_settings("http://127.0.0.1:9", monkeypatch).model_copy(update={"timeout_seconds": 2})
        with pytest.raises(SecretUnavailable, match=r"kollega/x#k.*cannot be reached"):
            VaultReader(settings).read("kollega/x#k")

    def test_references_and_vault_settings_are_checked(self) -> None:
        with pytest.raises(ValueError, match="exactly one"):
            SecretRef(env="A", vault="p#k")
        with pytest.raises(ValueError, match="vault"):
            SecretRef.model_validate({"vault": "no-key-here"})
        with pytest.raises(ValueError, match="cannot come from Vault"):
            VaultSettings(url="http://v", token=SecretRef(vault="p#k"))
        with pytest.raises(ValueError, match="approle"):
            VaultSettings(url="http://v", auth="approle", role_id="r")
        assert "s3cret" not in repr(SecretRef(vault="kollega/a#password"))


# -- a robot with a per-municipality password ------------------------------------------
class PayrollLoginSettings(BaseModel):
    """A robot that logs in somewhere with a password by reference."""

    username: str = Field(default="robot", description="User name.")
    password: SecretRef = Field(description="Password by reference.")


SEEN: list[tuple[str, str, str]] = []


class PayrollLoginRobot(Robot[PayrollLoginSettings]):
    """Records which password each municipality's run used (a test stands in for the login)."""

    name = "payrolllogin"
    display_name = "Lönerobot"

    def collect(self, ctx: Any) -> list[NewItem]:
        return [NewItem(reference=f"login-{len(SEEN)}", payload={})]

    async def process(self, ctx: Any, item: Any) -> Done:
        SEEN.append((ctx.tenant, self.settings.username, self.settings.password.resolve()))
        return Done({})


def _engine(
    tmp_path: Path, vault: VaultSettings, tenants_robots: dict[str, dict[str, Any]]
) -> tuple[Engine, MemoryStores]:
    stores = MemoryStores(FakeClock())
    tenants = [
        t.model_copy(update={"robots": {"payrolllogin": tenants_robots[t.code]} if t.code in tenants_robots else {}})
        for t in (RONNEBY, KARLSHAMN)
    ]
    settings = make_settings(
        tmp_path,
        tenants=tenants,
        vault=vault,
        robots={"payrolllogin": {"password": {"env": "KOLLEGA_TEST_UNSET_PASSWORD"}}},
    )
    return stores.engine(settings, Registry(robots={"payrolllogin": PayrollLoginRobot})), stores


class TestPerMunicipalityVaultSecrets:
    """Two municipalities, their own HaRry-style passwords in Vault, rotated without a restart."""

    def test_each_run_uses_its_municipalitys_current_secret(
        self, vault_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        SEEN.clear()
        _write(vault_url, "kollega/1081/payroll", {"password": "ronneby-v1"})
        _write(vault_url, "kollega/1082/payroll", {"password": "karlshamn-v1"})
        engine, _stores = _engine(
            tmp_path,
            _approle_settings(vault_url, monkeypatch, sandbox_vault.APPROLE_SECRET_ID),
            {
                "1081": {"password": {"vault": "kollega/1081/payroll#password"}},
                "1082": {"password": {"vault": "kollega/1082/payroll#password"}, "username": "robot.karlshamn"},
            },
        )
        for tenant in ("1081", "1082"):
            assert asyncio.run(engine.run("payrolllogin", tenant)).status == RunStatus.succeeded
        _write(vault_url, "kollega/1081/payroll", {"password": "ronneby-v2"})  # rotated in Vault
        assert asyncio.run(engine.run("payrolllogin", "1081")).status == RunStatus.succeeded
        assert SEEN == [
            ("1081", "robot", "ronneby-v1"),
            ("1082", "robot.karlshamn", "karlshamn-v1"),
            ("1081", "robot", "ronneby-v2"),
        ]

    def test_an_unreadable_secret_fails_the_run_naming_the_reference(
        self, vault_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        SEEN.clear()
        engine, stores = _engine(
            tmp_path,
            _token_settings(vault_url, monkeypatch),
            {"1081": {"password": {"vault": "kollega/1081/nothing-here#password"}}},
        )
        summary = asyncio.run(engine.run("payrolllogin", "1081"))
        assert summary.status == RunStatus.failed and SEEN == []
        assert summary.error is not None and "vault secret kollega/1081/nothing-here#password" in summary.error
        run = stores.runs.get(summary.run_id)  # type: ignore[arg-type]
        assert run is not None and run.status == RunStatus.failed and "nothing-here" in (run.error or "")
        # The deployment's own reference (an unset env variable) is used where no municipality overrides it.
        summary = asyncio.run(engine.run("payrolllogin", "1082"))
        assert summary.status == RunStatus.failed and "KOLLEGA_TEST_UNSET_PASSWORD" in (summary.error or "")

    def test_a_bad_override_is_refused_at_start_naming_the_key(self, tmp_path: Path) -> None:
        tenants = [RONNEBY.model_copy(update={"robots": {"payrolllogin": {"password": "inline-pass"}}})]
        settings = make_settings(tmp_path, tenants=tenants, robots={"payrolllogin": {"password": {"env": "X"}}})
        with pytest.raises(ConfigError, match=r"tenants\.1081\.robots\.payrolllogin\.password") as caught:
            settings.check_robot_sections({"payrolllogin": PayrollLoginSettings})
        assert "inline-pass" not in caught.value.message
        typo = [RONNEBY.model_copy(update={"robots": {"payrolllogin": {"usernme": "x"}}})]
        settings = make_settings(tmp_path, tenants=typo, robots={"payrolllogin": {"password": {"env": "X"}}})
        with pytest.raises(ConfigError, match=r"tenants\.1081\.robots\.payrolllogin\.usernme"):
            settings.check_robot_sections({"payrolllogin": PayrollLoginSettings})


def test_load_secrets_reads_every_reference_once_per_call(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KOLLEGA_TEST_PW", "first")
    model = PayrollLoginSettings(password=SecretRef(env="KOLLEGA_TEST_PW"))
    assert load_secrets(model, None) == 1
    monkeypatch.setenv("KOLLEGA_TEST_PW", "second")
    assert model.password.resolve() == "first"  # what the run started with
    with pytest.raises(SecretUnavailable, match="no \\[vault\\] is configured"):
        load_secrets(PayrollLoginSettings(password=SecretRef(vault="kollega/a#b")), None)


@pytest.mark.skipif(
    not (os.environ.get("KOLLEGA_TEST_VAULT_ADDR") and os.environ.get("KOLLEGA_TEST_VAULT_TOKEN")),
    reason="no real Vault dev server (set KOLLEGA_TEST_VAULT_ADDR and KOLLEGA_TEST_VAULT_TOKEN; "
    f"`vault` binary: {shutil.which('vault') or 'not installed'})",
)
def test_against_a_real_vault_dev_server(monkeypatch: pytest.MonkeyPatch) -> None:
    url, token = os.environ["KOLLEGA_TEST_VAULT_ADDR"], os.environ["KOLLEGA_TEST_VAULT_TOKEN"]
    _write(f"{url.rstrip('/')}", "kollega/test/real", {"password": "real-dev-value"}, token=token)
    reader = VaultReader(_token_settings(url, monkeypatch, token))
    assert reader.read("kollega/test/real#password") == "real-dev-value"
    with pytest.raises(SecretUnavailable, match="does not exist"):
        reader.read("kollega/test/absent-for-sure#password")


def test_the_settings_model_accepts_a_vault_section() -> None:
    settings = Settings(
        tenants=[RONNEBY],
        vault={"url": "https://vault.example:8200", "auth": "approle", "role_id": "r", "secret_id": {"file": "/x"}},
    )
    assert settings.vault is not None and settings.vault.mount_point == "secret"
