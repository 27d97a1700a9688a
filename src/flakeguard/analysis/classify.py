"""The status of a test: healthy, flaky, broken or insufficient_data, with its evidence.

The rules, in order (details and formulas in docs/ALGORITHMS.md):

0. Only observations within `lookback_days` count. Run attempts whose `run_failure_share` exceeds
   `infra_failure_share` are infrastructure failures, and so are executions flagged `infrastructure`
   (their failure signature took down a shard of their run): they give no evidence at all.
   Skipped executions give no evidence either. What remains are the *usable* executions.
   A test that runs in several contexts (matrix legs) is classified per context, and its verdict is
   the worst one (broken before flaky before healthy): flaky means passing and failing in one context.
1. **broken** — on the reference line (protected branches when the test ran there, else all
   branches), the newest usable executions are failures, on at least two distinct commits that never
   passed, and either the test never passed on that line in the window or a flaky test with the
   pre-streak history would produce such a streak with probability below `broken_alpha`. Also broken:
   a test that never passed in the window and failed every one of at least two executions, or that
   failed in this context on a commit where it passed in another. Broken wins over flaky.
2. **flaky (same code)** — a pass and a failure on the same head sha: within one run attempt
   (retries), across attempts of one run (re-runs), or across runs (on protected branches; on other
   branches only with `cross_run_evidence_on_unprotected`).
3. **flaky (statistics)** — on protected branches, per commit and with a regression episode counted
   as one failed commit, the failure rate is >= `activation_failure_rate` over >=
   `min_statistical_sample` commits with >= `min_statistical_failures` failed ones; once flaky by
   statistics it stays so until the rate drops below `resolution_failure_rate` (hysteresis).
4. **flaky (failure episodes)** — in commit order, at least `min_failure_episodes` separate failure
   episodes, each followed by passes on later commits, better explained by a failure rate than by
   regressions and their fixes (`analysis.episodes`).
5. **insufficient_data** — none of the above and fewer than `min_runs_threshold` usable executions.
6. **healthy** — otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from flakeguard.analysis.bayes import beta_mean, beta_sf, posterior_predictive_streak
from flakeguard.analysis.episodes import failure_episodes, first_seen_of, log_odds, odds_of, timeline
from flakeguard.analysis.model import (
    NEWEST_FIRST_KEY,
    AnalysisConfig,
    BrokenEvidence,
    ContextsEvidence,
    Episode,
    EpisodesEvidence,
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
)
from flakeguard.analysis.score import within_lookback

MAX_SAME_CODE_ITEMS = 10  # evidence stays small: the newest items, the reason gives the total
MAX_EPISODE_ITEMS = 5

# How this stays fast (it runs once per distinct history of a recompute, see docs/PERFORMANCE.md):
# the usable executions are sorted once and split once (failures, protected-branch executions, shas
# that passed); each rule then takes the cheap path when the history cannot have what it looks for
# (no sha that both passed and failed -> no same-code grouping; fewer than two failing commits that
# never passed -> no regression episodes; no failure at the newest end -> no broken streak). The
# general code below is the original, rule for rule; `tests/unit/test_analysis_golden.py` holds the
# outputs of the original implementation and checks that every result is unchanged.


def is_infrastructure_failure(obs: Observation, config: AnalysisConfig) -> bool:
    return obs.run_failure_share > config.infra_failure_share or obs.infrastructure


def _same_code_scope(
    group: Sequence[Observation], protected_branch: dict[str | None, bool], config: AnalysisConfig
) -> SameCodeScope | None:
    """The most specific way in which one sha both passed and failed, or None.

    `group`: the usable executions of one sha, which both passed and failed (usable executions are
    either a pass or a failure, never skipped)."""
    passed_attempts = {o.attempt_key for o in group if o.is_pass}
    failed_attempts = {o.attempt_key for o in group if o.is_failure}
    if not passed_attempts.isdisjoint(failed_attempts):
        return SameCodeScope.IN_RUN_RETRY
    if not {run_id for run_id, _ in passed_attempts}.isdisjoint(run_id for run_id, _ in failed_attempts):
        return SameCodeScope.RERUN_ATTEMPT
    passed = failed = False
    for obs in group:
        if protected_branch[obs.branch]:
            if obs.is_failure:
                failed = True
            else:
                passed = True
            if passed and failed:
                return SameCodeScope.ACROSS_RUNS
    if config.cross_run_evidence_on_unprotected:  # the group passed and failed
        return SameCodeScope.ACROSS_RUNS
    return None


@dataclass(slots=True)
class _History:
    """Derived facts about one test's usable executions, shared by the rules."""

    usable: list[Observation]  # chronological
    failing: list[Observation]  # the failures among `usable`, chronological
    protected: list[Observation]  # `usable` on protected branches, chronological
    protected_branch: dict[str | None, bool]  # every branch of `usable` -> config.is_protected
    infra: list[Observation]
    passed_shas: set[str]
    same_code: list[SameCodeEvidence]  # newest first
    confirmed_shas: set[str]
    regression_episodes: list[list[Observation]] = field(default_factory=list)
    # Failure episodes in commit order (`analysis.episodes`), when at least two commits failed.
    commits: int = 0
    failing_commits: int = 0
    episodes: list[Episode] | None = None


