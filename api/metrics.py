"""Prometheus metrics: HTTP requests by route template, transaction outcomes, ledger size, and
the group commit's batches (items per batch, time waiting for the ledger lock and holding it).

`install_metrics(app)` gives each app its own CollectorRegistry (tests build many apps; the
process-global default registry would refuse the second set of metrics), on `app.state.metrics`,
and serves it at `GET /metrics` in the text exposition format (left out of the OpenAPI schema).

Labels are bounded: `route` is the route *template* (`/v1/transactions/{tx_id}`), never the raw
path, which would make one series per identifier and put personal data in the metrics; requests
that match no route are `route="unmatched"`. Transaction labels are capped at
MAX_TRANSACTION_SERIES combinations.

Each worker process exports its own metrics (Prometheus sums them by instance); aggregating
across workers with prometheus_client's multiprocess mode is future work. /metrics names no
personal data but should still be reachable only from the monitoring network.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "unmatched"
# Beyond this many (type, outcome) pairs new pairs are counted as OTHER_LABEL: a caller passing
# unbounded values must not grow the registry without limit.
MAX_TRANSACTION_SERIES = 1_000
OTHER_LABEL = "other"
# Request durations: API calls are milliseconds; a slow database shows up in the upper buckets.
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Items per group-commit batch (api/transactions/commit.MAX_GROUP_COMMIT is 256).
BATCH_ITEM_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# Ledger lock waits and holds: milliseconds when healthy; every worker waits while one holds it.
LOCK_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Status recorded when the application raised without answering (the server answers 500).
UNANSWERED_STATUS = 500

logger = logging.getLogger("pishkhan.metrics")


def route_template(scope: Scope) -> str:
    """The matched route's path template, or "unmatched"; never the raw request path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class _LedgerSizeCollector(Collector):
    """`pishkhan_ledger_tree_size`, read at scrape time; no sample when reading fails."""

    name = "pishkhan_ledger_tree_size"
    documentation = "Number of entries in the ledger (its tree size)"

    def __init__(self) -> None:
        self.reader: Callable[[], int] | None = None

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation)
        reader = self.reader
        if reader is not None:
            try:
                family.add_metric([], float(reader()))
            except Exception as exc:
                # A failed read must not fail the whole scrape. Type only: the message of a
                # database error may name hosts and users.
                logger.warning("ledger size unavailable (%s)", type(exc).__name__)
        return [family]


class Metrics:
    """The service's metrics, registered in one registry (one per app)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.http_requests = Counter(
            "pishkhan_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "pishkhan_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=DURATION_BUCKETS_S,
            registry=self.registry,
        )
        self.transactions = Counter(
            "pishkhan_transactions",
            "Transactions submitted, by transaction type and outcome",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.batch_items = Histogram(
            "pishkhan_batch_items",
            "Transactions written per group-commit batch (one ledger append each)",
            buckets=BATCH_ITEM_BUCKETS,
            registry=self.registry,
        )
        self.lock_wait = Histogram(
            "pishkhan_ledger_lock_wait_seconds",
            "Time a batch waited for the ledger lock (held by another worker's batch)",
            buckets=LOCK_BUCKETS_S,
            registry=self.registry,
        )
        self.lock_held = Histogram(
            "pishkhan_ledger_lock_held_seconds",
            "Time a batch held the ledger lock, to its commit (every other worker waits)",
            buckets=LOCK_BUCKETS_S,
            registry=self.registry,
        )
        self._ledger_size = _LedgerSizeCollector()
        self.registry.register(self._ledger_size)
        self._series: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def transaction_outcome(self, type_name: str, outcome: str) -> None:
        """Count one transaction of `type_name` that ended in `outcome` (e.g. recorded)."""
        key = (type_name, outcome)
        with self._lock:
            if key not in self._series:
                if len(self._series) >= MAX_TRANSACTION_SERIES:
                    key = (OTHER_LABEL, OTHER_LABEL)
                self._series.add(key)
        self.transactions.labels(type=key[0], outcome=key[1]).inc()

    def batch_written(self, *, items: int, lock_wait_s: float, lock_held_s: float) -> None:
        """Record one group-commit batch: its size, and its wait for and hold of the lock."""
        self.batch_items.observe(items)
        self.lock_wait.observe(lock_wait_s)
        self.lock_held.observe(lock_held_s)

    def set_ledger_size_reader(self, reader: Callable[[], int] | None) -> None:
        """Read the gauge `pishkhan_ledger_tree_size` from `reader` at each scrape.

        `reader` must be cheap (it runs on every scrape); whatever it raises is logged by type
        and the gauge then has no sample. None removes the reader.
        """
        self._ledger_size.reader = reader

    def observe_request(self, *, method: str, route: str, status: int, duration_s: float) -> None:
        """Record one answered HTTP request."""
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_duration.labels(method=method, route=route).observe(duration_s)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


# Methods outside this set are counted as OTHER_LABEL: the method is client-chosen text.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Count and time every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = UNANSWERED_STATUS
        started_s = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            method = str(scope.get("method", ""))
            self.metrics.observe_request(
                method=method if method in _KNOWN_METHODS else OTHER_LABEL,
                route=route_template(scope),
                status=status,
                duration_s=time.perf_counter() - started_s,
            )


def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: this worker's metrics in the text exposition format."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def install_metrics(app: FastAPI) -> Metrics:
    """Give `app` its own metrics (app.state.metrics), the recording middleware and /metrics."""
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_api_route(METRICS_PATH, metrics_endpoint, methods=["GET"], include_in_schema=False)
    return metrics
