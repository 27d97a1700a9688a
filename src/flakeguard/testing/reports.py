"""Builders of JUnit XML reports and artifact ZIPs for tests, the fake GitHub and benchmarks."""

from __future__ import annotations

import io
import typing
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


# --- large generated reports (benchmarks, memory tests) ------------------------------------------

_PACKAGES = ("payments", "ledger", "accounts", "search", "auth", "billing", "catalog", "shipping", "notify")
_LAYERS = ("service", "api", "repository", "domain", "client", "worker")
_NOUNS = ("Invoice", "Ledger", "Account", "Order", "Session", "Token", "Refund", "Cart", "Shipment", "User")
_VERBS = ("create", "update", "reject", "reconcile", "expire", "refresh", "cancel", "retry", "validate")
_WHEN = ("WhenInputIsEmpty", "WhenLimitExceeded", "WithConcurrentWriters", "AfterTimeout", "OnRetry", "")


def _trace(rng_value: int, depth: int = 64) -> str:
    frames = [
        f"\tat com.example.{_PACKAGES[(rng_value + i) % len(_PACKAGES)]}.{_LAYERS[i % len(_LAYERS)]}."
        f"{_NOUNS[(rng_value * 7 + i) % len(_NOUNS)]}{_LAYERS[(i + 1) % len(_LAYERS)].title()}"
        f".{_VERBS[(rng_value + i * 3) % len(_VERBS)]}({_NOUNS[i % len(_NOUNS)]}.java:{40 + (i * 37) % 900})"
        for i in range(depth)
    ]
    return "org.opentest4j.AssertionFailedError: expected: &lt;200&gt; but was: &lt;500&gt;\n" + "\n".join(
        frames
    )


def write_large_report(out: io.RawIOBase | io.BufferedIOBase | typing.BinaryIO, cases: int, *,
                       failure_rate: float = 0.05, cases_per_suite: int = 250, seed: int = 1) -> int:
    """Stream a realistic Surefire-style report with `cases` testcases to `out`; the bytes written.

    Names look like real Java/Kotlin suites (package.Class / method[param]), `failure_rate` of the
    cases fail with a ~64-frame stack trace, one in 10 has system-out (~100 MB per 200,000 cases). Deterministic for a seed.
    Memory stays constant whatever `cases` is.
    """
    import random

    rng = random.Random(seed)
    written = 0

    def emit(text: str) -> None:
        nonlocal written
        data = text.encode()
        out.write(data)
        written += len(data)

    emit('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="generated">\n')
    fail_every = round(1 / failure_rate) if failure_rate > 0 else 0
    done = 0
    suite_no = 0
    while done < cases:
        n = min(cases_per_suite, cases - done)
        pkg = _PACKAGES[suite_no % len(_PACKAGES)]
        layer = _LAYERS[(suite_no // len(_PACKAGES)) % len(_LAYERS)]
        cls = f"com.example.{pkg}.{layer}.{_NOUNS[suite_no % len(_NOUNS)]}{layer.title()}Test{suite_no}"
        emit(
            f'  <testsuite name="{cls}" tests="{n}" failures="0" errors="0" skipped="0" '
            f'time="12.345" timestamp="2024-05-01T12:00:00" hostname="fv-az{suite_no % 999}-1">\n'
        )
        parts: list[str] = []
        for i in range(n):
            k = done + i
            method = f"should{_VERBS[k % len(_VERBS)].title()}{_NOUNS[(k // 3) % len(_NOUNS)]}{_WHEN[k % len(_WHEN)]}"
            if k % 4 == 0:
                method += f"[{k % 17}]"
            attrs = f'name="{method}" classname="{cls}" time="{rng.random() * 2:.3f}"'
            if fail_every and k % fail_every == 7 % fail_every:
                parts.append(
                    f'    <testcase {attrs}>\n      <failure message="expected: &lt;200&gt; but was: &lt;500&gt;"'
                    f' type="org.opentest4j.AssertionFailedError">{_trace(k)}</failure>\n    </testcase>\n'
                )
            elif k % 10 == 3:
                log = "".join(
                    f"2024-05-01 12:00:{j:02d}.{k % 1000:03d} DEBUG [{cls}] step {j} of {method} ok\n"
                    for j in range(9)
                )
                parts.append(
                    f"    <testcase {attrs}>\n      <system-out><![CDATA[{log}]]></system-out>\n"
                    "    </testcase>\n"
                )
            else:
                parts.append(f"    <testcase {attrs}/>\n")
        parts.append("  </testsuite>\n")
        emit("".join(parts))
        done += n
        suite_no += 1
    emit("</testsuites>\n")
    return written