def _build_history(
    window: list[Observation], config: AnalysisConfig, whole_window: list[Observation]
) -> _History:
    """`window`: the observations within the lookback (in the caller's order), of one context;
    `whole_window`: those of every context (commits are ordered by their first test in any)."""
    infra_share = config.infra_failure_share
    infra = [obs for obs in window if obs.run_failure_share > infra_share or obs.infrastructure]
    if infra:
        usable = [
            obs
            for obs in window
            if not obs.is_skipped and obs.run_failure_share <= infra_share and not obs.infrastructure
        ]
    else:
        usable = [obs for obs in window if not obs.is_skipped]
    usable.sort(key=NEWEST_FIRST_KEY)
    is_protected = config.is_protected
    protected_branch = {branch: is_protected(branch) for branch in {obs.branch for obs in usable}}
    protected = [obs for obs in usable if protected_branch[obs.branch]]
    failing = [obs for obs in usable if obs.is_failure]
    passed_shas = {obs.head_sha for obs in usable if obs.is_pass}

    same_code: list[SameCodeEvidence] = []
    mixed = passed_shas.intersection([obs.head_sha for obs in failing])  # passed and failed
    if mixed:
        groups: dict[str, list[Observation]] = {sha: [] for sha in mixed}
        for obs in usable:
            group = groups.get(obs.head_sha)
            if group is not None:
                group.append(obs)
        for sha, group in groups.items():
            scope = _same_code_scope(group, protected_branch, config)
            if scope is None:
                continue
            failures = [o for o in group if o.is_failure]
            same_code.append(
                SameCodeEvidence(
                    head_sha=sha,
                    scope=scope,
                    branch=group[-1].branch,
                    passes=len(group) - len(failures),
                    failures=len(failures),
                    runs=tuple(sorted({o.run_id for o in group})),
                    last_failure_at=max(o.started_at for o in failures),
                )
            )
        same_code.sort(key=lambda e: (e.last_failure_at, e.head_sha), reverse=True)
    history = _History(
        usable=usable,
        failing=failing,
        protected=protected,
        protected_branch=protected_branch,
        infra=infra,
        passed_shas=passed_shas,
        same_code=same_code,
        confirmed_shas={e.head_sha for e in same_code},
    )
    # An episode spans at least two commits that failed and never passed.
    if len({obs.head_sha for obs in failing if obs.head_sha not in passed_shas}) >= 2:
        _find_regression_episodes(history)
    return history


