"""Value types of the analysis core: what goes in (observations, configuration, previous state) and
what comes out (scores, verdicts with evidence, quarantine decisions). No I/O here.

Ordering convention used everywhere in `flakeguard.analysis`:

* **newest first** = by `started_at` descending, then `run_attempt` descending, then `ordinal`
  descending, then `run_id` descending (the last key only makes ties deterministic);
* **chronological** = the exact reverse.

So a re-run attempt sorts as newer than the attempt it re-runs, and an in-run retry (ordinal 1, 2, ...)
as newer than the first execution of the same test in the same attempt.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from operator import attrgetter
from typing import ClassVar, TypeAlias

from flakeguard.model import Outcome

JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None
JSONObject: TypeAlias = dict[str, JSONValue]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Observation:
    """One execution of one test, with the context of the run it happened in.

    * `outcome`: passed / failed / error / skipped (`failed` and `error` are both failures).
    * `started_at`: tz-aware start of the workflow run (attempt); orders the history.
    * `head_sha`: the commit the run tested ("same code" means the same `head_sha`).
    * `branch`: the run's head branch (None when unknown).
    * `run_id`, `run_attempt`: the GitHub workflow run and its attempt (1 = first, 2 = "re-run").
    * `ordinal`: 0 for the first execution of this test in that run attempt; in-run retries
      (repeated testcases, Surefire `flakyFailure`/`rerunFailure`) are 1, 2, ...
    * `run_failure_share`: share of the distinct tests of that run attempt that had a failing
      execution, in [0, 1]; above `AnalysisConfig.infra_failure_share` the attempt counts as an
      infrastructure failure.
    * `context`: where in the run it executed when a run tests several environments (matrix leg:
      OS, language version, ...; see `flakeguard.junit.context_from`); None when the run has one.
      Flaky means passing and failing *in the same context*.
    * `signature`: the failure's normalized fingerprint (`analysis.signatures.failure_signature`);
      None for passes and for failures without message or stack.
    * `infrastructure`: this failure's signature was an infrastructure failure of its run attempt
      (`analysis.signatures.infrastructure_signatures`: a dead shard or runner): no evidence.
    """

    outcome: Outcome
    started_at: datetime
    head_sha: str
    branch: str | None
    run_id: int
    run_attempt: int = 1
    ordinal: int = 0
    run_failure_share: float = 0.0
    context: str | None = None
    signature: str | None = None
    infrastructure: bool = False
    # Derived once at construction (plain slots, not properties: the analysis reads them several times
    # per observation). Not part of equality, hashing or repr.
    is_failure: bool = field(init=False, repr=False, compare=False)
    is_pass: bool = field(init=False, repr=False, compare=False)
    is_skipped: bool = field(init=False, repr=False, compare=False)
    attempt_key: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None or self.started_at.utcoffset() is None:
            raise ValueError("Observation.started_at must be timezone-aware (UTC)")
        if not 0.0 <= self.run_failure_share <= 1.0:
            raise ValueError(f"run_failure_share must be within [0, 1], got {self.run_failure_share}")
        outcome = self.outcome
        _set(self, "is_failure", outcome.is_failure)
        _set(self, "is_pass", outcome is Outcome.PASSED)
        _set(self, "is_skipped", outcome is Outcome.SKIPPED)
        _set(self, "attempt_key", (self.run_id, self.run_attempt))


_set = object.__setattr__  # how a frozen dataclass sets its own fields


def newest_first_key(obs: Observation) -> tuple[datetime, int, int, int]:
    """Sort key; use with `reverse=True` for newest first (see the module docstring)."""
    return (obs.started_at, obs.run_attempt, obs.ordinal, obs.run_id)


# The same key, computed in C (`sorted(..., key=NEWEST_FIRST_KEY)` is ~3x cheaper than with the function).
NEWEST_FIRST_KEY: Callable[[Observation], tuple[datetime, int, int, int]] = attrgetter(
    "started_at", "run_attempt", "ordinal", "run_id"
)


@dataclass(frozen=True, slots=True)
class AnalysisConfig:
    """Settings of the analysis. The job payload's `analysisConfig` maps onto these fields.

    Original score: `lookback_days`, `min_runs_threshold`, `flakiness_threshold`.
    Status: everything else (see docs/ALGORITHMS.md for each rule).
    """

    lookback_days: int = 30
    min_runs_threshold: int = 5
    flakiness_threshold: float = 0.3
    # A run attempt in which more than this share of tests failed is an infrastructure failure.
    infra_failure_share: float = 0.8
    # One failure signature in one run attempt failing at least this many tests and this share of the
    # attempt's tests is an infrastructure failure of those tests (`infrastructure_signatures`).
    infra_signature_min_tests: int = 10
    infra_signature_share: float = 0.15
    # Protected branches: exact names or fnmatch globs ("release/*"), plus `default_branch`.
    protected_branches: tuple[str, ...] = ("main", "master")
    default_branch: str | None = None
    # Statistical evidence on protected branches, with hysteresis.
    activation_failure_rate: float = 0.10
    resolution_failure_rate: float = 0.05
    min_statistical_sample: int = 10  # protected commits
    min_statistical_failures: int = 2  # failed protected commits (separate events)
    # Commit order (docs/ALGORITHMS.md, "failure episodes"): at least this many separate failure
    # episodes, with the failures better explained by a failure rate than by regressions that change
    # the test's state at a commit with probability `regression_change_rate` (on protected branches and
    # across branches) or `wip_change_rate` (within one feature branch: work in progress, for the
    # confidence only).
    commit_order_evidence: bool = True
    min_failure_episodes: int = 2
    regression_change_rate: float = 0.05
    wip_change_rate: float = 0.2
    # Same-sha evidence across *different runs* on unprotected branches is off by default: pull-request
    # runs test a merge with a moving base under the same head sha (see docs/ALGORITHMS.md).
    cross_run_evidence_on_unprotected: bool = False
    # Confidence model: P(p > flaky_epsilon | data) with a Beta(1, 1) prior.
    flaky_epsilon: float = 0.02
    # Broken: a failure streak is "too long to be chance" when a flaky test with the pre-streak
    # history would produce it with posterior-predictive probability below this.
    broken_alpha: float = 0.01
    # Quarantine.
    quarantine_confidence_floor: float = 0.9
    quarantine_quiet_days: int = 7

    def __post_init__(self) -> None:
        if not 0.0 <= self.resolution_failure_rate <= self.activation_failure_rate <= 1.0:
            raise ValueError("need 0 <= resolution_failure_rate <= activation_failure_rate <= 1")
        if self.lookback_days <= 0 or self.quarantine_quiet_days < 0:
            raise ValueError("lookback_days must be positive and quarantine_quiet_days non-negative")
        if not 0.0 < self.flaky_epsilon < 1.0:
            raise ValueError("flaky_epsilon must be within (0, 1)")
        if not (0.0 < self.regression_change_rate < 1.0 and 0.0 < self.wip_change_rate < 1.0):
            raise ValueError("regression_change_rate and wip_change_rate must be within (0, 1)")
        if self.min_failure_episodes < 2:
            raise ValueError(
                "min_failure_episodes must be at least 2 (one episode is what a regression does)"
            )

    @property
    def lookback(self) -> timedelta:
        return timedelta(days=self.lookback_days)

    @property
    def quiet_period(self) -> timedelta:
        return timedelta(days=self.quarantine_quiet_days)

    def is_protected(self, branch: str | None) -> bool:
        """True for the default branch and for branches matching `protected_branches` (fnmatch)."""
        if branch is None:
            return False
        return _is_protected(branch, self.default_branch, self.protected_branches)


@lru_cache(maxsize=4096)
def _is_protected(branch: str, default_branch: str | None, patterns: tuple[str, ...]) -> bool:
    """Pure, and asked for the same few branches over and over: fnmatch cost ~1 µs per pattern."""
    if default_branch is not None and branch == default_branch:
        return True
    return any(fnmatch.fnmatchcase(branch, pattern) for pattern in patterns)


# ----------------------------------------------------------------------------------------- score


@dataclass(frozen=True, slots=True)
class OriginalScore:
    """The original FlakeGuard score and its components (all in [0, 1])."""

    executions: int
    failures: int
    skipped: int
    failure_rate: float
    inconsistency: float
    recency: float
    branch_diversity: float
    score: float
    is_flaky: bool

    def to_json(self) -> JSONObject:
        return {
            "executions": self.executions,
            "failures": self.failures,
            "skipped": self.skipped,
            "failure_rate": self.failure_rate,
            "inconsistency": self.inconsistency,
            "recency": self.recency,
            "branch_diversity": self.branch_diversity,
            "score": self.score,
            "is_flaky": self.is_flaky,
        }


# -------------------------------------------------------------------------------------- verdicts


class Status(StrEnum):
    HEALTHY = "healthy"
    FLAKY = "flaky"
    BROKEN = "broken"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True, slots=True)
class PreviousState:
    """What the store kept from the previous verdict: needed for hysteresis only."""

    status: Status
    statistically_flaky: bool = False


class SameCodeScope(StrEnum):
    IN_RUN_RETRY = "in_run_retry"  # pass and failure within one run attempt (retries)
    RERUN_ATTEMPT = "rerun_attempt"  # pass and failure in different attempts of one run
    ACROSS_RUNS = "across_runs"  # pass and failure in different runs of the same sha


@dataclass(frozen=True, slots=True)
class SameCodeEvidence:
    """A pass and a failure on the same head sha (outside infrastructure failures)."""

    kind: ClassVar[str] = "same_sha_pass_and_fail"
    head_sha: str
    scope: SameCodeScope
    branch: str | None
    passes: int
    failures: int
    runs: tuple[int, ...]
    last_failure_at: datetime

    def to_json(self) -> JSONObject:
        return {
            "kind": self.kind,
            "head_sha": self.head_sha,
            "scope": self.scope.value,
            "branch": self.branch,
            "passes": self.passes,
            "failures": self.failures,
            "runs": list(self.runs),
            "last_failure_at": _iso(self.last_failure_at),
        }


@dataclass(frozen=True, slots=True)
class StatisticalEvidence:
    """Failure rate per commit on protected branches (a regression episode counts as one commit)."""

    kind: ClassVar[str] = "protected_branch_failure_rate"
    failures: int  # commits with a failure
    commits: int
    failure_rate: float
    threshold: float  # the threshold that applied: activation, or resolution when held
    held_by_hysteresis: bool

    def to_json(self) -> JSONObject:
        return {
            "kind": self.kind,
            "failures": self.failures,
            "commits": self.commits,
            "failure_rate": self.failure_rate,
            "threshold": self.threshold,
            "held_by_hysteresis": self.held_by_hysteresis,
        }


@dataclass(frozen=True, slots=True)
class BrokenEvidence:
    """The newest executions all fail, across several commits (or every execution of a test that never
    passed), with no pass since. `context`: the matrix leg it is broken in, when the test runs in
    several and passes in another."""

    kind: ClassVar[str] = "failing_since"
    since: datetime
    failing_executions: int
    commits: tuple[str, ...]
    last_pass_at: datetime | None
    chance_if_flaky: float  # posterior-predictive probability of such a streak from a flaky test
    context: str | None = None

    def to_json(self) -> JSONObject:
        data: JSONObject = {
            "kind": self.kind,
            "since": _iso(self.since),
            "failing_executions": self.failing_executions,
            "commits": list(self.commits),
            "last_pass_at": _iso(self.last_pass_at),
            "chance_if_flaky": self.chance_if_flaky,
        }
        if self.context is not None:
            data["context"] = self.context
        return data


@dataclass(frozen=True, slots=True)
class Episode:
    """One failure episode: failing commits joined in commit order (no passing commit between them,
    or on the same branch with no pass of that branch between them)."""

    commits: tuple[str, ...]  # in order of first test
    branches: tuple[str | None, ...]
    started_at: datetime  # first failing run
    recovered: bool  # a later commit passed (on the episode's branch, for a feature-branch episode)

    def to_json(self) -> JSONObject:
        return {
            "commits": list(self.commits),
            "branches": list(self.branches),
            "started_at": _iso(self.started_at),
            "recovered": self.recovered,
        }


@dataclass(frozen=True, slots=True)
class EpisodesEvidence:
    """Failures that come and go in commit order: several separate failure episodes, each followed by
    passes on later commits, better explained by a failure rate than by regressions and their fixes.

    `odds`: the Bayes factor "fails at random" : "broken and fixed at change points"
    (docs/ALGORITHMS.md), with feature-branch episodes weighed as work in progress."""

    kind: ClassVar[str] = "failure_episodes"
    episodes: int
    failing_commits: int
    commits: int
    odds: float
    newest: tuple[Episode, ...]  # the newest few, newest first

    def to_json(self) -> JSONObject:
        return {
            "kind": self.kind,
            "episodes": self.episodes,
            "failing_commits": self.failing_commits,
            "commits": self.commits,
            "odds": self.odds,
            "newest": [e.to_json() for e in self.newest],
        }


@dataclass(frozen=True, slots=True)
class ContextsEvidence:
    """The verdict per context (matrix leg) of a test that runs in several; the test's verdict is the
    worst of them (broken before flaky before healthy)."""

    kind: ClassVar[str] = "contexts"
    statuses: tuple[tuple[str | None, Status, str], ...]  # (context, status, reason)

    def to_json(self) -> JSONObject:
        return {
            "kind": self.kind,
            "contexts": [
                {"context": context, "status": status.value, "reason": reason}
                for context, status, reason in self.statuses
            ],
        }


@dataclass(frozen=True, slots=True)
class InfrastructureEvidence:
    """Executions ignored because their run attempt was an infrastructure failure."""

    kind: ClassVar[str] = "infrastructure_runs_excluded"
    runs: tuple[int, ...]
    executions: int
    failures: int

    def to_json(self) -> JSONObject:
        return {
            "kind": self.kind,
            "runs": list(self.runs),
            "executions": self.executions,
            "failures": self.failures,
        }


@dataclass(frozen=True, slots=True)
class RegressionEvidence:
    """Consistent failures over several commits that were later fixed: discounted as flakiness."""

    kind: ClassVar[str] = "regression_episodes"
    episodes: int
    failing_executions: int
    last_episode_end: datetime

    def to_json(self) -> JSONObject:
        return {
            "kind": self.kind,
            "episodes": self.episodes,
            "failing_executions": self.failing_executions,
            "last_episode_end": _iso(self.last_episode_end),
        }


Evidence: TypeAlias = (
    SameCodeEvidence
    | StatisticalEvidence
    | BrokenEvidence
    | InfrastructureEvidence
    | RegressionEvidence
    | EpisodesEvidence
    | ContextsEvidence
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The status of one test and why.

    * `confidence`: posterior probability of the status' claim (see docs/ALGORITHMS.md):
      flaky -> P(p > epsilon), healthy -> P(p <= epsilon), broken -> 1 - chance_if_flaky,
      insufficient_data -> 0.
    * `failure_probability`: posterior mean of p, the failure probability on working code.
    * `statistically_flaky`: persist it and pass it back in `PreviousState` (hysteresis).
    * `last_flaky_evidence_at`: start of the newest run that showed flaky behaviour (for quarantine).
    * `usable_executions`: executions that counted (not skipped, not in infrastructure failures).
    """

    status: Status
    confidence: float
    reason: str
    evidence: tuple[Evidence, ...] = ()
    statistically_flaky: bool = False
    last_flaky_evidence_at: datetime | None = None
    failure_probability: float = 0.0
    usable_executions: int = 0

    def evidence_json(self) -> list[JSONValue]:
        return [item.to_json() for item in self.evidence]

    def to_json(self) -> JSONObject:
        return {
            "status": self.status.value,
            "confidence": self.confidence,
            "reason": self.reason,
            "evidence": self.evidence_json(),
            "statistically_flaky": self.statistically_flaky,
            "last_flaky_evidence_at": _iso(self.last_flaky_evidence_at),
            "failure_probability": self.failure_probability,
            "usable_executions": self.usable_executions,
        }

    def to_previous(self) -> PreviousState:
        return PreviousState(status=self.status, statistically_flaky=self.statistically_flaky)


