"""A test's stored evidence in plain words, for the test page.

The evidence objects are those of `flakeguard.analysis.model` as `FlakinessResult.evidence` keeps them
(`{"reason": str, "items": [{"kind": ..., ...}]}`); an item of an unknown kind is described by its kind.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flakeguard.analysis import JSONValue


def _sha(value: Any) -> str:
    return str(value or "")[:7] or "an unknown commit"


def _branch(value: Any) -> str:
    return f" on {value}" if value else ""


def _when(value: Any) -> str:
    if not isinstance(value, str):
        return "an unknown time"
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


def _pct(value: Any) -> str:
    return f"{100 * float(value):.0f}%" if isinstance(value, int | float) else "?"


def _times(n: Any) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _same_code(item: dict[str, Any]) -> str:
    where = f"commit {_sha(item.get('head_sha'))}{_branch(item.get('branch'))}"
    failed, passed = _times(item.get("failures")), _times(item.get("passes"))
    scope = item.get("scope")
    if scope == "in_run_retry":
        return f"Failed {failed} and passed {passed} within the same run attempt (retries) of {where}."
    if scope == "rerun_attempt":
        runs = ", ".join(str(r) for r in item.get("runs") or [])
        return f"Failed, then passed when run {runs} was re-run, on the same code ({where})."
    return f"Failed {failed} and passed {passed} in different runs of the same code ({where})."


def _statistical(item: dict[str, Any]) -> str:
    text = (
        f"Failed on {item.get('failures')} of {item.get('commits')} commits on protected branches "
        f"({_pct(item.get('failure_rate'))}), at or above the {_pct(item.get('threshold'))} threshold"
    )
    if item.get("held_by_hysteresis"):
        text += "; it stays flaky until the rate drops below this lower threshold"
    return text + "."


def _broken(item: dict[str, Any]) -> str:
    commits = item.get("commits") or []
    last_pass = item.get("last_pass_at")
    passed = f"last passed {_when(last_pass)}" if last_pass else "never passed in the window"
    chance = item.get("chance_if_flaky")
    odds = f" A flaky test would do this with probability {float(chance):.2g}." if chance is not None else ""
    return (
        f"Failed every execution since {_when(item.get('since'))} "
        f"({item.get('failing_executions')} executions over {len(commits)} commits); {passed}.{odds}"
    )


def _infrastructure(item: dict[str, Any]) -> str:
    runs = item.get("runs") or []
    return (
        f"Ignored {item.get('executions')} executions in {len(runs)} runs where most tests failed "
        "(infrastructure failures)."
    )


def _regression(item: dict[str, Any]) -> str:
    return (
        f"{item.get('episodes')} regression episode(s) ({item.get('failing_executions')} failing executions "
        f"across commits, fixed by {_when(item.get('last_episode_end'))}) are not counted as flakiness."
    )


_DESCRIBE = {
    "same_sha_pass_and_fail": _same_code,
    "protected_branch_failure_rate": _statistical,
    "failing_since": _broken,
    "infrastructure_runs_excluded": _infrastructure,
    "regression_episodes": _regression,
}


def reason_of(evidence: JSONValue) -> str:
    if isinstance(evidence, dict) and isinstance(evidence.get("reason"), str):
        return str(evidence["reason"])
    return ""


def describe_evidence(evidence: JSONValue) -> list[str]:
    """One sentence per evidence item, in the stored order."""
    if not isinstance(evidence, dict) or not isinstance(evidence.get("items"), list):
        return []
    sentences = []
    for item in evidence["items"]:  # type: ignore[union-attr]
        if not isinstance(item, dict):
            continue
        describe = _DESCRIBE.get(str(item.get("kind")))
        sentences.append(describe(item) if describe else f"Evidence of kind {item.get('kind')!s}.")
    return sentences
