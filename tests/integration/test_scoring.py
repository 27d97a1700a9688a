"""Scoring end to end on stored histories worked out by hand: PostgreSQL rows in, flakiness_results out.

Each test writes runs through the store's repository functions (`History`), recomputes with a fixed
`now` and reads what was stored. Every run also has four passing companion tests, so no run looks like
an infrastructure outage unless the test says so.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from flakeguard.analysis import AnalysisConfig, analyze_test
from flakeguard.jobs.payloads import RunsAnalyzeJob
from flakeguard.model import Outcome
from flakeguard.pipeline.analyze import analyze_run
from flakeguard.pipeline.scoring import load_observations
from flakeguard.services import Services

from .history_helpers import T0, F, History, P, recompute_repo, results

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)
OTHERS = ("test_ok_1", "test_ok_2", "test_ok_3", "test_ok_4")


def kinds(row: dict[str, object]) -> list[str]:
    evidence = row["evidence"]
    assert isinstance(evidence, dict)
    return [item["kind"] for item in evidence["items"]]


async def test_alternating_history_scores_as_worked_out_by_hand(services: Services) -> None:
    h = await History(services).create()
    # oldest first P F P F ... F: newest first F P F P F P F P F P over 10 commits on main
    last = await h.series("alternating", [P, F] * 5)
    assert await results(h) == {}
    await recompute_repo(h, last + HOUR)
    row = (await results(h))["alternating"]
    assert row["executions"] == 10 and row["failures"] == 5
    assert row["failure_rate"] == pytest.approx(0.5)
    assert row["inconsistency"] == pytest.approx(9 / 9)
    assert row["recency"] == pytest.approx((1 + 0.8 + 0.6 + 0.4 + 0.2) / 5.5)
    assert row["branch_diversity"] == 0.0
    assert row["score"] == pytest.approx(0.4 * 0.5 + 0.3 * 1.0 + 0.2 * (3.0 / 5.5))
    assert row["original_flaky"] is True
    assert row["status"] == "flaky" and row["statistically_flaky"] is True
    # flaky by the failure rate, and by its failure episodes in commit order (5 of them)
    assert kinds(row) == ["protected_branch_failure_rate", "failure_episodes"]
    assert row["last_failure_at"] == last


async def test_always_failing_is_broken_not_flaky(services: Services) -> None:
    h = await History(services).create()
    last = await h.series("always_fails", [F] * 6)
    await recompute_repo(h, last + HOUR)
    row = (await results(h))["always_fails"]
    # the original score calls it flaky: 0.4 * 1 + 0.3 * 0 + 0.2 * 1 + 0.1 * 0 = 0.6
    assert row["score"] == pytest.approx(0.6) and row["original_flaky"] is True
    assert row["status"] == "broken"
    assert "failing_since" in kinds(row)
    # never passed: chance of 6 failures in a row from a flaky test under a uniform prior = 1 / 7
    assert row["confidence"] == pytest.approx(1 - 1 / 7)


async def test_fixed_then_stable_is_healthy(services: Services) -> None:
    h = await History(services).create()
    last = await h.series("fixed", [F, F, F] + [P] * 7)
    await recompute_repo(h, last + HOUR)
    row = (await results(h))["fixed"]
    assert row["failures"] == 3 and row["executions"] == 10
    assert row["status"] == "healthy"
    assert "regression_episodes" in kinds(row)


async def test_one_flake_on_the_same_sha_is_flaky(services: Services) -> None:
    h = await History(services).create()
    last = await h.series("flake", [P] * 5)
    others = {o: P for o in OTHERS}
    # run 77 fails on sha X; its re-run (attempt 2, same sha) passes
    await h.run({"flake": F, **others}, at=last + HOUR, sha="c" * 40, run_id=77)
    await h.run({"flake": P, **others}, at=last + 2 * HOUR, sha="c" * 40, run_id=77, attempt=2)
    await recompute_repo(h, last + 3 * HOUR)
    row = (await results(h))["flake"]
    assert row["status"] == "flaky"
    evidence = row["evidence"]["items"][0]
    assert evidence["kind"] == "same_sha_pass_and_fail" and evidence["scope"] == "rerun_attempt"
    assert evidence["head_sha"] == "c" * 40 and evidence["runs"] == [77]
    assert row["last_flaky_evidence_at"] == last + HOUR


async def test_in_run_retry_is_flaky_and_ordinals_are_kept(services: Services) -> None:
    h = await History(services).create()
    last = await h.series("retry", [P] * 5)
    await h.run({"retry": [F, P], **{o: P for o in OTHERS}}, at=last + HOUR, run_id=88)
    await recompute_repo(h, last + 2 * HOUR)
    row = (await results(h))["retry"]
    assert row["status"] == "flaky" and row["evidence"]["items"][0]["scope"] == "in_run_retry"
    async with services.sessions() as session:
        test = (await results(h))["retry"]["test_case_id"]
        observations = (await load_observations(session, h.repository_id, [test], T0 - timedelta(days=1)))[
            test
        ]
    retry = sorted((o for o in observations if o.run_id == 88), key=lambda o: o.ordinal)
    assert [(o.ordinal, o.outcome) for o in retry] == [(0, Outcome.FAILED), (1, Outcome.PASSED)]


async def test_infrastructure_outage_gives_no_evidence(services: Services) -> None:
    h = await History(services).create()
    last = await h.series("victim", [P] * 6)
    # every test of this run fails: 100 % > 80 % -> an infrastructure failure
    await h.run({"victim": F, **{o: F for o in OTHERS}}, at=last + HOUR)
    await h.run({"victim": P, **{o: P for o in OTHERS}}, at=last + 2 * HOUR)
    await recompute_repo(h, last + 3 * HOUR)
    row = (await results(h))["victim"]
    assert row["failures"] == 1  # still counted by the original score ...
    assert row["status"] == "healthy"  # ... but no evidence for the status
    assert "infrastructure_runs_excluded" in kinds(row)
    assert row["impact"] == 0.0  # an outage weighs nothing


async def test_fewer_runs_than_the_threshold_is_insufficient_data(services: Services) -> None:
    h = await History(services).create()
    last = await h.series("new_test", [P, F, P])
    await recompute_repo(h, last + HOUR)
    row = (await results(h))["new_test"]
    assert row["status"] == "insufficient_data" and row["confidence"] == 0.0
    assert row["score"] is None and row["inconsistency"] is None
    assert row["executions"] == 3 and row["failures"] == 1


async def test_hysteresis_across_consecutive_analyses(services: Services) -> None:
    h = await History(services).create()
    # 20 main commits with two isolated failures = 10 %: flaky by statistics
    pattern = [P] * 4 + [F] + [P] * 9 + [F] + [P] * 5
    last = await h.series("wobbly", pattern)
    await recompute_repo(h, last + HOUR)
    assert (await results(h))["wobbly"]["status"] == "flaky"
    # 10 more green commits: 2 of 30 = 6.7 %, between resolution (5 %) and activation: held
    last = await h.series("wobbly", [P] * 10, start=last + 6 * HOUR)
    await recompute_repo(h, last + HOUR)
    held = (await results(h))["wobbly"]
    assert held["status"] == "flaky" and held["statistically_flaky"] is True
    assert held["evidence"]["items"][0]["held_by_hysteresis"] is True
    # 11 more: 2 of 41 = 4.9 % < 5 %: the rate rule clears. The two failures that went away on their
    # own stay in the window as two failure episodes, which keep the test flaky by commit order.
    last = await h.series("wobbly", [P] * 11, start=last + 6 * HOUR)
    await recompute_repo(h, last + HOUR)
    cleared = (await results(h))["wobbly"]
    assert cleared["statistically_flaky"] is False
    assert cleared["status"] == "flaky" and kinds(cleared) == ["failure_episodes"]


async def test_stored_results_equal_the_pure_analysis(services: Services) -> None:
    """The store's encoding of histories loses nothing: same result as analyze_test on the observations."""
    h = await History(services).create()
    last = await h.series("mixed", [P, F, P, P, F, P, P, P, F, P])
    await h.run({"mixed": [F, F, P], **{o: P for o in OTHERS}}, at=last + HOUR, branch="feature-x")
    now = last + 2 * HOUR
    await recompute_repo(h, now)
    row = (await results(h))["mixed"]
    async with services.sessions() as session:
        observations = (
            await load_observations(session, h.repository_id, [row["test_case_id"]], now - timedelta(days=30))
        )[row["test_case_id"]]
    assert len(observations) == 13
    expected = analyze_test(observations, AnalysisConfig(default_branch="main"), None, now)
    assert row["status"] == expected.verdict.status.value
    assert row["confidence"] == pytest.approx(expected.verdict.confidence)
    assert row["score"] == pytest.approx(expected.score.score if expected.score else None)
    assert row["impact"] == pytest.approx(expected.impact)


async def test_analyze_run_scores_the_tests_of_one_run(services: Services) -> None:
    h = await History(services).create()
    for i in range(5):
        await h.run({"a": P, "b": F if i % 2 else P, "c": [F, P]}, at=T0 + i * HOUR, run_id=5 + i)
    job = RunsAnalyzeJob.model_validate({"workflowRunId": 9, "repository": {"owner": "acme", "repo": "app"}})
    analyzed = await analyze_run(services, job, now=T0 + 6 * HOUR)
    assert analyzed.summary.tests == 3
    assert set(analyzed.summary.analyses) == {r["test_case_id"] for r in (await results(h)).values()}
    assert (await results(h))["c"]["status"] == "flaky"