# ------------------------------------------------------------------------------------ quarantine


class QuarantineOrigin(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class QuarantineState:
    """The current quarantine entry of a test, as the store keeps it.

    `quarantined=False` with `origin=MANUAL` records a manual release: automatic quarantine then
    waits for flaky evidence newer than `since`, so it never fights a human decision.
    """

    quarantined: bool
    origin: QuarantineOrigin
    since: datetime
    reason: str
    actor: str | None = None


class QuarantineAction(StrEnum):
    QUARANTINE = "quarantine"
    RELEASE = "release"
    KEEP = "keep"  # stays quarantined
    NONE = "none"  # stays not quarantined


@dataclass(frozen=True, slots=True)
class QuarantineDecision:
    """What to do; QUARANTINE and RELEASE are changes the store records as history."""

    action: QuarantineAction
    quarantined: bool
    reason: str
    actor: str = "flakeguard"
    origin: QuarantineOrigin = QuarantineOrigin.AUTO

    @property
    def changed(self) -> bool:
        return self.action in (QuarantineAction.QUARANTINE, QuarantineAction.RELEASE)


# ------------------------------------------------------------------------------------ per test


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """The failures of one test that share a signature (`analysis.signatures.group_failures`)."""

    signature: str
    failures: int
    first_seen_at: datetime
    first_seen_sha: str
    last_seen_at: datetime
    last_seen_sha: str
    infrastructure: int  # of `failures`, how many were infrastructure failures

    def to_json(self) -> JSONObject:
        return {
            "signature": self.signature,
            "failures": self.failures,
            "first_seen_at": _iso(self.first_seen_at),
            "first_seen_sha": self.first_seen_sha,
            "last_seen_at": _iso(self.last_seen_at),
            "last_seen_sha": self.last_seen_sha,
            "infrastructure": self.infrastructure,
        }


@dataclass(frozen=True, slots=True)
class TestAnalysis:
    """Everything the report and the store need for one test, from `analyze_test`."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    executions: int
    failures: int
    failure_rate: float  # failures / (executions - skipped), as the original
    last_failure_at: datetime | None
    score: OriginalScore | None
    verdict: Verdict
    impact: float
    # The test's failures by signature, newest way of failing first (empty without signatures).
    failure_groups: tuple[FailureGroup, ...] = ()
