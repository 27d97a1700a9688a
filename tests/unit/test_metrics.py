"""Metric helpers: the sliding-minute throughput and the bounded error categories of job retries."""

from __future__ import annotations

import errno
from datetime import UTC, datetime

import httpx
import pytest

from flakeguard.github.errors import NotFound, RateLimited, TransientGitHubError
from flakeguard.jobs.error_types import ERROR_TYPES, error_type
from flakeguard.jobs.errors import PermanentError, TransientError
from flakeguard.jobs.payloads import PayloadError
from flakeguard.metrics import SlidingThroughput


def test_throughput_is_jobs_per_second_over_the_last_minute() -> None:
    meter = SlidingThroughput(window_s=60)
    for _ in range(3):
        meter.record("runs:ingest", now=100.2)
        meter.record("runs:ingest", now=130.7)
    meter.record("polling", now=130.0)
    assert meter.rate("runs:ingest", now=131) == pytest.approx(6 / 60)
    assert meter.rate("runs:ingest", now=161) == pytest.approx(3 / 60)  # the second 100 left the window
    assert meter.rate("runs:ingest", now=500) == 0
    assert meter.rate("never-seen") == 0
    samples = {s.labels["queue"]: s.value for family in meter.collect() for s in family.samples}
    assert set(samples) == {"runs:ingest", "polling"}


def test_throughput_memory_is_bounded_by_the_window() -> None:
    meter = SlidingThroughput(window_s=60)
    for second in range(10_000):
        meter.record("runs:ingest", now=float(second))
    assert len(meter._buckets["runs:ingest"]) <= 61


def caused_by(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("while ingesting") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (PayloadError("workflowRunId: bad"), "validation"),
        (RateLimited(datetime.now(UTC), "primary", "/x", 403), "rate_limit"),
        (TransientGitHubError(502, "bad gateway", "/x"), "network"),
        (httpx.ConnectError("refused"), "network"),
        (httpx.ReadTimeout("slow"), "network"),
        (ConnectionRefusedError(), "network"),
        (TimeoutError(), "network"),
        (caused_by(ConnectionResetError()), "network"),
        (NotFound(404, "gone", "/x"), "processing"),
        (TransientError("not completed yet"), "processing"),
        (PermanentError("no access"), "processing"),
        (ValueError("bug"), "processing"),
        (MemoryError(), "system"),
        (OSError(errno.ENOSPC, "No space left on device"), "system"),
    ],
)
def test_errors_fall_in_the_originals_categories(exc: BaseException, kind: str) -> None:
    assert error_type(exc) == kind
    assert kind in ERROR_TYPES
