"""Streaming, hardened JUnit XML parser.

`parse_report` reads one JUnit/xUnit XML report from a binary stream and yields one `TestExecution`
per execution of a test, in document order, without ever building the whole tree: elements are
cleared (and detached) as soon as they are consumed, so memory stays flat on reports of any size.

Hardening (decided here, tested in tests/faults/test_hostile_*.py):

* Any DOCTYPE is refused outright (`dtd_forbidden`), whether or not it declares entities. Two checks:
  a scan of the prolog bytes before libxml2 sees them (so a DTD is never even parsed), and, as a second
  line, the document info at the root's start event (covers encodings the byte scan cannot read).
  JUnit reports never need a DTD; refusing is simpler and safer than any entity policy.
* lxml runs with ``resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False`` and
  without comments/processing instructions in the tree.
* Our own limits (`ParseLimits`): element depth; the bytes of input consumed between two parse
  events — i.e. the size of one start tag with all its attributes, or of one text run — so no single
  attribute or text can hold more than that in memory (libxml2 without ``huge_tree`` also caps text
  nodes at 10 MB, but buffers a whole oversized attribute before refusing it); the total report size;
  and how much of system-out/system-err, failure messages and details is kept (truncated, not refused).

Dialects (see docs/JUNIT.md): nested ``<testsuites>``/``<testsuite>`` to any depth; ``<testcase>``
anywhere outside another testcase; result precedence error > failure > skipped > passed; Surefire
``<flakyFailure>``/``<flakyError>``/``<rerunFailure>``/``<rerunError>`` each an extra execution;
googletest/tst ``status=``/``result=`` attributes; odd ``time`` values; namespaced tags.
"""

from __future__ import annotations

import math
import re
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from lxml import etree

from flakeguard.junit import errors as E
from flakeguard.junit.errors import JUnitError
from flakeguard.junit.identity import SUITE_SEP, make_key, suite_path_of
from flakeguard.model import Outcome, TestExecution

