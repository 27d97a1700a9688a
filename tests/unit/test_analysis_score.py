"""The original score, on histories worked out by hand (the same numbers as docs/ALGORITHMS.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flakeguard.analysis import AnalysisConfig, Observation, original_score
from flakeguard.model import Outcome

T0 = datetime(2025, 3, 1, tzinfo=UTC)
LETTERS = {"P": Outcome.PASSED, "F": Outcome.FAILED, "E": Outcome.ERROR, "S": Outcome.SKIPPED}
CONFIG = AnalysisConfig()


def history(pattern: str, branches: str | None = None) -> list[Observation]:
    """One run per letter, OLDEST FIRST, each on its own commit, six hours apart.

    `branches` optionally gives each run's branch as a letter: m = main, x = feature/x.
    """
    names = {"m": "main", "x": "feature/x"}
    return [
        Observation(
            outcome=LETTERS[letter],
            started_at=T0 + timedelta(hours=6 * i),
            head_sha=f"sha{i:03d}",
            branch=names[branches[i]] if branches else "main",
            run_id=100 + i,
        )
        for i, letter in enumerate(pattern)
    ]


def test_worked_example_from_the_docs() -> None:
    # Oldest first: E(main) P(main) F(feature) S(feature) P(main) F(main); newest first that is
    #   i=0 F main, i=1 P main, i=2 S feature, i=3 F feature, i=4 P main, i=5 E main.
    score = original_score(history("EPFSPF", branches="mmxxmm"), CONFIG)
    assert score is not None
    # failure rate = 3 failures / (6 executions - 1 skipped)
    assert score.failure_rate == pytest.approx(3 / 5)
    # non-skipped, newest first: F P F P E -> 4 changes, over n - 1 = 5
    assert score.inconsistency == pytest.approx(4 / 5)
    # w = 6, weights 6/6 5/6 4/6 3/6 2/6 1/6 (sum 21/6); failures at i = 0, 3, 5 -> (6 + 3 + 1) / 21
    assert score.recency == pytest.approx(10 / 21)
    # both branches have a failure
    assert score.branch_diversity == pytest.approx(1.0)
    assert score.score == pytest.approx(0.4 * 0.6 + 0.3 * 0.8 + 0.2 * 10 / 21 + 0.1 * 1.0)
    assert score.score == pytest.approx(0.675238, abs=1e-6)
    assert score.is_flaky


def test_alternating_pass_fail_is_maximally_inconsistent() -> None:
    score = original_score(history("PFPFPFPFPF"), CONFIG)  # newest is F
    assert score is not None
    assert score.failure_rate == pytest.approx(0.5)
    assert score.inconsistency == pytest.approx(9 / 9)
    # failures at i = 0, 2, 4, 6, 8: weights 1.0 .8 .6 .4 .2 = 3.0, over 5.5
    assert score.recency == pytest.approx(3.0 / 5.5)
    assert score.branch_diversity == 0.0  # one branch
    assert score.score == pytest.approx(0.2 + 0.3 + 0.2 * 3.0 / 5.5)
    assert score.is_flaky


def test_always_failing_scores_high_although_it_is_broken_not_flaky() -> None:
    # The original's known blind spot, kept on purpose: classify() calls this test broken.
    score = original_score(history("F" * 12), CONFIG)
    assert score is not None
    assert (score.failure_rate, score.inconsistency, score.recency) == (1.0, 0.0, 1.0)
    assert score.score == pytest.approx(0.6)
    assert score.is_flaky


def test_fixed_then_stable_fades_below_the_threshold() -> None:
    score = original_score(history("FFFFPPPPPP"), CONFIG)  # newest first: 6 passes, then 4 failures
    assert score is not None
    assert score.failure_rate == pytest.approx(0.4)
    assert score.inconsistency == pytest.approx(1 / 9)
    assert score.recency == pytest.approx((0.4 + 0.3 + 0.2 + 0.1) / 5.5)
    assert score.score == pytest.approx(0.16 + 0.3 / 9 + 0.2 / 5.5)
    assert not score.is_flaky


def test_recency_window_is_the_newest_ten() -> None:
    # 12 executions, only the two oldest failed: outside the window of 10
    score = original_score(history("FF" + "P" * 10), CONFIG)
    assert score is not None
    assert score.recency == 0.0
    assert score.inconsistency == pytest.approx(1 / 11)


def test_fewer_executions_than_the_threshold_give_no_score() -> None:
    assert original_score(history("FFFF"), CONFIG) is None
    assert original_score(history("FFFFF"), CONFIG) is not None
    assert original_score([], CONFIG) is None


def test_inconsistency_is_zero_with_fewer_than_three_executions() -> None:
    score = original_score(history("PF"), AnalysisConfig(min_runs_threshold=1))
    assert score is not None
    assert score.inconsistency == 0.0


def test_skips_count_in_n_but_neither_make_nor_break_a_change() -> None:
    # newest first: F S F P P -> non-skipped F F P P: one change, over n - 1 = 4
    score = original_score(history("PPFSF"), CONFIG)
    assert score is not None
    assert score.executions == 5 and score.skipped == 1
    assert score.failure_rate == pytest.approx(2 / 4)
    assert score.inconsistency == pytest.approx(1 / 4)
    # w = 5: weights 1 .8 .6 .4 .2 (sum 3.0); failures at i = 0 and 2; the skip at i = 1 adds nothing
    assert score.recency == pytest.approx(1.6 / 3.0)


def test_all_skipped_does_not_divide_by_zero() -> None:
    score = original_score(history("SSSSS"), CONFIG)
    assert score is not None
    assert (score.failure_rate, score.inconsistency, score.recency, score.score) == (0.0, 0.0, 0.0, 0.0)


def test_branch_diversity_counts_branches_with_a_failure() -> None:
    score = original_score(history("PPPPF", branches="mxxmm"), CONFIG)
    assert score is not None
    assert score.branch_diversity == pytest.approx(1 / 2)


def test_lookback_drops_old_executions_when_now_is_given() -> None:
    observations = history("FFFFFPPPPP")  # 6 h apart, over 54 hours
    config = AnalysisConfig(lookback_days=1, min_runs_threshold=1)
    now = observations[-1].started_at + timedelta(hours=1)
    score = original_score(observations, config, now=now)
    assert score is not None
    assert score.executions == 4  # the last four runs started within 24 hours
    assert score.failures == 0


def test_input_order_does_not_matter() -> None:
    observations = history("EPFSPF", branches="mmxxmm")
    assert original_score(observations[::-1], CONFIG) == original_score(observations, CONFIG)


def test_threshold_decides_is_flaky() -> None:
    score = original_score(history("FFFFPPPPPP"), AnalysisConfig(flakiness_threshold=0.2))
    assert score is not None and score.is_flaky
