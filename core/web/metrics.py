"""``/metrics`` in the Prometheus text format: runs, items by status, queue depth, durations,
decisions waiting to be carried out (count and oldest age) and decisions that failed.

Read from the database at each scrape (any number of ``kollega serve`` processes give the
same answer). Labels are robot, tenant, status and queue names only: never personal data.

Not open by default: a scrape needs ``[web] metrics_token`` as a bearer token, or must
come from one of ``[web] metrics_networks`` (default this machine only, 127.0.0.1 and ::1).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from core.storage.db import Database
from core.storage.models import CallbackStatus, ReviewItem, ReviewState, Run, WorkItem
from core.storage.web_models import Alert
from core.web.settings import WebSettings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class KollegaCollector(Collector):
    """Collects Kollega's figures from the database."""

    def __init__(self, db: Database, now: datetime) -> None:
        self.db = db
        self.now = now

    def collect(self) -> Iterator[Metric]:
        """One pass over the tables."""
        runs = CounterMetricFamily(
            "kollega_runs", "Runs recorded, by robot, tenant and status.", labels=["robot", "tenant", "status"]
        )
        items = GaugeMetricFamily(
            "kollega_work_items", "Work items by robot, tenant and status.", labels=["robot", "tenant", "status"]
        )
        depth = GaugeMetricFamily(
            "kollega_review_queue_depth", "Open review items per queue.", labels=["tenant", "queue"]
        )
        oldest = GaugeMetricFamily(
            "kollega_review_oldest_age_seconds", "Age of the oldest open review item.", labels=["tenant", "queue"]
        )
        duration = GaugeMetricFamily(
            "kollega_run_last_duration_seconds",
            "Duration of the latest finished run per robot and tenant.",
            labels=["robot", "tenant"],
        )
        seconds = CounterMetricFamily(
            "kollega_run_duration_seconds", "Total time of finished runs.", labels=["robot", "tenant"]
        )
        alerts = GaugeMetricFamily("kollega_alerts_open", "Unacknowledged alerts.", labels=["tenant", "kind"])
        waiting = GaugeMetricFamily(
            "kollega_decisions_waiting",
            "Decisions made by a person that no robot has carried out yet.",
            labels=["robot", "tenant"],
        )
        waiting_oldest = GaugeMetricFamily(
            "kollega_decisions_waiting_oldest_age_seconds",
            "Time since the oldest decision not yet carried out was made.",
            labels=["robot", "tenant"],
        )
        failed = GaugeMetricFamily(
            "kollega_decisions_failed",
            "Decisions whose carrying out failed for good and waits for a person.",
            labels=["robot", "tenant"],
        )
        with self.db.session() as s:
            for robot, tenant, status, n in s.execute(
                select(Run.robot, Run.tenant, Run.status, func.count()).group_by(Run.robot, Run.tenant, Run.status)
            ):
                runs.add_metric([robot, tenant, status.value], n)
            for robot, tenant, status, n in s.execute(
                select(WorkItem.robot, WorkItem.tenant, WorkItem.status, func.count()).group_by(
                    WorkItem.robot, WorkItem.tenant, WorkItem.status
                )
            ):
                items.add_metric([robot, tenant, status.value], n)
            for tenant, queue, n, first in s.execute(
                select(ReviewItem.tenant, ReviewItem.queue, func.count(), func.min(ReviewItem.created_at))
                .where(ReviewItem.state == ReviewState.open)
                .group_by(ReviewItem.tenant, ReviewItem.queue)
            ):
                depth.add_metric([tenant, queue], n)
                if first is not None:
                    oldest.add_metric([tenant, queue], max(0.0, (self.now - first).total_seconds()))
            finished = s.execute(
                select(Run.robot, Run.tenant, Run.started_at, Run.finished_at)
                .where(Run.started_at.is_not(None), Run.finished_at.is_not(None))
                .order_by(Run.id)
            ).all()
            for robot, tenant, n, first in s.execute(
                select(ReviewItem.robot, ReviewItem.tenant, func.count(), func.min(ReviewItem.decided_at))
                .where(ReviewItem.callback_status == CallbackStatus.pending)
                .group_by(ReviewItem.robot, ReviewItem.tenant)
            ):
                waiting.add_metric([robot, tenant], n)
                if first is not None:
                    waiting_oldest.add_metric([robot, tenant], max(0.0, (self.now - first).total_seconds()))
            for robot, tenant, n in s.execute(
                select(ReviewItem.robot, ReviewItem.tenant, func.count())
                .where(ReviewItem.callback_status == CallbackStatus.failed, ReviewItem.state != ReviewState.open)
                .group_by(ReviewItem.robot, ReviewItem.tenant)
            ):
                failed.add_metric([robot, tenant], n)
            for tenant, kind, n in s.execute(
                select(Alert.tenant, Alert.kind, func.count())
                .where(Alert.acknowledged_at.is_(None))
                .group_by(Alert.tenant, Alert.kind)
            ):
                alerts.add_metric([tenant, kind], n)
        latest: dict[tuple[str, str], float] = {}
        total: dict[tuple[str, str], float] = {}
        for robot, tenant, started, ended in finished:
            took = (ended - started).total_seconds()
            latest[(robot, tenant)] = took
            total[(robot, tenant)] = total.get((robot, tenant), 0.0) + took
        for key, value in latest.items():
            duration.add_metric(list(key), value)
        for key, value in total.items():
            seconds.add_metric(list(key), value)
        yield from (runs, items, depth, oldest, duration, seconds, alerts, waiting, waiting_oldest, failed)


def exposition(db: Database, now: datetime) -> bytes:
    """The metrics page."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(KollegaCollector(db, now))
    return generate_latest(registry)


def metrics_allowed(web: WebSettings, authorization: str, client: Any) -> bool:
    """Whether a scrape may read the figures: the right bearer token, or a client in an allowed network."""
    if web.metrics_token is not None:
        expected = f"Bearer {web.metrics_token.resolve()}".encode()
        if hmac.compare_digest(authorization.encode(), expected):
            return True
    host = getattr(client, "host", None)
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in web.metrics_networks)
