"""Flaky without retries or re-runs: failure episodes in commit order. Histories worked out by hand;
read top to bottom as documentation of the rule (docs/ALGORITHMS.md, "flaky, failure episodes").

Each letter is one CI run on its own commit, oldest first: P passed, F failed (main);
lower case p/f with a branch are feature-branch runs.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from flakeguard.analysis import AnalysisConfig, Observation, Status, Verdict, classify
from flakeguard.analysis.bayes import beta_sf
from flakeguard.analysis.episodes import Commit, failure_episodes, log_odds, timeline
from flakeguard.model import Outcome

T0 = datetime(2025, 3, 1, tzinfo=UTC)
CONFIG = AnalysisConfig()
P, F = Outcome.PASSED, Outcome.FAILED


def run(i: int, outcome: Outcome, *, branch: str = "main", sha: str | None = None) -> Observation:
    return Observation(
        outcome=outcome,
        started_at=T0 + timedelta(hours=4 * i),
        head_sha=sha or f"c{i:03d}",
        branch=branch,
        run_id=1000 + i,
        run_failure_share=0.01,
    )


def history(*parts: tuple[str, str]) -> list[Observation]:
    """Runs in order from (branch, letters) parts: `history(("main", "PPF"), ("feature/x", "f"))`."""
    observations: list[Observation] = []
    for branch, letters in parts:
        for letter in letters:
            observations.append(run(len(observations), F if letter in "Ff" else P, branch=branch))
    return observations


def main(letters: str) -> list[Observation]:
    return history(("main", letters))


def verdict_of(observations: list[Observation], **config: object) -> Verdict:
    now = max(o.started_at for o in observations) + timedelta(hours=1)
    return classify(observations, AnalysisConfig(**config), None, now)  # type: ignore[arg-type]


def episodes_evidence(verdict: Verdict) -> dict[str, object]:
    (item,) = [e.to_json() for e in verdict.evidence if e.kind == "failure_episodes"]
    return item


def odds(commits: int, failing: int, changes: int, rate: float = 0.05) -> float:
    """The Bayes factor by hand: f! (n - f)! / (n + 1)! against rate^changes (1 - rate)^(n - changes)."""
    random = math.factorial(failing) * math.factorial(commits - failing) / math.factorial(commits + 1)
    return random / (rate**changes * (1 - rate) ** (commits - changes))


# ----------------------------------------------------------------------------- flaky by episodes


def test_two_failures_that_went_away_on_their_own_are_flaky() -> None:
    # 30 commits on main, failed on the 6th and the 20th, passing on the commits after each time.
    # 2 of 30 commits (6.7 %) is below the rate rule's 10 %: the rate rule alone says healthy.
    observations = main("PPPPPFPPPPPPPPPPPPPFPPPPPPPPPP")
    assert verdict_of(observations, commit_order_evidence=False).status is Status.HEALTHY
    verdict = verdict_of(observations)
    assert verdict.status is Status.FLAKY
    assert verdict.reason.startswith(
        "failed in 2 separate episodes over 30 commits, passing again in between"
    )
    # random: 2! 28! / 31! = 1/13485; regressions: two breaks and two fixes, 0.05^4 * 0.95^26
    expected = odds(30, 2, 4)
    assert expected == pytest.approx(45.02, abs=0.01)
    evidence = episodes_evidence(verdict)
    assert evidence["episodes"] == 2
    assert evidence["failing_commits"] == 2
    assert evidence["commits"] == 30
    assert evidence["odds"] == pytest.approx(expected)
    # confidence: P(p > 2 %) under Beta(1 + 2, 1 + 28), times how sure it is that regressions do
    # not explain it: 0.976 * 45.0 / 46.0 = 0.955
    assert verdict.confidence == pytest.approx(beta_sf(3, 29, 0.02) * expected / (1 + expected))
    assert verdict.confidence == pytest.approx(0.955, abs=0.001)
    assert verdict.last_flaky_evidence_at == observations[19].started_at


def test_confidence_grows_with_the_evidence() -> None:
    two = verdict_of(main("PPPPFPPPPPPPPFPPPPPPPPPPPPPPPP"))
    three = verdict_of(main("PPPPFPPPPPPPPFPPPPPPPPFPPPPPPP"))
    four = verdict_of(main("PPPPFPPPPPPPPFPPPPPPPPFPPPPFPP"))
    assert two.status is three.status is four.status is Status.FLAKY
    assert two.confidence < three.confidence < four.confidence
    assert [episodes_evidence(v)["odds"] for v in (two, three, four)] == pytest.approx(
        [odds(30, 2, 4), odds(30, 3, 6), odds(30, 4, 8)]
    )


def test_a_failure_not_yet_followed_by_a_pass_makes_flaky_but_not_confident() -> None:
    # The newest commit failed: a flake, or a regression that starts now. It counts as an episode for
    # the status; the confidence (which gates automatic quarantine) only weighs the settled episodes.
    verdict = verdict_of(main("PPPPPPPPPPPPFPPPPPPPPPPPPF"))
    assert verdict.status is Status.FLAKY
    settled = odds(25, 1, 2)  # the timeline before the open episode: one failure that recovered
    assert episodes_evidence(verdict)["odds"] == pytest.approx(settled)
    assert verdict.confidence == pytest.approx(beta_sf(3, 25, 0.02) * settled / (1 + settled))
    assert verdict.confidence < CONFIG.quarantine_confidence_floor
    # one more green commit and the episode is settled
    settled_now = verdict_of(main("PPPPPPPPPPPPFPPPPPPPPPPPPFP"))
    assert settled_now.confidence > CONFIG.quarantine_confidence_floor


# ---------------------------------------------------------------------- what a regression looks like


def test_a_regression_and_its_fix_is_one_episode_not_flakiness() -> None:
    verdict = verdict_of(main("PPPPPPPPPPFFFPPPPPPPPPP"))
    assert verdict.status is Status.HEALTHY
    assert [e.kind for e in verdict.evidence] == ["regression_episodes"]


def test_one_failure_is_not_enough() -> None:
    # a regression fixed by the next commit (a revert) looks exactly like this
    assert verdict_of(main("PPPPPPPPPPFPPPPPPPPPP")).status is Status.HEALTHY


def test_broken_and_fixed_twice_is_two_regressions_not_a_flake() -> None:
    # two long episodes: random failures would hardly cluster like this
    observations = main("P" * 10 + "FFFF" + "P" * 10 + "FFFF" + "P" * 10)
    verdict = verdict_of(observations)
    assert verdict.status is Status.HEALTHY  # 2 failing "commits" of 32: below the rate rule too
    assert odds(38, 8, 4) < 1.0


def test_a_regression_seen_on_main_and_feature_branches_at_once_is_one_episode() -> None:
    # Pull-request runs test the merge with main: while main is broken, new PR runs fail too.
    observations = history(
        ("main", "PPPPPPPP"), ("feature/a", "f"), ("main", "FF"), ("feature/b", "f"), ("main", "PPPPPPPP")
    )
    verdict = verdict_of(observations)
    assert verdict.status is Status.HEALTHY
    (commits,) = [
        e.commits for e in failure_episodes(timeline(_usable(observations), {}), CONFIG.is_protected)
    ]
    assert commits == ("c008", "c009", "c010", "c011")


def test_a_feature_branch_regression_with_main_passing_in_between_is_one_episode() -> None:
    # feature/x broke the test on c003, still broken on c005, fixed on c007; main passed meanwhile
    observations = [
        *main("PPP"),
        run(3, F, branch="feature/x"),
        run(4, P),
        run(5, F, branch="feature/x"),
        run(6, P),
        run(7, P, branch="feature/x"),
        *[run(i, P) for i in range(8, 20)],
    ]
    (episode,) = failure_episodes(timeline(_usable(observations), {}), CONFIG.is_protected)
    assert episode.commits == ("c003", "c005")
    assert episode.recovered
    assert verdict_of(observations).status is Status.HEALTHY


def test_work_in_progress_broken_and_fixed_twice_on_one_branch_counts_once() -> None:
    observations = [
        *main("PPPPP"),
        run(5, F, branch="feature/x"),
        run(6, P, branch="feature/x"),
        *[run(i, P) for i in range(7, 12)],
        run(12, F, branch="feature/x"),
        run(13, P, branch="feature/x"),
        *[run(i, P) for i in range(14, 20)],
    ]
    assert len(failure_episodes(timeline(_usable(observations), {}), CONFIG.is_protected)) == 2
    assert verdict_of(observations).status is Status.HEALTHY


def test_failures_on_different_branches_at_different_times_are_flaky_with_a_modest_confidence() -> None:
    # feature/a failed once and passed on its next commit; later main failed once and recovered.
    observations = [
        *main("PPPPP"),
        run(5, F, branch="feature/a"),
        run(6, P, branch="feature/a"),
        *[run(i, P) for i in range(7, 15)],
        run(15, F),
        *[run(i, P) for i in range(16, 25)],
    ]
    verdict = verdict_of(observations)
    assert verdict.status is Status.FLAKY
    # the odds weigh the feature-branch episode as work in progress: it costs 0.2 per change, not 0.05
    weighed = math.factorial(2) * math.factorial(23) / math.factorial(26) / (0.2**2 * 0.05**2 * 0.95**21)
    assert episodes_evidence(verdict)["odds"] == pytest.approx(weighed)
    assert verdict.confidence < CONFIG.quarantine_confidence_floor


def test_a_commit_tested_again_later_sits_where_it_first_appeared() -> None:
    # c001 failed, c002.. passed; a manual re-run of the old commit c001 fails again much later.
    # It is the same broken commit, not a second episode.
    observations = [*main("PF" + "P" * 12), run(14, F, sha="c001"), *[run(i, P) for i in range(15, 25)]]
    commits = timeline(_usable(observations), {"c001": observations[1].started_at})
    assert [c.sha for c in commits][:3] == ["c000", "c001", "c002"]
    assert len(failure_episodes(commits, CONFIG.is_protected)) == 1
    assert verdict_of(observations).status is Status.HEALTHY


def test_a_commit_sits_at_its_earliest_test_usable_or_not() -> None:
    # c001 was first tested in an outage (no evidence, but it appeared then); c000 ran usable first
    # and was skipped later: each sits at its earliest run
    observations = [run(1, F), run(2, P), run(3, P)]
    commits = timeline(observations, {"c001": T0, "c002": T0 + timedelta(days=9)})
    assert [(c.sha, c.first_seen) for c in commits] == [
        ("c001", T0),
        ("c002", observations[1].started_at),
        ("c003", observations[2].started_at),
    ]


def test_the_rule_can_be_switched_off() -> None:
    observations = main("PPPPPFPPPPPPPPPPPPPFPPPPPPPPPP")
    assert verdict_of(observations, commit_order_evidence=False).status is Status.HEALTHY
    assert verdict_of(observations, min_failure_episodes=3).status is Status.HEALTHY
    with pytest.raises(ValueError, match="at least 2"):
        AnalysisConfig(min_failure_episodes=1)


# ---------------------------------------------------------------------------- the pure functions


def test_log_odds_is_the_bayes_factor_by_hand() -> None:
    commits = [Commit(f"c{i}", T0 + timedelta(hours=i), ["main"], failed=i in (3, 9)) for i in range(12)]
    episodes = failure_episodes(commits, CONFIG.is_protected)
    assert [e.commits for e in episodes] == [("c3",), ("c9",)]
    assert all(e.recovered for e in episodes)
    value = log_odds(12, 2, episodes, 0.05, 0.2, CONFIG.is_protected)
    assert math.exp(value) == pytest.approx(odds(12, 2, 4))


def _usable(observations: list[Observation]) -> list[Observation]:
    return sorted(observations, key=lambda o: o.started_at)
