"""Lena: in the evening she plans tomorrow's home-care visits; a coordinator approves in the morning.

- ``collect``: one item per home-care group and tomorrow's date (``homecare-<group>-<date>``).
- ``process``: fetch the visits, the staff on duty and 14 days of history; apply the
  coordinator's comment if the plan came back; solve; check independently; hand the plan
  to the coordinator (queue ``lena.plan``) with the home-care system's own plan for comparison.
- ``on_decision``: approved → check the reviewed plan against the current data, publish it
  (once: the write is keyed by the review), read it back and audit it; returned → the
  engine puts the item back and ``process`` re-plans with the comment.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from connectors.http import HttpConnector
from core.api import (
    ApplicationError,
    BusinessError,
    Carried,
    ConnectorError,
    Done,
    EffectFacts,
    Measured,
    NeedsReview,
    NewItem,
    Outcome,
    Robot,
    local_today,
)
from robots.lena.check import check_plan
from robots.lena.comments import apply_changes, parse_comment
from robots.lena.continuity import ContinuityWeights
from robots.lena.effects import EFFECTS, measure, plan_facts
from robots.lena.homecare import assignments_of, from_minutes, plan_body, to_problem
from robots.lena.metrics import Weights
from robots.lena.model import ModelError, Problem
from robots.lena.portfolio import available_cpus
from robots.lena.report import build_view, plan_from_dict, plan_to_dict
from robots.lena.solver import SolverError, SolveResult, SolverOptions, solve

if TYPE_CHECKING:
    import typer

    from core.api import ReviewView, RunContext, WorkItemView

__all__ = ["LenaRobot", "LenaSettings"]

SYSTEM = "homecare"
PURPOSE = "planering av hemtjänstinsatser"


def plan_day_passed(material: dict[str, Any], now: datetime, zone: ZoneInfo) -> str | None:
    """The Swedish reason a plan's review item has lost its point (its day is over), or None."""
    try:
        day = date.fromisoformat(str(material.get("date")))
    except ValueError:
        return None
    if day >= now.astimezone(zone).date():
        return None
    group = material.get("group_name") or material.get("group")
    plan = f"Planen för {group}" if group else "Planen"
    return (
        f"{plan} gällde {day.isoformat()}, en dag som har passerat, och publicerades inte. "
        "Besöken den dagen följde den plan som redan fanns i verksamhetssystemet."
    )


class LenaSettings(BaseModel):
    """Settings of Lena, section ``[robots.lena]``."""

    model_config = ConfigDict(extra="forbid")

    groups: list[str] = Field(
        default_factory=list, description="Home-care groups to plan (ids); empty = every group the system lists."
    )
    days_ahead: int = Field(
        default=1, ge=0, le=14, description="Plan the day this many days after today (1 = tomorrow)."
    )
    plan_date: date | None = Field(default=None, description="Plan this date instead (for a re-run or a test).")
    history_days: int = Field(default=14, ge=0, le=60, description="Days of history for continuity (Kolada counts 14).")
    time_limit_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Seconds the solver may search per group; keep below the item timeout."
    )
    work_limit: int | None = Field(
        default=None,
        ge=1,
        description="Stop the search after this many solutions, for plans that are "
        "the same on every run (None: the time limit decides).",
    )
    seed: int = Field(default=1, ge=0, description="Seed of the search; the same seed and data give the same plan.")
    solver_processes: int = Field(
        default=1,
        ge=0,
        le=64,
        description="Independent searches at once, each in a process of its own with its own seed (seed, seed + 1, "
        "…), the cheapest plan kept; each uses one CPU for the whole time limit. 1 (the default): one search; "
        "0: the CPUs available to the process. With several workers solving at once, give each its share.",
    )
    allow_lateness: bool = Field(default=False, description="May a visit start after its window (at a cost)?")
    max_lateness_minutes: int = Field(default=15, ge=0, le=240, description="How late, at most, when allowed.")
    lateness_weight: float = Field(default=2.0, ge=0, description="Cost of one minute late, in minutes of travel.")
    max_lateness_weight: float = Field(
        default=2.0,
        ge=0,
        description="Extra cost of each minute of the day's latest start (the worst late visit), in minutes of travel.",
    )
    travel_weight: float = Field(default=1.0, ge=0, description="Cost of one minute of travel.")
    unassigned_weight: float = Field(
        default=10_000.0, gt=0, description="Cost of leaving a visit out, per person it needs (in minutes of travel)."
    )
    continuity_contact: float = Field(default=0.0, ge=0, description="Cost when the client's contact person comes.")
    continuity_preferred: float = Field(
        default=2.0, ge=0, description="Cost when one of the client's preferred staff comes."
    )
    continuity_familiar: float = Field(default=5.0, ge=0, description="Cost when someone from the last 14 days comes.")
    continuity_new_face: float = Field(default=20.0, ge=0, description="Cost when someone new to the client comes.")
    separate_process: bool = Field(
        default=True,
        description="Solve in a child process: OR-Tools holds Python's GIL while it "
        "searches, which would freeze the worker's event loop.",
    )
    compare_with_system_plan: bool = Field(
        default=True, description="Fetch the home-care system's own plan to compare continuity."
    )
    published_by: str = Field(default="Lena (Kollega)", min_length=1, description="Name on the published plan.")

    def solver_options(self) -> SolverOptions:
        """The solver options these settings describe."""
        return SolverOptions(
            time_limit=self.time_limit_seconds,
            seed=self.seed,
            work_limit=self.work_limit,
            processes=self.solver_processes or available_cpus(),
            weights=Weights(
                travel=self.travel_weight,
                lateness=self.lateness_weight,
                lateness_max=self.max_lateness_weight,
                unassigned=self.unassigned_weight,
                locked_unassigned=10 * self.unassigned_weight,
                continuity=ContinuityWeights(
                    self.continuity_contact,
                    self.continuity_preferred,
                    self.continuity_familiar,
                    self.continuity_new_face,
                ),
            ),
        )


