"""The robot author's guide documents the public robot API, all of it and nothing else.

docs/writing-a-robot.md has a reference section with one entry (``- **`Name`** — …``) per
name in ``core.api.__all__`` and one line (``- `ctx.member` — …``) per member of the
``RunContext`` protocol. A name added to the API without documentation, or documentation
left behind for a removed name, fails here.
"""

from __future__ import annotations

import re

from core import api
from core.settings import PROJECT_ROOT

GUIDE = PROJECT_ROOT / "docs" / "writing-a-robot.md"
TEXT = GUIDE.read_text(encoding="utf-8")
REFERENCE = TEXT.split("## 6. Reference: everything in `core.api`", 1)[-1]


def documented_names() -> list[str]:
    """The names the reference section documents, in order."""
    return re.findall(r"^- \*\*`(\w+)`\*\*", REFERENCE, flags=re.M)


def documented_context_members() -> set[str]:
    """The ``ctx.<member>`` lines under the RunContext entry."""
    return set(re.findall(r"^  - `ctx\.(\w+)", REFERENCE, flags=re.M))


def protocol_members(protocol: type) -> set[str]:
    """Attributes, properties and methods a Protocol class declares (its own and its bases')."""
    members: set[str] = set()
    for klass in protocol.__mro__:
        if klass is object or klass.__name__ in ("Protocol", "Generic"):
            continue
        members |= set(getattr(klass, "__annotations__", {}))
        members |= {n for n in vars(klass) if not n.startswith("_")}
    return members


def test_the_guide_has_a_reference_section() -> None:
    assert "## 6. Reference: everything in `core.api`" in TEXT
    assert len(documented_names()) > 10


def test_every_public_name_of_core_api_is_documented() -> None:
    missing = sorted(set(api.__all__) - set(documented_names()))
    assert not missing, f"add to docs/writing-a-robot.md, section 6: {missing}"


def test_every_documented_name_exists_in_core_api() -> None:
    stale = sorted(n for n in documented_names() if n not in api.__all__ or not hasattr(api, n))
    assert not stale, f"documented in docs/writing-a-robot.md but not in core.api: {stale}"


def test_each_name_is_documented_once() -> None:
    names = documented_names()
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_every_name_in_all_is_importable() -> None:
    for name in api.__all__:
        assert getattr(api, name) is not None, name


def test_the_run_context_members_are_documented_exactly() -> None:
    members = protocol_members(api.RunContext)
    documented = documented_context_members()
    assert sorted(members - documented) == [], "RunContext members missing from the guide"
    assert sorted(documented - members) == [], "the guide documents RunContext members that do not exist"
