"""The analysis core against frozen outputs: `analyze_test` must give exactly the same results (every
field, every float bit, every evidence item) as the implementation it replaced.

The digests below were produced by the straightforward implementation of commit 905a438 (before the
single-pass rewrite of `flakeguard.analysis`) on seeded CI simulator histories: two configurations,
checkpoints after several runs with the previous verdict carried over (hysteresis), some failures
turned into errors, observations in shuffled order. A change that alters any result fails here; if a
change is *meant* to alter results, regenerate with `_digests()` and say so in the commit.
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


def _canonical(analysis: TestAnalysis) -> str:
    return json.dumps(
        {
            "executions": analysis.executions,
            "failures": analysis.failures,
            "failure_rate": analysis.failure_rate,
            "last_failure_at": analysis.last_failure_at.isoformat() if analysis.last_failure_at else None,
            "score": analysis.score.to_json() if analysis.score is not None else None,
            "verdict": analysis.verdict.to_json(),
            "impact": analysis.impact,
        },
        sort_keys=True,
    )


def _with_errors(observations: list[Observation]) -> list[Observation]:
    """Every failure of an odd run id becomes an error (both are failures; exercised all the same)."""
    return [
        replace(o, outcome=Outcome.ERROR) if o.outcome is Outcome.FAILED and o.run_id % 2 else o
        for o in observations
    ]


def _digests(simulation: str, config_name: str) -> dict[int, str]:
    sim = simulate(SIMULATIONS[simulation])
    config = CONFIGS[config_name]
    rng = random.Random(f"{simulation}/{config_name}")
    previous: dict[str, PreviousState | None] = {t.name: None for t in sim.tests}
    digests: dict[int, str] = {}
    for runs in CHECKPOINTS:
        now = sim.now_after(runs)
        digest = hashlib.sha256()
        for test, observations in sim.observations_until(runs):
            observations = _with_errors(observations)
            rng.shuffle(observations)
            analysis = analyze_test(observations, config, previous[test.name], now)
            previous[test.name] = analysis.verdict.to_previous()
            digest.update(f"{test.name}\n{_canonical(analysis)}\n".encode())
        digests[runs] = digest.hexdigest()[:32]
    return digests


GOLDEN: dict[tuple[str, str], dict[int, str]] = {
    ("seed 11", "default"): {
        3: "bd09403e079849b01281a8ed12a48c17",
        8: "b60a009c8e0a6ae0e6b7ccec175069c5",
        15: "60c8670c52b296734ece20ae6242945d",
        25: "8d2b3f78d2a31bad4e269af7bf52e671",
        40: "d8748c41f99d3551db45c22217d40ce9",
    },
    ("seed 11", "variant"): {
        3: "725c102c9c46ff78b84a1241b93c133d",
        8: "b60a009c8e0a6ae0e6b7ccec175069c5",
        15: "815017ac3b4d961ffb5880d108ed265d",
        25: "74863cd7a50db08328fdafc8ec50e23a",
        40: "87be94b431aaa4db81cc54fcf39e1062",
    },
    ("seed 12", "default"): {
        3: "461d51820face3c56defcadeeafebaff",
        8: "250733c769fa8550fe58f99d93f7bdf8",
        15: "d3248d7c7a460f8592dff4d78524bd66",
        25: "441f46e542756ceb056b15fff1ab4af9",
        40: "b7eaea115afa4e2cfa1616718de8ce81",
    },
    ("seed 12", "variant"): {
        3: "dd0d68644c5ddf912e1aa35625207b2c",
        8: "55b76844f2928e3eaf51505d7782d159",
        15: "610070f675c5ae815f0c5e3f19f57c46",
        25: "b5c551c2019927605a2eb0ae918cafe2",
        40: "3371fd3622d5094f3c65dc2e0805a2df",
    },
}


@pytest.mark.parametrize(("simulation", "config_name"), sorted(GOLDEN))
def test_analysis_is_unchanged(simulation: str, config_name: str) -> None:
    assert _digests(simulation, config_name) == GOLDEN[(simulation, config_name)]


if __name__ == "__main__":  # print the digests (run against the implementation to freeze)
    for key in [(s, c) for s in SIMULATIONS for c in CONFIGS]:
        print(f"    {key!r}: {_digests(*key)!r},")
