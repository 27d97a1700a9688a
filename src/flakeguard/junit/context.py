"""The context of a report: which environment of a CI matrix it came from.

`context_from(artifact_name, report_properties)` reads what the artifact's name and the report's
suite-level `<property>` elements say about the operating system, the CPU architecture and the
language runtime, plus whatever else the artifact name distinguishes, and returns a short canonical
label such as ``"py3.11 ubuntu-22.04"`` (None when they say nothing). The analysis then treats a pass in
one context and a failure in another as no flakiness (`Observation.context`).

What is kept, so that the same leg gets the same label run after run:

* runtime versions are cut to what a matrix varies: Python, Node.js major.minor / major (``py3.11``,
  ``node20``), Java major (``java17``; ``1.8.0_292`` is ``java8``), Go minor (``go1.22``);
* operating systems by family, with an explicit version when the name gives one (``ubuntu-22.04``,
  ``macos-14``, ``windows-2022``; ``-latest`` is dropped), architectures normalized (``x64``,
  ``arm64``);
* other words of the artifact name, except words that every artifact has (``test``, ``results``,
  ``junit``, ``report``...), shard and chunk numbers (a shard is a slice of one suite, not another
  environment: its tests run in one shard or another from run to run), run numbers, commit shas,
  dates and other numbers of four digits or more.

A report property overrides what the artifact name says about the same thing (it is what ran).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_OS = {
    "ubuntu": "ubuntu",
    "linux": "linux",
    "debian": "debian",
    "alpine": "alpine",
    "fedora": "fedora",
    "centos": "centos",
    "windows": "windows",
    "win": "windows",
    "macos": "macos",
    "mac": "macos",
    "osx": "macos",
    "darwin": "macos",
}
_ARCH = {
    "x64": "x64",
    "x86_64": "x64",
    "amd64": "x64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "x86": "x86",
    "i386": "x86",
    "i686": "x86",
}
_NOISE = frozenset(
    {
        "test",
        "tests",
        "testing",
        "result",
        "results",
        "report",
        "reports",
        "junit",
        "xunit",
        "xml",
        "artifact",
        "artifacts",
        "output",
        "outputs",
        "ci",
        "job",
        "build",
        "run",
        "latest",
        "surefire",
        "pytest",
        "jest",
        "coverage",
        "logs",
        "unit",
        "python",
        "py",
        "node",
        "nodejs",
        "java",
        "go",
        "golang",
    }
)
_SHARD_WORDS = frozenset({"shard", "chunk", "part", "split", "group", "slice", "node", "worker", "partition"})

_PYTHON = re.compile(r"^(?:py|python|cp|pypy)[-_]?(\d)[._]?(\d{1,2})(?:[._]\d+)*$")
_NODE = re.compile(r"^(?:node|nodejs)[-_]?v?(\d{2})(?:[._]\d+)*$")  # "node2": a CI node index
_JAVA = re.compile(r"^(?:java|jdk|jre|temurin|zulu|corretto|openjdk)[-_]?(\d{1,2})(?:[._]\d+)*$")
_GO = re.compile(r"^go[-_]?(\d)[._](\d{1,2})(?:[._]\d+)*$")
_OS_VERSION = re.compile(r"^(ubuntu|windows|macos|debian|alpine|fedora|centos)[-_]?(\d[\d.]*)$")
_SHARD = re.compile(r"^(?:\d+(?:of|-of-|/)\d+)$")
_VOLATILE = re.compile(
    r"^(?:\d{4,}|[0-9a-f]{7,40}|\d{4}-\d{2}-\d{2}.*|[0-9a-f]{8}-[0-9a-f]{4}-.*|attempt\d*|run\d+)$"
)
_TOKEN = re.compile(r"[A-Za-z0-9_.]+")
_STAMPS = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T _-]?\d{2}[:.-]?\d{2}(?:[:.-]?\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_MAX_LABEL = 120


def _python_version(value: str) -> str | None:
    m = re.search(r"(\d)\.(\d{1,2})", value)
    return f"py{m.group(1)}.{m.group(2)}" if m else None


def _java_version(value: str) -> str | None:
    m = re.match(r"\s*(\d+)(?:\.(\d+))?", value)
    if not m:
        return None
    major = m.group(2) if m.group(1) == "1" and m.group(2) else m.group(1)
    return f"java{major}"


def _go_version(value: str) -> str | None:
    m = re.search(r"go(\d)\.(\d{1,2})", value)
    return f"go{m.group(1)}.{m.group(2)}" if m else None


def _node_version(value: str) -> str | None:
    m = re.search(r"(\d{1,2})(?:\.\d+)*", value)
    return f"node{m.group(1)}" if m else None


def _os_name(value: str) -> str | None:
    lowered = value.lower()
    for word, family in (("windows", "windows"), ("mac", "macos"), ("darwin", "macos"), ("linux", "linux")):
        if word in lowered:
            return family
    return None


def _arch(value: str) -> str | None:
    return _ARCH.get(value.strip().lower())


# property name (lower case) -> (kind, reader)
_PROPERTIES = {
    "python_version": ("python", _python_version),
    "python.version": ("python", _python_version),
    "python": ("python", _python_version),
    "java.version": ("java", _java_version),
    "java.specification.version": ("java", _java_version),
    "go.version": ("go", _go_version),
    "node.version": ("node", _node_version),
    "node_version": ("node", _node_version),
    "os.name": ("os", _os_name),
    "platform": ("os", _os_name),
    "os.arch": ("arch", _arch),
}
_ORDER = ("os", "arch", "python", "node", "java", "go")
_LINUXES = frozenset({"ubuntu", "debian", "alpine", "fedora", "centos"})


def _from_artifact(name: str) -> tuple[dict[str, str], list[str]]:
    """(kind -> value, other words) that the artifact name tells."""
    kinds: dict[str, str] = {}
    others: list[str] = []
    tokens = [t.lower() for t in _TOKEN.findall(name.replace("-", " "))]
    skip_number = False
    for token in tokens:
        if skip_number and token.isdigit():
            skip_number = False
            continue
        skip_number = False
        if m := _PYTHON.match(token):
            kinds["python"] = f"py{m.group(1)}.{m.group(2)}"
        elif m := _NODE.match(token):
            kinds["node"] = f"node{m.group(1)}"
        elif m := _JAVA.match(token):
            kinds["java"] = f"java{m.group(1)}"
        elif m := _GO.match(token):
            kinds["go"] = f"go{m.group(1)}.{m.group(2)}"
        elif m := _OS_VERSION.match(token):
            kinds["os"] = f"{_OS.get(m.group(1), m.group(1))}-{m.group(2)}"
        elif token in _OS:
            kinds.setdefault("os", _OS[token])
        elif token in _ARCH:
            kinds["arch"] = _ARCH[token]
        elif token in _SHARD_WORDS:
            skip_number = True
        elif (
            re.fullmatch(r"(?:shard|chunk|part|split|group|slice|node|worker)\d+", token)
            or _SHARD.match(token)
            or token in _NOISE
            or _VOLATILE.match(token)
            or token.isdigit()
        ):
            continue
        else:
            others.append(token)
    return kinds, others


def context_from(artifact_name: str | None, report_properties: Mapping[str, str] | None = None) -> str | None:
    """The context label of a report (see the module docstring); None when nothing tells one."""
    kinds: dict[str, str] = {}
    others: list[str] = []
    if artifact_name:
        stem = re.sub(r"\.(?:zip|xml|tar|gz|tgz)$", "", artifact_name.strip(), flags=re.IGNORECASE)
        kinds, others = _from_artifact(_join_versions(_STAMPS.sub(" ", stem)))
    for name, value in (report_properties or {}).items():
        known = _PROPERTIES.get(name.strip().lower())
        if known is None or not value:
            continue
        kind, reader = known
        read = reader(value)
        if read is None:
            continue
        if kind == "os" and kinds.get("os", "").startswith(f"{read}-"):
            continue  # the artifact name is more precise (ubuntu-22.04 vs linux)
        if kind == "os" and read == "linux" and kinds.get("os", "").split("-")[0] in _LINUXES:
            continue
        kinds[kind] = read
        if kind == "go" and (arch := re.search(r"/(\w+)\s*$", value)) and (a := _arch(arch.group(1))):
            kinds.setdefault("arch", a)
    parts = [kinds[k] for k in _ORDER if k in kinds] + list(dict.fromkeys(others))
    if not parts:
        return None
    return " ".join(parts)[:_MAX_LABEL]


def _join_versions(name: str) -> str:
    """Glue a version to the word before it, so that "ubuntu-22.04", "python-3.11", "node-20" and
    "py 3.11" are one token each."""
    return re.sub(
        r"(?i)\b(ubuntu|windows|macos|debian|alpine|fedora|centos|python|pypy|py|cp|nodejs|node|java|jdk|jre"
        r"|temurin|zulu|corretto|openjdk|go)[-_ ]+v?(?=\d)",
        r"\1",
        name,
    )
