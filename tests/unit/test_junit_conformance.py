"""Conformance of the JUnit parser over ../shared/junit-corpus (273 real reports, ~40 tools).

For every manifest entry the parsed counts must equal `expected_from_source` where the upstream
repository states counts, else `computed`. Counting (manifest `counting_rules`): one test per
<testcase> element wherever it appears; its verdict is the final execution (error > failure >
skipped > passed, skip-like `status=`/`result=` only without a result child); Surefire flaky*/rerun*
elements are extra executions of the same test (`rerun_elements`), a test whose final execution
passed after flaky failures counts in `flaky_passed`. Source shapes: `cases` (tests, failures,
errors, skipped, passed); summaries (`total` = tests, `failed` = failures + errors); golden files'
declared attributes (`root`, else `top_suites_sum`).

Every disagreement is in DEVIATIONS with the counts we produce and why; a deviation that stops
deviating fails too, so the table stays true.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from flakeguard.junit import JUnitError, iter_testcases
from flakeguard.model import Outcome

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "junit-corpus"

if not (CORPUS / "manifest.json").exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(
            f"JUnit conformance corpus missing at {CORPUS} (CI needs ../shared beside the clone)"
        )
    pytest.skip(f"JUnit corpus not found at {CORPUS}", allow_module_level=True)

MANIFEST: dict[str, Any] = json.loads((CORPUS / "manifest.json").read_text())
ENTRIES: list[dict[str, Any]] = MANIFEST["files"]

_MERGED_RETRIES = (
    "the upstream parser (mikepenz, checkRetries=true) merges repeated <testcase> elements of one "
    "test into one result; we keep each as an execution (ordinal 0, 1, ...) because a test that failed "
    "and then passed in one run is the flakiness evidence we exist for"
)
_GOTESTSUM_MAIN = (
    "gotestsum declares tests/errors on the root including a package-level error (TestMain of the "
    "badmain package exiting); in the document that failure is one <testcase> with <failure>, and we "
    "count elements, not declared attributes"
)

# path -> (the counts we produce, for the keys that differ from the expectation; why)
DEVIATIONS: dict[str, tuple[dict[str, int], str]] = {
    "enricomi-publish-unit-test-result-action/python/test/files/junit-xml/no-attributes.xml": (
        {"tests": 4, "failures": 1, "errors": 1, "skipped": 1, "passed": 1},
        "EnricoMi drops <testcase> elements without a name; we keep every testcase (its key is built "
        "from the empty name, so it is still a stable identity)",
    ),
    "gotestyourself-gotestsum/internal/junitxml/testdata/junitxml-report-hide-skipped-tests.golden": (
        {"tests": 55, "errors": 0},
        _GOTESTSUM_MAIN,
    ),
    "gotestyourself-gotestsum/internal/junitxml/testdata/junitxml-report-skip-empty.golden": (
        {"tests": 60, "errors": 0},
        _GOTESTSUM_MAIN,
    ),
    "gotestyourself-gotestsum/internal/junitxml/testdata/junitxml-report.golden": (
        {"tests": 60, "errors": 0},
        _GOTESTSUM_MAIN,
    ),
    "mikepenz-action-junit-report/test_results/junit-server-test/report.xml": (
        {"tests": 4, "failed": 1},
        _MERGED_RETRIES,
    ),
    "mikepenz-action-junit-report/test_results/flaky_retries/flaky_all_failures.xml": (
        {"tests": 3, "failed": 3},
        _MERGED_RETRIES,
    ),
    "mikepenz-action-junit-report/test_results/flaky_retries/flaky_success_first.xml": (
        {"tests": 3, "failed": 2},
        _MERGED_RETRIES,
    ),
    "mikepenz-action-junit-report/test_results/flaky_retries/flaky_with_classname_file.xml": (
        {"tests": 5, "failed": 2},
        _MERGED_RETRIES,
    ),
    "mikepenz-action-junit-report/test_results/issues/testFailedDisabled.xml": (
        {"failed": 1, "skipped": 0},
        'status="disabled" on a testcase that has a <failure> child: mikepenz lets the status win; '
        "the counting rules (and we) let a result child win — a disabled test that reports a failure "
        "did run and fail",
    ),
}


def _refused(entry: dict[str, Any]) -> bool:
    """Malformed, XXE/DTD and non-JUnit files: the parser must raise JUnitError."""
    return bool(entry.get("parse_error")) or entry.get("root") not in ("testsuites", "testsuite")


def _expected(entry: dict[str, Any]) -> dict[str, int]:
    src = entry.get("expected_from_source")
    if entry.get("expected_status") == "source" and src:
        if "cases" in src:
            return {k: src["cases"][k] for k in ("tests", "failures", "errors", "skipped", "passed")}
        if "total" in src or "passed" in src:
            out = {"tests": src["total"]} if "total" in src else {}
            out.update({k: src[k] for k in ("passed", "failed", "skipped") if k in src})
            return out
        declared = src.get("root") or src.get("top_suites_sum")
        if declared is not None:
            return {k: v for k, v in declared.items() if k in ("tests", "failures", "errors", "skipped")}
    return dict(entry["computed"]["cases"])


_BUCKET = {
    Outcome.PASSED: "passed",
    Outcome.FAILED: "failures",
    Outcome.ERROR: "errors",
    Outcome.SKIPPED: "skipped",
}


def _count(path: Path) -> dict[str, int]:
    counts = dict.fromkeys(
        ("tests", "failures", "errors", "skipped", "passed", "flaky_passed", "rerun_elements"), 0
    )
    with path.open("rb") as stream:
        for group in iter_testcases(stream, source=str(path)):
            final = group[-1]
            counts["tests"] += 1
            counts[_BUCKET[final.outcome]] += 1
            counts["rerun_elements"] += len(group) - 1
            if final.outcome is Outcome.PASSED and len(group) > 1:
                counts["flaky_passed"] += 1
    counts["failed"] = counts["failures"] + counts["errors"]
    return counts


def test_corpus_is_complete() -> None:
    assert len(ENTRIES) == 273
    for path in DEVIATIONS:
        assert any(e["path"] == path for e in ENTRIES), f"stale deviation entry {path}"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["path"] for e in ENTRIES])
def test_conformance(entry: dict[str, Any]) -> None:
    path = CORPUS / entry["path"]
    if _refused(entry):
        with pytest.raises(JUnitError) as caught:
            _count(path)
        assert str(path) in str(caught.value)
        return
    got = _count(path)
    expected = _expected(entry)
    differing = {k: got[k] for k, v in expected.items() if got[k] != v}
    if entry["path"] in DEVIATIONS:
        ours, reason = DEVIATIONS[entry["path"]]
        assert differing, f"no longer deviates ({reason!r}): remove it from DEVIATIONS"
        assert differing == ours, f"deviation changed: {differing} vs recorded {ours}"
    else:
        assert not differing, f"expected {expected}, parsed {got}"
    # Independently of the source: our counts always follow the manifest's counting rules.
    computed = entry["computed"]["cases"]
    assert {k: got[k] for k in computed} == computed


def test_xxe_files_are_refused_as_dtd() -> None:
    xxe = [e for e in ENTRIES if {"doctype", "entity_declarations"} & set(e["flags"]) or "XXE" in e["tool"]]
    assert xxe
    for entry in xxe:
        with pytest.raises(JUnitError) as caught:
            _count(CORPUS / entry["path"])
        assert caught.value.code == "dtd_forbidden"
