"""The analysis core against frozen outputs: `analyze_test` must give exactly the same results (every
field, every float bit, every evidence item) as the implementation that produced the digests.

Seeded CI simulator histories: two configurations, checkpoints after several runs with the previous
verdict carried over (hysteresis), some failures turned into errors, observations in shuffled order.
Two digests per checkpoint:

* `SCORES` — the counts, the original score (every component) and the impact. Produced by the
  straightforward implementation of commit 905a438 and unchanged since: the original score is kept
  bit for bit whatever the status rules do.
* `VERDICTS` — the status, confidence, reason and evidence. Regenerated when the status rules changed
  on purpose (issue 12: failure episodes in commit order, tests that never passed, contexts), from
  the implementation of that commit; see its message.

A change that alters any result fails here; if a change is *meant* to alter verdicts, regenerate
`VERDICTS` with `python tests/unit/test_analysis_golden.py` and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import replace

import pytest

from flakeguard.analysis import AnalysisConfig, Observation, PreviousState, TestAnalysis, analyze_test
from flakeguard.model import Outcome
from flakeguard.testing.ci_simulator import SimulatorConfig, simulate

CHECKPOINTS = (3, 8, 15, 25, 40)
SIMULATIONS = {
    "seed 11": SimulatorConfig(
        seed=11, runs=40, healthy_tests=60, flaky_tests=40, broken_tests=10, fixed_tests=16
    ),
    "seed 12": SimulatorConfig(
        seed=12, runs=40, healthy_tests=60, flaky_tests=40, broken_tests=10, fixed_tests=16
    ),
}
CONFIGS = {
    "default": AnalysisConfig(),
    "variant": AnalysisConfig(
        lookback_days=7,
        min_runs_threshold=3,
        protected_branches=("release/*",),
        default_branch="main",
        cross_run_evidence_on_unprotected=True,
        min_statistical_sample=5,
    ),
}


def _canonical_score(analysis: TestAnalysis) -> str:
    return json.dumps(
        {
            "executions": analysis.executions,
            "failures": analysis.failures,
            "failure_rate": analysis.failure_rate,
            "last_failure_at": analysis.last_failure_at.isoformat() if analysis.last_failure_at else None,
            "score": analysis.score.to_json() if analysis.score is not None else None,
            "impact": analysis.impact,
        },
        sort_keys=True,
    )


def _canonical_verdict(analysis: TestAnalysis) -> str:
    return json.dumps(analysis.verdict.to_json(), sort_keys=True)


def _with_errors(observations: list[Observation]) -> list[Observation]:
    """Every failure of an odd run id becomes an error (both are failures; exercised all the same)."""
    return [
        replace(o, outcome=Outcome.ERROR) if o.outcome is Outcome.FAILED and o.run_id % 2 else o
        for o in observations
    ]


def _digests(simulation: str, config_name: str) -> tuple[dict[int, str], dict[int, str]]:
    """(score digests, verdict digests) per checkpoint."""
    sim = simulate(SIMULATIONS[simulation])
    config = CONFIGS[config_name]
    rng = random.Random(f"{simulation}/{config_name}")
    previous: dict[str, PreviousState | None] = {t.name: None for t in sim.tests}
    scores: dict[int, str] = {}
    verdicts: dict[int, str] = {}
    for runs in CHECKPOINTS:
        now = sim.now_after(runs)
        score_digest, verdict_digest = hashlib.sha256(), hashlib.sha256()
        for test, observations in sim.observations_until(runs):
            observations = _with_errors(observations)
            rng.shuffle(observations)
            analysis = analyze_test(observations, config, previous[test.name], now)
            previous[test.name] = analysis.verdict.to_previous()
            score_digest.update(f"{test.name}\n{_canonical_score(analysis)}\n".encode())
            verdict_digest.update(f"{test.name}\n{_canonical_verdict(analysis)}\n".encode())
        scores[runs] = score_digest.hexdigest()[:32]
        verdicts[runs] = verdict_digest.hexdigest()[:32]
    return scores, verdicts


SCORES: dict[tuple[str, str], dict[int, str]] = {
    ("seed 11", "default"): {
        3: "e73a18c437772f20558e162b8a858c18",
        8: "2bf4cf12f8a8de9391594b254dc42254",
        15: "686283af2ebbe4b486bd3f5090c3f236",
        25: "859146b4b3f09fa70037e14ae702a157",
        40: "f82175b914f6af26003796f7714171be",
    },
    ("seed 11", "variant"): {
        3: "e80b98fe13b7d6ae91885d7fbeb49857",
        8: "2bf4cf12f8a8de9391594b254dc42254",
        15: "95fbce3a2ca23ed0e907f5aeac7717da",
        25: "de97bcf8bb9652a18b977ab8f3d91b83",
        40: "6107d6bdc8940c56abf4607b0fa145af",
    },
    ("seed 12", "default"): {
        3: "6fbb3d76a24c35ac6f8795dca8189a9e",
        8: "11cadc706bf29b7c9ae29d60baf3363e",
        15: "6be3e171975019585458b499b2537d06",
        25: "a0ae6932efbd083aec9bb4a1f69407e7",
        40: "0e02b0419bc5961df45c228dbd612189",
    },
    ("seed 12", "variant"): {
        3: "7a745b3afd42dc0bbe93b14943a3ff5f",
        8: "11cadc706bf29b7c9ae29d60baf3363e",
        15: "0b07b76c843e2d97dfda81d7d472f9f3",
        25: "1c4a62c6d46d39e3504e1c65f5d3c803",
        40: "7a265154e7fbfda238f97b1882fc2be3",
    },
}
VERDICTS: dict[tuple[str, str], dict[int, str]] = {
    ("seed 11", "default"): {
        3: "d81c4264d7bd493ded4070138a5c2505",
        8: "4e71a59c7962b2dc687a1a8a71d9280d",
        15: "4fd8dc7fc983a8b5e11ad9a8f0c75d7b",
        25: "e6764224c1d319fec84030be3c13f6d5",
        40: "cf6ce2eb2cba99e32a173f9b6a3a754b",
    },
    ("seed 11", "variant"): {
        3: "6e2e0509e4a58e01a0cc60c9da4ebc80",
        8: "4e71a59c7962b2dc687a1a8a71d9280d",
        15: "4ca138d441aaf5fbbdbeef59fe04f114",
        25: "846f3961175baed7ebe5b004fb1a5a8f",
        40: "aca05ff2d747d4826b8d9cda4cab0be3",
    },
    ("seed 12", "default"): {
        3: "81d6422776fd6c79e440a7f8056c57ed",
        8: "3d3cd666fb78e281055185db6f783ae5",
        15: "c7d3fde98ca9c512713d4a08a8e668b9",
        25: "dcd3ef0cd6def5cb921222bac24080d3",
        40: "64e057641e55012b86e236bcac456e5f",
    },
    ("seed 12", "variant"): {
        3: "884a334905a9a2d952b5e2a7f924b86b",
        8: "e54901ac3a2f25c48e1baf6afcf9d2cd",
        15: "fcf6600013665168cbc72b484ca69b08",
        25: "a96ac03e33415aabd72c1238113e09e8",
        40: "1f58357b6a8dcb4a7e276c192468bc60",
    },
}


@pytest.mark.parametrize(("simulation", "config_name"), sorted(SCORES))
def test_original_score_is_unchanged(simulation: str, config_name: str) -> None:
    assert _digests(simulation, config_name)[0] == SCORES[(simulation, config_name)]


@pytest.mark.parametrize(("simulation", "config_name"), sorted(VERDICTS))
def test_verdicts_are_unchanged(simulation: str, config_name: str) -> None:
    assert _digests(simulation, config_name)[1] == VERDICTS[(simulation, config_name)]


if __name__ == "__main__":  # print the digests (run against the implementation to freeze)
    results = {(s, c): _digests(s, c) for s in SIMULATIONS for c in CONFIGS}
    for index, name in enumerate(("SCORES", "VERDICTS")):
        print(f"{name}: dict[tuple[str, str], dict[int, str]] = {{")
        for key, digests in results.items():
            print(f"    {key!r}: {digests[index]!r},")
        print("}")
