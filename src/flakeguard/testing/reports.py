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
    attrs = f'classname={quoteattr(case.classname)} name={quoteattr(case.name)} time="{case.time_s:.3f}"'
    if case.file is not None:
        attrs += f" file={quoteattr(case.file)}"
    if case.line is not None:
        attrs += f' line="{case.line}"'
    body = ""
    msg = quoteattr(case.message)
    details = case.details.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if case.outcome is Outcome.FAILED:
        body = f'<failure message={msg} type="AssertionError">{details}</failure>'
    elif case.outcome is Outcome.ERROR:
        body = f'<error message={msg} type="RuntimeError">{details}</error>'
    elif case.outcome is Outcome.SKIPPED:
        body = "<skipped/>"
    for _ in range(case.flaky_failures):
        body += (
            f'<flakyFailure message={msg} type="AssertionError">'
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
            f'  <testsuite name={quoteattr(suite.name)} tests="{len(suite.cases)}" failures="{failures}"'
            f' errors="{errors}" skipped="{skipped}">\n'
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


def write_large_report(
    out: io.RawIOBase | io.BufferedIOBase | typing.BinaryIO,
    cases: int,
    *,
    failure_rate: float = 0.05,
    cases_per_suite: int = 250,
    seed: int = 1,
) -> int:
    """Stream a realistic Surefire-style report with `cases` testcases to `out`; the bytes written.

    Names look like real Java/Kotlin suites (package.Class / method[param]), `failure_rate` of the
    cases fail with a ~64-frame stack trace, one in 10 has system-out (~100 MB per 200,000 cases).
    Deterministic for a seed. Memory stays constant whatever `cases` is.
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
            verb, noun = _VERBS[k % len(_VERBS)].title(), _NOUNS[(k // 3) % len(_NOUNS)]
            method = f"should{verb}{noun}{_WHEN[k % len(_WHEN)]}"
            if k % 4 == 0:
                method += f"[{k % 17}]"
            attrs = f'name="{method}" classname="{cls}" time="{rng.random() * 2:.3f}"'
            if fail_every and k % fail_every == 7 % fail_every:
                parts.append(
                    f"    <testcase {attrs}>\n"
                    '      <failure message="expected: &lt;200&gt; but was: &lt;500&gt;"'
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


# --- hostile archives (fault tests) --------------------------------------------------------------


def _zip_entry(
    name: bytes, data: bytes, *, method: int, size: int, crc: int, offset: int
) -> tuple[bytes, bytes]:
    """(local header + data, central directory record) for one member; sizes as given (may lie)."""
    import struct

    local = (
        struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), size, len(name), 0)
        + name
    )
    central = (
        struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            method,
            0,
            0,
            crc,
            len(data),
            size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        + name
    )
    return local + data, central


def _zip_assemble(parts: list[tuple[bytes, bytes]]) -> bytes:
    import struct

    body = b"".join(p[0] for p in parts)
    directory = b"".join(p[1] for p in parts)
    count = min(len(parts), 0xFFFF)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(body), 0)
    return body + directory + end


def zip_bomb(member: str = "bomb.xml", uncompressed_bytes: int = 1 << 30) -> bytes:
    """A ZIP with one deflated member that inflates to `uncompressed_bytes` of a valid-looking
    JUnit document (a long run of identical testcases), built in well under a second: one compressed
    1 MiB block is repeated (full flushes make blocks independent). The CRC is not computed (a reader
    that stops at its limits never reaches it)."""
    import zlib

    head = b'<?xml version="1.0"?>\n<testsuites><testsuite name="bomb">'
    unit = b'<testcase classname="b" name="t"/>'
    block = unit * ((1 << 20) // len(unit))
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(head) + comp.flush(zlib.Z_FULL_FLUSH)
    repeated = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    blocks = max((uncompressed_bytes - len(head)) // len(block), 1)
    data = first + repeated * blocks + comp.flush()
    size = len(head) + blocks * len(block)
    return _zip_assemble([_zip_entry(member.encode(), data, method=8, size=size, crc=0, offset=0)])


def zip_many_members(count: int, data: bytes = b"<testsuites/>") -> bytes:
    """A ZIP with `count` tiny stored members `r<i>.xml` (fast: no zipfile machinery)."""
    import zlib

    crc = zlib.crc32(data)
    parts: list[tuple[bytes, bytes]] = []
    offset = 0
    for i in range(count):
        part = _zip_entry(f"r{i}.xml".encode(), data, method=0, size=len(data), crc=crc, offset=offset)
        parts.append(part)
        offset += len(part[0])
    return _zip_assemble(parts)
