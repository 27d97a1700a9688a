"""The status of a test: healthy, flaky, broken or insufficient_data, with its evidence.

The rules, in order (details and formulas in docs/ALGORITHMS.md):

0. Only observations within `lookback_days` count. Run attempts whose `run_failure_share` exceeds
   `infra_failure_share` are infrastructure failures: their executions give no evidence at all.
   Skipped executions give no evidence either. What remains are the *usable* executions.
1. **broken** — on the reference line (protected branches when the test ran there, else all
   branches), the newest usable executions are failures, on at least two distinct commits that never
   passed, and either the test never passed on that line in the window or a flaky test with the
   pre-streak history would produce such a streak with probability below `broken_alpha`. Broken
   wins over flaky.
2. **flaky (same code)** — a pass and a failure on the same head sha: within one run attempt
   (retries), across attempts of one run (re-runs), or across runs (on protected branches; on other
   branches only with `cross_run_evidence_on_unprotected`).
3. **flaky (statistics)** — on protected branches, per commit and with a regression episode counted
   as one failed commit, the failure rate is >= `activation_failure_rate` over >=
   `min_statistical_sample` commits with >= `min_statistical_failures` failed ones; once flaky by
   statistics it stays so until the rate drops below `resolution_failure_rate` (hysteresis).
4. **insufficient_data** — none of the above and fewer than `min_runs_threshold` usable executions.
5. **healthy** — otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from flakeguard.analysis.bayes import beta_mean, beta_sf, posterior_predictive_streak
from flakeguard.analysis.model import (
    AnalysisConfig,
    BrokenEvidence,
    Evidence,
    InfrastructureEvidence,
    Observation,
    PreviousState,
    RegressionEvidence,
    SameCodeEvidence,
    SameCodeScope,
    StatisticalEvidence,
    Status,
    Verdict,
    newest_first_key,
)
from flakeguard.analysis.score import within_lookback

MAX_SAME_CODE_ITEMS = 10  # evidence stays small: the newest items, the reason gives the total


def is_infrastructure_failure(obs: Observation, config: AnalysisConfig) -> bool:
    return obs.run_failure_share > config.infra_failure_share


def _has_pass_and_failure(group: Iterable[Observation]) -> bool:
    passed = failed = False
    for obs in group:
        passed = passed or obs.is_pass
        failed = failed or obs.is_failure
    return passed and failed


def _same_code_scope(group: Sequence[Observation], config: AnalysisConfig) -> SameCodeScope | None:
    """The most specific way in which one sha both passed and failed, or None."""
    by_attempt: dict[tuple[int, int], list[Observation]] = defaultdict(list)
    by_run: dict[int, list[Observation]] = defaultdict(list)
    for obs in group:
        by_attempt[obs.attempt_key].append(obs)
        by_run[obs.run_id].append(obs)
    if any(_has_pass_and_failure(g) for g in by_attempt.values()):
        return SameCodeScope.IN_RUN_RETRY
    if any(_has_pass_and_failure(g) for g in by_run.values()):
        return SameCodeScope.RERUN_ATTEMPT
    if _has_pass_and_failure(obs for obs in group if config.is_protected(obs.branch)):
        return SameCodeScope.ACROSS_RUNS
    if config.cross_run_evidence_on_unprotected and _has_pass_and_failure(group):
        return SameCodeScope.ACROSS_RUNS
    return None


@dataclass(slots=True)
class _History:
    """Derived facts about one test's usable executions, shared by the rules."""

    usable: list[Observation]  # chronological
    infra: list[Observation]
    passed_shas: set[str]
    same_code: list[SameCodeEvidence]  # newest first
    confirmed_shas: set[str]
    regression_episodes: list[list[Observation]] = field(default_factory=list)


def _build_history(observations: Iterable[Observation], config: AnalysisConfig, now: datetime) -> _History:
    window = within_lookback(observations, config, now)
    infra = [obs for obs in window if is_infrastructure_failure(obs, config)]
    usable = sorted(
        (obs for obs in window if not obs.is_skipped and not is_infrastructure_failure(obs, config)),
        key=newest_first_key,
    )
    by_sha: dict[str, list[Observation]] = defaultdict(list)
    for obs in usable:
        by_sha[obs.head_sha].append(obs)
    passed_shas = {sha for sha, group in by_sha.items() if any(o.is_pass for o in group)}

    same_code: list[SameCodeEvidence] = []
    for sha, group in by_sha.items():
        scope = _same_code_scope(group, config)
        if scope is None:
            continue
        failures = [o for o in group if o.is_failure]
        same_code.append(
            SameCodeEvidence(
                head_sha=sha,
                scope=scope,
                branch=group[-1].branch,
                passes=sum(1 for o in group if o.is_pass),
                failures=len(failures),
                runs=tuple(sorted({o.run_id for o in group})),
                last_failure_at=max(o.started_at for o in failures),
            )
        )
    same_code.sort(key=lambda e: (e.last_failure_at, e.head_sha), reverse=True)
    history = _History(
        usable=usable,
        infra=infra,
        passed_shas=passed_shas,
        same_code=same_code,
        confirmed_shas={e.head_sha for e in same_code},
    )
    _find_regression_episodes(history)
    return history


