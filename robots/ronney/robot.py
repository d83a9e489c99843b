"""Ronney: income-support applications prepared overnight, decided by a case worker in the morning.

collect     the coming month's submitted applications (new and re-applications) from the
            e-service, and complements still missing N days after they were requested
process     validate → register lookups per adult → compare declared vs register income and
            this month vs the previous one → riksnorm calculation → a review item with the
            proposal, the flags, what is missing and the decision basis (HTML and PDF)
on_decision approved → the decision is written to the e-service (checked before, read back
            after, audited); rejected → an avslag with the case worker's reason is written;
            returned → the kernel gives the item back to Ronney with the comment

Ronney never decides: it prepares and proposes; a person decides.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from core.api import (
    ApplicationError,
    BusinessError,
    Carried,
    ConfigError,
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
from robots.ronney.application import Application, LookupAnswer, MalformedApplication, parse_application
from robots.ronney.checks import (
    Flag,
    InconsistentHousehold,
    age_flags,
    application_flags,
    digits,
    household_for_norm,
    kr,
    missing_items,
    overdue_complements,
    validate,
)
from robots.ronney.compare import compare_incomes, compare_previous, register_flags
from robots.ronney.costs import assess_costs
from robots.ronney.decision import apply_changes
from robots.ronney.documents import PdfRenderer, render_basis
from robots.ronney.effects import EFFECTS, measure
from robots.ronney.gate import RESTRICTED_KIND
from robots.ronney.history import history_flags, income_change_flags, income_dropped_flags, income_types_missing
from robots.ronney.material import (
    APPLICATION_QUEUE,
    COMPLEMENT_QUEUE,
    application_material,
    complement_material,
    decision_sentence,
    legal_texts,
)
from robots.ronney.norm import Household, NormResult, calculate, describe_errors
from robots.ronney.oep import confirm_received, open_eservice
from robots.ronney.protection import carry_out_restricted, gate_review
from robots.ronney.services import Registers
from robots.ronney.settings import RonneySettings
from robots.ronney.tables import NormTable, deployment_dir, find_table, search_dirs
from robots.ronney.texts_en import EN as MESSAGES_EN
from robots.ronney.warnings import STATE_TEXT, apply_case_worker, keyed, state_key, update_states

if TYPE_CHECKING:
    import typer

    from core.api import ReviewView, RunContext, WorkItemView

__all__ = ["Ronney"]


def _add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _version(updated_at: str) -> str:
    # "2026-11-12T07:41:00+01:00" → "20261112T074100": stable, readable, no personal data.
    return re.sub(r"[^0-9T]", "", updated_at.split("+")[0])[:15] or "0"


class Ronney(Robot[RonneySettings]):
    """Prepares income-support applications at night for a case worker's decision."""

    name = "ronney"
    display_name = "Ronney"
    description = (
        "Prepares income-support applications overnight: checks them, fetches register data, "
        "calculates by the national norm and leaves a decision basis for the case worker."
    )
    effects = EFFECTS
    review_template = "review.html"
    queue_labels = {APPLICATION_QUEUE: "ansökningar", COMPLEMENT_QUEUE: "kompletteringar"}
    messages = {"en": MESSAGES_EN}

    @classmethod
    def measure_effects(cls, facts: EffectFacts) -> Measured:
        """Ronney's figures for one month (robots/ronney/effects.py)."""
        return measure(facts)

    @property
    def cfg(self) -> RonneySettings:
        """The validated settings."""
        return self.settings

    # -- time ------------------------------------------------------------------------------
    def today(self, ctx: RunContext) -> date:
        """Today's date in the tenant's time zone."""
        return local_today(ctx.clock, ctx.timezone)

    def month(self, ctx: RunContext) -> str:
        """The month applied for: the setting, or the coming month."""
        if self.cfg.month:
            return self.cfg.month
        return _add_months(self.today(ctx).replace(day=1), 1).strftime("%Y-%m")

    # -- collect ---------------------------------------------------------------------------
    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:
        """Submitted applications of the month not yet decided, and overdue complements. Reads only."""
        es = open_eservice(ctx, self.cfg)
        wanted = [
            s
            async for s in es.summaries(self.month(ctx))
            if not s.get("has_decision") and s.get("status") in ("submitted", "awaiting_complement")
        ]
        today, month = self.today(ctx), self.month(ctx)
        limit = asyncio.Semaphore(self.cfg.collect_concurrency)

        async def read(summary: dict[str, Any]) -> list[NewItem]:
            try:
                async with limit:
                    raw = await es.application(str(summary["id"]), subject=None, stage="collect")
            except (ConnectorError, BusinessError) as exc:
                # One unreadable application must not stop the night: it is collected from its
                # summary and process() retries it, or reports it, on its own.
                ctx.log.warning("application could not be read while collecting", error=exc.code)
                raw = {}
            if summary.get("month") is None and raw.get("month") not in (None, month):
                return []  # Open ePlatform lists every open case: its month comes with the form
            return self._items_for(summary, raw, today)

        batch = self.cfg.collect_concurrency * 4
        for start in range(0, len(wanted), batch):
            for items in await asyncio.gather(*(read(s) for s in wanted[start : start + batch])):
                for item in items:
                    yield item

    def _items_for(self, summary: dict[str, Any], raw: dict[str, Any], today: date) -> list[NewItem]:
        app_id = str(summary["id"])
        applicant = raw.get("applicant") if isinstance(raw.get("applicant"), dict) else None
        subject = str(applicant.get("personnummer") or "") or None if applicant else None
        status = str(raw.get("status") or summary.get("status"))
        if not raw and status == "awaiting_complement":
            return []  # which complement is overdue is not known without the application: next night
        base = {
            "application_id": app_id,
            "month": summary.get("month") or raw.get("month"),
            "application_kind": summary.get("kind") or raw.get("kind"),
        }
        if status == "awaiting_complement":
            try:
                app = parse_application(raw)
            except MalformedApplication:
                pass  # prepared as an application: process() reports what cannot be read
            else:
                return [
                    NewItem(
                        reference=f"{app_id}/komplettering/{c.id}",
                        payload={**base, "kind": "complement", "complement_id": c.id},
                        subject=subject,
                    )
                    for c in overdue_complements(app, today, self.cfg.complement_reminder_days)
                ]
        elif status != "submitted":
            return []
        version = _version(str(raw.get("updated_at") or summary.get("updated_at") or ""))
        return [
            NewItem(
                reference=f"{app_id}@{version}",
                payload={**base, "kind": "application", "version": version},
                subject=subject,
            )
        ]

    # -- process ---------------------------------------------------------------------------
    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        """Prepare one application (or one overdue complement) for a case worker."""
        if item.payload.get("kind") == "complement":
            return await self._process_complement(ctx, item)
        return await self._process_application(ctx, item)

    async def _read(self, ctx: RunContext, item: WorkItemView) -> Application:
        return (await self._read_raw(ctx, item))[0]

    async def _read_raw(self, ctx: RunContext, item: WorkItemView) -> tuple[Application, dict[str, Any]]:
        app_id = str(item.payload.get("application_id") or item.reference.split("@")[0].split("/")[0])
        raw = await open_eservice(ctx, self.cfg).application(app_id, subject=item.subject, stage="process")
        return parse_application(raw), raw

    async def _process_application(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        cfg = self.cfg
        app, raw = await self._read_raw(ctx, item)
        if app.decision is not None:
            return Done(
                {"application_id": app.id, "already_decided": True, "decision_id": app.decision.get("decision_id")}
            )
        if app.status == "awaiting_complement" and item.return_comment is None:
            # A complement was asked for after collecting: its arrival makes a new version to prepare.
            return Done({"application_id": app.id, "waiting_for_complement": True})
        validate(app, tenant=ctx.tenant)
        await confirm_received(ctx, open_eservice(ctx, cfg), app.id, item.reference)
        # The protected-identity gate (fail-closed): nothing is looked up or rendered before it opens.
        closed = await gate_review(
            ctx, cfg, item, app, queue=APPLICATION_QUEUE, organisation=cfg.organisation or ctx.tenant_name
        )
        if closed is not None:
            return closed
        today = self.today(ctx)
        months = [(_add_months(app.income_period.from_.replace(day=1), -n)) for n in range(cfg.register_months)]
        registers = Registers(ctx, cfg, cfg.organisation or ctx.tenant_name)
        answers = await asyncio.gather(
            *(
                registers.lookup(
                    adult.personnummer, case_id=app.id, period_from=months[-1], period_to=app.income_period.to
                )
                for adult in app.adults
            ),
            return_exceptions=True,
        )
        lookups, read_failed = self._register_answers(ctx, item, app, answers)
        month_keys = sorted(m.strftime("%Y-%m") for m in months)
        comparison = compare_incomes(app, lookups, tolerance=cfg.income_tolerance, months=month_keys)
        max_rent = cfg.max_rent_for(ctx.tenant, app.members)
        basis = app.previous_decision.basis if app.previous_decision is not None else None
        costs = assess_costs(app, cfg.cost_rules.get(ctx.tenant, {}), basis.costs if basis is not None else None)
        result, as_declared, calc_error = self._calculate(
            ctx,
            app,
            comparison.used,
            comparison.declared,
            max_rent,
            {k: v.model_dump() for k, v in costs.limits.items()},
        )
        previous_rows, previous_flags = compare_previous(
            app,
            declared_income_total=sum(comparison.declared.values()),
            proposed=result.support,
            tolerance=cfg.previous_month_income_tolerance,
        )
        if basis is not None and basis.incomes is not None:
            # compared per income type with its own threshold instead of the total
            previous_flags = [f for f in previous_flags if f.code != "income_changed"]
        register_kinds = {i.type for a in lookups.values() for i in a.incomes if i.month == app.income_month}
        type_flags, suggested = income_types_missing(app, comparison.declared, register_kinds)
        missing = [*missing_items(app), *([] if read_failed else suggested)]
        flags: list[Flag] = [
            *read_failed,
            *comparison.flags,
            *previous_flags,
            *income_change_flags(app, comparison.declared, cfg.income_threshold),
            *income_dropped_flags(app, lookups),
            *([] if read_failed else type_flags),
            *register_flags(app, lookups, municipality=ctx.tenant_name),
            *application_flags(app),
            *history_flags(app, lookback_months=cfg.recovery_lookback_months),
            *age_flags(app, today),
            *costs.flags,
            *self._calculation_flags(app, result, max_rent),
        ]
        if item.payload.get("version") and _version(app.updated_at.isoformat()) != item.payload["version"]:
            flags.append(
                Flag(
                    "info",
                    "changed_since_collected",
                    "Ansökan har ändrats i e-tjänsten sedan Ronney hittade den: underlaget visar den nya",
                )
            )
        now = ctx.clock.now()
        version = _version(app.updated_at.isoformat())  # the version read now: its warnings and its snapshot
        flags, gone = await self._warning_states(
            ctx, app.id, flags, version=version, registers_failed=bool(read_failed)
        )
        material = application_material(
            app=app,
            reference=item.reference,
            flags=flags,
            missing=missing,
            comparison=comparison,
            register_months=month_keys,
            lookups=lookups,
            previous_rows=previous_rows,
            result=result,
            as_declared=as_declared,
            calculation_error=calc_error,
            municipality=ctx.tenant_name,
            prepared_at=now,
            return_comment=item.return_comment,
        )
        material["warnings_gone"] = gone
        material["warning_states"] = STATE_TEXT
        material["cost_rules"] = costs.rules
        if ctx.tenant in cfg.acknowledge_before_approval and material.get("proposal", {}).get("amount") is not None:
            # The kernel refuses the approval until every open warning is acknowledged or closed.
            material.setdefault("required_on_approve", {}).update(
                {
                    f"warning.{f.stable_key}": f"Kvittera varningen: {f.text}"
                    for f in flags
                    if f.severity == "warning" and f.state == "open"
                }
            )
        await self._documents(ctx, item, material)
        await self._snapshot(ctx, item, version, raw, material)
        ctx.log.info(
            "application prepared", flags=len(flags), missing=len(missing), calculated=result.support is not None
        )
        return NeedsReview(
            queue=APPLICATION_QUEUE,
            title=material["title"],
            summary=material["summary"],
            material=material,
            subject=app.applicant.personnummer,
            four_eyes=cfg.four_eyes,
            due=now + timedelta(hours=cfg.review_due_hours) if cfg.review_due_hours else None,
        )

    def _register_answers(
        self, ctx: RunContext, item: WorkItemView, app: Application, answers: list[Any]
    ) -> tuple[dict[str, LookupAnswer], list[Flag]]:
        """The register answers per adult; a read that keeps failing becomes a warning after the last attempt.

        Before ``register_read_attempts`` attempts a failed read is raised (the kernel retries the
        item); from then on it is shown as ``register_read_failed`` and the item is prepared without
        that person's register data (the warnings depending on it are frozen, not closed).
        """
        lookups: dict[str, LookupAnswer] = {}
        failed: list[Flag] = []
        for role, adult, answer in zip(("sökande", "medsökande"), app.adults, answers, strict=False):
            if isinstance(answer, LookupAnswer):
                lookups[digits(adult.personnummer)] = answer
                continue
            if isinstance(answer, BusinessError) or not isinstance(answer, ConnectorError | ApplicationError):
                raise answer
            if item.attempts < self.cfg.register_read_attempts:
                raise answer
            ctx.log.warning("register lookup failed; prepared without it", error=answer.code, attempts=item.attempts)
            failed.append(
                Flag(
                    "warning",
                    "register_read_failed",
                    f"Registren kunde inte läsas för {role} efter {item.attempts} försök: inkomster, folkbokföring och "
                    "Arbetsförmedlingen är inte kontrollerade, och varningarna som bygger på registren är frysta. "
                    "Returnera ärendet när registren fungerar igen, eller kontrollera uppgifterna själv",
                    key=f"register_read_failed:{'applicant' if role == 'sökande' else 'co_applicant'}",
                )
            )
        return lookups, failed

    async def _warning_states(
        self, ctx: RunContext, app_id: str, flags: list[Flag], *, version: str, registers_failed: bool
    ) -> tuple[list[Flag], list[dict[str, str]]]:
        """The flags with their states across the application's versions, kept in the robot's state."""
        flags = keyed(flags)
        now = ctx.clock.now().isoformat(timespec="seconds")
        for _attempt in range(5):
            kept = await asyncio.to_thread(ctx.state_get, state_key(app_id))
            new_state, out, gone = update_states(
                kept[0] if kept else None, flags, version=version, registers_failed=registers_failed, now=now
            )
            written = await asyncio.to_thread(
                ctx.state_put, state_key(app_id), new_state, expected_version=kept[1] if kept else 0
            )
            if written is not None:
                return out, gone
        raise ApplicationError("the warnings of the application kept changing while kept", code="warnings_conflict")

    async def _snapshot(
        self, ctx: RunContext, item: WorkItemView, version: str, raw: dict[str, Any], material: dict[str, Any]
    ) -> None:
        """Keep the application as the applicant submitted it, once per version (write once), and list it."""
        if ctx.dry_run:
            return
        key = f"snapshot:{material['application_id']}:{version}"
        kept = await asyncio.to_thread(ctx.state_get, key)
        if kept is None:
            data = json.dumps(raw, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
            artifact_id = await asyncio.to_thread(
                ctx.save_artifact,
                work_item_id=item.id,
                kind="application_snapshot",
                filename=f"ansokan-{material['application_id']}-{version}.json",
                content_type="application/json",
                data=data,
                sensitive=True,
            )
            value = {"artifact_id": artifact_id, "version": version, "size": len(data)}
            if await asyncio.to_thread(ctx.state_put, key, value, expected_version=0) is None:
                kept = await asyncio.to_thread(ctx.state_get, key)  # another worker kept it first: theirs stands
            else:
                kept = (value, 1)
        if kept is not None:
            material.setdefault("documents", []).append(
                {
                    "title": "Ansökan som den lämnades in (ögonblicksbild, ändras aldrig)",
                    "filename": f"ansokan-{material['application_id']}-{version}.json",
                    "content_type": "application/json",
                    "artifact_id": kept[0].get("artifact_id"),
                    "size": kept[0].get("size"),
                }
            )

    def _table(self, ctx: RunContext, year: int) -> tuple[NormTable | None, str | None]:
        """The year's riksnorm table, or None and why not (Swedish); raises an operations alert once."""
        cfg = self.cfg
        folder = deployment_dir(cfg.norm_tables_dir, ctx.var_dir)
        try:
            table = find_table(year, search_dirs(folder, sandbox=cfg.sandbox_tables), allow_sandbox=cfg.sandbox_tables)
        except ConfigError as exc:
            ctx.log.warning("riksnorm table cannot be used", year=year, error=exc.message)
            ctx.alert(
                f"norm-invalid-{year}",
                f"Ronney: riksnormstabellen för {year} kan inte användas (den är felaktig eller är sandlådans "
                f"testtabell). Installera den officiella tabellen med kommandot `kollega ronney norms add FIL`; "
                "loggen visar felet.",
            )
            return None, f"Riksnormen för {year} kan inte användas ännu"
        if table is None:
            ctx.alert(
                f"norm-missing-{year}",
                f"Ronney: riksnormen för {year} saknas, så försörjningsstödet för ansökningar som gäller {year} kan "
                f"inte beräknas. Lägg in tabellen från socialtjänstförordningen med kommandot "
                f"`kollega ronney norms add FIL`.",
            )
            return None, f"Riksnormen för {year} är inte inlagd ännu"
        return table, None

    def _calculate(
        self,
        ctx: RunContext,
        app: Application,
        used: dict[str, int],
        declared: dict[str, int],
        max_rent: int | None,
        limits: dict[str, Any] | None = None,
    ) -> tuple[NormResult, NormResult | None, str | None]:
        """The calculation; without a usable table everything but the norm part, and why it waits (Swedish)."""
        table, why = self._table(ctx, app.year)
        try:
            household = Household.model_validate(
                {**household_for_norm(app, used, max_rent), "cost_limits": limits or {}}
            )
            declared_household = Household.model_validate(
                {**household_for_norm(app, declared, max_rent), "cost_limits": limits or {}}
            )
        except ValidationError as exc:
            raise InconsistentHousehold(f"Hushållet kan inte beräknas: {describe_errors(exc)}") from None
        try:
            result = calculate(household, table)
            as_declared = calculate(declared_household, table) if declared != used and table is not None else None
        except ConfigError as exc:
            what = str(exc.details.get("what") or "ett belopp")
            ctx.log.warning("calculation figure missing", year=app.year, code=exc.code)
            ctx.alert(
                f"{exc.code}-{app.year}",
                f"Ronney: {what} saknas i Ronneys tabeller för {app.year}, så försörjningsstödet kan inte beräknas "
                "för alla ansökningar. Lägg in den fullständiga riksnormen med `kollega ronney norms add FIL` "
                "(prisbasbeloppet står i Ronneys lagtabell).",
            )
            why = f"Beloppet för {what} saknas i tabellerna för {app.year}"
            if exc.code != "norm_figure_missing":
                raise BusinessError(
                    f"{why}: beräkna stödet manuellt tills driften har lagt in det", code="figure_missing"
                ) from None
            result, as_declared = calculate(household, None), None
        if why is None:
            return result, as_declared, None
        return (
            result,
            None,
            f"{why}. Kostnader och inkomster är beräknade; riksnormen och det föreslagna beloppet kommer när "
            "driften har lagt in årets riksnorm (driften har fått ett larm).",
        )

    @staticmethod
    def _calculation_flags(app: Application, result: NormResult | None, max_rent: int | None) -> list[Flag]:
        if result is None or max_rent is None:
            return []
        rent = app.costs.get("rent", 0)
        if rent <= max_rent:
            return []
        return [
            Flag(
                "info",
                "rent_capped",
                f"Hyran {kr(rent)} kr är högre än kommunens högsta godtagbara boendekostnad för "
                f"{app.members} person(er), {kr(max_rent)} kr: {kr(max_rent)} kr räknas",
            )
        ]

    async def _documents(self, ctx: RunContext, item: WorkItemView, material: dict[str, Any]) -> None:
        """Render the decision basis, keep it as sensitive artifacts of the item, list them in the material."""
        if ctx.dry_run:
            return  # a dry run stores nothing
        html = render_basis(material)
        name = f"beslutsunderlag-{material['application_id']}"
        docs: list[dict[str, Any]] = [
            {"title": "Beslutsunderlag (HTML)", "filename": f"{name}.html", "content_type": "text/html"}
        ]
        files = [html.encode("utf-8")]
        if self.cfg.pdf:
            try:
                files.append(await PdfRenderer.for_run(ctx, self.cfg.pdf_pages).render(html))
                docs.append(
                    {"title": "Beslutsunderlag (PDF)", "filename": f"{name}.pdf", "content_type": "application/pdf"}
                )
            except (ConnectorError, ConfigError) as exc:
                ctx.log.warning("decision basis PDF failed", error=exc.message)
                material["flags"].append(
                    Flag(
                        "info", "pdf_failed", "Beslutsunderlaget kunde inte skapas som PDF; HTML-versionen finns"
                    ).as_json()
                )
        for doc, data in zip(docs, files, strict=True):
            doc["artifact_id"] = await asyncio.to_thread(
                ctx.save_artifact,
                work_item_id=item.id,
                kind="decision_basis",
                filename=doc["filename"],
                content_type=doc["content_type"],
                data=data,
                sensitive=True,
            )
            doc["size"] = len(data)
        material["documents"] = docs

    async def _process_complement(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        app = await self._read(ctx, item)
        complement_id = str(item.payload.get("complement_id") or "")
        request = next((c for c in app.complement_requests if c.id == complement_id), None)
        if app.decision is not None or request is None or request.arrived_at is not None:
            return Done(
                {
                    "application_id": app.id,
                    "complement_id": complement_id,
                    "complement_arrived": bool(request and request.arrived_at),
                    "already_decided": app.decision is not None,
                }
            )
        closed = await gate_review(
            ctx, self.cfg, item, app, queue=COMPLEMENT_QUEUE, organisation=self.cfg.organisation or ctx.tenant_name
        )
        if closed is not None:
            return closed
        now = ctx.clock.now()
        material = complement_material(
            app=app,
            reference=item.reference,
            request=request,
            today=self.today(ctx),
            due_days=self.cfg.complement_due_days,
            prepared_at=now,
        )
        if item.return_comment:
            material["return_comment"] = item.return_comment
        return NeedsReview(
            queue=COMPLEMENT_QUEUE,
            title=material["title"],
            summary=material["summary"],
            material=material,
            subject=app.applicant.personnummer,
        )

    # -- decisions -------------------------------------------------------------------------
    async def on_decision(self, ctx: RunContext, review: ReviewView) -> Carried | None:
        """Carry out a case worker's decision (see the module docstring); say what was done, in Swedish."""
        material = review.material or {}
        details = {"review_id": review.id, "application_id": material.get("application_id"), "state": review.state}
        if material.get("kind") == "application" and review.state in ("approved", "rejected", "returned"):
            await self._keep_warning_choices(ctx, review)
        if review.state == "returned":
            # The kernel puts the work item back with the comment; Ronney prepares it again.
            await asyncio.to_thread(ctx.record, "ronney.returned", subject=review.subject, details=details)
            return Carried("Ärendet är tillbaka hos Ronney, som bereder det på nytt med din kommentar.")
        if review.state not in ("approved", "rejected"):
            return None
        if material.get("kind") == RESTRICTED_KIND:
            return await carry_out_restricted(ctx, review)
        # Check, write and read-back under the application's lock in this e-service, shared by
        # every worker and run: two carrying out one decision never both write it.
        target = (
            f"eservice:{open_eservice(ctx, self.cfg).api.settings.base_url}:decision:{material.get('application_id')}"
        )
        async with ctx.exclusive(target):
            if material.get("kind") == "application":
                return await self._carry_out_application(ctx, review)
            if material.get("kind") == "complement":
                return await self._carry_out_complement(ctx, review)
        return None

    async def _keep_warning_choices(self, ctx: RunContext, review: ReviewView) -> None:
        """Keep what the case worker acknowledged or closed, for the application's later versions."""
        m = review.material
        keys = [str(f.get("key")) for f in m.get("flags") or [] if f.get("key")]
        choices = review.decision_data or {}
        if not keys or not any(str(k).startswith("warning.") for k in choices):
            return
        key = state_key(str(m["application_id"]))
        now = ctx.clock.now().isoformat(timespec="seconds")
        for _attempt in range(5):
            kept = await asyncio.to_thread(ctx.state_get, key)
            new_state, changed = apply_case_worker(
                kept[0] if kept else None, choices, by=self._decided_by(review), now=now, keys=keys
            )
            if not changed:
                return
            if await asyncio.to_thread(ctx.state_put, key, new_state, expected_version=kept[1] if kept else 0):
                await asyncio.to_thread(
                    ctx.record,
                    "ronney.warnings_updated",
                    subject=review.subject,
                    details={"review_id": review.id, "application_id": m["application_id"], "warnings": changed},
                )
                return
        raise ApplicationError("the warnings of the application kept changing while kept", code="warnings_conflict")

    def _decided_by(self, review: ReviewView) -> str:
        return (review.decided_by or "handläggare").removeprefix("user:") or "handläggare"

    async def _carry_out_application(self, ctx: RunContext, review: ReviewView) -> Carried:
        m = review.material
        app_id, month = str(m["application_id"]), str(m["month"])
        proposal = m.get("proposal") or {}
        reference = f"kollega:ronney:review:{review.id}"
        basis, appeal = legal_texts(month)
        changed_proposal = False
        if review.state == "approved":
            if proposal.get("amount") is None:
                raise BusinessError(
                    "Ansökan har inget föreslaget belopp, så Ronney kan inte skriva beslutet till e-tjänsten: "
                    "fatta beslutet direkt i e-tjänsten",
                    code="no_amount",
                )
            calc_lines = list((m.get("calculation") or {}).get("lines") or [])
            changed = apply_changes(calc_lines, review.decision_data)
            changed_proposal = changed.changed
            if changed.changed:
                reasoning = (
                    f"{decision_sentence(month, changed.amount, changed.decision)} Handläggaren har prövat "
                    f"beräkningen: {' '.join(changed.reasons)} Beslutet är fattat enligt {basis}. {appeal}"
                )
                decision, amount, lines = changed.decision, changed.amount, changed.lines
            else:
                reasoning = str(proposal.get("reasoning") or "")
                decision, amount = str(proposal["decision"]), int(proposal["amount"])
                lines = list(proposal.get("lines") or [])
            if review.decision_comment:
                reasoning += f" Handläggarens kommentar: {review.decision_comment}"
            if m.get("table_unverified"):
                # The kernel refused the approval without the box ticked; this records what was confirmed.
                await asyncio.to_thread(
                    ctx.record,
                    "ronney.unverified_table_confirmed",
                    subject=review.subject,
                    details={
                        "review_id": review.id,
                        "application_id": app_id,
                        "decided_by": self._decided_by(review),
                        "confirmed": bool((review.decision_data or {}).get("confirm_unverified_table")),
                    },
                )
            payload: dict[str, Any] = {
                "decision": decision,
                "amount": amount,
                "month": month,
                "decided_by": self._decided_by(review),
                "lines": lines,
                "reasoning": reasoning.strip(),
                "reference": reference,
            }
        else:
            why = review.decision_comment or "Inkomsterna täcker behovet."
            payload = {
                "decision": "rejected",
                "amount": 0,
                "month": month,
                "decided_by": self._decided_by(review),
                "lines": [],
                "reasoning": f"{decision_sentence(month, 0, 'rejected')} Skäl: {why} Beslutet är fattat enligt "
                f"{basis}. {appeal}",
                "reference": reference,
            }
        key = f"ronney-{ctx.tenant}-{app_id}-review-{review.id}"
        es = open_eservice(ctx, self.cfg)
        existing = await es.decision(app_id)  # check before writing: a crash may have left it written
        status = 0
        if existing is None:
            status, body = await es.write_decision(app_id, payload, key=key, subject=review.subject)
            if status == 409:
                existing = body.get("decision") if isinstance(body.get("decision"), dict) else {}
            elif status == 422:
                raise BusinessError(
                    f"E-tjänsten tog inte emot beslutet ({body.get('error', 'okänt fel')})", code="decision_refused"
                )
        if existing is not None and existing.get("idempotency_key") != key:
            await asyncio.to_thread(
                ctx.record,
                "ronney.decision_exists",
                subject=review.subject,
                details={"review_id": review.id, "application_id": app_id, "decision_id": existing.get("decision_id")},
            )
            if existing.get("decision") == payload["decision"] and existing.get("amount") == payload["amount"]:
                # the same decision is already there: nothing to do
                return Carried(
                    "Samma beslut fanns redan i e-tjänsten; inget nytt skrevs.",
                    str(existing.get("decision_id") or "") or None,
                )
            raise BusinessError(
                "Ansökan har redan ett annat beslut i e-tjänsten; det här beslutet skrevs inte", code="decision_exists"
            )
        readback = await es.decision(app_id)
        if (
            readback is None
            or readback.get("idempotency_key") != key
            or readback.get("amount") != payload["amount"]
            or readback.get("decision") != payload["decision"]
        ):
            raise ApplicationError(
                "the decision read back from the e-service does not match what was written", code="readback_mismatch"
            )
        await asyncio.to_thread(
            ctx.record,
            "ronney.decision_written",
            subject=review.subject,
            purpose=self.cfg.purpose,
            details={
                "review_id": review.id,
                "application_id": app_id,
                "decision_id": readback.get("decision_id"),
                "decision": payload["decision"],
                "amount": payload["amount"],
                "month": month,
                "decided_by": payload["decided_by"],
                # For the effects ledger: the case worker changed Ronney's proposal when deciding.
                "changed": changed_proposal,
                "already_written": existing is not None,
                "replayed": status == 200,
            },
        )
        what = {"rejected": "Avslag", "partially_approved": "Delvis beviljat"}.get(payload["decision"], "Beviljat")
        amount_text = f", {payload['amount']} kr" if payload["decision"] != "rejected" else ""
        return Carried(
            f"{what}{amount_text} för {m.get('month_text') or month}: beslutet är skrivet i e-tjänsten och kontrolläst.",
            str(readback.get("decision_id") or "") or None,
        )

    async def _carry_out_complement(self, ctx: RunContext, review: ReviewView) -> Carried:
        m = review.material
        app_id = str(m["application_id"])
        complement = m.get("complement") or {}
        details: dict[str, Any] = {
            "review_id": review.id,
            "application_id": app_id,
            "complement_id": complement.get("id"),
        }
        if review.state == "rejected":
            await asyncio.to_thread(
                ctx.record, "ronney.complement_not_requested", subject=review.subject, details=details
            )
            return Carried("Ingen ny begäran om komplettering skickades, enligt ditt beslut.")
        es = open_eservice(ctx, self.cfg)
        requests = await es.complements(app_id)
        original = next((r for r in requests if r.get("id") == complement.get("id")), None)
        if original is not None and original.get("arrived_at"):
            await asyncio.to_thread(ctx.record, "ronney.complement_not_needed", subject=review.subject, details=details)
            return Carried("Kompletteringen hade redan kommit in; ingen ny begäran skickades.")
        what = str((m.get("proposed_request") or {}).get("what") or complement.get("what"))
        by = self._decided_by(review)
        since = str(original.get("requested_at") or "") if original else ""
        again = next(
            (
                r
                for r in requests
                if r.get("id") != complement.get("id")
                and r.get("what") == what
                and r.get("requested_by") == by
                and str(r.get("requested_at") or "") > since
            ),
            None,
        )
        if again is None:  # check before writing: not requested again already
            due = self.today(ctx) + timedelta(days=self.cfg.complement_due_days)
            key = f"ronney-{ctx.tenant}-{app_id}-{complement.get('id')}-review-{review.id}"
            again = await es.request_complement(
                app_id, what=what, due=due, requested_by=by, key=key, subject=review.subject
            )
            if not any(r.get("id") == again.get("id") for r in await es.complements(app_id)):
                raise ApplicationError(
                    "the complement request is not in the e-service after writing it", code="readback_mismatch"
                )
        await asyncio.to_thread(
            ctx.record,
            "ronney.complement_requested",
            subject=review.subject,
            details={**details, "new_complement_id": again.get("id"), "due": again.get("due")},
        )
        return Carried(
            f"Begäran om komplettering är skickad via e-tjänsten, svar senast {again.get('due')}.",
            str(again.get("id") or "") or None,
        )

    # -- commands --------------------------------------------------------------------------
    def cli(self) -> typer.Typer:
        """``kollega ronney calc FILE [--json]`` and ``kollega ronney norms``."""
        from robots.ronney.cli import build_cli

        return build_cli()
