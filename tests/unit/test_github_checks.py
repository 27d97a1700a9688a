from __future__ import annotations

from flakeguard.github.checks import (
    SUMMARY_LIMIT,
    CheckRunFailure,
    CheckRunReport,
    batched,
    build_check_run,
    conclusion_for,
    render_actions,
    render_annotations,
    render_summary,
)


def f(name: str, **kw: object) -> CheckRunFailure:
    return CheckRunFailure(name, "tests/test_x.py", 3, "boom", **kw)  # type: ignore[arg-type]


def test_conclusion_rule() -> None:
    assert conclusion_for(CheckRunReport([])) == "success"
    assert conclusion_for(CheckRunReport([f("a", known_flaky=True), f("b", quarantined=True)])) == "neutral"
    assert conclusion_for(CheckRunReport([f("a", known_flaky=True), f("b")])) == "failure"


def test_summary_marks_each_failure() -> None:
    s = render_summary(
        CheckRunReport(
            [f("new_one"), f("flaky_one", known_flaky=True, score=0.62, evidence_text="failed 3 of 10 runs")],
            total_tests=10,
            passed=8,
            quarantined_tests=["q1"],
        )
    )
    assert "new failure" in s and "`new_one`" in s
    assert "known flaky" in s and "0.62" in s and "failed 3 of 10 runs" in s
    assert "10 tests, 8 passed, 2 failed" in s and "Quarantined tests (1)" in s and "`q1`" in s
    assert s.index("new_one") < s.index("flaky_one")


def test_summary_truncation_says_what_was_left_out() -> None:
    failures = [CheckRunFailure(f"test_{i}_" + "é" * 100, message="x" * 300) for i in range(3000)]
    s = render_summary(CheckRunReport(failures, quarantined_tests=[f"q{i}" for i in range(50)]))
    assert len(s) <= SUMMARY_LIMIT and len(s.encode()) <= SUMMARY_LIMIT
    assert "failing tests" in s.split("truncated")[1] and "50 quarantined tests" in s
    shown = s.count("| ❌ new failure |")
    assert f"{3000 - shown} failing tests" in s


def test_markdown_table_cells_are_escaped() -> None:
    s = render_summary(CheckRunReport([CheckRunFailure("a|b", message="line1\nline2 | x")]))
    row = next(line for line in s.splitlines() if "a\\|b" in line)
    assert "line1 line2 \\| x" in row


def test_annotations_batching_and_levels() -> None:
    failures = [f(f"t{i}", known_flaky=i % 2 == 0) for i in range(120)] + [CheckRunFailure("nofile")]
    anns = render_annotations(CheckRunReport(failures))
    assert len(anns) == 120
    assert [len(b) for b in batched(anns)] == [50, 50, 20]
    assert anns[0]["annotation_level"] == "failure" and anns[-1]["annotation_level"] == "warning"
    body, rest = build_check_run(CheckRunReport(failures), "a" * 40)
    assert len(body["output"]["annotations"]) == 50 and [len(b) for b in rest] == [50, 20]


def test_actions_within_limits() -> None:
    actions = render_actions(CheckRunReport([f("a", known_flaky=True)]))
    assert [a["label"] for a in actions] == ["Quarantine flaky", "Re-analyze"]
    for a in actions:
        assert len(a["label"]) <= 20 and len(a["description"]) <= 40 and len(a["identifier"]) <= 20
    assert [a["label"] for a in render_actions(CheckRunReport([f("a")]))] == ["Re-analyze"]