def _find_regression_episodes(history: _History) -> None:
    """Per branch, chronologically: maximal streaks of failures on commits that never passed,
    spanning at least two distinct commits. That is what a regression and its fix look like."""
    by_branch: dict[str | None, list[Observation]] = defaultdict(list)
    for obs in history.usable:
        by_branch[obs.branch].append(obs)
    for line in by_branch.values():
        streaks: list[list[Observation]] = [[]]
        for obs in line:
            if obs.is_failure and obs.head_sha not in history.passed_shas:
                streaks[-1].append(obs)
            elif streaks[-1]:
                streaks.append([])
        for streak in streaks:
            if len({o.head_sha for o in streak}) >= 2:
                history.regression_episodes.append(streak)


@dataclass(frozen=True, slots=True)
class _BrokenFinding:
    streak: list[Observation]  # newest first
    last_pass_at: datetime | None
    chance_if_flaky: float


def _find_broken(history: _History, config: AnalysisConfig) -> _BrokenFinding | None:
    protected = [o for o in history.usable if config.is_protected(o.branch)]
    line = protected or history.usable
    newest_first = line[::-1]
    streak: list[Observation] = []
    for obs in newest_first:
        if not obs.is_failure or obs.head_sha in history.passed_shas:
            break
        streak.append(obs)
    if len({o.head_sha for o in streak}) < 2:
        return None
    before = newest_first[len(streak) :]
    passes_before = sum(1 for o in before if o.is_pass)
    failures_before = sum(1 for o in before if o.is_failure)
    chance = posterior_predictive_streak(failures_before, passes_before, len(streak))
    if passes_before > 0 and chance >= config.broken_alpha:
        return None
    last_pass_at = next((o.started_at for o in before if o.is_pass), None)
    return _BrokenFinding(streak=streak, last_pass_at=last_pass_at, chance_if_flaky=chance)


@dataclass(frozen=True, slots=True)
class _Statistics:
    commits: int  # protected commits tested (a regression episode counts as one)
    failures: int  # of those, commits with a failure
    last_failure_at: datetime | None

    @property
    def rate(self) -> float:
        return self.failures / self.commits if self.commits else 0.0


def _episode_index(history: _History) -> dict[int, int]:
    return {id(o): i for i, ep in enumerate(history.regression_episodes) for o in ep}


def _protected_statistics(history: _History, config: AnalysisConfig) -> _Statistics:
    """Failure rate on protected branches, per commit: a commit failed when any of its usable
    executions failed; every commit of a regression episode together counts as one failed commit.

    Commits, not executions, are the unit: re-runs and in-run retries of a genuinely broken commit fail
    too, so counting them would let one bad commit look like a high failure rate.
    """
    episode_of = _episode_index(history)
    commits: dict[str, list[Observation]] = {}
    for obs in history.usable:  # chronological, so dict order is the order of first test
        if config.is_protected(obs.branch):
            commits.setdefault(obs.head_sha, []).append(obs)
    count = failures = 0
    episodes_seen: set[int] = set()
    last_failure_at: datetime | None = None
    for group in commits.values():
        failing = [o for o in group if o.is_failure]
        episode = next((episode_of[id(o)] for o in failing if id(o) in episode_of), None)
        if episode is not None:
            if episode in episodes_seen:
                continue
            episodes_seen.add(episode)
        count += 1
        if failing:
            failures += 1
            if episode is None:
                last_failure_at = max(o.started_at for o in failing)
    return _Statistics(commits=count, failures=failures, last_failure_at=last_failure_at)


def _working_code_counts(history: _History, config: AnalysisConfig) -> tuple[int, int]:
    """(failures, passes) on working code, the data of the confidence model.

    Every usable pass counts. A failure counts when its commit also passed (confirmed). On protected
    branches a commit that only failed counts as one failure (its re-runs and retries are not
    independent trials: a broken commit fails them all), and a regression episode as one in all.
    Unconfirmed failures on other branches are left out: they may be work in progress.
    """
    episode_of = _episode_index(history)
    passes = sum(1 for o in history.usable if o.is_pass)
    failures = 0
    seen: set[object] = set()
    for obs in history.usable:
        if not obs.is_failure:
            continue
        if obs.head_sha in history.confirmed_shas:
            failures += 1
        elif config.is_protected(obs.branch):
            episode = episode_of.get(id(obs))
            unit: object = ("episode", episode) if episode is not None else ("commit", obs.head_sha)
            if unit not in seen:
                seen.add(unit)
                failures += 1
    return failures, passes