class LenaRobot(Robot[LenaSettings]):
    """Plans tomorrow's home-care visits per group; a coordinator approves before anything is published."""

    name = "lena"
    display_name = "Lena"
    description = (
        "Plans tomorrow's home-care visits: who visits whom and when, with short routes, breaks "
        "and the same faces for each client; the coordinator approves before publishing."
    )
    effects = EFFECTS

    @classmethod
    def measure_effects(cls, facts: EffectFacts) -> Measured:
        """Lena's figures for one month (robots/lena/effects.py)."""
        return measure(facts)

    review_template = "review.html"
    queue_labels = {"lena.plan": "hemtjänstplaner"}
    messages = {"en": {"hemtjänstplaner": "home-care plans"}}

    @property
    def conf(self) -> LenaSettings:
        """The validated settings."""
        return self.settings

    def plan_date(self, ctx: RunContext) -> date:
        """The day to plan: the setting, or today (the tenant's local date) plus ``days_ahead``."""
        if self.conf.plan_date is not None:
            return self.conf.plan_date
        return local_today(ctx.clock, ctx.timezone) + timedelta(days=self.conf.days_ahead)

    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:
        """One item per group for the day to plan."""
        api = HttpConnector.for_run(ctx, SYSTEM)
        day = self.plan_date(ctx)
        groups = (await api.get_json("/groups"))["items"]
        wanted = set(self.conf.groups)
        for g in groups:
            if wanted and g["id"] not in wanted:
                continue
            yield NewItem(
                reference=f"homecare-{g['id']}-{day.isoformat()}",
                payload={"group": g["id"], "group_name": g.get("name", g["id"]), "date": day.isoformat()},
            )

    async def _problem(self, ctx: RunContext, group: str, day: date) -> Problem:
        return (await self._data(ctx, group, day))[0]

    async def _data(
        self, ctx: RunContext, group: str, day: date
    ) -> tuple[Problem, list[dict[str, Any]], list[dict[str, Any]]]:
        """The day's problem, the group's clients and the history of every group (a client's visits by others too)."""
        api = HttpConnector.for_run(ctx, SYSTEM)
        params = {"group": group, "date": day.isoformat()}
        visits = (await api.get_json("/visits", params=params))["items"]
        staff = (await api.get_json("/staff", params=params))["items"]
        clients: list[dict[str, Any]] = (await api.get_json("/clients", params={"group": group}))["items"]
        history: list[dict[str, Any]] = []
        if self.conf.history_days:
            history = (
                await api.get_json(
                    "/history",
                    params={
                        "all_groups": "true",
                        "date_from": (day - timedelta(days=self.conf.history_days)).isoformat(),
                        "date_to": (day - timedelta(days=1)).isoformat(),
                    },
                )
            )["items"]
        # The client records hold personal data (Lena uses only age and absences, for Kolada's
        # continuity): each read is an access event in the log social services can check.
        await asyncio.to_thread(_record_client_reads, ctx, clients, group)
        # Other groups' clients matter to nobody here; this group's clients' visits by anyone do.
        mine = {str(c.get("id")) for c in clients} | {str(v.get("client_id")) for v in visits}
        history = [h for h in history if str(h.get("client_id")) in mine]
        await asyncio.to_thread(
            ctx.record,
            "lena.data_read",
            purpose=PURPOSE,
            details={
                "system": SYSTEM,
                "group": group,
                "date": day.isoformat(),
                "visits": len(visits),
                "clients": len({v.get("client_id") for v in visits}),
                "client_records": len(clients),
                "staff": len(staff),
                "history": len(history),
            },
        )
        try:
            problem = to_problem(
                day,
                visits,
                staff,
                history,
                name=f"{group} {day}",
                max_lateness=self.conf.max_lateness_minutes if self.conf.allow_lateness else 0,
            )
        except ModelError as exc:
            raise BusinessError(
                f"Planeringsdata för {group} {day} går inte att använda: " + "; ".join(exc.problems[:10]),
                code="lena_bad_data",
            ) from exc
        return problem, clients, history

    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        """Plan one group's day and hand it to the coordinator."""
        group, day = str(item.payload["group"]), date.fromisoformat(str(item.payload["date"]))
        problem, clients, history = await self._data(ctx, group, day)
        changes = parse_comment(item.return_comment)
        problem, notes = apply_changes(problem, changes)
        notes = [f"Samordnarens kommentar: {n}" for n in changes.notes] + notes
        if not problem.visits:
            return Done({"group": group, "date": day.isoformat(), "visits": 0})  # nothing to plan, nothing to review
        try:
            result = await self._solve(problem)
        except SolverError as exc:
            raise BusinessError(f"Ingen giltig plan kunde göras för {group} {day}: {exc}", code="lena_no_plan") from exc
        if result.status != "solved":
            raise ApplicationError(
                f"Lösaren hittade ingen plan för {group} {day} inom tidsgränsen", code="lena_timeout"
            )
        violations = check_plan(problem, result.plan)
        if violations:  # the solver's own guard makes this unreachable; never hand on a broken plan
            raise BusinessError("Planen bryter mot regler: " + "; ".join(map(str, violations[:5])), code="lena_check")
        system_plan = await self._baseline(ctx, group) if self.conf.compare_with_system_plan else None
        baseline = assignments_of(system_plan) if system_plan is not None else None
        view = build_view(problem, result.plan, result.metrics, baseline=baseline, notes=notes)
        effects = plan_facts(
            problem, result.plan, result.metrics, day=day, clients=clients, history=history, baseline=system_plan
        )
        view["totals"]["kolada_median"] = effects["kolada"]["median"]
        view["totals"]["kolada_median_baseline"] = (effects.get("kolada_system") or {}).get("median")
        totals = view["totals"]
        first = min((s.shift_start for s in problem.staff), default=7 * 60)
        material = {
            "group": group,
            "group_name": item.payload.get("group_name", group),
            "date": day.isoformat(),
            "plan": plan_to_dict(result.plan),
            "view": view,
            "locks": {k: [v.staff_id, v.start] for k, v in changes.locks.items()},
            "absent": sorted(changes.absent),
            "max_lateness": problem.max_lateness,
            "replanned_with_comment": bool(item.return_comment),
            "effects": effects,
            "solver": {
                "engine": result.engine,
                "seconds": result.seconds,
                "objective": result.metrics.objective,
                "seed": result.seed,
                "time_limit": self.conf.time_limit_seconds,
                "processes": result.processes,
                "cpu_seconds": result.cpu_seconds,
            },
        }
        # Swedish figures: a decimal comma, thousands grouped with a no-break space.
        continuity = f"{totals['continuity_mean']:.1f}".replace(".", ",")
        travel = f"{totals['travel_minutes']:,}".replace(",", "\u00a0")
        summary = (
            f"{totals['assigned']} av {totals['visits']} besök planerade, {totals['unassigned']} ej planerade; "
            f"restid {travel} min; i snitt {continuity} olika personal per brukare (14 dagar + planerad dag)"
        )
        return NeedsReview(
            queue="lena.plan",
            title=f"Hemtjänstplan {item.payload.get('group_name', group)} {day}",
            summary=summary,
            material=material,
            due=from_minutes(day, first),
        )

    async def _solve(self, problem: Problem) -> SolveResult:
        options = self.conf.solver_options()
        if not self.conf.separate_process:
            return await asyncio.to_thread(solve, problem, options)
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, solve, problem, options)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # the solve ends by its own time limit

    async def _baseline(self, ctx: RunContext, group: str) -> dict[str, Any] | None:
        """The home-care system's own plan for the group's day, as it serves it (None when it has none)."""
        api = HttpConnector.for_run(ctx, SYSTEM)
        try:
            plan: dict[str, Any] = await api.get_json("/plans/baseline", params={"group": group})
            return plan
        except ConnectorError as exc:
            ctx.log.info("no baseline plan to compare with", error=exc.code)
            return None

    def lapse_reason(self, review: ReviewView, now: datetime, zone: ZoneInfo) -> str | None:
        """A plan for a day that has passed can no longer be published: the item lapses."""
        return plan_day_passed(review.material, now, zone)

    async def on_decision(self, ctx: RunContext, review: ReviewView) -> Carried | None:
        """Approved: publish the reviewed plan (checked again, once, read back). Returned: noted; re-planned next."""
        m = review.material
        if review.state == "returned":
            await asyncio.to_thread(
                ctx.record,
                "lena.replan_requested",
                details={"review_id": review.id, "group": m.get("group"), "date": m.get("date")},
            )
            return Carried("Lena gör en ny plan med din kommentar; den kommer som ett nytt ärende.")
        if review.state != "approved":
            return None
        group, day = str(m["group"]), date.fromisoformat(str(m["date"]))
        plan = plan_from_dict(m["plan"])
        problem = await self._problem(ctx, group, day)
        problem, _ = apply_changes(problem, parse_comment(_comment_of(m)))
        problem = _with_lateness(problem, int(m.get("max_lateness", 0)))
        violations = check_plan(problem, plan)
        if violations:
            raise BusinessError(
                "Planen går inte längre ihop med verksamhetssystemets uppgifter: "
                + "; ".join(map(str, violations[:5])),
                code="lena_stale_plan",
            )
        key = f"lena-{ctx.tenant}-{group}-{day.isoformat()}-review-{review.id}"
        api = HttpConnector.for_run(ctx, SYSTEM)
        params = {"group": group, "date": day.isoformat()}
        # Check, publish and read back under the lock of this group's day in this home-care
        # system, shared by every worker and run: a plan is published once.
        async with ctx.exclusive(f"homecare:{api.settings.base_url}:plan:{group}:{day.isoformat()}"):
            current = await api.get("/plans", params=params, allow_status=(404,))
            if current.status_code == 200 and api.json_of(current).get("idempotency_key") == key:
                ctx.log.info("plan already published", review_id=review.id)
                published = api.json_of(current)
                return Carried(
                    f"Planen för {group} {day.isoformat()} var redan publicerad i verksamhetssystemet.",
                    str(published.get("plan_id") or "") or None,
                )
            body = plan_body(
                problem,
                plan,
                day=day,
                group=group,
                published_by=f"{self.conf.published_by}, godkänd av {review.decided_by or 'samordnare'}",
                idempotency_key=key,
            )
            answer = await api.post_json("/plans", body, what=f"publish plan {group} {day}")
            back = await api.get_json("/plans", params=params)
            if back.get("idempotency_key") != key or assignments_of(back) != assignments_of(body):
                raise ApplicationError(
                    f"Den publicerade planen för {group} {day} stämmer inte vid kontrolläsning", code="lena_readback"
                )
        await asyncio.to_thread(
            ctx.record,
            "lena.plan_published",
            details={
                "review_id": review.id,
                "group": group,
                "date": day.isoformat(),
                "plan_id": answer.get("plan_id"),
                "assignments": len(body["assignments"]),
                "unassigned": len(body["unassigned"]),
                "approved_by": review.decided_by,
                # The plan's facts for the effects ledger (counts only: no client or staff ids).
                "effects": m.get("effects"),
            },
        )
        return Carried(
            f"Planen för {group} {day.isoformat()} är publicerad i verksamhetssystemet och kontrolläst "
            f"({len(body['assignments'])} besök planerade).",
            str(answer.get("plan_id") or "") or None,
        )

    def cli(self) -> typer.Typer | None:
        """``kollega lena solve …``."""
        from robots.lena.cli import app

        return app


def _record_client_reads(ctx: RunContext, clients: list[dict[str, Any]], group: str) -> None:
    for c in clients:
        if c.get("personnummer"):
            ctx.record_access(
                subject=str(c["personnummer"]),
                system=SYSTEM,
                purpose=PURPOSE,
                details={"group": group, "read": "ålder och frånvaro (personalkontinuitet)"},
            )


def _comment_of(material: dict[str, Any]) -> str:
    """The locks and absences the reviewed plan was made with, as a comment."""
    lines = [
        f"lås {vid} {staff}" + (f" {start // 60:02d}:{start % 60:02d}" if start is not None else "")
        for vid, (staff, start) in (material.get("locks") or {}).items()
    ]
    lines += [f"frånvarande {s}" for s in material.get("absent") or []]
    return "\n".join(lines)


def _with_lateness(problem: Problem, max_lateness: int) -> Problem:
    return replace(problem, max_lateness=max_lateness)
