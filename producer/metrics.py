"""The API's Prometheus metrics: its own requests, and the deployment read from Redis.

Per process: requests by method, route template and status, and their latency. Under
`claimpay api` (several uvicorn workers) every process writes them to the multi-process
directory (`claimpay.multiproc`) and a scrape merges them. At scrape time, from Redis:
the deployment's job and row counters (`claimpay.stats`, the same on every replica), queue
depths and the age of the oldest waiting chunk (`producer.backlog`).

Labels are bounded: route templates (never raw paths), methods, statuses, queue names,
outcomes. Never a job ID, a row value or a key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis import Redis
from redis.exceptions import RedisError

from claimpay import multiproc
from claimpay.keys import StoreKeys
from claimpay.stats import HistogramSnapshot, read_stats
from producer.backlog import read_backlog

log = logging.getLogger("claimpay.metrics")

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class ApiMetrics:
    """Request counters and latency of this API process."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.requests = Counter(
            "claimpay_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "claimpay_http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of the body), by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class StoreCollector(Collector):
    """Deployment metrics read from Redis when Prometheus scrapes."""

    def __init__(self, redis: Redis, keys: StoreKeys, queues: Sequence[str]) -> None:
        self._redis = redis
        self._keys = keys
        self._queues = list(queues)

    def describe(self) -> Iterable[Metric]:
        return []  # nothing to check up front: reading Redis waits for a scrape

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "claimpay_job_store_up", "1 when the job store (Redis) answered this scrape."
        )
        try:
            stats = read_stats(self._redis, self._keys.stats)
            backlog = read_backlog(self._redis, self._keys, self._queues)
        except RedisError as exc:
            log.warning("metrics: job store unavailable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _counter("claimpay_jobs_submitted", "Jobs accepted (202).", stats.jobs_submitted)
        yield _counter("claimpay_rows_submitted", "Rows in accepted jobs.", stats.rows_submitted)
        finished = CounterMetricFamily(
            "claimpay_jobs_finished", "Jobs finished, by final state.", labels=["state"]
        )
        for state, value in stats.jobs_finished.items():
            finished.add_metric([state], value)
        yield finished
        rows = CounterMetricFamily(
            "claimpay_rows", "Row results recorded, by outcome.", labels=["outcome"]
        )
        for outcome, value in stats.rows.items():
            rows.add_metric([outcome], value)
        yield rows
        yield _histogram("claimpay_job_rows", "Rows per accepted job.", stats.job_rows)
        yield _histogram(
            "claimpay_job_duration_seconds",
            "Seconds from a job's acceptance to its completion.",
            stats.job_duration_s,
        )
        yield from self._backlog_metrics(backlog.depth, backlog.oldest_wait_s, backlog.active_jobs)

    def _backlog_metrics(
        self, depth: dict[str, int], oldest: dict[str, float], active: int
    ) -> Iterable[Metric]:
        depth_family = GaugeMetricFamily(
            "claimpay_queue_depth", "Chunk messages waiting in a broker queue.", labels=["queue"]
        )
        age_family = GaugeMetricFamily(
            "claimpay_oldest_waiting_chunk_age_seconds",
            "Per queue, how long the oldest job with a chunk no worker holds has waited.",
            labels=["queue"],
        )
        for queue in self._queues:
            depth_family.add_metric([queue], depth.get(queue, 0))
            age_family.add_metric([queue], oldest.get(queue, 0.0))
        yield depth_family
        yield age_family
        yield GaugeMetricFamily("claimpay_jobs_active", "Jobs accepted, not finished.", active)


def _counter(name: str, documentation: str, value: float) -> Metric:
    return CounterMetricFamily(name, documentation, value=value)


def _histogram(name: str, documentation: str, snapshot: HistogramSnapshot) -> Metric:
    buckets = [(_le(bound), count) for bound, count in snapshot.buckets]
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=snapshot.sum)


@dataclass(frozen=True)
class Telemetry:
    """What `/metrics` exposes and what the request middleware counts into."""

    registry: CollectorRegistry
    api: ApiMetrics

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def build_telemetry(redis: Redis, keys: StoreKeys, queues: Sequence[str]) -> Telemetry:
    """Metrics for one app, reading the deployment from `redis` (a client that fails fast:
    a scrape must answer while Redis is down); merged across processes when in
    multi-process mode."""
    registry = CollectorRegistry()
    directory = multiproc.active_dir()
    if directory is not None:
        MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
        api = ApiMetrics(registry=None)  # written to files; the collector above reads them
    else:
        api = ApiMetrics(registry=registry)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    registry.register(StoreCollector(redis, keys, queues))
    return Telemetry(registry, api)


def _le(bound: float) -> str:
    """A bucket bound as Prometheus clients write it (`10.0`, `+Inf`)."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
