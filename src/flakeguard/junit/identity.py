"""Test identity: one stable key per test, across runs and across tools.

The rule
========

A test's key is built from four components, each normalized as described below, joined with
U+001F (the ASCII unit separator)::

    key = suite_path  US  classname  US  name  US  file_part

* ``suite_path`` — the names of the enclosing ``<testsuite>`` elements, outermost first, joined with
  U+001E (record separator). The name of the root ``<testsuites>`` element is *not* part of it: it is a
  report-level label ("jest tests", "Mocha Tests", "AllTests", a CI job name) that tools and users
  change freely and that adds nothing to a test's identity. Nameless suites contribute nothing (so a
  wrapper ``<testsuite>`` without a name does not change keys). In Playwright reports the suite's
  ``hostname`` attribute holds the *project* (browser) name, so it is prefixed to the suite path as
  ``[project]`` — the same spec run in chromium and in firefox are two tests. Playwright is recognised
  by the root ``<testsuites id="...">`` its JUnit reporter always writes; every other tool stores the
  machine name in ``hostname``, which changes from run to run and is therefore ignored.
* ``classname`` — the ``classname`` attribute (empty when missing).
* ``name`` — the ``name`` attribute (empty when missing).
* ``file_part`` — the ``file`` attribute, only when ``classname`` is empty (then the file is the only
  thing saying *where* the test lives, e.g. jest/vitest/mocha tests with the same title in two
  files); otherwise empty. When a classname exists the file is left out because tools emit it
  inconsistently (pytest writes it only with ``junit_family=xunit1``; absolute checkout paths differ
  between runners).

The separators U+001E and U+001F cannot occur in any XML 1.0 document (not even as character
references), so the key is unambiguous without any escaping.

Normalization removes what changes between runs of the same test (applied to every component,
except where noted):

* ISO-8601 timestamps and dates (``2024-05-01T12:00:03.123Z``) -> ``<ts>``;
* UUIDs -> ``<uuid>``; memory addresses (``0x7f3a9c2b1d60``) -> ``0x<addr>``;
* durations written into names, in parentheses or brackets (``(12 ms)``, ``[1.5s]``) -> removed;
* temporary directories (``/tmp/pytest-of-runner/pytest-12/...``, ``/var/folders/..``,
  ``...\\AppData\\Local\\Temp\\...``) -> ``<tmp>/``;
* CI workspace prefixes of absolute paths (GitHub Actions ``/home/runner/work/<repo>/<repo>/``,
  ``/__w/<repo>/<repo>/``, ``D:\\a\\<repo>\\<repo>\\``, GitLab ``/builds/<group>/<project>/``,
  ``/github/workspace/``) -> removed; backslashes in paths become ``/``;
* browser versions that Karma-style reporters put into suite names and classnames
  (``Chrome Headless 120.0.6099.109 (Linux x86_64)``) -> ``Chrome Headless (Linux x86_64)``
  (suite names and classnames only: in a test's own name a version is meaningful);
* runs of whitespace -> one space, leading/trailing whitespace stripped.

Numbers in general are *kept*: parametrized names such as ``test_parse[1.2.3]`` or
``Instance/FooTest.Bar/0`` are distinct tests.

Keys longer than :data:`MAX_KEY_CHARS` characters are cut and suffixed with ``#`` and the first 16 hex
digits of the SHA-256 of the full key, so they stay unique and fit a database index.

Repeated testcases with the same key in one suite of one report are either *reruns* of that test
(gotestsum ``--rerun-fails``, pytest-style reruns, jest/mocha retries) or *distinct cases* that share
a name (Boost.Test data-driven samples, an xUnit theory without per-case names). The parser tells
them apart without looking ahead (``parser._is_case_of_its_own``):

* a rerun only ever follows failures, so while every earlier testcase of the key failed (or was
  skipped) and the repeat has the same ``line`` and testcase ``<properties>`` as the first, it is a
  rerun: same key, ``ordinal`` 1, 2, ... (the in-run retries of the analysis);
* once an earlier one passed — nothing re-runs a passing test, and pytest-rerunfailures writes its
  failed attempts as empty (passing-looking) records, so a "pass" followed by more records is not a
  pass then a retry either — or when ``line`` or the testcase ``<properties>`` (parameters) differ,
  the repeat is a case of its own: its name and key get `` #k``, k its position among the testcases
  of that name in the suite (``parses_sample``, ``parses_sample #2``, ``parses_sample #3``).

A data-driven test whose *first* case fails and a later one passes still reads as a failure and its
rerun: the document cannot tell those apart.

Surefire ``<flakyFailure>``/``<rerunFailure>`` children are always reruns of their testcase.

The display name is for humans: ``name`` when the classname is empty or already a prefix of the name
(jest), else ``classname › name``; with the Playwright project as a ``[project] `` prefix.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

SUITE_SEP = "\x1e"
KEY_SEP = "\x1f"
MAX_KEY_CHARS = 512

_SUBSTITUTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # 2024-05-01T12:00:03.123+02:00, 2024-05-01 12:00:03, 2024-05-01
    (
        re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"),
        "<ts>",
    ),
    (re.compile(r"\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b0x[0-9a-fA-F]{6,16}\b"), "0x<addr>"),
    (
        re.compile(
            r"\s*[(\[]\s*(?:took\s+)?\d+(?:[.,]\d+)?\s*(?:ns|µs|us|ms|s|sec|secs|seconds?|m|min|mins|minutes?)\s*[)\]]",
            re.IGNORECASE,
        ),
        "",
    ),
    (
        re.compile(
            r"(?:/tmp|/private/var/folders|/var/folders|[A-Za-z]:[\\/](?:Users|Windows)[\\/][^\\/\s]*"
            r"(?:[\\/]AppData[\\/]Local)?[\\/]Temp|/var/tmp)[\\/](?:[^\s\"'\]\)]*[\\/])?",
        ),
        "<tmp>/",
    ),
    (
        re.compile(
            r"(?:/home/runner/work|/Users/runner/work|/__w|[A-Za-z]:[\\/]a)[\\/][^\\/\s]+[\\/][^\\/\s]+[\\/]"
            r"|/builds/[^/\s]+/[^/\s]+/|/github/workspace/"
        ),
        "",
    ),
    (
        re.compile(
            r"\b((?:Headless)?(?:Chrome|Chromium|Firefox|Safari|Edge|Electron|Opera|WebKit)"
            r"(?:[ _]Headless)?)[ _]\d+(?:[._]\d+){1,3}"
        ),
        r"\1",
    ),
)
_SPACES = re.compile(r"\s+")


_BROWSER = re.compile(r"(?:Chrome|Chromium|Firefox|Safari|Edge|Electron|Opera|WebKit)(?:[ _]Headless)?[ _]\d")
_DATE_OR_UUID = re.compile(r"\d{4}-\d\d-\d\d|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-")
_PATH_MARKERS = re.compile(r"/tmp/|/var/|/home/runner/|/Users/runner/|/__w/|/builds/|/github/workspace/|:/")


def _maybe_volatile(text: str, browsers: bool) -> bool:
    """Cheap pre-check: can any substitution touch `text`? Plain substring tests gate the few small
    regexes (one combined regex costs ~10 µs per name; this ~0.3 µs, and most names are clean)."""
    if "-" in text and _DATE_OR_UUID.search(text) is not None:
        return True
    if "0x" in text or "\\" in text:
        return True
    if "/" in text and _PATH_MARKERS.search(text) is not None:
        return True
    # a duration ends in a unit (s, ms, sec(s), seconds, m, min(s), minutes) before ) or ]
    if "s)" in text or "s]" in text or "m)" in text or "m]" in text or "n)" in text or "n]" in text:
        return True
    if (
        "  " in text
        or "\n" in text
        or "\t" in text
        or "\r" in text
        or text[0].isspace()
        or text[-1].isspace()
    ):
        return True
    return browsers and _BROWSER.search(text) is not None


def _normalize(text: str) -> str:
    for pattern, replacement in _SUBSTITUTIONS:
        text = pattern.sub(replacement, text)
    if "\\" in text and ("/" in text or re.search(r"\\[\w.-]+\\", text)):
        text = text.replace("\\", "/")
    return _SPACES.sub(" ", text).strip()


@lru_cache(maxsize=8192)
def _normalize_cached(text: str) -> str:
    return _normalize(text) if _maybe_volatile(text, True) else text


def normalize(text: str) -> str:
    """Remove the run-to-run volatile parts of a suite name or classname (see the module docstring).
    Cached: these repeat across the testcases of a report."""
    if not text:
        return ""
    if len(text) <= 200:
        return _normalize_cached(text)
    return _normalize(text) if _maybe_volatile(text, True) else text


def normalize_name(text: str) -> str:
    """`normalize` for testcase names and files: not cached (names rarely repeat), and without the
    browser-version rule (Karma writes versions into suite names and classnames only)."""
    if not text or not _maybe_volatile(text, False):
        return text
    return _normalize(text)


def make_key(suite_path: str, classname: str, name: str, file: str | None) -> str:
    """The stable key of one test. `suite_path` must already be normalized (see `suite_path_of`)."""
    classname_n = normalize(classname)
    file_part = normalize_name(file) if (file and not classname_n) else ""
    key = f"{suite_path}{KEY_SEP}{classname_n}{KEY_SEP}{normalize_name(name)}{KEY_SEP}{file_part}"
    if len(key) > MAX_KEY_CHARS:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        key = f"{key[: MAX_KEY_CHARS - 17]}#{digest}"
    return key


def suite_path_of(names: list[str], variant: str | None = None) -> str:
    """The normalized suite path from the enclosing suite names (outermost first)."""
    parts = [n for n in (normalize(x) for x in names) if n]
    if variant:
        parts.insert(0, f"[{normalize(variant)}]")
    return SUITE_SEP.join(parts)


def display_name(classname: str, name: str, variant: str | None = None) -> str:
    """A readable name for reports and check runs."""
    if not classname or name.startswith(classname):
        text = name or classname
    elif not name:
        text = classname
    else:
        text = f"{classname} › {name}"
    return f"[{variant}] {text}" if variant else text


def display_suite(suite_path: str) -> str:
    """The suite path of a key, readable (`a / b`)."""
    return suite_path.replace(SUITE_SEP, " / ")


def split_key(key: str) -> tuple[list[str], str, str, str]:
    """Inverse of `make_key` (for keys that were not shortened): suites, classname, name, file."""
    suite, classname, name, file_part = key.split(KEY_SEP)
    return (suite.split(SUITE_SEP) if suite else []), classname, name, file_part
