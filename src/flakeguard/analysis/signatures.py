"""Failure signatures: a normalized fingerprint of a failure's message and top stack frames.

Pure functions; the pipeline calls them per execution (message and stack text in, signature out) and
per run attempt (failing tests per signature in, infrastructure signatures out). See
docs/ALGORITHMS.md, "Failure signatures".

Normalization keeps what identifies *a way of failing* and drops what changes from one occurrence to
the next:

* the headline is the first non-empty line of the message (else of the details); the top frames are
  the innermost `FRAMES` stack frames of the test's own code, read from the details in the common
  formats (Python, pytest, Java/Kotlin/Scala, JavaScript, .NET, Go, Ruby). Frames of test frameworks,
  runners, the standard library and installed packages are dropped while a frame of the project is left;
* ISO timestamps, clock times, UUIDs, memory addresses, long hex ids, temporary directories and CI
  workspace prefixes are replaced by placeholders, then every remaining number by `<n>` (line
  numbers move when code above them changes; ports, durations, counts and ids vary per occurrence);
* whitespace runs become one space.

The signature is 16 hex digits of BLAKE2b over the normalized headline and frames: stable across
runs, machines and Python versions (no `hash()`), short enough to store per execution.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flakeguard.analysis.model import AnalysisConfig, FailureGroup, Observation

FRAMES = 3  # innermost project frames that are part of a signature
MAX_HEADLINE = 200  # characters of the normalized headline kept
_MAX_SCAN = 64 * 1024  # characters of the details scanned for frames

_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"),
        "<ts>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<addr>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (
        re.compile(
            r"(?:/tmp|/private/var/folders|/var/folders|/var/tmp|[A-Za-z]:[\\/](?:Users|Windows)[\\/][^\\/\s]*"
            r"(?:[\\/]AppData[\\/]Local)?[\\/]Temp)[\\/][^\s\"'\]\),:]*"
        ),
        "<tmp>",
    ),
    (
        re.compile(
            r"(?:/home/runner/work|/Users/runner/work|/__w|[A-Za-z]:[\\/]a)[\\/][^\\/\s]+[\\/][^\\/\s]+[\\/]"
            r"|/builds/[^/\s]+/[^/\s]+/|/github/workspace/"
        ),
        "",
    ),
    (re.compile(r"\d+(?:[.,]\d+)*"), "<n>"),
)
_SPACES = re.compile(r"\s+")
_DEFAULT = AnalysisConfig()

# Stack frames. Python and pytest list the outermost call first; the others the innermost first.
_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+, in (?P<func>\S+)')
_PYTEST_FRAME = re.compile(r"^(?P<file>[^\s:]+\.py):\d+: in (?P<func>\S+)")
_JVM_FRAME = re.compile(
    r"^\s*at (?P<func>[\w$.<>/]+)"
    r"\((?:[\w$.-]+\.(?:java|kt|scala|groovy|clj)(?::\d+)?|Native Method|Unknown Source)\)"
)
_DOTNET_FRAME = re.compile(r"^\s*at (?P<func>[\w.`<>\[\],]+)\([^)]*\)(?: in (?P<file>.+?):line \d+)?\s*$")
_JS_FRAME = re.compile(
    r"^\s*at (?:(?:async )?(?P<func>[^\s(]+(?: \[as [^\]]+\])?) \()?(?P<file>[^\s()]+?):\d+(?::\d+)?\)?\s*$"
)
_GO_FRAME = re.compile(r"^\s*(?P<file>[\w./-]+\.go):\d+(?::|\s|$)")
_RUBY_FRAME = re.compile(r"^\s*(?P<file>[\w./-]+\.rb):\d+:in [`'](?P<func>[^'`]+)'")
_OUTERMOST_FIRST = (_PY_FRAME, _PYTEST_FRAME)
_INNERMOST_FIRST = (_JVM_FRAME, _DOTNET_FRAME, _JS_FRAME, _GO_FRAME, _RUBY_FRAME)

# Frames of runners, frameworks, standard libraries and installed packages: not the test's own code.
_LIBRARY_FILE = re.compile(
    r"site-packages|dist-packages|/lib/python\d|/_pytest/|/pluggy/|/unittest/|^<frozen |"
    r"node_modules|^node:|^internal/|/usr/local/go/|/go/pkg/mod/|^testing/|/testing/testing\.go|"
    r"^runtime/|/gems/|/lib/ruby/"
)
_LIBRARY_FUNC = re.compile(
    r"^(?:java|javax|jdk|sun|kotlin|scala|junit|org\.junit|org\.testng|org\.apache\.maven|org\.gradle|"
    r"worker\.org\.gradle|org\.opentest4j|org\.assertj|org\.hamcrest|org\.mockito|System|Microsoft|"
    r"NUnit|Xunit|xunit)[./]"
)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A failure's signature and the normalized text it was computed from."""

    signature: str  # 16 hex digits
    headline: str  # normalized first line of the message, for reports
    frames: tuple[str, ...]  # normalized innermost project frames, innermost first


