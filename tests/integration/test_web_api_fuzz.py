"""Schemathesis against the JSON API's OpenAPI description: generated requests never get a 5xx.

Every operation of ``/api/v1/openapi.json`` is called with requests generated from the
schema (valid and invalid), authenticated with API tokens of an operations person, an IT
admin, an auditor and a case worker in turn, on a database where a robot has run (so ids
exist). Whatever the input, the answer is a 2xx or a 4xx with a reason — never a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from core.testing import ExampleRobot, run_robot, temporary_database
from core.testing.web import make_web_env
from core.web.auth import create_token

pytestmark = pytest.mark.slow

TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("api-fuzz")
    with temporary_database(tmp) as db:
        env = make_web_env(db, Path(tmp))
        run_robot(ExampleRobot, db=db, tmp_path=Path(tmp))
        for user in ("sara", "johan", "maria", "anna"):
            TOKENS[user] = create_token(db, user, "fuzz")
        yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", env.app)


def test_no_generated_request_crashes_the_api(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20, "the OpenAPI description lists the API's operations"
    crashes: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            for user in ("sara", "johan", "maria", "anna"):
                response = case.call(headers={"Authorization": f"Bearer {TOKENS[user]}"})
                if response.status_code >= 500:
                    crashes.append(
                        f"{user}: {case.method} {case.formatted_path} {case.query or ''} → {response.status_code}"
                    )

        check()
    assert not crashes, "\n".join(sorted(set(crashes))[:20])
