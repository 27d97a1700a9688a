"""Builders of JUnit XML reports and artifact ZIPs for tests, the fake GitHub and benchmarks."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from flakeguard.model import Outcome


@dataclass(frozen=True, slots=True)
class CaseSpec:
    """One <testcase> to write. `flaky_failures` adds Surefire <flakyFailure> children."""

    classname: str
    name: str
    outcome: Outcome = Outcome.PASSED
    time_s: float = 0.01
    file: str | None = None
    line: int | None = None
    message: str = "assertion failed"
    details: str = "Traceback (most recent call last):\n  ...\nAssertionError"
    flaky_failures: int = 0


@dataclass(slots=True)
class SuiteSpec:
    name: str
    cases: list[CaseSpec] = field(default_factory=list)


def _case_xml(case: CaseSpec) -> str:
    attrs = f"classname={quoteattr(case.classname)} name={quoteattr(case.name)} time=\"{case.time_s:.3f}\""
    if case.file is not None:
        attrs += f" file={quoteattr(case.file)}"
    if case.line is not None:
        attrs += f' line="{case.line}"'
    body = ""
    msg = quoteattr(case.message)
    details = case.details.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if case.outcome is Outcome.FAILED:
        body = f"<failure message={msg} type=\"AssertionError\">{details}</failure>"
    elif case.outcome is Outcome.ERROR:
        body = f"<error message={msg} type=\"RuntimeError\">{details}</error>"
    elif case.outcome is Outcome.SKIPPED:
        body = "<skipped/>"
    for _ in range(case.flaky_failures):
        body += (
            f"<flakyFailure message={msg} type=\"AssertionError\">"
            f"<stackTrace>{details}</stackTrace></flakyFailure>"
        )
    return f"    <testcase {attrs}>{body}</testcase>\n" if body else f"    <testcase {attrs}/>\n"


def junit_xml(suites: Iterable[SuiteSpec]) -> bytes:
    """A `<testsuites>` document with the given suites, with correct declared counts."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n']
    for suite in suites:
        failures = sum(c.outcome is Outcome.FAILED for c in suite.cases)
        errors = sum(c.outcome is Outcome.ERROR for c in suite.cases)
        skipped = sum(c.outcome is Outcome.SKIPPED for c in suite.cases)
        parts.append(
            f"  <testsuite name={quoteattr(suite.name)} tests=\"{len(suite.cases)}\" failures=\"{failures}\""
            f" errors=\"{errors}\" skipped=\"{skipped}\">\n"
        )
        parts.extend(_case_xml(c) for c in suite.cases)
        parts.append("  </testsuite>\n")
    parts.append("</testsuites>\n")
    return "".join(parts).encode()


def zip_members(members: dict[str, bytes]) -> bytes:
    """A ZIP archive (as GitHub serves artifacts) holding the given members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