def _add_episodes(history: _History, config: AnalysisConfig, whole_window: list[Observation]) -> None:
    """The failure episodes in commit order, when at least two commits failed (`analysis.episodes`).
    A commit sits where it was first tested in the window: usable executions are chronological, so
    only skipped and infrastructure executions can be earlier."""
    if len({obs.head_sha for obs in history.failing}) < 2:
        return
    share = config.infra_failure_share
    first_seen = first_seen_of(
        o for o in whole_window if o.is_skipped or o.run_failure_share > share or o.infrastructure
    )
    commits = timeline(history.usable, first_seen)
    history.commits = len(commits)
    history.failing_commits = sum(1 for c in commits if c.failed)
    history.episodes = failure_episodes(commits, history.protected_branch.__getitem__)


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
    line = history.protected or history.usable
    passed_shas = history.passed_shas
    streak: list[Observation] = []
    for obs in reversed(line):
        if not obs.is_failure or obs.head_sha in passed_shas:
            break
        streak.append(obs)
    if len(streak) < 2 or len({o.head_sha for o in streak}) < 2:
        return None
    newest_first = line[::-1]
    before = newest_first[len(streak) :]
    passes_before = sum(1 for o in before if o.is_pass)
    failures_before = sum(1 for o in before if o.is_failure)
    chance = posterior_predictive_streak(failures_before, passes_before, len(streak))
    if passes_before > 0 and chance >= config.broken_alpha:
        return None
    last_pass_at = next((o.started_at for o in before if o.is_pass), None)
    return _BrokenFinding(streak=streak, last_pass_at=last_pass_at, chance_if_flaky=chance)


def _find_never_passed(history: _History, elsewhere: list[Observation] | None) -> _BrokenFinding | None:
    """A test (in this context) that never passed in the window and failed every usable execution:
    broken when that is at least two executions (a retry or a re-run failed too), or when the test
    passed in another context on a commit where it failed here (a deterministic difference between the
    environments, not chance). `chance_if_flaky` takes the other contexts' history as the prior."""
    failing = history.failing
    if not failing or len(failing) != len(history.usable):
        return None
    passed_elsewhere = elsewhere is not None and any(
        o.is_pass and o.head_sha in {f.head_sha for f in failing} for o in elsewhere
    )
    if len(failing) < 2 and not passed_elsewhere:
        return None
    failures_else = sum(1 for o in elsewhere if o.is_failure) if elsewhere else 0
    passes_else = sum(1 for o in elsewhere if o.is_pass) if elsewhere else 0
    chance = posterior_predictive_streak(failures_else, passes_else, len(failing))
    return _BrokenFinding(streak=failing[::-1], last_pass_at=None, chance_if_flaky=chance)


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


def _protected_statistics(history: _History) -> _Statistics:
    """Failure rate on protected branches, per commit: a commit failed when any of its usable
    executions failed; every commit of a regression episode together counts as one failed commit.

    Commits, not executions, are the unit: re-runs and in-run retries of a genuinely broken commit fail
    too, so counting them would let one bad commit look like a high failure rate.
    """
    protected = history.protected
    if not history.regression_episodes:  # the general loop below, without episodes to merge
        first_tested = dict.fromkeys([obs.head_sha for obs in protected])
        failed = {obs.head_sha for obs in protected if obs.is_failure}
        newest_failure: datetime | None = None
        if failed:
            # the last failed commit in order of first test, its newest failure
            last = next(sha for sha in reversed(first_tested) if sha in failed)
            newest_failure = max(o.started_at for o in protected if o.is_failure and o.head_sha == last)
        return _Statistics(commits=len(first_tested), failures=len(failed), last_failure_at=newest_failure)

    episode_of = _episode_index(history)
    commits: dict[str, list[Observation]] = {}
    for obs in protected:  # chronological, so dict order is the order of first test
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


def _working_code_counts(history: _History) -> tuple[int, int]:
    """(failures, passes) on working code, the data of the confidence model.

    Every usable pass counts. A failure counts when its commit also passed (confirmed). On protected
    branches a commit that only failed counts as one failure (its re-runs and retries are not
    independent trials: a broken commit fails them all), and a regression episode as one in all.
    Unconfirmed failures on other branches count once per failure episode that has neither a
    protected nor a confirmed commit (work in progress or a flake: one event either way).
    """
    passes = len(history.usable) - len(history.failing)  # usable: a pass or a failure each
    confirmed = history.confirmed_shas
    protected_branch = history.protected_branch
    episode_of = _episode_index(history) if history.regression_episodes else {}
    failures = 0
    seen: set[object] = set()
    for obs in history.failing:
        if obs.head_sha in confirmed:
            failures += 1
        elif protected_branch[obs.branch]:
            episode = episode_of.get(id(obs))
            unit: object = ("episode", episode) if episode is not None else ("commit", obs.head_sha)
            if unit not in seen:
                seen.add(unit)
                failures += 1
    failures += _unprotected_failure_events(history)
    return failures, passes


