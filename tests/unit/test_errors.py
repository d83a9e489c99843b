"""The exception tree: one root, drawn in the module docstring, codes stable and unique."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from functools import cache

import pytest

import core.errors as errors
from core.errors import (
    ApplicationError,
    AuditChainBroken,
    BusinessError,
    ConfigError,
    KollegaError,
    RobotError,
)


def _error_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined (not merely imported) in core/errors.py."""
    return {
        name: obj
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    }


#: The packages whose errors core/errors.py draws (robots draw their own).
PACKAGES = ("core", "connectors", "sandbox")
#: Alembic's env.py configures a migration context when imported: not a module to load here.
NOT_IMPORTED = ("core.storage.migrations",)
#: ``python -m …`` entry modules run their command when imported.
ENTRY_MODULES = ".__main__"
#: Exceptions that are control flow, not errors: they carry an ordinary answer (a redirect)
#: and never leave the function that catches them.
CONTROL_FLOW = {("sandbox.payroll", "_Halt")}


@cache
def _load_packages() -> None:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if not info.name.startswith(NOT_IMPORTED) and not info.name.endswith(ENTRY_MODULES):
                importlib.import_module(info.name)


def _ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] in PACKAGES


def _control_flow(cls: type) -> bool:
    # By module or package: the CLI's module may become a package of modules.
    return any(
        cls.__name__ == name and (cls.__module__ == where or cls.__module__.startswith(f"{where}."))
        for where, name in CONTROL_FLOW
    )


def _subclasses(root: type[BaseException]) -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    stack = [root]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                stack.append(sub)
    return found


def _tree_classes() -> dict[str, type[KollegaError]]:
    """Every KollegaError subclass (and the root) defined in core, connectors and sandbox, by name."""
    _load_packages()
    classes: dict[str, type[KollegaError]] = {"KollegaError": KollegaError}
    for cls in _subclasses(KollegaError):
        if _ours(cls):
            assert issubclass(cls, KollegaError)
            assert cls.__name__ not in classes, f"two error classes are named {cls.__name__}"
            classes[cls.__name__] = cls
    return classes


_BRANCH = re.compile(r"^(?P<indent>[ │]*)[├└]── (?P<name>[A-Za-z_][A-Za-z0-9_]*)")


def _drawn_tree() -> dict[str, str | None]:
    """Parse the tree in the module docstring into {class name: drawn parent name}."""
    doc = errors.__doc__ or ""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "KollegaError")
    base_indent = len(lines[start]) - len(lines[start].lstrip())
    parents: dict[str, str | None] = {"KollegaError": None}
    stack = ["KollegaError"]  # stack[d] = the last class drawn at depth d
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        m = _BRANCH.match(line[base_indent:])
        assert m, f"cannot read this line of the drawn tree: {line!r}"
        depth = len(m["indent"]) // 4 + 1
        name = m["name"]
        assert name not in parents, f"{name} is drawn twice"
        parents[name] = stack[depth - 1]
        del stack[depth:]
        stack.append(name)
    return parents


class TestTree:
    """Every error Kollega raises on purpose hangs under KollegaError."""

    def test_every_class_is_a_kollega_error(self) -> None:
        for name, cls in _error_classes().items():
            assert issubclass(cls, KollegaError), f"{name} is not under KollegaError"

    def test_no_exception_class_outside_the_tree(self) -> None:
        # Every exception class core, connectors and sandbox define, wherever it lives.
        _load_packages()
        outside = {
            f"{cls.__module__}.{cls.__qualname__}"
            for cls in _subclasses(BaseException)
            if _ours(cls) and not issubclass(cls, KollegaError) and not _control_flow(cls)
        }
        assert outside == set(), f"exception classes outside the KollegaError tree: {sorted(outside)}"

    def test_business_and_application_errors_are_robot_errors(self) -> None:
        assert issubclass(BusinessError, RobotError)
        assert issubclass(ApplicationError, RobotError)
        assert not issubclass(BusinessError, ApplicationError)
        assert not issubclass(ApplicationError, BusinessError)

    def test_config_error_is_not_a_robot_error(self) -> None:
        # A bad configuration must never be retried like a transient robot failure.
        assert not issubclass(ConfigError, RobotError)