def _short(sha: str) -> str:
    return sha[:7]


def _context_evidence(history: _History) -> list[Evidence]:
    items: list[Evidence] = []
    if history.regression_episodes:
        items.append(
            RegressionEvidence(
                episodes=len(history.regression_episodes),
                failing_executions=sum(len(ep) for ep in history.regression_episodes),
                last_episode_end=max(ep[-1].started_at for ep in history.regression_episodes),
            )
        )
    if history.infra:
        items.append(
            InfrastructureEvidence(
                runs=tuple(sorted({o.run_id for o in history.infra})),
                executions=len(history.infra),
                failures=sum(1 for o in history.infra if o.is_failure),
            )
        )
    return items


def classify(
    observations: Iterable[Observation],
    config: AnalysisConfig,
    previous: PreviousState | None,
    now: datetime,
) -> Verdict:
    """The status of one test from its observations (any order; older than the lookback ignored)."""
    history = _build_history(observations, config, now)
    usable_count = len(history.usable)
    context = _context_evidence(history)

    broken = _find_broken(history, config)
    if broken is not None:
        commits = tuple(dict.fromkeys(o.head_sha for o in broken.streak))
        since = broken.streak[-1].started_at
        return Verdict(
            status=Status.BROKEN,
            confidence=1.0 - broken.chance_if_flaky,
            reason=(
                f"failing on the last {len(broken.streak)} executions across {len(commits)} commits "
                f"since {since:%Y-%m-%d %H:%M}Z, no pass since"
            ),
            evidence=(
                BrokenEvidence(
                    since=since,
                    failing_executions=len(broken.streak),
                    commits=commits,
                    last_pass_at=broken.last_pass_at,
                    chance_if_flaky=broken.chance_if_flaky,
                ),
                # the ongoing streak is itself a regression episode: not repeated as one
                *(e for e in context if not isinstance(e, RegressionEvidence)),
            ),
            usable_executions=usable_count,
        )

    stats = _protected_statistics(history, config)
    held = previous is not None and previous.statistically_flaky
    activated = (
        stats.commits >= config.min_statistical_sample
        and stats.failures >= config.min_statistical_failures
        and stats.rate >= config.activation_failure_rate
    )
    kept = (
        held and stats.commits >= config.min_runs_threshold and stats.rate >= config.resolution_failure_rate
    )
    statistically_flaky = activated or kept

    failures_w, passes_w = _working_code_counts(history, config)
    a, b = 1.0 + failures_w, 1.0 + passes_w
    p_above_epsilon = beta_sf(a, b, config.flaky_epsilon)
    mean_p = beta_mean(a, b)

    if history.same_code or statistically_flaky:
        evidence: list[Evidence] = list(history.same_code[:MAX_SAME_CODE_ITEMS])
        reasons: list[str] = []
        last_evidence = [e.last_failure_at for e in history.same_code]
        if history.same_code:
            newest = history.same_code[0]
            more = len(history.same_code) - 1
            reasons.append(
                f"passed and failed on the same commit {_short(newest.head_sha)} ({newest.scope.value})"
                + (f" and on {more} more commit{'s' if more != 1 else ''}" if more else "")
            )
        if statistically_flaky:
            threshold = config.activation_failure_rate if activated else config.resolution_failure_rate
            evidence.append(
                StatisticalEvidence(
                    failures=stats.failures,
                    commits=stats.commits,
                    failure_rate=stats.rate,
                    threshold=threshold,
                    held_by_hysteresis=not activated,
                )
            )
            reasons.append(
                f"failed on {stats.failures} of {stats.commits} protected-branch commits ({stats.rate:.0%})"
                + (" (still above the resolution threshold)" if not activated else "")
            )
            if stats.last_failure_at is not None:
                last_evidence.append(stats.last_failure_at)
        return Verdict(
            status=Status.FLAKY,
            confidence=p_above_epsilon,
            reason="; ".join(reasons),
            evidence=(*evidence, *context),
            statistically_flaky=statistically_flaky,
            last_flaky_evidence_at=max(last_evidence) if last_evidence else None,
            failure_probability=mean_p,
            usable_executions=usable_count,
        )

    if usable_count < config.min_runs_threshold:
        return Verdict(
            status=Status.INSUFFICIENT_DATA,
            confidence=0.0,
            reason=f"only {usable_count} usable executions (need {config.min_runs_threshold})",
            evidence=tuple(context),
            failure_probability=mean_p,
            usable_executions=usable_count,
        )
    return Verdict(
        status=Status.HEALTHY,
        confidence=1.0 - p_above_epsilon,
        reason=f"no flaky evidence in {usable_count} usable executions",
        evidence=tuple(context),
        failure_probability=mean_p,
        usable_executions=usable_count,
    )