def _unprotected_failure_events(history: _History) -> int:
    """Failure episodes with neither a protected nor a confirmed commit (see `_working_code_counts`)."""
    protected_branch = history.protected_branch
    confirmed = history.confirmed_shas
    if history.episodes is None:  # fewer than two failing commits
        return int(
            any(not protected_branch[o.branch] and o.head_sha not in confirmed for o in history.failing)
        )
    return sum(
        1
        for episode in history.episodes
        if not any(protected_branch.get(b, False) for b in episode.branches)
        and confirmed.isdisjoint(episode.commits)
    )


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
    return classify_window(within_lookback(observations, config, now), config, previous)


def classify_window(
    window: list[Observation], config: AnalysisConfig, previous: PreviousState | None
) -> Verdict:
    """`classify` over observations already within the lookback."""
    contexts = {obs.context for obs in window}
    if len(contexts) <= 1:
        return _classify_context(window, window, config, previous, None, None)
    return _classify_contexts(window, contexts, config, previous)


_WORST_FIRST = {Status.BROKEN: 0, Status.FLAKY: 1, Status.HEALTHY: 2, Status.INSUFFICIENT_DATA: 3}


def _classify_contexts(
    window: list[Observation],
    contexts: set[str | None],
    config: AnalysisConfig,
    previous: PreviousState | None,
) -> Verdict:
    """A test that runs in several contexts: each is classified on its own executions (a pass in one
    leg and a failure in another is no flakiness), and the test's verdict is the worst of them."""
    verdicts: list[tuple[str | None, Verdict]] = []
    for context in sorted(contexts, key=lambda c: (c is not None, c or "")):
        part = [o for o in window if o.context == context]
        elsewhere = [
            o
            for o in window
            if o.context != context and not o.is_skipped and not is_infrastructure_failure(o, config)
        ]
        verdicts.append((context, _classify_context(part, window, config, previous, context, elsewhere)))
    context, chosen = min(verdicts, key=lambda cv: (_WORST_FIRST[cv[1].status], -cv[1].confidence))
    flaky_times = [v.last_flaky_evidence_at for _, v in verdicts if v.last_flaky_evidence_at is not None]
    summary = ContextsEvidence(statuses=tuple((c, v.status, v.reason) for c, v in verdicts))
    return Verdict(
        status=chosen.status,
        confidence=chosen.confidence,
        reason=chosen.reason if context is None else f"{context}: {chosen.reason}",
        evidence=(*chosen.evidence, summary),
        statistically_flaky=any(v.statistically_flaky for _, v in verdicts),
        last_flaky_evidence_at=max(flaky_times) if flaky_times else None,
        failure_probability=chosen.failure_probability,
        usable_executions=sum(v.usable_executions for _, v in verdicts),
    )