class TestDrawnTree:
    """The module docstring draws the tree; a class added without drawing it fails here."""

    def test_docstring_names_every_class(self) -> None:
        drawn = set(_drawn_tree())
        defined = set(_tree_classes())
        assert defined - drawn == set(), f"error classes not drawn in core/errors.py's docstring: {defined - drawn}"
        assert drawn - defined == set(), f"drawn in the docstring but not defined: {drawn - defined}"

    def test_drawing_names_where_a_class_lives(self) -> None:
        # A class defined outside core/errors.py is drawn with its module, so a reader finds it.
        doc = errors.__doc__ or ""
        for name, cls in _tree_classes().items():
            if cls.__module__ != errors.__name__:
                line = next(line for line in doc.splitlines() if re.search(rf"── {name}\b", line))
                assert f"({cls.__module__})" in line, f"{name} is drawn without its module {cls.__module__}"

    def test_drawing_matches_the_real_hierarchy(self) -> None:
        classes = _tree_classes()
        for name, parent in _drawn_tree().items():
            if parent is None:
                continue
            assert classes[name].__bases__ == (classes[parent],), (
                f"{name} is drawn under {parent} but derives from "
                f"{', '.join(b.__name__ for b in classes[name].__bases__)}"
            )


class TestMessagesAndCodes:
    """Docstrings are default messages; codes are stable machine keys (work_items.error_code)."""

    @pytest.mark.parametrize("name", sorted(_error_classes()))
    def test_default_message_is_first_docstring_line(self, name: str) -> None:
        cls = _error_classes()[name]
        exc = cls()
        assert str(exc) == (cls.__doc__ or "").strip().splitlines()[0]
        assert exc.message == str(exc)

    def test_explicit_message_code_and_details(self) -> None:
        exc = BusinessError("beloppet saknas", code="missing_amount", field="amount")
        assert str(exc) == "beloppet saknas"
        assert exc.code == "missing_amount"
        assert exc.details == {"field": "amount"}
        assert BusinessError.code == "business"  # the class default is untouched

    def test_every_class_has_a_docstring(self) -> None:
        for name, cls in _tree_classes().items():
            assert (cls.__dict__.get("__doc__") or "").strip(), f"{name} has no docstring"

    def test_codes_are_unique(self) -> None:
        codes: dict[str, str] = {}
        for name, cls in _tree_classes().items():
            code = cls.__dict__.get("code")
            assert isinstance(code, str) and code, f"{name} does not define its own code"
            assert code not in codes, f"{name} and {codes[code]} share the code {code!r}"
            codes[code] = name

    def test_robots_errors_have_their_own_codes_and_docstrings(self) -> None:
        # Robots draw their errors in their own docs, but their codes share work_items.error_code
        # with the kernel's: a robot's code must not read as one of the kernel's, nor another robot's.
        kernel = {cls.__dict__["code"]: name for name, cls in _tree_classes().items()}
        robots = importlib.import_module("robots")
        for info in pkgutil.walk_packages(robots.__path__, "robots."):
            importlib.import_module(info.name)
        codes: dict[str, str] = {}
        for cls in _subclasses(KollegaError):
            if not cls.__module__.startswith("robots."):
                continue
            name = f"{cls.__module__}.{cls.__qualname__}"
            code = cls.__dict__.get("code")
            assert isinstance(code, str) and code, f"{name} does not define its own code"
            assert (cls.__dict__.get("__doc__") or "").strip(), f"{name} has no docstring"
            assert code not in kernel, f"{name} has the code {code!r} of the kernel's {kernel.get(code)}"
            assert code not in codes, f"{name} and {codes.get(code)} share the code {code!r}"
            codes[code] = name

    def test_audit_chain_broken_names_the_seq(self) -> None:
        exc = AuditChainBroken("event 7 was modified", seq=7)
        assert exc.seq == 7
        assert isinstance(exc, KollegaError)
