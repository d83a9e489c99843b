"""HaRry's review items in the web app: screenshots on exceptions and deviations, only to allowed roles.

A business error raised with artifacts (``details["artifacts"]``, as HaRry's browser lanes do)
gives an exception review whose material names the artifact ids; the review page shows the
screenshot to roles allowed to see artifacts, and says it exists to everyone else. HaRry's
own template (deviations) gets ``artifact_url(id)`` in its context.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from core.errors import BusinessError
from core.robot import NeedsReview, NewItem, Robot
from core.storage.db import Database
from core.storage.models import AuditEvent, ReviewItem, ReviewKind
from core.storage.web_models import Role
from core.testing import run_robot
from core.testing.web import WebEnv, add_test_users, login, make_web_env, web_client
from robots.harry.robot import Harry, HarrySettings

PNG = b"\x89PNG\r\n\x1a\nfake"


class RefusingPayroll(Robot):
    """Stands in for HaRry's processing: a refusal with a screenshot, and a deviation with one."""

    name = "harry"
    display_name = "HaRry (test)"
    settings_model = HarrySettings  # the test settings' [robots.harry] section
    artifact_ids: ClassVar[dict[str, int]] = {}

    def collect(self, ctx: Any) -> list[NewItem]:
        """Two schedules."""
        return [NewItem("E10001/2026-12/v1/aa"), NewItem("E10002/2026-12/v1/bb")]

    async def process(self, ctx: Any, item: Any) -> NeedsReview:
        """E10001 is refused (locked period), E10002 differs after the read-back."""
        shot = await asyncio.to_thread(
            ctx.save_artifact,
            work_item_id=item.id,
            kind="screenshot",
            filename="fel.png",
            content_type="image/png",
            data=PNG,
            sensitive=True,
        )
        type(self).artifact_ids[item.reference[:6]] = shot
        if item.reference.startswith("E10001"):
            raise BusinessError(
                "Perioden 2026-12-01–2026-12-31 är låst i PersonalLön.", code="period_locked", artifacts=[shot]
            )
        rows = [{"date": "2026-12-01", "start": "07:00", "end": "16:00", "break_minutes": 30, "activity_code": "ARB"}]
        line = {
            "date": "2026-12-01",
            "row": 1,
            "expected": rows[0],
            "shown": {**rows[0], "end": "23:00"},
            "differs": ["end"],
        }
        return NeedsReview(
            queue="harry.deviation",
            title="Schemat för E10002 stämmer inte i PersonalLön",
            summary="1 skillnad: sluttid",
            material={
                "reference": item.reference,
                "employee_id": "E10002",
                "period": "2026-12",
                "period_from": "2026-12-01",
                "period_to": "2026-12-31",
                "version": 1,
                "source": "api",
                "expected": rows,
                "shown": [line["shown"]],
                "differences": [{"date": "2026-12-01", "row": 1, "field": "end"}],
                "lines": [line],
                "screenshot_artifact_id": shot,
            },
        )


@pytest.fixture(autouse=True)
def _payroll_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """[robots.harry]'s password reference must resolve: secrets are read when a run starts."""
    monkeypatch.setenv("KOLLEGA_HARRY_PASSWORD", "test-only-password")


def night(db: Database, tmp_path: Path, **web: Any) -> tuple[WebEnv, dict[str, int], dict[str, ReviewItem]]:
    """One night of the stand-in robot; the web app renders with HaRry's real template."""
    env = make_web_env(db, tmp_path, robots={"harry": Harry}, users=False, **web)
    add_test_users(db, queue="harry.deviation")  # anna: deviations and exceptions; bertil: deviations only
    run_robot(RefusingPayroll, db=db, app_settings=env.settings, clock=env.clock)
    with db.session() as s:
        reviews = {r.kind.value: r for r in s.scalars(select(ReviewItem)).all()}
    return env, dict(RefusingPayroll.artifact_ids), reviews


async def test_the_exception_review_names_its_screenshot_and_shows_it_to_allowed_roles(
    db: Database, tmp_path: Path
) -> None:
    env, shots, reviews = await asyncio.to_thread(
        night, db, tmp_path, artifact_roles=[Role.case_worker, Role.operations]
    )
    exception = reviews[ReviewKind.exception.value]
    assert exception.material["artifacts"] == [shots["E10001"]]

    async with web_client(env.app) as client:
        await login(client, "anna")
        page = await client.get(f"/inbox/items/{exception.id}")
        assert page.status_code == 200 and "är låst i PersonalLön" in page.text
        assert f'src="/ops/artifacts/{shots["E10001"]}"' in page.text
        image = await client.get(f"/ops/artifacts/{shots['E10001']}")
        assert image.status_code == 200 and image.content == PNG

        deviation = reviews[ReviewKind.decision.value]
        page = await client.get(f"/inbox/items/{deviation.id}")
        assert 'class="harry-compare"' in page.text, "rendered with HaRry's template"
        assert f'<img src="/ops/artifacts/{shots["E10002"]}"' in page.text
    with db.session() as s:
        opened = s.scalars(select(AuditEvent).where(AuditEvent.action == "artifact.opened")).all()
    assert [e.actor for e in opened] == ["user:anna"]

    async with web_client(env.app) as client:  # a case worker of another queue: not this item's screenshot
        await login(client, "bertil")
        assert (await client.get(f"/ops/artifacts/{shots['E10001']}")).status_code == 403
        assert (await client.get(f"/ops/artifacts/{shots['E10002']}")).status_code == 200


async def test_roles_not_allowed_to_see_artifacts_get_no_url(db: Database, tmp_path: Path) -> None:
    env, shots, reviews = await asyncio.to_thread(night, db, tmp_path)  # default: operations and IT admins only
    exception, deviation = reviews[ReviewKind.exception.value], reviews[ReviewKind.decision.value]
    async with web_client(env.app) as client:
        await login(client, "anna")
        page = await client.get(f"/inbox/items/{exception.id}")
        assert "/ops/artifacts/" not in page.text
        assert "visas bara för behöriga roller" in page.text
        page = await client.get(f"/inbox/items/{deviation.id}")
        assert 'class="harry-compare"' in page.text and "/ops/artifacts/" not in page.text
        assert "visas bara för behöriga roller" in page.text
        assert (await client.get(f"/ops/artifacts/{shots['E10001']}")).status_code == 403
    async with web_client(env.app) as client:
        await login(client, "sara")  # operations still sees it on the item page
        assert (await client.get(f"/ops/artifacts/{shots['E10001']}")).status_code == 200
