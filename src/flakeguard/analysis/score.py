"""The original FlakeGuard flakiness score, kept exactly (users of the original rely on it).

    score = min(1, 0.4 * failure_rate + 0.3 * inconsistency + 0.2 * recency + 0.1 * branch_diversity)

over a test's executions in the last `lookback_days`, newest first, and only when there are at least
`min_runs_threshold` executions. The formulas and a worked example are in docs/ALGORITHMS.md.

Skipped executions (the original counts them in n but they are neither a pass nor a failure):

* n (the number of executions) counts them, as in the original: for the minimum-runs gate, for the
  `(n - 1)` denominator of inconsistency, and for the recency window;
* failure rate divides by `n - skipped`, and is 0 when every execution was skipped;
* inconsistency compares consecutive *non-skipped* executions: a skip neither makes nor breaks a
  change, so `fail, skip, fail` has no change and `pass, skip, fail` has one;
* recency: a skipped execution is not a failure (weight counted in the denominator, nothing in the
  numerator);
* branch diversity: a skipped execution is still an execution on its branch.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from datetime import datetime

from flakeguard.analysis.model import NEWEST_FIRST_KEY, AnalysisConfig, Observation, OriginalScore

WEIGHT_FAILURE_RATE = 0.4
WEIGHT_INCONSISTENCY = 0.3
WEIGHT_RECENCY = 0.2
WEIGHT_BRANCH_DIVERSITY = 0.1
RECENCY_WINDOW = 10


def within_lookback(
    observations: Iterable[Observation], config: AnalysisConfig, now: datetime | None
) -> list[Observation]:
    """The observations started within `lookback_days` before `now` (all of them when `now` is None)."""
    if now is None:
        return list(observations)
    cutoff = now - config.lookback
    return [obs for obs in observations if obs.started_at >= cutoff]


def original_score(
    observations: Iterable[Observation], config: AnalysisConfig, *, now: datetime | None = None
) -> OriginalScore | None:
    """The original score, or None when there are fewer than `min_runs_threshold` executions.

    `observations` may come in any order. With `now`, observations older than `lookback_days` are
    dropped first; without it, the caller has already applied the window.
    """
    executions = sorted(within_lookback(observations, config, now), key=NEWEST_FIRST_KEY, reverse=True)
    return score_newest_first(executions, config)


def score_newest_first(executions: list[Observation], config: AnalysisConfig) -> OriginalScore | None:
    """`original_score` over executions already windowed and sorted newest first."""
    n = len(executions)
    if n == 0 or n < config.min_runs_threshold:
        return None

    failed = [obs.is_failure for obs in executions]
    failures = failed.count(True)
    skipped = [obs.is_skipped for obs in executions].count(True)
    decided = n - skipped
    failure_rate = failures / decided if decided > 0 else 0.0

    inconsistency = 0.0
    if n >= 3:
        outcomes = [obs.is_failure for obs in executions if not obs.is_skipped] if skipped else failed
        changes = sum(map(operator.ne, outcomes, outcomes[1:]))
        inconsistency = changes / (n - 1)

    window = min(RECENCY_WINDOW, n)
    weights = [(window - i) / window for i in range(window)]
    weighted_failures = sum(w for w, is_failure in zip(weights, failed, strict=False) if is_failure)
    recency = weighted_failures / sum(weights)

    branches = {obs.branch for obs in executions}
    branch_diversity = 0.0
    if len(branches) > 1:
        failing_branches = {obs.branch for obs in executions if obs.is_failure}
        branch_diversity = len(failing_branches) / len(branches)

    score = min(
        1.0,
        WEIGHT_FAILURE_RATE * failure_rate
        + WEIGHT_INCONSISTENCY * inconsistency
        + WEIGHT_RECENCY * recency
        + WEIGHT_BRANCH_DIVERSITY * branch_diversity,
    )
    return OriginalScore(
        executions=n,
        failures=failures,
        skipped=skipped,
        failure_rate=failure_rate,
        inconsistency=inconsistency,
        recency=recency,
        branch_diversity=branch_diversity,
        score=score,
        is_flaky=score >= config.flakiness_threshold,
    )
