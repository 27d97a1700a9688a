"""How people name a test: the names FlakeGuard prints, resolved to the one test they mean.

A reference is tried, in this order, until one rule finds something:

1. the full key (U+001F separators), as `--format json` prints it;
2. the test case id, as `quarantine list` prints it;
3. the name as printed: `classname › name` (the report), `classname::name`, `classname.name`, or the
   bare name;
4. a suffix of the printed name that starts at a boundary (after `.`, `/`, `:`, `›` or a space):
   `test_module_0 › test_case_000`, `TestLogin.test_ok`;
5. text after a leading `…`, as a table shows a name it had to shorten: any suffix of the printed name.

A rule that finds exactly one test resolves the reference; one that finds several makes it ambiguous
(the candidates are listed, nothing changes); none that finds anything leaves it unknown. Pure: the
caller loads the repository's tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from flakeguard.junit.identity import KEY_SEP, SUITE_SEP, display_name

ELLIPSIS = "…"
MAX_CANDIDATES = 10
_BOUNDARY = re.compile(r"[./:›\s]")


@dataclass(frozen=True, slots=True)
class NamedTest:
    id: int
    key: str
    classname: str
    name: str

    @property
    def display(self) -> str:
        return display_name(self.classname, self.name)

    def spellings(self) -> tuple[str, ...]:
        """The whole names this test goes by."""
        forms = [self.display, self.name]
        if self.classname:
            forms += [f"{self.classname}::{self.name}", f"{self.classname}.{self.name}"]
        return tuple(forms)


@dataclass
class Resolution:
    found: dict[str, int] = field(default_factory=dict)  # reference -> test case id
    unknown: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ids(self) -> list[int]:
        """The tests named, in reference order, each once."""
        return list(dict.fromkeys(self.found.values()))

    @property
    def complete(self) -> bool:
        return not self.unknown and not self.ambiguous

    def describe_problems(self) -> str:
        """One line: the unknown references, and each ambiguous one with its candidates."""
        parts = []
        if self.unknown:
            parts.append("unknown test(s): " + ", ".join(self.unknown))
        for ref, candidates in self.ambiguous.items():
            parts.append(f"{ref!r} names {len(candidates)} tests, say which: " + "; ".join(candidates))
        return "; ".join(parts)


def _boundary_suffix(text: str, suffix: str) -> bool:
    if not suffix or not text.endswith(suffix):
        return False
    if len(suffix) == len(text):
        return True
    return bool(_BOUNDARY.match(text[-len(suffix) - 1]) or _BOUNDARY.match(suffix[0]))


def _candidates(matches: Sequence[NamedTest]) -> list[str]:
    shown = [f"{t.display} (id {t.id})" for t in matches[:MAX_CANDIDATES]]
    if len(matches) > MAX_CANDIDATES:
        shown.append(f"and {len(matches) - MAX_CANDIDATES} more")
    return shown


Rule = Callable[[NamedTest, tuple[str, ...]], bool]


def _rules(ref: str) -> list[Rule]:
    text = ref.strip()
    # A key copied out of JSON keeps its escapes.
    key = ref.replace("\\u001f", KEY_SEP).replace("\\u001e", SUITE_SEP)
    rules: list[Rule] = [
        lambda t, _: t.key == key,
        lambda t, _: text.isdigit() and t.id == int(text),
        lambda _, spellings: text in spellings,
        lambda _, spellings: any(_boundary_suffix(s, text) for s in spellings),
    ]
    if text.startswith(ELLIPSIS) and len(text) > 1:
        tail = text[1:]
        rules.append(lambda _, spellings: any(s.endswith(tail) for s in spellings))
    return rules


def resolve_references(refs: Iterable[str], tests: Sequence[NamedTest]) -> Resolution:
    """The tests `refs` name."""
    result = Resolution()
    spelled = [(t, t.spellings()) for t in tests]
    for ref in refs:
        for rule in _rules(ref):
            matches = [t for t, spellings in spelled if rule(t, spellings)]
            if len(matches) == 1:
                result.found[ref] = matches[0].id
                break
            if matches:
                result.ambiguous[ref] = _candidates(matches)
                break
        else:
            if ref not in result.unknown:
                result.unknown.append(ref)
    return result