def _classify_context(
    window: list[Observation],
    whole_window: list[Observation],
    config: AnalysisConfig,
    previous: PreviousState | None,
    context_name: str | None,
    elsewhere: list[Observation] | None,
) -> Verdict:
    """The rules over one context's executions (`window`); `elsewhere`: the usable executions of the
    test's other contexts (None when it has only one)."""
    history = _build_history(window, config, whole_window)
    usable_count = len(history.usable)
    context = _context_evidence(history)

    broken = _find_broken(history, config) or _find_never_passed(history, elsewhere)
    if broken is not None:
        commits = tuple(dict.fromkeys(o.head_sha for o in broken.streak))
        since = broken.streak[-1].started_at
        where = " here, passing in other contexts" if elsewhere and any(o.is_pass for o in elsewhere) else ""
        return Verdict(
            status=Status.BROKEN,
            confidence=1.0 - broken.chance_if_flaky,
            reason=(
                f"failing on the last {len(broken.streak)} executions across {len(commits)} "
                f"commit{'s' if len(commits) != 1 else ''} since {since:%Y-%m-%d %H:%M}Z, "
                f"no pass since{where}"
            ),
            evidence=(
                BrokenEvidence(
                    since=since,
                    failing_executions=len(broken.streak),
                    commits=commits,
                    last_pass_at=broken.last_pass_at,
                    chance_if_flaky=broken.chance_if_flaky,
                    context=context_name,
                ),
                # the ongoing streak is itself a regression episode: not repeated as one
                *(e for e in context if not isinstance(e, RegressionEvidence)),
            ),
            usable_executions=usable_count,
        )

    _add_episodes(history, config, whole_window)
    stats = _protected_statistics(history)
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

    failures_w, passes_w = _working_code_counts(history)
    a, b = 1.0 + failures_w, 1.0 + passes_w
    p_above_epsilon = beta_sf(a, b, config.flaky_epsilon)
    mean_p = beta_mean(a, b)
    episodes = _episodes_evidence(history, config)

    if history.same_code or statistically_flaky or episodes is not None:
        evidence: list[Evidence] = list(history.same_code[:MAX_SAME_CODE_ITEMS])
        reasons: list[str] = []
        last_evidence = [e.last_failure_at for e in history.same_code]
        confidence = p_above_epsilon
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
        if episodes is not None:
            evidence.append(episodes)
            reasons.append(
                f"failed in {episodes.episodes} separate episodes over {episodes.commits} commits, "
                f"passing again in between (odds {_odds_text(episodes.odds)} against regressions)"
            )
            last_evidence.append(history.failing[-1].started_at)
            if not history.same_code and not statistically_flaky:
                # Only commit order says flaky: how sure it is that regressions do not explain it.
                confidence *= episodes.odds / (1.0 + episodes.odds)
        return Verdict(
            status=Status.FLAKY,
            confidence=confidence,
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


def _episodes_evidence(history: _History, config: AnalysisConfig) -> EpisodesEvidence | None:
    """Flaky by commit order: at least `min_failure_episodes` separate failure episodes (episodes
    within one feature branch count once per branch), and a failure rate explains the failures better
    than regressions at `regression_change_rate` do.

    The odds reported, which the confidence uses, are those of the *settled* episodes only (the test
    passed again after them), with feature-branch episodes weighed as work in progress
    (`wip_change_rate`): a failure that has not been followed by a pass yet may be a new regression, so
    it can make a test flaky but not raise the confidence towards an automatic quarantine."""
    episodes = history.episodes
    if not config.commit_order_evidence or episodes is None:
        return None
    is_protected = history.protected_branch.__getitem__
    if _independent_episodes(episodes, is_protected) < config.min_failure_episodes:
        return None
    rate = config.regression_change_rate
    commits, failing = history.commits, history.failing_commits
    if log_odds(commits, failing, episodes, rate, rate, is_protected) <= 0.0:
        return None
    settled = [e for e in episodes if e.recovered]
    open_commits = sum(len(e.commits) for e in episodes if not e.recovered)
    weighed = log_odds(
        commits - open_commits, failing - open_commits, settled, rate, config.wip_change_rate, is_protected
    )
    return EpisodesEvidence(
        episodes=len(episodes),
        failing_commits=failing,
        commits=commits,
        odds=odds_of(weighed),
        newest=tuple(episodes[::-1][:MAX_EPISODE_ITEMS]),
    )


def _independent_episodes(episodes: list[Episode], is_protected: Callable[[str | None], bool]) -> int:
    """Episodes, counting those within one feature branch once per branch: a developer who breaks and
    fixes a test twice on their own branch is work in progress, not two flakes."""
    wip_branches: set[str | None] = set()
    count = 0
    for episode in episodes:
        if len(episode.branches) == 1 and not is_protected(episode.branches[0]):
            wip_branches.add(episode.branches[0])
        else:
            count += 1
    return count + len(wip_branches)


def _odds_text(odds: float) -> str:
    if odds >= 1.0:
        return f"{odds:.0f}:1" if odds < 1e6 else ">10^6:1"
    return f"1:{1.0 / odds:.0f}" if odds > 1e-6 else "1:>10^6"