def normalize_text(text: str) -> str:
    """`text` with its volatile parts replaced (timestamps, ids, addresses, temp paths, numbers)."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return _SPACES.sub(" ", text).strip()


def _is_frame(line: str) -> bool:
    return any(p.match(line) is not None for p in (*_OUTERMOST_FIRST, *_INNERMOST_FIRST))


def _headline(message: str | None, details: str | None) -> str:
    """The first non-empty line of the message, else the first line of the details that is not a
    stack frame, normalized."""
    for text in (message, details):
        if text:
            for line in text[:_MAX_SCAN].splitlines():
                if line.strip() and not _is_frame(line):
                    return normalize_text(line)[:MAX_HEADLINE]
    return ""


def _frame(match: re.Match[str]) -> tuple[str, bool]:
    """(normalized "function (file)", whether it is library code) of one matched frame line."""
    groups = match.groupdict()
    file = (groups.get("file") or "").replace("\\", "/")
    func = groups.get("func") or ""
    library = bool(file and _LIBRARY_FILE.search(file)) or bool(func and _LIBRARY_FUNC.match(func))
    return normalize_text(f"{func} ({file})" if file and func else file or func), library


def top_frames(details: str | None, limit: int = FRAMES) -> tuple[str, ...]:
    """The innermost `limit` frames of the project's own code in a stack trace, innermost first
    (library frames only when the trace has nothing else)."""
    if not details:
        return ()
    outermost_first: list[tuple[str, bool]] = []
    innermost_first: list[tuple[str, bool]] = []
    for line in details[:_MAX_SCAN].splitlines():
        for pattern in _OUTERMOST_FIRST:
            match = pattern.match(line)
            if match is not None:
                outermost_first.append(_frame(match))
                break
        else:
            for pattern in _INNERMOST_FIRST:
                match = pattern.match(line)
                if match is not None:
                    innermost_first.append(_frame(match))
                    break
    frames = innermost_first + outermost_first[::-1]
    own = [frame for frame, library in frames if not library]
    return tuple((own or [frame for frame, _ in frames])[:limit])


def fingerprint(message: str | None, details: str | None) -> Fingerprint | None:
    """The signature of one failure from its message and details (stack trace); None when both are
    empty (nothing to tell failures apart by)."""
    headline = _headline(message, details)
    frames = top_frames(details)
    if not headline and not frames:
        return None
    digest = hashlib.blake2b("\n".join((headline, *frames)).encode("utf-8", "surrogatepass"), digest_size=8)
    return Fingerprint(signature=digest.hexdigest(), headline=headline, frames=frames)


def failure_signature(message: str | None, details: str | None) -> str | None:
    """`fingerprint(...).signature`, or None: what the pipeline stores per failing execution."""
    found = fingerprint(message, details)
    return None if found is None else found.signature


# --------------------------------------------------------------------- infrastructure failures


def infrastructure_signatures(
    failing_tests: Mapping[str, int], tests_in_run: int, config: AnalysisConfig = _DEFAULT
) -> frozenset[str]:
    """The signatures of one run attempt that are infrastructure failures (a dead shard or runner, a
    lost service): each failed at least `config.infra_signature_min_tests` distinct tests and at least
    `config.infra_signature_share` of the run attempt's `tests_in_run` distinct tests, all with the
    same normalized failure.

    `failing_tests`: signature -> number of distinct tests of the run attempt that failed with it.
    Tests failing that way in that run attempt give no evidence against themselves (the pipeline
    sets `Observation.infrastructure` on those executions)."""
    if tests_in_run <= 0:
        return frozenset()
    floor = max(config.infra_signature_min_tests, config.infra_signature_share * tests_in_run)
    return frozenset(sig for sig, count in failing_tests.items() if count >= floor)


def count_failing_tests(failures: Iterable[tuple[str, str | None]]) -> dict[str, int]:
    """Per signature, the distinct tests that failed with it: from (test key, signature) pairs of one
    run attempt's failing executions (pairs without a signature are not counted)."""
    seen: dict[str, set[str]] = {}
    for test, signature in failures:
        if signature is not None:
            seen.setdefault(signature, set()).add(test)
    return {signature: len(tests) for signature, tests in seen.items()}


# ------------------------------------------------------------------------- grouping per test


def group_failures(observations: Iterable[Observation]) -> tuple[FailureGroup, ...]:
    """A test's failures grouped by signature, the group first seen most recently first (so the first
    group is "the newest way this test fails"). Failures without a signature are not grouped."""
    groups: dict[str, list[Any]] = {}  # signature -> [count, first key, first, last key, last, infra]
    for obs in observations:
        signature = obs.signature
        if signature is None or not obs.is_failure:
            continue
        order = (obs.started_at, obs.run_attempt, obs.ordinal)
        group = groups.get(signature)
        if group is None:
            groups[signature] = [1, order, obs, order, obs, int(obs.infrastructure)]
            continue
        group[0] += 1
        group[5] += obs.infrastructure
        if order < group[1]:
            group[1], group[2] = order, obs
        if order >= group[3]:
            group[3], group[4] = order, obs
    result = [
        FailureGroup(
            signature=signature,
            failures=count,
            first_seen_at=first.started_at,
            first_seen_sha=first.head_sha,
            last_seen_at=last.started_at,
            last_seen_sha=last.head_sha,
            infrastructure=infrastructure,
        )
        for signature, (count, _, first, _, last, infrastructure) in groups.items()
    ]
    result.sort(key=lambda g: (g.first_seen_at, g.signature), reverse=True)
    return tuple(result)


def describe_groups(groups: tuple[FailureGroup, ...]) -> str:
    """One line for a report: "3 distinct failures, the newest first seen on 1a2b3c4"."""
    if not groups:
        return "no failure signatures"
    if len(groups) == 1:
        return f"1 distinct failure, first seen on {groups[0].first_seen_sha[:7]}"
    return f"{len(groups)} distinct failures, the newest first seen on {groups[0].first_seen_sha[:7]}"