__all__ = ["ParseLimits", "iter_testcases", "parse_duration", "parse_report"]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Limits applied while parsing one report. All sizes in bytes (UTF-8 for kept text)."""

    max_depth: int = 128
    """Deepest element nesting accepted (real reports: <= 13 in the corpus). libxml2 stops at 256."""
    max_token_bytes: int = 8 * MiB
    """Most input bytes consumed without a parse event: one start tag with all its attributes, or one
    text run. Bounds the memory any single attribute or text can take."""
    max_report_bytes: int | None = 4 * GiB
    """Largest report accepted (None: no limit)."""
    max_output_bytes: int = 64 * KiB
    """system-out / system-err kept per execution; the rest is cut off (marked `[truncated]`)."""
    max_message_bytes: int = 4 * KiB
    """Failure/error/skipped `message` kept per execution."""
    max_details_bytes: int = 64 * KiB
    """Failure/error text (stack trace) kept per execution."""


_RERUN_TAGS = {
    "flakyFailure": Outcome.FAILED,
    "flakyError": Outcome.ERROR,
    "rerunFailure": Outcome.FAILED,
    "rerunError": Outcome.ERROR,
}
_SKIP_STATUS = frozenset({"notrun", "disabled", "skipped", "skip"})
_SKIP_RESULT = frozenset({"skipped", "suppressed"})
_TRUNCATED = "\n[truncated]"

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[1-9]\d{0,2}(?:,\d{3})+(?:\.\d*)?")
_UNIT = re.compile(r"^\s*([-+0-9.,eE]+)\s*(ns|us|µs|ms|s|sec|secs|seconds?)?\s*$")
_UNIT_FACTOR = {None: 1.0, "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3}
_NANOS_THRESHOLD = 1e7  # an integer "time" above ~116 days of seconds is a count of nanoseconds


def parse_duration(value: str | None) -> float | None:
    """A `time` attribute as seconds, or None where it says nothing usable.

    Accepts ``1.5``, ``8.7e-05``, thousands separators (``2,503.1``, ``1,234`` as Surefire writes
    them), decimal commas (``0,014``), unit suffixes (``12ms``, ``1.5 s``, ``300ns``), and integer
    nanosecond counts (an integer above 1e7 is read as nanoseconds). Empty, negative, NaN, infinite
    or unreadable values give None.
    """
    if not value:
        return None
    try:
        number = float(value)  # the common case, ~10x faster than any regex
    except ValueError:
        pass
    else:
        if not (0 <= number < math.inf):  # also False for NaN
            return None
        if number >= _NANOS_THRESHOLD and value.isdigit():
            return number / 1e9
        return number
    m = _UNIT.match(value)
    if m is None:
        return None
    text, unit = m.group(1), m.group(2)
    if "," in text:
        if _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        elif text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        else:
            return None
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    if not (0 <= number < math.inf):
        return None
    if unit is None and number >= _NANOS_THRESHOLD and text.isdigit():
        return number / 1e9
    return number * _UNIT_FACTOR.get(unit, 1.0)


def _clip(text: str | None, limit: int) -> str | None:
    """`text` cut to at most `limit` UTF-8 bytes (with a marker), None for None."""
    if text is None or len(text) * 4 <= limit:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text
    keep = max(limit - len(_TRUNCATED), 0)
    return raw[:keep].decode("utf-8", "ignore") + _TRUNCATED


class _GuardedReader:
    """The report stream as lxml reads it: counts bytes, enforces the size limits, replays the prolog."""

    __slots__ = ("_prefix", "_raw", "_source", "limits", "mark", "total")

    def __init__(self, raw: BinaryIO, prefix: bytes, source: str, limits: ParseLimits) -> None:
        self._raw = raw
        self._prefix = prefix
        self._source = source
        self.limits = limits
        self.total = len(prefix)
        self.mark = 0

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        data = self._raw.read(size if size and size > 0 else 64 * KiB)
        self.total += len(data)
        limits = self.limits
        if limits.max_report_bytes is not None and self.total > limits.max_report_bytes:
            raise JUnitError(
                self._source, None, f"report larger than {limits.max_report_bytes} bytes", E.TOO_LARGE
            )
        if self.total - self.mark > limits.max_token_bytes:
            raise JUnitError(
                self._source,
                None,
                f"a single tag or text run is larger than {limits.max_token_bytes} bytes",
                E.TOO_LARGE,
            )
        return data


_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)


_BOMS = ((b"\xef\xbb\xbf", "latin-1"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def _prolog_text(head: bytes) -> str:
    """The start of the report as text, good enough to find markup in the prolog (markup is ASCII,
    so latin-1 finds it in every ASCII-compatible encoding; UTF-16 is decoded as such)."""
    body, codec = head, "latin-1"
    if head[:2] == b"<\x00":
        codec = "utf-16-le"
    elif head[:2] == b"\x00<":
        codec = "utf-16-be"
    for bom, bom_codec in _BOMS:
        if head.startswith(bom):
            body, codec = head[len(bom) :], bom_codec
            break
    if codec != "latin-1":
        body = body[: len(body) // 2 * 2]
    return body.decode(codec, "replace")


def _scan_prolog(source: str, head: bytes) -> None:
    """Refuse a DOCTYPE before libxml2 parses it. `head` is the start of the report."""
    text = _prolog_text(head)
    pos = 0
    while True:
        m = _PROLOG_ITEM.match(text, pos)
        if m is None:
            break
        pos = m.end()
    if text.startswith("<!", pos) and not text.startswith("<!--", pos):
        line = text.count("\n", 0, pos) + 1
        raise JUnitError(source, line, "DOCTYPE/DTD declarations are not accepted", E.DTD_FORBIDDEN)


def _syntax_error(
    source: str, exc: etree.XMLSyntaxError, log: etree._ListErrorLog | None, total: int
) -> JUnitError:
    if total == 0:
        return JUnitError(source, None, "empty document", E.MALFORMED_XML)
    msg = exc.msg or str(exc)
    line = exc.lineno or None
    if log is not None and len(log):
        first = log[0]
        if first.message and not first.message.startswith("Unregistered"):
            msg, line = first.message, first.line or line
    lowered = msg.lower()
    if "depth" in lowered:
        code = E.TOO_DEEP
    elif "encoding" in lowered or "utf-8" in lowered or "bytes in character" in lowered:
        code = E.BAD_ENCODING
    elif "resource limit" in lowered or "too long" in lowered or "huge" in lowered:
        code = E.TOO_LARGE
    else:
        code = E.MALFORMED_XML
    return JUnitError(source, line, msg.strip(), code)


class _Ordinals:
    """Numbers the executions of each key within one report (ordinal 0, 1, 2...).

    Keys can only repeat within the same suite path, so counts are kept per open suite path; when
    the last element with that path closes, its counts are compacted to two arrays of CRC-32 digests
    and counts (8 bytes per test instead of ~250), restored if the same path opens again. A digest
    collision can only make an ordinal larger than needed, never reuse one, and is deterministic, so
    (source, key, ordinal) stays unique and stable on re-reading. Memory: O(testcases of the largest
    single suite) plus 8 bytes per test.
    """

    __slots__ = ("_closed", "_open", "_prior", "_refs", "full", "positions", "repeats")

    def __init__(self) -> None:
        self._open: dict[str, dict[str, int]] = {}
        self._refs: dict[str, int] = {}
        self._prior: dict[str, dict[int, int]] = {}
        self._closed: dict[str, tuple[array[int], array[int]]] = {}
        # Per open suite path, the keys of plain <testcase> elements none of which passed so far, with
        # the identifying attributes of the first (see `_is_case_of_its_own`). Failing tests only: a few
        # entries, not one per test.
        self.repeats: dict[str, dict[str, object]] = {}
        # Per suite path (kept when the suite closes: one entry per repeated name), the next position
        # `k` of a key whose same-name testcases are cases of their own (`name #k`). The keys of those
        # cases are not counted: a report of a million identical testcases costs linear time and no
        # memory per testcase (`_case_of_its_own`).
        self.positions: dict[str, dict[str, int]] = {}
        # Per suite path, plain key -> (name, key) of its last case, once it has `_MAX_CASES_PER_NAME`.
        self.full: dict[str, dict[str, tuple[str, str]]] = {}

    def enter(self, path: str) -> dict[str, int]:
        refs = self._refs.get(path, 0)
        self._refs[path] = refs + 1
        if refs:
            return self._open[path]
        counts: dict[str, int] = {}
        self._open[path] = counts
        self.repeats[path] = {}
        self.positions.setdefault(path, {})
        self.full.setdefault(path, {})
        closed = self._closed.pop(path, None)
        if closed is not None:
            self._prior[path] = dict(zip(closed[0], closed[1], strict=True))
        return counts

    def take(self, path: str, counts: dict[str, int], key: str, n: int) -> int:
        """Reserve `n` consecutive ordinals for `key`; the first one."""
        first = counts.get(key)
        if first is None:
            prior = self._prior.get(path)
            first = prior.get(zlib.crc32(key.encode()), 0) if prior else 0
        counts[key] = first + n
        return first

    def leave(self, path: str) -> None:
        refs = self._refs[path] - 1
        if refs:
            self._refs[path] = refs
            return
        del self._refs[path]
        del self.repeats[path]
        counts = self._open.pop(path)
        merged = self._prior.pop(path, None) or {}
        for key, count in counts.items():
            digest = zlib.crc32(key.encode())
            if count > merged.get(digest, 0):
                merged[digest] = count
        if merged:
            self._closed[path] = (array("I", merged.keys()), array("I", merged.values()))


class _Suite:
    __slots__ = ("counts", "depth", "display", "path")

    def __init__(self, path: str, depth: int, counts: dict[str, int]) -> None:
        self.path = path
        self.display = path.replace(SUITE_SEP, " / ")
        self.depth = depth
        self.counts = counts


class _Case:
    """What has been read of one <testcase> so far (its children are consumed as they end)."""

    __slots__ = (
        "details",
        "err",
        "error",
        "failure",
        "message",
        "out",
        "properties",
        "reruns",
        "skip_message",
        "skipped",
    )

    def __init__(self) -> None:
        self.error = False
        self.failure = False
        self.skipped = False
        self.message: str | None = None
        self.details: str | None = None
        self.skip_message: str | None = None
        self.out: str | None = None
        self.err: str | None = None
        self.reruns: list[_Rerun] | None = None
        self.properties: list[tuple[str, str]] | None = None


_NO_CHILDREN = _Case()
_MAX_CASE_PROPERTIES = 32  # testcase <property> elements kept to tell same-name cases apart
_MAX_PROPERTY_CHARS = 256


class _Rerun:
    __slots__ = ("details", "duration", "err", "message", "out", "outcome")

    def __init__(self, outcome: Outcome, message: str | None, duration: float | None) -> None:
        self.outcome = outcome
        self.message = message
        self.duration = duration
        self.details: str | None = None
        self.out: str | None = None
        self.err: str | None = None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


_SUITE_TAGS = frozenset({"testsuite", "testsuites"})


def _events(reader: _GuardedReader) -> etree.iterparse[tuple[str, etree._Element]]:
    # Every element's end reaches Python, so every element is freed as soon as it ends. (A tag
    # filter is ~5% faster on ordinary reports, but unreported elements then pile up until the next
    # reported one: 8 MiB of `<p/>` cost 245 MB of tree. Measured; not worth it.)
    return etree.iterparse(
        reader,
        events=("end",),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=False,
    )


def iter_testcases(
    stream: BinaryIO,
    *,
    source: str,
    limits: ParseLimits = ParseLimits(),
    properties: dict[str, str] | None = None,
) -> Iterator[tuple[TestExecution, ...]]:
    """Like `parse_report`, grouped by <testcase> element: one tuple per testcase, holding its
    executions in order — the reruns it records (Surefire flaky*/rerun* elements, in document order)
    first and the testcase's own final result last. `group[-1]` is the test's verdict in this report.
    """
    return _parse(stream, source, limits, grouped=True, properties=properties)  # type: ignore[return-value]


def parse_report(
    stream: BinaryIO,
    *,
    source: str,
    limits: ParseLimits = ParseLimits(),
    properties: dict[str, str] | None = None,
) -> Iterator[TestExecution]:
    """Every execution in one JUnit XML report, in document order; raises `JUnitError` on refusal.

    `source` names the report in errors (e.g. ``"artifact.zip!reports/TEST-x.xml"``). Executions
    already yielded when an error is raised belong to a refused report: callers that need
    all-or-nothing per report collect first (as `flakeguard.junit.read_artifact` does).
    `properties`, when given, receives the report's suite-level `<property>` name/value pairs (the
    first value of each name, at most 256), which tell the environment the report came from
    (`flakeguard.junit.context_from`).
    """
    return _parse(stream, source, limits, grouped=False, properties=properties)  # type: ignore[return-value]


def _parse(
    stream: BinaryIO,
    source: str,
    limits: ParseLimits,
    *,
    grouped: bool,
    properties: dict[str, str] | None = None,
) -> Iterator[TestExecution | tuple[TestExecution, ...]]:
    head = stream.read(64 * KiB)
    if not isinstance(head, bytes):
        raise TypeError("parse_report needs a binary stream")
    _scan_prolog(source, head)
    reader = _GuardedReader(stream, head, source, limits)
    events = _events(reader)
    try:
        yield from _walk(events, reader, source, limits, grouped, properties)
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(source, exc, getattr(events, "error_log", None), reader.total) from None


def _scope_of(
    parent: etree._Element | None,
    playwright: bool,
    ordinals: _Ordinals,
    source: str,
    max_depth: int,
    line: int | None,
) -> _Suite:
    """The identity scope (suite path) for testcases under `parent`, entered in `ordinals`."""
    names: list[str] = []
    variant: str | None = None
    depth = 1
    node = parent
    while node is not None:
        depth += 1
        up = node.getparent()
        tag = node.tag
        if isinstance(tag, str):
            tag = _local(tag)
            # The root <testsuites> name is a report label, not part of any test's identity.
            if tag == "testsuite" or (tag == "testsuites" and up is not None):
                names.append(node.get("name") or "")
                if playwright and variant is None:
                    variant = node.get("hostname") or None
        node = up
    if depth > max_depth:
        raise JUnitError(source, line, f"elements nested deeper than {max_depth}", E.TOO_DEEP)
    names.reverse()
    path = suite_path_of(names, variant)
    return _Suite(path, depth, ordinals.enter(path))


def _depth(el: etree._Element) -> int:
    depth = 0
    node: etree._Element | None = el
    while node is not None:
        depth += 1
        node = node.getparent()
    return depth


def _walk(
    events: etree.iterparse[tuple[str, etree._Element]],
    reader: _GuardedReader,
    source: str,
    limits: ParseLimits,
    grouped: bool,
    properties: dict[str, str] | None,
) -> Iterator[TestExecution | tuple[TestExecution, ...]]:
    """The parse loop. Only *end* events of the reported tags reach Python; suite paths come from
    the testcase's ancestors (recomputed only when the parent element changes), results are read
    from the children as each of them ends, then the children are freed at once."""
    max_depth = limits.max_depth
    max_out = limits.max_output_bytes
    max_msg = limits.max_message_bytes
    max_details = limits.max_details_bytes
    ordinals = _Ordinals()
    # Suites whose scope is entered, innermost last, each with its element (kept alive, so that
    # lxml hands back the same proxy object and `is` identifies it).
    open_scopes: list[tuple[etree._Element, _Suite]] = []
    cur_parent: etree._Element | None = None
    scope: _Suite | None = None
    playwright = False
    first = True
    case_el: etree._Element | None = None  # the testcase whose children are being read
    case: _Case | None = None
    rerun_el: etree._Element | None = None
    rerun: _Rerun | None = None
    new_execution = TestExecution
    passed, failed, errored, skipped = Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED

    for _, el in events:
        reader.mark = reader.total
        tag: str = el.tag  # type: ignore[assignment]  # comments and PIs are removed: always a str
        if tag[0] == "{":
            tag = _local(tag)
        parent = el.getparent()
        if first:
            first = False
            root = _check_root(source, el)
            playwright = _local(root.tag) == "testsuites" and root.get("id") is not None  # type: ignore[arg-type]

        if tag == "testcase":
            # ---- one <testcase> is complete: build its executions ----
            if parent is not cur_parent or scope is None:
                if parent is not None and open_scopes and open_scopes[-1][0] is parent:
                    scope = open_scopes[-1][1]
                else:
                    scope = _scope_of(parent, playwright, ordinals, source, max_depth, el.sourceline)
                    if parent is not None:
                        open_scopes.append((parent, scope))
                cur_parent = parent
            this = case if el is case_el and case is not None else _NO_CHILDREN
            case_el = case = None
            get = el.get
            classname = get("classname") or ""
            name = get("name") or ""
            file = get("file") or None
            line_attr = get("line")
            line = int(line_attr) if line_attr and line_attr.isdigit() else None
            duration = parse_duration(get("time"))
            message: str | None = None
            details: str | None = None
            if this.error:
                outcome = errored
                message, details = this.message, this.details
            elif this.failure:
                outcome = failed
                message, details = this.message, this.details
            elif this.skipped:
                outcome = skipped
                message = this.skip_message
            else:
                outcome = passed
                status = get("status")
                result = get("result")
                if (status is not None and status.lower() in _SKIP_STATUS) or (
                    result is not None and result.lower() in _SKIP_RESULT
                ):
                    outcome = skipped
                    message = _clip(get("message"), max_msg)
            path = scope.path
            key = make_key(path, classname, name, file)
            reruns = this.reruns
            suite = scope.display
            if reruns is None:
                counts = scope.counts
                ordinal = counts.get(key, -1)
                if ordinal < 0:
                    base = _generated_case_base(ordinals.positions[path], path, classname, name, file)
                    if base is not None:  # a testcase really named like a case made earlier: another one
                        plain = make_key(path, classname, base, file)
                        name, key, ordinal = _case_of_its_own(
                            ordinals, path, counts, classname, base, file, 0, plain
                        )
                    else:
                        ordinal = ordinals.take(path, counts, key, 1)
                        if outcome is not passed:
                            ordinals.repeats[path][key] = _identifying(line, this)
                else:
                    if not _is_case_of_its_own(ordinals.repeats[path], key, line, this, outcome):
                        counts[key] = ordinal + 1  # a rerun
                    else:
                        name, key, ordinal = _case_of_its_own(
                            ordinals, path, counts, classname, name, file, ordinal, key
                        )
                execution = new_execution(
                    key, suite, classname, name, file, line, outcome, duration, ordinal,
                    message, details, this.out, this.err,
                )  # fmt: skip
                yield (execution,) if grouped else execution
            else:
                ordinal = ordinals.take(path, scope.counts, key, len(reruns) + 1)
                group = [
                    new_execution(
                        key,
                        suite,
                        classname,
                        name,
                        file,
                        line,
                        r.outcome,
                        r.duration,
                        ordinal + i,
                        r.message,
                        r.details,
                        r.out,
                        r.err,
                    )
                    for i, r in enumerate(reruns)
                ]
                group.append(
                    new_execution(
                        key,
                        suite,
                        classname,
                        name,
                        file,
                        line,
                        outcome,
                        duration,
                        ordinal + len(reruns),
                        message,
                        details,
                        this.out,
                        this.err,
                    )
                )
                if grouped:
                    yield tuple(group)
                else:
                    yield from group
        elif tag == "testsuite" or tag == "testsuites":
            if open_scopes and open_scopes[-1][0] is el:
                ordinals.leave(open_scopes.pop()[1].path)
            elif _depth(el) > max_depth:  # a suite without testcases of its own
                raise JUnitError(
                    source, el.sourceline, f"elements nested deeper than {max_depth}", E.TOO_DEEP
                )
            if el is cur_parent:
                cur_parent = scope = None
        elif parent is not None:
            ptag = parent.tag
            if ptag == "testcase" or (isinstance(ptag, str) and _local(ptag) == "testcase"):
                if parent is not case_el or case is None:
                    case_el, case = parent, _Case()
                if tag == "failure" or tag == "error":
                    if tag == "error":
                        case.error = True
                    else:
                        case.failure = True
                    if case.message is None and case.details is None:
                        case.message = _clip(el.get("message"), max_msg)
                        case.details = _clip(el.text, max_details)
                elif tag == "skipped":
                    case.skipped = True
                    if case.skip_message is None:
                        case.skip_message = _clip(el.get("message") or el.text, max_msg)
                elif tag == "system-out":
                    case.out = _append(case.out, el.text, max_out)
                elif tag == "system-err":
                    case.err = _append(case.err, el.text, max_out)
                elif tag in _RERUN_TAGS:
                    if el is not rerun_el or rerun is None:
                        rerun = _new_rerun(el, tag, max_msg)
                    if rerun.details is None:
                        rerun.details = _clip(el.text, max_details)
                    if case.reruns is None:
                        case.reruns = []
                    case.reruns.append(rerun)
                    rerun_el = rerun = None
            elif tag == "property" and isinstance(ptag, str) and _local(ptag) == "properties":
                holder = parent.getparent()
                htag = holder.tag if holder is not None else None
                if isinstance(htag, str) and _local(htag) == "testcase":
                    if holder is not case_el or case is None:
                        case_el, case = holder, _Case()
                    _add_property(case, el)
                elif properties is not None and isinstance(htag, str) and _local(htag) in _SUITE_TAGS:
                    _add_report_property(properties, el)
            elif isinstance(ptag, str) and _local(ptag) in _RERUN_TAGS:
                if parent is not rerun_el or rerun is None:
                    rerun_el, rerun = parent, _new_rerun(parent, _local(ptag), max_msg)
                if tag == "stackTrace":
                    rerun.details = _clip(el.text, max_details)
                elif tag == "system-out":
                    rerun.out = _append(rerun.out, el.text, max_out)
                elif tag == "system-err":
                    rerun.err = _append(rerun.err, el.text, max_out)
        # Free what has been consumed: clear it, and drop the earlier siblings (cleared at their own
        # end, or never reported), so nothing piles up under a long-lived parent.
        el.clear(keep_tail=False)
        # Every element is reported and freed, so at most one earlier sibling is left.
        if parent is not None and el.getprevious() is not None:
            del parent[0]

    if first:
        raise JUnitError(source, None, "no <testsuites>, <testsuite> or <testcase> element", E.NOT_JUNIT)


def _identifying(line: int | None, case: _Case) -> object:
    """What tells same-name testcases apart besides their position: `line` and testcase properties."""
    if line is None and case.properties is None:
        return None
    return (line, case.properties and tuple(case.properties))


def _is_case_of_its_own(
    failing: dict[str, object], key: str, line: int | None, case: _Case, outcome: Outcome
) -> bool:
    """A plain <testcase> whose key already occurred in this suite: False when it is an in-run rerun of
    the earlier ones, True when it is a case of its own.

    A rerun only ever follows failures (no tool re-runs a test that passed; pytest-rerunfailures writes
    its failed attempts as empty records, so a "pass" followed by more records is one of those, not a
    pass). So once an earlier testcase of the key passed, the later ones are distinct cases, such as
    the data-driven cases of Boost.Test or an xUnit theory that share one name; so are testcases whose
    `line` or testcase `<properties>` (parameters) differ from the first one's. `failing` holds the
    keys none of whose testcases passed so far (skipped ones are neutral), with the first's attributes."""
    if key not in failing or failing[key] != _identifying(line, case):
        return True
    if outcome is Outcome.PASSED:
        del failing[key]
    return False


