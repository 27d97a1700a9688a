"""Prometheus metrics. Names are part of the public interface: dashboards and alerts depend on them.

The sixteen names of the original Node worker are kept exactly (docs/OPERATIONS.md, "Coming from
the Node worker"); FlakeGuard's own additions sit beside them under the same prefix.

Label values are bounded sets (queue names, endpoint templates, status codes, reasons, error
categories): never a token, a key, a URL with a query string, a repository or a free-form message.

Queue, process and health gauges are set by `flakeguard.server.sampler` in the background, so a
scrape renders the last sample and never waits on Redis or PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
PREFIX = "flakeguard_worker_"

# ------------------------------------------------------------------------ job processing

JOBS_PROCESSED = Counter(
    "flakeguard_worker_jobs_processed_total",
    "Jobs processed, by queue and status: completed, failed (for good: now a dead letter), "
    "retried (an attempt failed, another follows), delayed (held until GitHub's rate-limit reset).",
    ["queue", "status"],
    registry=REGISTRY,
)
JOB_PROCESSING_DURATION = Histogram(
    "flakeguard_worker_job_processing_duration_seconds",
    "Time spent processing one job attempt, by queue.",
    ["queue"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
JOBS_IN_PROGRESS = Gauge(
    "flakeguard_worker_jobs_in_progress",
    "Jobs being processed right now by this process, by queue.",
    ["queue"],
    registry=REGISTRY,
)
JOB_RETRIES = Counter(
    "flakeguard_worker_job_retries_total",
    "Job attempts that failed and will be tried again, by queue and error type "
    "(network, rate_limit, processing, system).",
    ["queue", "error_type"],
    registry=REGISTRY,
)

# ------------------------------------------------------------------------ queue health

QUEUE_SIZE = Gauge(
    "flakeguard_worker_queue_size",
    "Jobs in each queue by status (waiting, active, delayed, prioritized, paused, completed, failed), "
    "from the background sampler.",
    ["queue", "status"],
    registry=REGISTRY,
)
DLQ_SIZE = Gauge(
    "flakeguard_worker_dlq_size",
    "Dead letters: jobs in each queue's failed set (retry them with POST /queues/{queue}/retry-failed).",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_SAMPLED_AT = Gauge(
    "flakeguard_worker_queue_sampled_at_seconds",
    "Unix time of the last successful queue sample (stale when Redis cannot be reached).",
    registry=REGISTRY,
)


class SlidingThroughput(Collector):
    """`flakeguard_worker_queue_throughput{queue}`: jobs finished per second over the last minute.

    Finishes are counted in one-second buckets, so memory stays at most 61 counters per queue at any
    rate; the gauge is computed when scraped.
    """

    name = "flakeguard_worker_queue_throughput"

    def __init__(self, window_s: int = 60) -> None:
        self.window_s = window_s
        self._clock = time.monotonic
        self._buckets: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()

    def record(self, queue: str, now: float | None = None) -> None:
        second = int(self._clock() if now is None else now)
        with self._lock:
            buckets = self._buckets.setdefault(queue, {})
            buckets[second] = buckets.get(second, 0) + 1
            if len(buckets) > self.window_s + 1:
                self._prune(buckets, second)

    def _prune(self, buckets: dict[int, int], second: int) -> None:
        for old in [s for s in buckets if s <= second - self.window_s]:
            del buckets[old]

    def rate(self, queue: str, now: float | None = None) -> float:
        second = int(self._clock() if now is None else now)
        with self._lock:
            buckets = self._buckets.get(queue, {})
            self._prune(buckets, second)
            return sum(buckets.values()) / self.window_s

    def queues(self) -> list[str]:
        with self._lock:
            return list(self._buckets)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            self.name,
            "Jobs finished per second by this process over a sliding minute, by queue.",
            labels=["queue"],
        )
        for queue in self.queues():
            family.add_metric([queue], self.rate(queue))
        yield family


QUEUE_THROUGHPUT = SlidingThroughput()
REGISTRY.register(QUEUE_THROUGHPUT)

# ------------------------------------------------------------------------ the process

MEMORY_USAGE = Gauge(
    "flakeguard_worker_memory_usage_bytes",
    "Memory of this process by type: rss (resident), vms (virtual), heap_used (anonymous resident "
    "memory: the malloc heap and Python's object arenas, RssAnon on Linux).",
    ["type"],
    registry=REGISTRY,
)
CPU_USAGE = Gauge(
    "flakeguard_worker_cpu_usage_percent",
    "CPU used by this process between the last two samples, in percent of one core.",
    registry=REGISTRY,
)
WORKER_HEALTH = Gauge(
    "flakeguard_worker_health",
    "Health of this process as /health reports it: 1 healthy, 0.5 degraded, 0 unhealthy.",
    registry=REGISTRY,
)

# ------------------------------------------------------------------------ GitHub

GITHUB_API_CALLS = Counter(
    "flakeguard_worker_github_api_calls_total",
    "GitHub REST API calls, by endpoint template and HTTP status.",
    ["endpoint", "status"],
    registry=REGISTRY,
)
GITHUB_API_DURATION = Histogram(
    "flakeguard_worker_github_api_duration_seconds",
    "GitHub REST API call latency, by endpoint template.",
    ["endpoint"],
    registry=REGISTRY,
)
GITHUB_RATE_LIMIT_REMAINING = Gauge(
    "flakeguard_worker_github_rate_limit_remaining",
    "x-ratelimit-remaining from the latest GitHub response, by rate-limit resource.",
    ["resource"],
    registry=REGISTRY,
)

# ------------------------------------------------------------------------ flakiness analysis

TESTS_ANALYZED = Counter(
    "flakeguard_worker_tests_analyzed_total",
    "Tests scored (by runs:analyze and tests:recompute).",
    registry=REGISTRY,
)
FLAKY_TESTS_DETECTED = Counter(
    "flakeguard_worker_flaky_tests_detected_total",
    "Scored tests whose status came out flaky.",
    registry=REGISTRY,
)
FLAKINESS_SCORE = Histogram(
    "flakeguard_worker_flakiness_score",
    "Distribution of the original flakiness score (0.4 failure rate + 0.3 inconsistency + 0.2 recency "
    "+ 0.1 branch diversity) of the scored tests that have one.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    registry=REGISTRY,
)

# ------------------------------------------------------------------------ FlakeGuard's own

JUNIT_REFUSED = Counter(
    "flakeguard_worker_junit_refused_total",
    "JUnit files or artifacts refused as malformed or hostile, by reason.",
    ["reason"],
    registry=REGISTRY,
)
TEST_EXECUTIONS_STORED = Counter(
    "flakeguard_worker_test_executions_stored_total",
    "Test executions written to the database.",
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "flakeguard_webhook_deliveries_total",
    "GitHub webhook deliveries by event and outcome (enqueued, tracked, ignored, duplicate, "
    "unauthorized, malformed, too_large, disabled, error); unverified deliveries count as 'unverified'.",
    ["event", "outcome"],
    registry=REGISTRY,
)
DEPENDENCY_OUTAGES = Counter(
    "flakeguard_dependency_outages_total",
    "Outages seen by this process, by dependency (database, redis, github): counted when one starts.",
    ["dependency"],
    registry=REGISTRY,
)
DEPENDENCY_UP = Gauge(
    "flakeguard_dependency_up",
    "1 while this process can reach the dependency (database, redis, github), 0 during an outage.",
    ["dependency"],
    registry=REGISTRY,
)
JOBS_HANDED_BACK = Counter(
    "flakeguard_worker_jobs_handed_back_total",
    "Jobs put back on their queue without spending an attempt, by queue and reason "
    "(outage: a dependency was unreachable; shutdown: the grace period ran out).",
    ["queue", "reason"],
    registry=REGISTRY,
)

#: The original worker's metric names, all of which FlakeGuard serves (tests check this list).
ORIGINAL_METRICS = (
    "flakeguard_worker_jobs_processed_total",
    "flakeguard_worker_job_processing_duration_seconds",
    "flakeguard_worker_jobs_in_progress",
    "flakeguard_worker_job_retries_total",
    "flakeguard_worker_queue_size",
    "flakeguard_worker_queue_throughput",
    "flakeguard_worker_dlq_size",
    "flakeguard_worker_memory_usage_bytes",
    "flakeguard_worker_cpu_usage_percent",
    "flakeguard_worker_health",
    "flakeguard_worker_github_api_calls_total",
    "flakeguard_worker_github_api_duration_seconds",
    "flakeguard_worker_github_rate_limit_remaining",
    "flakeguard_worker_tests_analyzed_total",
    "flakeguard_worker_flaky_tests_detected_total",
    "flakeguard_worker_flakiness_score",
)


def initialize_queue_labels(queues: Iterable[str]) -> None:
    """Series that exist from the start (at 0), so that rates and alerts see a first value."""
    for queue in queues:
        JOBS_IN_PROGRESS.labels(queue)
        for status in ("completed", "failed"):
            JOBS_PROCESSED.labels(queue, status)
        DLQ_SIZE.labels(queue)


def tests_scored(tests: int, flaky: int, scores: Iterable[float]) -> None:
    TESTS_ANALYZED.inc(tests)
    FLAKY_TESTS_DETECTED.inc(flaky)
    for score in scores:
        FLAKINESS_SCORE.observe(score)


def job_finished(queue: str, status: str, seconds: float) -> None:
    """One job attempt's end: the processed counter, the duration histogram, the throughput window."""
    JOBS_PROCESSED.labels(queue, status).inc()
    JOB_PROCESSING_DURATION.labels(queue).observe(seconds)
    if status in ("completed", "failed"):
        QUEUE_THROUGHPUT.record(queue)
