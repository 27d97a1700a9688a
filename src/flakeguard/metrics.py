"""Prometheus metrics. Names are part of the public interface: dashboards depend on them.

Label values are bounded sets (queue names, endpoint templates, status codes, reasons):
never a token, a key, a URL with a query string, or a free-form message.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

JOBS_PROCESSED = Counter(
    "flakeguard_worker_jobs_processed_total",
    "Jobs finished by the worker, by queue and outcome (completed, failed, retried, delayed).",
    ["queue", "outcome"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "flakeguard_worker_job_duration_seconds",
    "Time spent processing one job, by queue.",
    ["queue"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
JOBS_ACTIVE = Gauge(
    "flakeguard_worker_jobs_active",
    "Jobs being processed right now, by queue.",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "flakeguard_worker_queue_depth",
    "Jobs in each queue by state (waiting, active, delayed, prioritized, failed, completed).",
    ["queue", "state"],
    registry=REGISTRY,
)
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
