"""The analysis core: pure functions over a test's observations, no I/O.

Entry points for the workers and the store:

* `analyze_test(observations, config, previous, now)` -> `TestAnalysis` (score + verdict + impact);
* `original_score`, `classify`, `decide_quarantine`, `impact` individually;
* `report_sort_key` to order a report by impact;
* `failure_signature`, `infrastructure_signatures`, `group_failures` (`analysis.signatures`): failure
  fingerprints, shard-wide infrastructure failures, a test's failures by signature.

See docs/ALGORITHMS.md for every formula and rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flakeguard.analysis.classify import classify, classify_window, is_infrastructure_failure
from flakeguard.analysis.impact import impact, impact_of_failures
from flakeguard.analysis.model import (
    NEWEST_FIRST_KEY,
    AnalysisConfig,
    BrokenEvidence,
    ContextsEvidence,
    Episode,
    EpisodesEvidence,
    Evidence,
    FailureGroup,
    InfrastructureEvidence,
    JSONObject,
    JSONValue,
    Observation,
    OriginalScore,
    PreviousState,
    QuarantineAction,
    QuarantineDecision,
    QuarantineOrigin,
    QuarantineState,
    RegressionEvidence,
    SameCodeEvidence,
    SameCodeScope,
    StatisticalEvidence,
    Status,
    TestAnalysis,
    Verdict,
    newest_first_key,
)
from flakeguard.analysis.quarantine import decide_quarantine
from flakeguard.analysis.score import original_score, score_newest_first, within_lookback
from flakeguard.analysis.signatures import (
    Fingerprint,
    count_failing_tests,
    describe_groups,
    failure_signature,
    fingerprint,
    group_failures,
    infrastructure_signatures,
)

__all__ = [
    "AnalysisConfig",
    "BrokenEvidence",
    "ContextsEvidence",
    "Episode",
    "EpisodesEvidence",
    "Evidence",
    "FailureGroup",
    "Fingerprint",
    "InfrastructureEvidence",
    "JSONObject",
    "JSONValue",
    "Observation",
    "OriginalScore",
    "PreviousState",
    "QuarantineAction",
    "QuarantineDecision",
    "QuarantineOrigin",
    "QuarantineState",
    "RegressionEvidence",
    "SameCodeEvidence",
    "SameCodeScope",
    "StatisticalEvidence",
    "Status",
    "TestAnalysis",
    "Verdict",
    "analyze_test",
    "classify",
    "count_failing_tests",
    "decide_quarantine",
    "describe_groups",
    "failure_signature",
    "fingerprint",
    "group_failures",
    "impact",
    "infrastructure_signatures",
    "is_infrastructure_failure",
    "newest_first_key",
    "original_score",
    "report_sort_key",
    "within_lookback",
]


def analyze_test(
    observations: Iterable[Observation],
    config: AnalysisConfig,
    previous: PreviousState | None,
    now: datetime,
) -> TestAnalysis:
    """Score, classify and weigh one test over its observations within `config.lookback_days` of `now`.

    The same as `original_score`, `classify` and `impact` over the window, computed from one window
    and one newest-first sort."""
    window = within_lookback(observations, config, now)
    failures = [obs for obs in window if obs.is_failure]
    skipped = [obs.is_skipped for obs in window].count(True)
    decided = len(window) - skipped
    return TestAnalysis(
        executions=len(window),
        failures=len(failures),
        failure_rate=len(failures) / decided if decided else 0.0,
        last_failure_at=max((obs.started_at for obs in failures), default=None),
        score=score_newest_first(sorted(window, key=NEWEST_FIRST_KEY, reverse=True), config),
        verdict=classify_window(window, config, previous),
        impact=impact_of_failures(failures, config),
        failure_groups=group_failures(failures) if any(o.signature for o in failures) else (),
    )


_STATUS_ORDER = {Status.BROKEN: 0, Status.FLAKY: 1, Status.HEALTHY: 2, Status.INSUFFICIENT_DATA: 3}


def report_sort_key(analysis: TestAnalysis) -> tuple[float, int, float, float]:
    """Highest impact first; then broken before flaky before the rest; then confidence and score."""
    score = analysis.score.score if analysis.score is not None else 0.0
    return (
        -analysis.impact,
        _STATUS_ORDER[analysis.verdict.status],
        -analysis.verdict.confidence,
        -score,
    )
