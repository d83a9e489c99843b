"""Settings: defaults, the TOML file, KOLLEGA_* overrides, errors that name the key, secret references."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError
from core.settings import DEFAULT_CONFIG, SecretRef, load_settings
from core.testing import ExampleSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No KOLLEGA_* variable of the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("KOLLEGA_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "kollega.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class PayrollSettings(BaseModel):
    """A robot settings model holding a secret by reference."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(default="https://payroll.example")
    password: SecretRef


class TestLoading:
    """Defaults, the file, and the environment, in that order of precedence."""

    def test_defaults_from_an_empty_file(self, tmp_path: Path) -> None:
        s = load_settings(write(tmp_path, ""))
        assert s.worker.concurrency == 4
        assert s.worker.lease_seconds == 300
        assert s.worker.item_timeout_seconds < s.worker.lease_seconds
        assert s.timezone == "Europe/Stockholm"
        assert s.logging.format == "auto"
        assert s.tenants == []
        assert s.robots == {}
        assert s.database_url == ""
        assert s.effective_database_url.startswith("sqlite:///")
        assert s.effective_database_url.endswith("kollega.db")

    def test_shipped_config_file_is_valid(self) -> None:
        s = load_settings(DEFAULT_CONFIG)
        assert {t.code for t in s.tenants} >= {"1081"}

    def test_toml_values(self, tmp_path: Path) -> None:
        cfg = write(
            tmp_path,
            """
database_url = "postgresql+psycopg://kollega@db/kollega"
[[tenants]]
code = "1081"
name = "Ronneby kommun"
[worker]
concurrency = 8
lease_seconds = 120
item_timeout_seconds = 60
[robots.example]
items = 5
""",
        )
        s = load_settings(cfg)
        assert s.database_url == "postgresql+psycopg://kollega@db/kollega"
        assert s.effective_database_url == s.database_url
        assert [t.code for t in s.tenants] == ["1081"]
        assert (s.worker.concurrency, s.worker.lease_seconds, s.worker.item_timeout_seconds) == (8, 120, 60)
        assert s.worker.max_attempts == 5  # untouched keys keep their defaults
        assert s.robots == {"example": {"items": 5}}

    def test_kollega_config_names_the_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KOLLEGA_CONFIG", str(write(tmp_path, "[worker]\nconcurrency = 11\n")))
        assert load_settings().worker.concurrency == 11

    def test_env_overrides_file_nested_with_double_underscore(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cfg = write(
            tmp_path,
            "timezone = 'Europe/Stockholm'\n[worker]\nconcurrency = 2\nlease_seconds = 100\n"
            "item_timeout_seconds = 50\n",
        )
        monkeypatch.setenv("KOLLEGA_WORKER__CONCURRENCY", "16")
        monkeypatch.setenv("KOLLEGA_TIMEZONE", "UTC")
        monkeypatch.setenv("KOLLEGA_DATABASE_URL", "postgresql+psycopg://kollega@db/kollega")
        s = load_settings(cfg)
        assert s.worker.concurrency == 16  # from the environment …
        assert s.worker.lease_seconds == 100  # … merged with the file's other keys in the same section
        assert s.worker.item_timeout_seconds == 50
        assert s.timezone == "UTC"
        assert s.database_url == "postgresql+psycopg://kollega@db/kollega"

    def test_env_overrides_a_robot_section(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        cfg = write(tmp_path, "[robots.example]\nitems = 5\nbatch = 'natt'\n")
        monkeypatch.setenv("KOLLEGA_ROBOTS__EXAMPLE__ITEMS", "9")
        s = load_settings(cfg)
        robot = s.robot_settings("example", ExampleSettings)
        assert isinstance(robot, ExampleSettings)
        assert (robot.items, robot.batch) == (9, "natt")

    def test_explicit_overrides_win(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KOLLEGA_ARTIFACT_RETENTION_DAYS", "10")
        s = load_settings(write(tmp_path, "artifact_retention_days = 20\n"), artifact_retention_days=5)
        assert s.artifact_retention_days == 5

    def test_unrelated_kollega_variables_are_ignored(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KOLLEGA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
        assert load_settings(write(tmp_path, "")).worker.concurrency == 4


class TestInvalid:
    """An invalid configuration is a ConfigError whose message names the key."""

    @pytest.mark.parametrize(
        ("toml", "key"),
        [
            ("[worker]\nconcurrency = 0\n", "worker.concurrency"),
            ("[worker]\nconcurrency = 'many'\n", "worker.concurrency"),
            ("[worker]\nconcurency = 4\n", "worker.concurency"),  # a misspelt key is refused, not ignored
            ("[worker]\nlease_seconds = 60\nitem_timeout_seconds = 90\n", "worker"),
            ("[worker]\nprefetch = 20\nprefetch_max = 10\n", "worker"),  # claims would shrink below prefetch
            ("[worker]\nprefetch_max = 5000\n", "worker.prefetch_max"),
            ("timezone = 'Europe/Stokholm'\n", "timezone"),
            ("[[tenants]]\ncode = '108'\nname = 'Ronneby'\n", "tenants.0.code"),
            ("[logging]\nformat = 'xml'\n", "logging.format"),
            ("artifact_retention_days = 0\n", "artifact_retention_days"),
            ("unknown_key = 1\n", "unknown_key"),
        ],
    )
    def test_file_value_names_the_key(self, tmp_path: Path, toml: str, key: str) -> None:
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, toml))
        assert f"{key}:" in str(info.value)

    def test_env_value_names_the_key(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KOLLEGA_WORKER__CONCURRENCY", "0")
        with pytest.raises(ConfigError, match=r"worker\.concurrency:"):
            load_settings(write(tmp_path, ""))

    def test_every_problem_is_listed(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, "timezone = 'Mars/Olympus'\n[worker]\nconcurrency = 0\n"))
        assert "timezone:" in str(info.value)
        assert "worker.concurrency:" in str(info.value)

    def test_toml_syntax_error_names_the_file(self, tmp_path: Path) -> None:
        cfg = write(tmp_path, "[worker\nconcurrency = 4\n")
        with pytest.raises(ConfigError, match="not valid TOML") as info:
            load_settings(cfg)
        assert str(cfg) in str(info.value)

    def test_missing_file_named_by_kollega_config(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        missing = tmp_path / "nowhere" / "kollega.toml"
        monkeypatch.setenv("KOLLEGA_CONFIG", str(missing))
        with pytest.raises(ConfigError) as info:
            load_settings()
        assert str(missing) in str(info.value)
        assert "does not exist" in str(info.value)

    def test_missing_file_given_explicitly(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            load_settings(tmp_path / "absent.toml")


class TestRobotSections:
    """Each robot's section is validated by its own settings_model, the key named."""

    def test_valid_section(self, tmp_path: Path) -> None:
        s = load_settings(write(tmp_path, "[robots.example]\nitems = 3\nreview_every = 0\n"))
        robot = s.robot_settings("example", ExampleSettings)
        assert isinstance(robot, ExampleSettings)
        assert (robot.items, robot.review_every, robot.batch) == (3, 0, "demo")

    def test_absent_section_gives_defaults(self, tmp_path: Path) -> None:
        robot = load_settings(write(tmp_path, "")).robot_settings("example", ExampleSettings)
        assert robot == ExampleSettings()

    @pytest.mark.parametrize(
        ("section", "key"),
        [
            ("items = -1", "robots.example.items"),
            ("items = 'many'", "robots.example.items"),
            ("itemz = 3", "robots.example.itemz"),
        ],
    )
    def test_invalid_section_names_the_key(self, tmp_path: Path, section: str, key: str) -> None:
        s = load_settings(write(tmp_path, f"[robots.example]\n{section}\n"))
        with pytest.raises(ConfigError) as info:
            s.robot_settings("example", ExampleSettings)
        assert f"{key}:" in str(info.value)


class TestSecrets:
    """Secrets are references, resolved when used; an inline secret is refused."""

    def test_inline_secret_refused_key_named_value_not_echoed(self, tmp_path: Path) -> None:
        s = load_settings(write(tmp_path, "[robots.payroll]\npassword = 'hunter2'\n"))
        with pytest.raises(ConfigError) as info:
            s.robot_settings("payroll", PayrollSettings)
        message = str(info.value)
        assert "robots.payroll.password:" in message
        assert "by reference" in message
        assert "hunter2" not in message

    def test_env_reference_resolved(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PAYROLL_PASSWORD", "hunter2")
        s = load_settings(write(tmp_path, "[robots.payroll]\npassword = { env = 'PAYROLL_PASSWORD' }\n"))
        robot = s.robot_settings("payroll", PayrollSettings)
        assert isinstance(robot, PayrollSettings)
        assert robot.password.resolve() == "hunter2"
        assert "hunter2" not in repr(robot)

    def test_file_reference_resolved(self, tmp_path: Path) -> None:
        secret = tmp_path / "payroll.secret"
        secret.write_text("hunter2\n", encoding="utf-8")
        s = load_settings(write(tmp_path, f"[robots.payroll]\npassword = {{ file = '{secret.as_posix()}' }}\n"))
        robot = s.robot_settings("payroll", PayrollSettings)
        assert isinstance(robot, PayrollSettings)
        assert robot.password.resolve() == "hunter2"  # trailing newline stripped

    def test_reference_resolved_only_when_used(self, monkeypatch: pytest.MonkeyPatch) -> None:
        ref = SecretRef(env="PAYROLL_PASSWORD")  # the variable need not exist at load time
        with pytest.raises(ConfigError, match="PAYROLL_PASSWORD"):
            ref.resolve()
        monkeypatch.setenv("PAYROLL_PASSWORD", "later")
        assert ref.resolve() == "later"

    def test_missing_secret_file_named(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.secret"
        with pytest.raises(ConfigError) as info:
            SecretRef(file=missing).resolve()
        assert str(missing) in str(info.value)

    @pytest.mark.parametrize("data", [{}, {"env": "A", "file": "/b"}, {"env": "A", "value": "x"}])
    def test_reference_needs_exactly_one_source(self, tmp_path: Path, data: dict[str, str]) -> None:
        body = ", ".join(f"{k} = '{v}'" for k, v in data.items())
        s = load_settings(write(tmp_path, f"[robots.payroll]\npassword = {{ {body} }}\n"))
        with pytest.raises(ConfigError, match=r"robots\.payroll\.password"):
            s.robot_settings("payroll", PayrollSettings)


class TestPerTenantConnectors:
    """Each municipality reaches only its own systems, or one declared shared with it."""

    @staticmethod
    def two(tmp_path: Path, connectors: dict[str, Any], **own: dict[str, Any]) -> Any:
        from core.settings import TenantSettings
        from core.testing import make_settings

        return make_settings(
            tmp_path,
            tenants=[
                TenantSettings(code="1081", name="Ronneby kommun", connectors=own.get("ronneby", {})),
                TenantSettings(code="1082", name="Karlshamns kommun", connectors=own.get("karlshamn", {})),
            ],
            connectors=connectors,
        )

    @staticmethod
    def ctx(settings: Any, tenant: str) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(app_settings=settings, tenant=tenant)

    def test_each_municipality_uses_its_own_section_only(self, tmp_path: Path) -> None:
        from connectors.base import connector_settings
        from connectors.http import HttpSettings

        settings = self.two(
            tmp_path,
            {"eservice": {"base_url": "https://deployment.example/api/", "timeout_seconds": 12}},
            ronneby={"eservice": {"base_url": "https://ronneby.example/api/"}},
            karlshamn={"eservice": {"base_url": "https://karlshamn.example/api/"}},
        )
        ronneby = connector_settings(self.ctx(settings, "1081"), "eservice", HttpSettings)
        karlshamn = connector_settings(self.ctx(settings, "1082"), "eservice", HttpSettings)
        assert ronneby.base_url == "https://ronneby.example/api/"
        assert karlshamn.base_url == "https://karlshamn.example/api/"
        # The deployment's section is not shared with them: none of its keys leak in.
        assert karlshamn.timeout_seconds == HttpSettings.model_fields["timeout_seconds"].default
        assert settings.connector_section("nosuch", "1082") is None

    def test_an_undeclared_system_stops_the_robot_naming_the_section(self, tmp_path: Path) -> None:
        from connectors.base import connector_settings
        from connectors.http import HttpSettings

        settings = self.two(
            tmp_path,
            {"payroll": {"base_url": "https://lon.example/"}},
            ronneby={"payroll": {"base_url": "https://lon.ronneby.example/"}},
        )
        with pytest.raises(ConfigError) as caught:
            connector_settings(self.ctx(settings, "1082"), "payroll", HttpSettings)
        message = str(caught.value)
        assert "tenant 1082" in message and "connectors.payroll" in message and "shared_by" in message
        assert "[connectors.payroll] exists but is not shared with 1082" in message
        with pytest.raises(ConfigError, match=r"tenant 1082 .*connectors\.staffing.*no \[connectors\.staffing\]"):
            connector_settings(self.ctx(settings, "1082"), "staffing", HttpSettings)

    def test_a_system_declared_shared_serves_the_municipalities_it_names(self, tmp_path: Path) -> None:
        from connectors.base import connector_settings
        from connectors.http import HttpSettings

        settings = self.two(
            tmp_path,
            {"payroll": {"base_url": "https://lon.example/", "timeout_seconds": 9, "shared_by": ["1081", "1082"]}},
            karlshamn={"payroll": {"headers": {"X-Organisation": "karlshamn"}}},
        )
        ronneby = connector_settings(self.ctx(settings, "1081"), "payroll", HttpSettings)
        karlshamn = connector_settings(self.ctx(settings, "1082"), "payroll", HttpSettings)
        assert ronneby.base_url == karlshamn.base_url == "https://lon.example/"
        assert karlshamn.timeout_seconds == 9
        # The municipality's own keys (what separates it in the shared system) go over the shared section.
        assert dict(karlshamn.headers) == {"X-Organisation": "karlshamn"}
        assert settings.shared_by("payroll") == ["1081", "1082"]

    def test_shared_with_one_is_not_shared_with_the_other(self, tmp_path: Path) -> None:
        settings = self.two(tmp_path, {"payroll": {"base_url": "https://lon.example/", "shared_by": ["1081"]}})
        assert settings.connector_section("payroll", "1081") == {"base_url": "https://lon.example/"}
        assert settings.connector_section("payroll", "1082") is None

    def test_a_deployment_of_one_municipality_uses_the_deployments_sections(self, tmp_path: Path) -> None:
        from core.testing import make_settings

        settings = make_settings(tmp_path, connectors={"payroll": {"base_url": "https://lon.example/"}})
        [tenant] = settings.tenants
        assert settings.connector_section("payroll", tenant.code) == {"base_url": "https://lon.example/"}

    def test_the_browser_is_this_machines_tool_for_everyone(self, tmp_path: Path) -> None:
        settings = self.two(tmp_path, {"browser": {"headless": True}})
        assert settings.connector_section("browser", "1082") == {"headless": True}

    def test_shared_by_must_name_configured_tenants(self, tmp_path: Path) -> None:
        cfg = write(
            tmp_path,
            '[[tenants]]\ncode = "1081"\nname = "Ronneby"\n\n'
            '[connectors.payroll]\nbase_url = "https://lon.example/"\nshared_by = ["1081", "9999"]\n',
        )
        with pytest.raises(ConfigError, match=r"connectors\.payroll\.shared_by names 9999"):
            load_settings(cfg)

    def test_the_shipped_configuration_shares_nothing(self) -> None:
        from core.settings import DEFAULT_CONFIG

        settings = load_settings(DEFAULT_CONFIG)
        assert len(settings.tenants) >= 2
        for system in ("eservice", "registers", "staffing", "sms", "homecare", "scheduling", "payroll"):
            urls = {
                t.code: (settings.connector_section(system, t.code) or {}).get("base_url") for t in settings.tenants
            }
            assert all(urls.values()), f"{system}: {urls}"
            assert len(set(urls.values())) == len(urls), f"{system} is shared: {urls}"
