"""Impact: how much a test's failures hurt, for ranking the report.

    impact = sum over the run attempts in which the test failed of (1 - run_failure_share)

A failure in an otherwise green run (small `run_failure_share`) made that run red on its own and
weighs almost 1; a failure among many others weighs little. Run attempts that were infrastructure
failures, and failures flagged as infrastructure (a dead shard's signature), weigh 0; several failing
executions in one attempt (retries) count once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flakeguard.analysis.model import AnalysisConfig, Observation
from flakeguard.analysis.score import within_lookback


def impact(
    observations: Iterable[Observation], config: AnalysisConfig, *, now: datetime | None = None
) -> float:
    return impact_of_failures(
        [obs for obs in within_lookback(observations, config, now) if obs.is_failure], config
    )


def impact_of_failures(failures: Iterable[Observation], config: AnalysisConfig) -> float:
    """`impact` over the failing observations of the window (in the window's order)."""
    infra_share = config.infra_failure_share
    shares: dict[tuple[int, int], float] = {}
    for obs in failures:
        if obs.run_failure_share <= infra_share and not obs.infrastructure:
            shares[obs.attempt_key] = obs.run_failure_share
    return sum(1.0 - share for share in shares.values())
