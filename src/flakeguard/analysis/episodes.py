"""Failure episodes in commit order: the evidence of flakiness on CI without retries or re-runs.

A regression is one contiguous block of failing commits — from the commit that broke the test to the
commit that fixed it (a broken test: a block up to the newest commit) — on every branch that has the
breaking change, or on one feature branch for work in progress. A flaky test fails, passes again on
the next commits without anyone fixing it, and fails again later: several separate blocks.

* **Timeline**: the test's commits ordered by the first run that tested them in the window (so a
  re-test of an old commit sits where that commit first appeared), each failed (any usable failure)
  or passed.
* **Episodes**: failing commits joined when nothing passed between them in the timeline, or when they
  are on the same branch and that branch did not pass between them. A regression on main and the
  feature-branch runs that include it are one episode; so is a feature branch failing twice with main
  passing in between.
* **Odds**: the Bayes factor of "fails at random with some rate p" (uniform prior on p: the
  marginal likelihood of f failing among n commits is f! (n - f)! / (n + 1)!) against "the test's
  state changes at a commit with probability r" (each episode costs r to start and r to recover; every
  other commit 1 - r). r is `regression_change_rate` for episodes on protected branches or across
  branches, and `wip_change_rate` for an episode within one feature branch when the odds weigh work in
  progress. See docs/ALGORITHMS.md for the worked examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from flakeguard.analysis.model import Episode, Observation


@dataclass(slots=True)
class Commit:
    """One commit of the timeline."""

    sha: str
    first_seen: datetime
    branches: list[str | None] = field(default_factory=list)
    failed: bool = False
    first_failure_at: datetime | None = None


def timeline(usable: Iterable[Observation], first_seen: dict[str, datetime]) -> list[Commit]:
    """The usable executions' commits in order of first test. `usable` is chronological;
    `first_seen[sha]`, where given, is the start of the first run that tested `sha` without a usable
    execution (skipped, infrastructure); a commit sits at the earlier of the two."""
    commits: dict[str, Commit] = {}
    for obs in usable:
        sha = obs.head_sha
        commit = commits.get(sha)
        if commit is None:
            seen = first_seen.get(sha)
            start = obs.started_at if seen is None or obs.started_at < seen else seen
            commit = commits[sha] = Commit(sha, start)
        if obs.branch not in commit.branches:
            commit.branches.append(obs.branch)
        if obs.is_failure and not commit.failed:
            commit.failed = True
            commit.first_failure_at = obs.started_at
    return sorted(commits.values(), key=lambda c: (c.first_seen, c.sha))


def first_seen_of(window: Iterable[Observation]) -> dict[str, datetime]:
    """Per sha, the start of the first run in the window that tested it (skipped, infrastructure and
    usable executions alike: a commit is where it first appeared)."""
    first: dict[str, datetime] = {}
    for obs in window:
        seen = first.get(obs.head_sha)
        if seen is None or obs.started_at < seen:
            first[obs.head_sha] = obs.started_at
    return first


def failure_episodes(commits: list[Commit], is_protected: Callable[[str | None], bool]) -> list[Episode]:
    """The failure episodes of a timeline, oldest first (see the module docstring)."""
    last_pass = -1  # the newest passing commit, overall and per branch: recovery is a later pass
    last_pass_on: dict[str | None, int] = {}
    label: list[int] = [-1] * len(commits)  # failing commit -> the first commit of its episode
    groups: dict[int, list[int]] = {}
    previous = -1  # the previous commit of the timeline, when it failed
    last_on_branch: dict[str | None, int] = {}  # branch -> its last commit, when it failed
    for index, commit in enumerate(commits):
        if not commit.failed:
            last_pass = index
            for branch in commit.branches:
                last_on_branch[branch] = -1
                last_pass_on[branch] = index
            previous = -1
            continue
        links = {label[previous]} if previous >= 0 else set()
        for branch in commit.branches:
            other = last_on_branch.get(branch, -1)
            if other >= 0:
                links.add(label[other])
            last_on_branch[branch] = index
        if not links:
            label[index] = index
            groups[index] = [index]
        else:
            target = min(links)
            for other in links:
                if other != target:  # this commit joins two episodes: one from here on
                    for member in groups[other]:
                        label[member] = target
                    groups[target] += groups.pop(other)
            label[index] = target
            groups[target].append(index)
        previous = index
    episodes = []
    for first in sorted(groups):
        indices = sorted(groups[first])
        branches = tuple(dict.fromkeys(b for i in indices for b in commits[i].branches))
        last = indices[-1]
        if _is_local(branches, is_protected):
            recovered = last_pass_on.get(branches[0], -1) > last
        else:
            recovered = last_pass > last
        episodes.append(
            Episode(
                commits=tuple(commits[i].sha for i in indices),
                branches=branches,
                started_at=min(commits[i].first_failure_at or commits[i].first_seen for i in indices),
                recovered=recovered,
            )
        )
    return episodes


def _is_local(branches: tuple[str | None, ...], is_protected: Callable[[str | None], bool]) -> bool:
    """An episode within one unprotected branch: work in progress can explain it."""
    return len(branches) == 1 and not is_protected(branches[0])


def log_odds(
    commits: int,
    failing: int,
    episodes: list[Episode],
    regression_rate: float,
    wip_rate: float,
    is_protected: Callable[[str | None], bool],
) -> float:
    """ln of the Bayes factor "fails at random" : "broken and fixed at change points" over a timeline of
    `commits` commits of which `failing` failed, in `episodes`. Feature-branch episodes cost
    `wip_rate` per change, the others `regression_rate`."""
    passing = commits - failing
    log_random = math.lgamma(failing + 1) + math.lgamma(passing + 1) - math.lgamma(commits + 2)
    log_changes = 0.0
    changes = 0
    for episode in episodes:
        rate = wip_rate if _is_local(episode.branches, is_protected) else regression_rate
        steps = 2 if episode.recovered else 1
        changes += steps
        log_changes += steps * math.log(rate)
    log_changes += max(0, commits - changes) * math.log1p(-regression_rate)
    return log_random - log_changes


def odds_of(log_value: float) -> float:
    """exp(log_value), bounded so that JSON stays finite."""
    return math.exp(min(700.0, max(-700.0, log_value)))