def _case_of_its_own(
    ordinals: _Ordinals,
    path: str,
    counts: dict[str, int],
    classname: str,
    name: str,
    file: str | None,
    reruns: int,
    plain: str,
) -> tuple[str, str, int]:
    """(name, key, ordinal) of a same-name testcase that is a case of its own (`plain`: the key of
    `name`): `name #k`, k its position
    among the testcases of that name in the suite (after the elements the plain key already took).

    The case keys are not entered in `counts` (memory per testcase); they stay unique because the
    positions only grow, a position whose key a real testcase already has is skipped, and a later
    real testcase named like a case made earlier becomes the next case (`_generated_case_base`).
    Hardening: past `_MAX_CASES_PER_NAME` cases of one name (a report of identical testcases), the
    rest are reruns of the last case, so they cost no new name or key each."""
    full = ordinals.full[path].get(plain)
    if full is not None:
        return full[0], full[1], ordinals.take(path, counts, full[1], 1)
    positions = ordinals.positions[path]
    position = max(positions.get(plain, 2), reruns + 1)
    while True:
        case_name = f"{name} #{position}"
        key = make_key(path, classname, case_name, file)
        position += 1
        if key in counts:
            continue
        positions[plain] = position
        if position > _MAX_CASES_PER_NAME:
            ordinals.full[path][plain] = (case_name, key)
            return case_name, key, ordinals.take(path, counts, key, 1)
        return case_name, key, 0


