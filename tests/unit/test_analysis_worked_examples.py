"""Worked examples of issue 12 from the JUnit corpus (../shared/junit-corpus): reports as a CI run
uploads them, read by the parser, turned into observations as the pipeline does (one run attempt;
the executions of one test numbered 0, 1, ... in document order), classified.

Each example is a wrong verdict a new user saw before: same-name data-driven cases called flaky, a
CI matrix leg failing deterministically called flaky, a test failing every execution of its only
run called healthy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flakeguard.analysis import AnalysisConfig, Observation, SameCodeScope, Status, Verdict, classify
from flakeguard.junit import context_from, read_report
from flakeguard.model import TestExecution

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "junit-corpus"
if not CORPUS.exists():
    pytest.skip(f"JUnit corpus not found at {CORPUS}", allow_module_level=True)

GH237 = CORPUS / "jenkinsci-junit-plugin/src/test/resources/hudson/tasks/junit/gh-237"
STARTED = datetime(2025, 3, 1, 12, tzinfo=UTC)
CONFIG = AnalysisConfig()


def one_run(reports: dict[str, bytes]) -> dict[str, list[Observation]]:
    """Per test key, its observations from one run attempt (run 1 on main) whose artifacts are
    `reports` (artifact name -> report XML), with each report's context."""
    executions: dict[str, list[tuple[TestExecution, str | None]]] = defaultdict(list)
    for artifact, data in reports.items():
        report = read_report(data, artifact=artifact, member="report.xml")
        assert not report.refusals, report.refusals
        for member in report.members:
            context = context_from(artifact, member.properties)
            for execution in member.executions:
                executions[execution.key].append((execution, context))
    return {
        key: [
            Observation(
                outcome=execution.outcome,
                started_at=STARTED,
                head_sha="a1b2c3d",
                branch="main",
                run_id=1,
                ordinal=ordinal,
                run_failure_share=0.1,
                context=context,
            )
            for ordinal, (execution, context) in enumerate(group)
        ]
        for key, group in executions.items()
    }


def verdict(observations: list[Observation]) -> Verdict:
    return classify(observations, CONFIG, None, STARTED + timedelta(hours=1))


def test_three_same_name_data_driven_cases_in_one_run_are_not_flaky() -> None:
    # Fixie (xUnit.net v2 -> JUnit): one generic test method run for several type arguments, each
    # case written with the same name; two pass, the one for Int32 fails. Boost.Test writes the
    # samples of a data-driven test case the same way.
    data = (
        CORPUS / "enricomi-publish-unit-test-result-action/python/test/files/xunit/mstest/fixie.junit-xml"
    ).read_bytes()
    tests = one_run({"test-results": data})
    cases = {key.split("\x1f")[2]: obs for key, obs in tests.items() if "ShouldBeString" in key}
    assert sorted(cases) == ["ShouldBeString", "ShouldBeString #2", "ShouldBeString #3"]
    verdicts = {name: verdict(obs) for name, obs in cases.items()}
    assert all(v.status is not Status.FLAKY for v in verdicts.values())
    assert verdicts["ShouldBeString #3"].status is Status.INSUFFICIENT_DATA  # one failure: no evidence yet


def test_a_boost_test_report_with_three_same_name_cases() -> None:
    boost = (
        b"<?xml version='1.0' encoding='UTF-8'?><testsuite tests='3' skipped='0' errors='0' failures='1'"
        b" id='0' name='Master_Test_Suite' time='0.01'>"
        b"<testcase assertions='1' classname='parser' name='parses_sample' time='0'/>"
        b"<testcase assertions='1' classname='parser' name='parses_sample' time='0'/>"
        b"<testcase assertions='1' classname='parser' name='parses_sample' time='0'>"
        b"<failure message='check result == expected has failed' type='assertion error'/></testcase>"
        b"</testsuite>"
    )
    tests = one_run({"boost-results": boost})
    assert len(tests) == 3
    assert [verdict(obs).status for obs in tests.values()] == [
        Status.INSUFFICIENT_DATA,
        Status.INSUFFICIENT_DATA,
        Status.INSUFFICIENT_DATA,
    ]


def test_repeated_testcases_after_a_failure_are_still_retries() -> None:
    # gotestsum --rerun-fails (the Mattermost report): failed, then passed when re-run in the run
    data = (CORPUS / "mikepenz-action-junit-report/test_results/junit-server-test/report.xml").read_bytes()
    tests = one_run({"go-test-results": data})
    (race,) = [obs for key, obs in tests.items() if "TestWebSocketReconnectRace" in key]
    assert [o.ordinal for o in race] == [0, 1]
    flaky = verdict(race)
    assert flaky.status is Status.FLAKY
    assert flaky.evidence[0].scope is SameCodeScope.IN_RUN_RETRY  # type: ignore[union-attr]


def test_a_matrix_pair_py310_pass_py311_fail_is_broken_in_that_leg_not_flaky() -> None:
    # The py311 leg's report is the corpus file (test_merge fails with a NameError); the py310 leg's
    # is the same report with the test passing.
    failing = (CORPUS / "weiwei-junitparser/tests/data/pytest_error.xml").read_bytes()
    passing = failing.replace(b"""<failure message="NameError: name 'file' is not defined" />""", b"")
    assert passing != failing
    tests = one_run({"pytest-results-py310": passing, "pytest-results-py311": failing})
    (merge,) = tests.values()
    assert {o.context for o in merge} == {"py3.10", "py3.11"}
    result = verdict(merge)
    assert result.status is Status.BROKEN
    assert result.reason.startswith("py3.11: failing on the last 1 executions across 1 commit")
    assert result.evidence[0].to_json()["context"] == "py3.11"
    assert result.confidence == pytest.approx(1 - 1 / 3)  # a flaky test passing once: p ~ Beta(1, 2)
    contexts = result.evidence[-1].to_json()["contexts"]
    assert [(c["context"], c["status"]) for c in contexts] == [  # type: ignore[index]
        ("py3.10", "insufficient_data"),
        ("py3.11", "broken"),
    ]
    # Without contexts (both reports merged into one run attempt, as before) it looked flaky:
    merged = [replace(o, context=None) for o in merge]
    assert verdict(merged).status is Status.FLAKY


def test_a_surefire_test_failing_every_execution_of_its_only_run_is_broken() -> None:
    # maven-surefire 3.0.2 with rerunFailingTestsCount=3: failed, and failed each of its 3 reruns
    data = (GH237 / "TEST-io.olamy.AlwaysFailTest.xml").read_bytes()
    (always,) = one_run({"surefire-reports": data}).values()
    assert [o.outcome.value for o in always] == ["failed"] * 4
    result = verdict(always)
    assert result.status is Status.BROKEN
    assert result.confidence == pytest.approx(1 - 1 / 5)  # E[p^4] under a uniform prior is 1/5
    # its sibling report: failed twice, then passed on the third try: flaky
    data = (GH237 / "TEST-io.olamy.FlakyTest.xml").read_bytes()
    (flaky,) = one_run({"surefire-reports": data}).values()
    assert verdict(flaky).status is Status.FLAKY
