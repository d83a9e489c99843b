"""The operations guide names only commands, options and settings that exist.

An operator copies commands and settings from docs/operations.md at three in the morning;
a renamed option or a removed setting must fail this test, not the operator.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import BaseModel

from connectors.browser import BrowserSettings
from connectors.http import HttpSettings
from connectors.open_eplatform import OpenEPlatformSettings
from core.scheduler import load_schedules
from core.settings import PROJECT_ROOT, SHARED_KEY, Settings
from core.web.settings import WebSettings

GUIDE = PROJECT_ROOT / "docs" / "operations.md"
TEXT = GUIDE.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", TEXT, flags=re.S)

#: Environment variables the guide uses as secret references (they hold values, not settings).
SECRET_VARIABLES = {
    "KOLLEGA_HARRY_PASSWORD",
    "KOLLEGA_OIDC_SECRET",
    "KOLLEGA_METRICS_TOKEN",
    "KOLLEGA_VAULT_TOKEN",
    "KOLLEGA_OEP_PASSWORD_1082",
}


def _cli() -> Any:
    """The CLI as a command tree (typer's Click-compatible groups and commands)."""
    from core import cli
    from tests.helpers.commands import declared_commands

    assert cli.mount_plugins(declared_commands()) == [], "a command plugin did not load"
    return typer.main.get_command(cli.app)


#: Other guides whose commands are checked too.
OTHER_GUIDES = [PROJECT_ROOT / "docs" / "writing-a-robot.md"]


def _commands() -> list[list[str]]:
    """Every `kollega …` invocation in the guides: in shell blocks and in inline code."""
    texts = [TEXT, *(g.read_text(encoding="utf-8") for g in OTHER_GUIDES)]
    blocks = [b for t in texts for b in re.findall(r"```(\w+)\n(.*?)```", t, flags=re.S)]
    lines = [ln for lang, body in blocks if lang == "sh" for ln in body.splitlines()]
    lines += [c for t in texts for c in re.findall(r"`(kollega [^`]+)`", t)]
    found = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        for part in re.split(r"&&|;", line):
            words = shlex.split(part.strip())
            if "kollega" in words:  # `kollega …`, or the image's command in `docker run … kollega worker`
                found.append(words[words.index("kollega") + 1 :])
    return [f for f in found if f]


def _settings_blocks() -> list[dict[str, Any]]:
    return [tomllib.loads(body) for lang, body in BLOCKS if lang == "toml"]


def _fields(model: type[BaseModel], path: list[str]) -> bool:
    """True when ``path`` names a field (nested through sub-models) of ``model``."""
    name, rest = path[0], path[1:]
    if name not in model.model_fields:
        return False
    if not rest:
        return True
    sub = model.model_fields[name].annotation
    for candidate in getattr(sub, "__args__", (sub,)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and _fields(candidate, rest):
            return True
    return False


SECTION_MODELS: dict[str, type[BaseModel]] = {"web": WebSettings, "connectors.browser": BrowserSettings}


def _model_for(section: str) -> tuple[type[BaseModel], list[str]]:
    """The model a ``[section]`` of the guide belongs to, and the path inside it."""
    if section in SECTION_MODELS:
        return SECTION_MODELS[section], []
    if section.startswith("web."):
        return WebSettings, section.split(".")[1:]
    if section.startswith("connectors."):
        return HttpSettings, []
    return Settings, section.split(".")


def test_the_guide_works_through_per_municipality_secrets_in_vault() -> None:
    """Two municipalities with their own HaRry passwords in Vault: the worked example is there and valid."""
    [block] = [b for b in _settings_blocks() if "vault" in b]
    settings = Settings(**block)
    passwords = {t.code: t.robots["harry"]["password"] for t in settings.tenants}
    assert passwords == {
        "1081": {"vault": "kollega/1081/harry#password"},
        "1082": {"vault": "kollega/1082/harry#password"},
    }
    from robots.harry.robot import HarrySettings

    for code in passwords:
        harry = settings.robot_settings("harry", HarrySettings, code)
        assert isinstance(harry, HarrySettings) and harry.password.vault == passwords[code]["vault"]
    # The sandbox holds the passwords at exactly these paths, so the example runs against it.
    from sandbox.vault import SEEDED

    assert {f"{path}#password" for path in SEEDED} == {p["vault"] for p in passwords.values()}


def test_the_guide_has_commands_and_settings_to_check() -> None:
    assert len(_commands()) >= 25
    assert len(_settings_blocks()) >= 4


@pytest.mark.parametrize("words", _commands(), ids=lambda w: " ".join(w[:3]))
def test_every_documented_command_and_option_exists(words: list[str]) -> None:
    cmd = _cli()
    path: list[str] = []
    for word in words:
        if word.startswith("-"):
            break
        if hasattr(cmd, "commands"):
            sub = cmd.commands.get(word)
            assert sub is not None, f"`kollega {' '.join([*path, word])}` is not a command"
            cmd, path = sub, [*path, word]
        else:
            break  # an argument
    assert not hasattr(cmd, "commands"), f"`kollega {' '.join(path)}` needs a subcommand"
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    for word in words:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"`kollega {' '.join(path)}` has no option {word}"


def test_documented_deployment_settings_are_valid(tmp_path: Path) -> None:
    """Every TOML block that is not a schedule validates against the settings models."""
    for block in _settings_blocks():
        if "cron" in block:
            continue
        web = block.pop("web", None)
        connectors = block.pop("connectors", {})
        if block:
            Settings(**block)  # raises naming the key when a setting does not exist or is invalid
        if web is not None:
            WebSettings.model_validate(web)
        pairs = [(n, {k: v for k, v in sec.items() if k != SHARED_KEY}) for n, sec in connectors.items()]
        if block.get("robots") or any(t.get("robots") for t in block.get("tenants", [])):
            # Every robot section, the deployment's and each municipality's effective one, by the
            # installed robots' own settings models: as `kollega worker` checks them at start.
            from core.registry import load_robots

            models = {name: cls.settings_model for name, cls in load_robots().robots.items()}
            Settings(**block).check_robot_sections(models)
        if block.get("tenants"):
            # Each municipality's sections as its runs see them (its own keys over a shared one);
            # building the settings checks that shared_by names configured municipalities.
            settings = Settings(**block, connectors=connectors)
            for t in settings.tenants:
                for name in {*t.connectors, *connectors}:
                    section = settings.connector_section(name, t.code)
                    if section is not None:
                        pairs.append((name, section))
        for name, section in pairs:
            if name == "browser":
                BrowserSettings.model_validate(section)
            elif section.get("api") == "open_eplatform":  # the e-service as Open ePlatform
                OpenEPlatformSettings.model_validate(section)
            else:  # a plain HTTP system; the e-service may say so with api = "kollega_json"
                assert section.get("api", "kollega_json") == "kollega_json", section
                HttpSettings.model_validate({k: v for k, v in section.items() if k != "api"})


def test_the_documented_schedule_loads(tmp_path: Path) -> None:
    [block] = [b for lang, b in BLOCKS if lang == "toml" and "cron =" in b]
    (tmp_path / "ronney.toml").write_text(block, encoding="utf-8")
    [schedule] = load_schedules(tmp_path, robots={"ronney"}, tenants={"1081"})
    shipped = {s.name: s for s in load_schedules(PROJECT_ROOT / "schedules", robots=None, tenants={"1081"})}
    assert schedule == shipped["ronney"], "the guide's example must be the schedule we ship"


def test_settings_named_in_the_text_exist() -> None:
    """`[section] key` in running text names a real setting."""
    named = re.findall(r"`\[([a-z_.]+)\] ([a-z_]+)", TEXT)
    assert named
    for section, key in named:
        model, prefix = _model_for(section)
        assert _fields(model, [*prefix, key]), f"[{section}] {key} is not a setting"


def test_environment_variables_in_the_guide_exist() -> None:
    for var in set(re.findall(r"\bKOLLEGA_[A-Z_]+\b", TEXT)):
        if var in SECRET_VARIABLES or var == "KOLLEGA_CONFIG":
            continue  # values behind secret references; the file core.settings reads
        path = var.removeprefix("KOLLEGA_").lower().split("__")
        assert _fields(Settings, path), f"{var} overrides no setting"