_MAX_CASES_PER_NAME = 10_000
_CASE_NAME = re.compile(r"(.*) #(\d+)")


def _generated_case_base(
    positions: dict[str, int], path: str, classname: str, name: str, file: str | None
) -> str | None:
    """The plain name, when `name` is `plain #k` and this suite already made case k of `plain`."""
    if " #" not in name or not positions:
        return None
    match = _CASE_NAME.fullmatch(name)
    if match is None:
        return None
    base = match.group(1)
    taken = positions.get(make_key(path, classname, base, file))
    return base if taken is not None and int(match.group(2)) < taken else None


def _add_property(case: _Case, el: etree._Element) -> None:
    if case.properties is None:
        case.properties = []
    if len(case.properties) < _MAX_CASE_PROPERTIES:
        name = (el.get("name") or "")[:_MAX_PROPERTY_CHARS]
        value = (el.get("value") or el.text or "")[:_MAX_PROPERTY_CHARS]
        case.properties.append((name, value))


def _add_report_property(properties: dict[str, str], el: etree._Element) -> None:
    """A suite-level <property>: the first value of each name is kept, at most `_MAX_REPORT_PROPERTIES`."""
    name = (el.get("name") or "")[:_MAX_PROPERTY_CHARS]
    if name and name not in properties and len(properties) < _MAX_REPORT_PROPERTIES:
        properties[name] = (el.get("value") or el.text or "")[:_MAX_PROPERTY_CHARS]


_MAX_REPORT_PROPERTIES = 256


def _new_rerun(el: etree._Element, tag: str, max_msg: int) -> _Rerun:
    return _Rerun(_RERUN_TAGS[tag], _clip(el.get("message"), max_msg), parse_duration(el.get("time")))


def _append(current: str | None, text: str | None, limit: int) -> str | None:
    if not text:
        return current
    return _clip(text if current is None else current + text, limit)


def _check_root(source: str, first: etree._Element) -> etree._Element:
    """Checks at the first reported start event; returns the document's root element."""
    info = first.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise JUnitError(source, 1, "DOCTYPE/DTD declarations are not accepted", E.DTD_FORBIDDEN)
    root = first
    parent = root.getparent()
    while parent is not None:
        root, parent = parent, parent.getparent()
    root_tag = root.tag if isinstance(root.tag, str) else ""
    if _local(root_tag) not in _SUITE_TAGS and _local(root_tag) != "testcase":
        raise JUnitError(
            source,
            root.sourceline,
            f"root element <{_local(root_tag)}> is not <testsuites> or <testsuite>",
            E.NOT_JUNIT,
        )
    return root
