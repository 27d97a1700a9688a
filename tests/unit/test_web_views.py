"""The dashboard's pure parts: failure signatures, evidence in words, filters/sorting/paging, the
history grouped by commit, the replayed trend, SVG charts and formatting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flakeguard.analysis import AnalysisConfig, Observation
from flakeguard.model import Outcome
from flakeguard.pipeline.report import ReportRow
from flakeguard.web.charts import commit_history, outcome_strip, sparkline, trend_chart
from flakeguard.web.evidence import describe_evidence, reason_of
from flakeguard.web.pages import github_web_url
from flakeguard.web.queries import ExecutionRow
from flakeguard.web.render import duration
from flakeguard.web.signatures import NO_MESSAGE, group_failures, signature_of
from flakeguard.web.trend import flaky_counts, trend_points
from flakeguard.web.views import Page, TestFilter, group_by_commit

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def row(name: str, status: str = "healthy", **values: object) -> ReportRow:
    fields: dict[str, object] = dict(
        test_case_id=hash(name) % 10_000,
        key=f"suite\x1ftests.T\x1f{name}\x1f",
        suite="suite",
        classname="tests.T",
        name=name,
        file=None,
        executions=10,
        failures=0,
        failure_rate=0.0,
        score=0.0,
        status=status,
        confidence=0.5,
        evidence={"reason": "", "items": []},
        quarantined=False,
        last_failure_at=None,
        impact=0.0,
        analysed=True,
    )
    fields.update(values)
    return ReportRow(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- signatures


def test_the_same_failure_with_other_numbers_ids_and_times_has_one_signature() -> None:
    a = signature_of("TimeoutError: waited 5003 ms for #cart at 2026-11-01T10:00:00Z (id 3f2a9c1b7e)")
    b = signature_of("TimeoutError: waited 4100 ms for #cart at 2026-11-02T11:30:12Z (id 91aa2c3d4f)\nstack")
    assert a == b == "TimeoutError: waited <n> ms for #cart at <ts> (id <hex>)"
    assert signature_of("AssertionError: expected True") != a
    assert signature_of(None) == signature_of("   ") == NO_MESSAGE


def test_failures_are_grouped_most_frequent_first_with_the_newest_sample_and_first_and_last_seen() -> None:
    failures = [
        ("boom 1", T0),
        ("other", T0 + timedelta(hours=1)),
        ("boom 2", T0 + timedelta(hours=2)),
        (None, T0 + timedelta(hours=3)),
    ]
    groups = group_failures(failures)
    assert [(g.signature, g.count) for g in groups] == [("boom <n>", 2), (NO_MESSAGE, 1), ("other", 1)]
    assert groups[0].sample == "boom 2"
    assert (groups[0].first_seen, groups[0].last_seen) == (T0, T0 + timedelta(hours=2))


# ------------------------------------------------------------------------------------ evidence


def test_every_kind_of_evidence_reads_as_a_sentence() -> None:
    evidence = {
        "reason": "passed and failed on the same commit",
        "items": [
            {"kind": "same_sha_pass_and_fail", "head_sha": "abcdef123456", "scope": "in_run_retry",
             "branch": "main", "passes": 1, "failures": 2, "runs": [7], "last_failure_at": None},
            {"kind": "same_sha_pass_and_fail", "head_sha": "abcdef123456", "scope": "rerun_attempt",
             "branch": None, "passes": 1, "failures": 1, "runs": [8], "last_failure_at": None},
            {"kind": "protected_branch_failure_rate", "failures": 3, "commits": 20, "failure_rate": 0.15,
             "threshold": 0.1, "held_by_hysteresis": False},
            {"kind": "failing_since", "since": "2026-11-01T12:00:00+00:00", "failing_executions": 4,
             "commits": ["a", "b"], "last_pass_at": None, "chance_if_flaky": 0.001},
            {"kind": "infrastructure_runs_excluded", "runs": [1, 2], "executions": 2, "failures": 2},
            {"kind": "regression_episodes", "episodes": 1, "failing_executions": 3,
             "last_episode_end": "2026-11-02T00:00:00+00:00"},
            {"kind": "something_new"},
        ],
    }  # fmt: skip
    sentences = describe_evidence(evidence)
    assert sentences == [
        "Failed twice and passed once within the same run attempt (retries) of commit abcdef1 on main.",
        "Failed, then passed when run 8 was re-run, on the same code (commit abcdef1).",
        "Failed on 3 of 20 commits on protected branches (15%), at or above the 10% threshold.",
        "Failed every execution since 2026-11-01 12:00 UTC (4 executions over 2 commits); never passed in"
        " the window. A flaky test would do this with probability 0.001.",
        "Ignored 2 executions in 2 runs where most tests failed (infrastructure failures).",
        "1 regression episode(s) (3 failing executions across commits, fixed by 2026-11-02 00:00 UTC) are"
        " not counted as flakiness.",
        "Evidence of kind something_new.",
    ]
    assert reason_of(evidence) == "passed and failed on the same commit"
    assert describe_evidence(None) == [] and reason_of("garbage") == ""


# ------------------------------------------------------------------------- filters, sort, pages


def test_a_hostile_query_string_falls_back_to_the_defaults() -> None:
    f = TestFilter.parse(
        {
            "status": "<x>",
            "quarantine": "maybe",
            "sort": "1;drop",
            "page": "-4",
            "per_page": "9999",
            "q": " a  b ",
        }
    )
    assert f == TestFilter(q="a b")
    assert TestFilter.parse({"page": "x", "per_page": "100"}).per_page == 100


def test_pages_count_what_matches_and_a_page_past_the_end_is_the_last() -> None:
    rows = [row(f"test_{i}") for i in range(25)]
    page = Page.of(rows, 60, TestFilter(page=2, per_page=25))
    assert (page.page, page.pages, page.first_rank) == (2, 3, 26)
    assert Page.of(rows, 60, TestFilter(page=99, per_page=25)).page == 3
    assert Page.of([], 0, TestFilter()).pages == 1


def test_a_header_click_sorts_by_its_column_or_flips_the_direction() -> None:
    f = TestFilter.parse({"sort": "name"})
    assert f.sort_query("name") == {"sort": "name", "order": "desc"}
    assert f.sort_query("score") == {"sort": "score"}  # descending first: the natural direction
    assert f.aria_sort("name") == "ascending" and f.aria_sort("score") == "none"
    assert TestFilter().sort_query("rank") == {"order": "desc"}
    assert TestFilter(status="flaky", page=3).query(page=4) == {"status": "flaky", "page": "4"}


# --------------------------------------------------------------------------------- the history


def execution(run_id: int, attempt: int, ordinal: int, outcome: str, sha: str, at: datetime) -> ExecutionRow:
    return ExecutionRow(outcome, ordinal, 0.1, None, run_id, attempt, sha, "main", at)


def test_the_history_groups_runs_reruns_and_retries_by_commit() -> None:
    newest_first = [
        execution(3, 1, 0, "passed", "c3", T0 + timedelta(hours=3)),
        execution(2, 2, 0, "passed", "c2", T0 + timedelta(hours=2)),  # re-run of run 2
        execution(2, 1, 1, "failed", "c2", T0 + timedelta(hours=1)),  # in-run retry
        execution(2, 1, 0, "failed", "c2", T0 + timedelta(hours=1)),
        execution(1, 1, 0, "passed", "c2", T0),  # an older run of the same commit
    ]
    groups = group_by_commit(newest_first)
    assert [g.head_sha for g in groups] == ["c3", "c2"]
    c2 = groups[1]
    assert [(a.run_id, a.run_attempt) for a in c2.attempts] == [(1, 1), (2, 1), (2, 2)]
    assert [e.ordinal for e in c2.attempts[1].executions] == [0, 1]
    assert c2.flaky_here and not groups[0].flaky_here
    assert c2.label() == "commit c2 on main, 2 runs, 1 re-run, 2 failed, 2 passed"
    assert (c2.newest.run_id, c2.newest.run_attempt) == (2, 2)


def test_the_history_markup_marks_retries_and_reruns_and_escapes_branch_names() -> None:
    executions = [
        ExecutionRow("passed", 0, 0.1, None, 2, 2, "c2", "<b>x</b>", T0 + timedelta(hours=2)),
        ExecutionRow("passed", 1, 0.1, None, 2, 1, "c2", "<b>x</b>", T0 + timedelta(hours=1)),
        ExecutionRow("failed", 0, 0.1, None, 2, 1, "c2", "<b>x</b>", T0 + timedelta(hours=1)),
    ]
    html = commit_history(group_by_commit(executions), lambda run, attempt: f"/runs/{run}/attempts/{attempt}")
    assert html.count('<li class="commit mixed">') == 1
    assert (
        '<i class="c o-fail"></i><i class="c o-pass retry"></i><b class="rerun">↻</b><i class="c o-pass">'
        in html
    )
    assert 'href="/runs/2/attempts/2"' in html  # the newest attempt of the commit
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "run 2: failed, passed (retry 1); run 2 re-run 2: passed" in html


# ------------------------------------------------------------------------------------ the trend


def test_the_trend_replays_the_analysis_at_each_point() -> None:
    config = AnalysisConfig()
    retries = [
        Observation(Outcome.PASSED, T0 + timedelta(days=d), f"sha{d}", "main", run_id=d) for d in range(10)
    ] + [
        Observation(Outcome.FAILED, T0 + timedelta(days=10), "sha10", "main", run_id=10),
        Observation(Outcome.PASSED, T0 + timedelta(days=10), "sha10", "main", run_id=10, ordinal=1),
    ]
    points = [T0 + timedelta(days=d) for d in (5, 9, 11, 20)]
    assert flaky_counts({1: retries}, config, points) == [0, 0, 1, 1]
    assert flaky_counts({}, config, points) == [0, 0, 0, 0]
    assert trend_points(T0, days=4, step_days=2) == [T0 - timedelta(days=4), T0 - timedelta(days=2), T0]


# ------------------------------------------------------------------------- charts, formatting


def test_charts_are_labelled_svg_and_escape_their_labels() -> None:
    strip = outcome_strip(["failed", "passed", "skipped"])
    assert strip.startswith("<svg") and 'role="img"' in strip
    assert 'aria-label="Last 3 executions, newest first: 1 failed"' in strip
    assert strip.count("<rect") == 3 and 'height="14" class="o-fail"' in strip  # failures are taller
    assert "no executions" in outcome_strip([])
    line = sparkline([0, 2, 1], 'flaky <"trend">')
    assert line.count("<circle") == 1 and "&lt;&#34;trend&#34;&gt;" in line and '<"trend">' not in line
    chart = trend_chart([(T0, 0), (T0 + timedelta(days=2), 3)], "flaky")
    assert ">Nov 01<" in chart and ">Nov 03<" in chart and ">3<" in chart


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (0, "0 s"), (0.25, "0.2 s"), (42, "42 s"), (200, "3 min 20 s"), (3900, "1 h 05 min")],
)
def test_durations_read_like_a_person_writes_them(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_links_to_github_pages_follow_the_api_url() -> None:
    assert github_web_url("https://api.github.com") == "https://github.com"
    assert github_web_url("https://ghe.example.com/api/v3/") == "https://ghe.example.com"
    assert github_web_url("http://127.0.0.1:8081") == "https://github.com"
