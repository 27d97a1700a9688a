"""Detection quality of the status classifier and of the original score, on simulated CI histories.

    .venv/bin/python bench/bench_detection.py [--profile P] [--seed N] [--runs 10,30,60] [--seeds K]

Profiles (`flakeguard.testing.ci_simulator`):

* `default` — the original simulator: 60 runs, half on main, in-run retries for a quarter of the
  tests, 40 % of failed runs re-run, 4 % outages, flaky tests failing 1 %-50 % of the time;
* `plain` — CI without retries or re-runs: 40 runs, a third on feature branches, flaky tests failing
  5 %-50 % of the time, two outages, failure signatures;
* `retries` — `plain` with the default's in-run retries and re-runs;
* `hard`, `hard-retries` — `plain` / `retries` plus slow CI days (time-correlated flakes),
  order-dependent and newly flaky tests, dying shards (20-50 % of a run's tests with one error),
  renamed tests and quarantined tests that keep running.

The analysis runs after every simulated run, carrying each test's previous state (as the analyze
worker does), and is evaluated at the checkpoints. For `flaky`:

* precision = true flaky among tests called flaky;
* recall (raw) = over every truly flaky test, including 1 % tests that never failed;
* recall (p ≥ 5 %) = over flaky tests failing at least 5 % of the time (the issue's target);
* recall (failed) = over flaky tests with at least one failure outside infrastructure failures;
* recall (same code) = over flaky tests that passed and failed on the same commit (outside them);
* broken→flaky = tests broken at that moment called flaky; fixed→flaky = tests that broke on every
  branch and got fixed; branch-only→flaky = tests broken and fixed on one feature branch;
  healthy→flaky = tests that never fail on working code called flaky.

The original score is evaluated at the default threshold (0.3) and at its best threshold (the F1-
maximising one over a sweep 0.00..1.00 with raw recall): a test with fewer than `min_runs_threshold`
executions has no score and is not flaky. `--per-seed` adds the status' precision and recall (p ≥ 5 %)
per seed; the `hard` profiles add recall per kind of flaky test.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from flakeguard.analysis import AnalysisConfig, PreviousState, Status, classify, original_score
from flakeguard.testing.ci_simulator import (
    DEFAULT_SEED,
    Flavour,
    SimHistory,
    SimTest,
    SimulatorConfig,
    TestKind,
    hard_profile,
    plain_profile,
    simulate,
)

PROFILES: dict[str, Callable[[int, int], SimulatorConfig]] = {
    "default": lambda seed, runs: SimulatorConfig(seed=seed, runs=runs),
    "plain": lambda seed, runs: plain_profile(seed, runs),
    "retries": lambda seed, runs: plain_profile(seed, runs, retries=True),
    "hard": lambda seed, runs: hard_profile(seed, runs),
    "hard-retries": lambda seed, runs: hard_profile(seed, runs, retries=True),
}
DEFAULT_RUNS = {"default": "10,30,60"}
STATUS = "status"
BEFORE = "status, same-code and rate evidence only"
CROSS_RUN = "status, cross-run evidence on feature branches"


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    positives: int = 0
    positives_p5: int = 0
    tp_p5: int = 0
    positives_failed: int = 0
    tp_failed: int = 0
    positives_same_code: int = 0
    tp_same_code: int = 0
    broken_as_flaky: int = 0
    broken: int = 0
    fixed_as_flaky: int = 0
    fixed: int = 0
    branch_only_as_flaky: int = 0
    branch_only: int = 0
    healthy_as_flaky: int = 0
    healthy: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [found, flaky tests]

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.positives if self.positives else 1.0

    @property
    def recall_p5(self) -> float:
        return self.tp_p5 / self.positives_p5 if self.positives_p5 else 1.0

    @property
    def recall_failed(self) -> float:
        return self.tp_failed / self.positives_failed if self.positives_failed else 1.0

    @property
    def recall_same_code(self) -> float:
        return self.tp_same_code / self.positives_same_code if self.positives_same_code else 1.0

    def f1(self, recall: float) -> float:
        p = self.precision
        return 2 * p * recall / (p + recall) if p + recall else 0.0


def kind_of(test: SimTest) -> str:
    """The kind of flaky test, for recall per kind (`hard` profiles)."""
    if test.runs_until is not None or test.runs_from:
        return "renamed"
    if test.quarantined:
        return "quarantined"
    return test.flavour.value


def _evaluate(sim: SimHistory, config: AnalysisConfig, runs: int, called_flaky: dict[str, bool]) -> Counts:
    counts = Counts()
    for test, observations in sim.observations_until(runs):
        truth = test.truth_after(runs)
        flagged = called_flaky[test.name]
        clean = [
            o
            for o in observations
            if o.run_failure_share <= config.infra_failure_share and not o.infrastructure
        ]
        failed = any(o.is_failure for o in clean)
        by_sha: dict[str, set[bool]] = defaultdict(set)
        for o in clean:
            if not o.is_skipped:
                by_sha[o.head_sha].add(o.is_failure)
        same_code = any(len(v) == 2 for v in by_sha.values())
        if truth is TestKind.FLAKY:
            counts.positives += 1
            counts.tp += flagged
            if test.p_fail >= 0.05:
                counts.positives_p5 += 1
                counts.tp_p5 += flagged
            counts.positives_failed += failed
            counts.tp_failed += flagged and failed
            counts.positives_same_code += same_code
            counts.tp_same_code += flagged and same_code
            found = counts.by_kind.setdefault(kind_of(test), [0, 0])
            found[0] += flagged
            found[1] += 1
        else:
            counts.fp += flagged
        if truth is TestKind.BROKEN:
            counts.broken += 1
            counts.broken_as_flaky += flagged
        elif (
            test.kind in (TestKind.FIXED, TestKind.BROKEN)
            and test.break_at is not None
            and test.break_at < runs
        ):
            if test.break_branch is None:
                counts.fixed += 1
                counts.fixed_as_flaky += flagged
            else:
                counts.branch_only += 1
                counts.branch_only_as_flaky += flagged
        elif truth is TestKind.HEALTHY and test.kind in (TestKind.HEALTHY, TestKind.FLAKY):
            counts.healthy += 1
            counts.healthy_as_flaky += flagged
    return counts


Result = dict[int, dict[str, tuple[Counts, float | None]]]


def run(seed: int, checkpoints: list[int], config: AnalysisConfig, profile: str) -> Result:
    """Simulate, analyse after every run, and evaluate each detector at each checkpoint."""
    sim = simulate(PROFILES[profile](seed, max(checkpoints)))
    detectors = {
        STATUS: config,
        BEFORE: replace(config, commit_order_evidence=False),
        CROSS_RUN: replace(config, cross_run_evidence_on_unprotected=True),
    }
    previous: dict[str, dict[str, PreviousState | None]] = {label: {} for label in detectors}
    results: Result = {}
    for runs in range(1, max(checkpoints) + 1):
        now = sim.now_after(runs)
        flagged: dict[str, dict[str, bool]] = {label: {} for label in detectors}
        scores: dict[str, float] = {}
        for test, observations in sim.observations_until(runs):
            for label, detector in detectors.items():
                verdict = classify(observations, detector, previous[label].get(test.name), now)
                previous[label][test.name] = verdict.to_previous()
                flagged[label][test.name] = verdict.status is Status.FLAKY
            if runs in checkpoints:
                score = original_score(observations, config, now=now)
                scores[test.name] = -1.0 if score is None else score.score
        if runs not in checkpoints:
            continue
        best: tuple[float, Counts, float] | None = None
        for step in range(0, 101):
            threshold = step / 100
            counts = _evaluate(sim, config, runs, {k: v >= threshold for k, v in scores.items()})
            if best is None or counts.f1(counts.recall) > best[0]:
                best = (counts.f1(counts.recall), counts, threshold)
        assert best is not None
        default = {k: v >= config.flakiness_threshold for k, v in scores.items()}
        results[runs] = {label: (_evaluate(sim, config, runs, flagged[label]), None) for label in detectors}
        results[runs]["original score >= 0.30"] = (_evaluate(sim, config, runs, default), None)
        results[runs]["original score, best threshold"] = (best[1], best[2])
    return results


HEADER = (
    "| runs | detector | precision | recall (raw) | recall (p ≥ 5 %) | recall (failed) | recall (same code) "
    "| F1 (raw) | broken→flaky | fixed→flaky | branch-only→flaky | healthy→flaky |"
)


def _mean(values: list[float]) -> str:
    avg = sum(values) / len(values)
    return f"{avg:.3f}" if len(values) == 1 else f"{avg:.3f} ({min(values):.2f})"


def _row(runs: int, label: str, rows: list[tuple[Counts, float | None]]) -> str:
    counts = [c for c, _ in rows]
    thresholds = [t for _, t in rows if t is not None]
    if thresholds:
        label += f" ({'/'.join(f'{t:.2f}' for t in thresholds)})"

    def ratio(hits: str, total: str) -> str:
        return f"{sum(getattr(c, hits) for c in counts)}/{sum(getattr(c, total) for c in counts)}"

    return (
        f"| {runs} | {label} | {_mean([c.precision for c in counts])} | {_mean([c.recall for c in counts])} "
        f"| {_mean([c.recall_p5 for c in counts])} | {_mean([c.recall_failed for c in counts])} "
        f"| {_mean([c.recall_same_code for c in counts])} | {_mean([c.f1(c.recall) for c in counts])} "
        f"| {ratio('broken_as_flaky', 'broken')} | {ratio('fixed_as_flaky', 'fixed')} "
        f"| {ratio('branch_only_as_flaky', 'branch_only')} | {ratio('healthy_as_flaky', 'healthy')} |"
    )


def _per_seed(seeds: list[int], checkpoints: list[int], per_seed: list[Result]) -> None:
    print("\nstatus per seed: precision / recall (p ≥ 5 %), and the worst seed's recall\n")
    print("| runs | " + " | ".join(str(s) for s in seeds) + " | worst |")
    print("|---" * (len(seeds) + 2) + "|")
    for runs in checkpoints:
        counts = [result[runs][STATUS][0] for result in per_seed]
        cells = [f"{c.precision:.2f} / {c.recall_p5:.2f}" for c in counts]
        worst = min(c.recall_p5 for c in counts)
        print(f"| {runs} | " + " | ".join(cells) + f" | {worst:.2f} |")


def _by_kind(checkpoints: list[int], per_seed: list[Result]) -> None:
    kinds = [k.value for k in Flavour] + ["renamed", "quarantined"]
    print("\nstatus: recall per kind of flaky test (found / flaky tests, summed over seeds)\n")
    print("| runs | " + " | ".join(kinds) + " |")
    print("|---" * (len(kinds) + 1) + "|")
    for runs in checkpoints:
        cells = []
        for kind in kinds:
            found = sum(r[runs][STATUS][0].by_kind.get(kind, [0, 0])[0] for r in per_seed)
            total = sum(r[runs][STATUS][0].by_kind.get(kind, [0, 0])[1] for r in per_seed)
            cells.append(f"{found}/{total}" if total else "-")
        print(f"| {runs} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--seeds", type=int, default=1, help="aggregate this many consecutive seeds")
    parser.add_argument("--runs", default=None, help="checkpoints (default 10,30,60; 20,40 for the others)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    parser.add_argument("--per-seed", action="store_true", help="the status' figures per seed")
    args = parser.parse_args()
    checkpoints = sorted(int(x) for x in (args.runs or DEFAULT_RUNS.get(args.profile, "20,40")).split(","))
    config = AnalysisConfig()
    sim_cfg = PROFILES[args.profile](args.seed, max(checkpoints))
    seeds = list(range(args.seed, args.seed + args.seeds))
    print(f"profile {args.profile}, seeds {seeds[0]}..{seeds[-1]}")
    print(f"simulator: {sim_cfg}")
    print(f"analysis: {config}")
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        per_seed = list(
            pool.map(
                run, seeds, [checkpoints] * len(seeds), [config] * len(seeds), [args.profile] * len(seeds)
            )
        )
    print("\nmean over seeds (worst seed in parentheses); broken/fixed/healthy counts summed over seeds\n")
    print(HEADER)
    print("|---" * 12 + "|")
    for runs in checkpoints:
        for label in per_seed[0][runs]:
            print(_row(runs, label, [result[runs][label] for result in per_seed]))
    if args.per_seed:
        _per_seed(seeds, checkpoints, per_seed)
    if args.profile.startswith("hard"):
        _by_kind(checkpoints, per_seed)
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
