"""Detection quality of the status classifier and of the original score, on simulated CI histories.

    .venv/bin/python bench/bench_detection.py [--seed N] [--runs 10,30,60] [--seeds K]

The analysis runs after every simulated run, carrying each test's previous state (as the analyze
worker does), and is evaluated after 10, 30 and 60 runs. For `flaky`:

* precision = true flaky among tests called flaky;
* recall (raw) = over every truly flaky test, including 1 % tests that never failed;
* recall (failed) = over flaky tests with at least one failure outside infrastructure outages;
* recall (same-code) = over flaky tests that passed and failed on the same commit (outside outages);
* broken->flaky = tests broken at that moment called flaky; fixed->flaky = tests that broke and got
  fixed (on main or on a feature branch) called flaky.

The original score is evaluated at the default threshold (0.3) and at its best threshold (the F1-
maximising one over a sweep 0.00..1.00 with raw recall): a test with fewer than `min_runs_threshold`
executions has no score and is not flaky.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from flakeguard.analysis import AnalysisConfig, PreviousState, Status, classify, original_score
from flakeguard.testing.ci_simulator import SimHistory, SimulatorConfig, TestKind, simulate


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    positives: int = 0
    positives_failed: int = 0
    tp_failed: int = 0
    positives_same_code: int = 0
    tp_same_code: int = 0
    broken_as_flaky: int = 0
    broken: int = 0
    fixed_as_flaky: int = 0
    fixed: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.positives if self.positives else 1.0

    @property
    def recall_failed(self) -> float:
        return self.tp_failed / self.positives_failed if self.positives_failed else 1.0

    @property
    def recall_same_code(self) -> float:
        return self.tp_same_code / self.positives_same_code if self.positives_same_code else 1.0

    def f1(self, recall: float) -> float:
        p = self.precision
        return 2 * p * recall / (p + recall) if p + recall else 0.0


def _evaluate(sim: SimHistory, config: AnalysisConfig, runs: int, called_flaky: dict[str, bool]) -> Counts:
    counts = Counts()
    for test, observations in sim.observations_until(runs):
        truth = test.truth_after(runs)
        flagged = called_flaky[test.name]
        clean = [o for o in observations if o.run_failure_share <= config.infra_failure_share]
        failed = any(o.is_failure for o in clean)
        by_sha: dict[str, set[bool]] = defaultdict(set)
        for o in clean:
            if not o.is_skipped:
                by_sha[o.head_sha].add(o.is_failure)
        same_code = any(len(v) == 2 for v in by_sha.values())
        if truth is TestKind.FLAKY:
            counts.positives += 1
            counts.tp += flagged
            counts.positives_failed += failed
            counts.tp_failed += flagged and failed
            counts.positives_same_code += same_code
            counts.tp_same_code += flagged and same_code
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
            counts.fixed += 1
            counts.fixed_as_flaky += flagged
    return counts


Result = dict[int, dict[str, tuple[Counts, float | None]]]


def run(seed: int, checkpoints: list[int], config: AnalysisConfig, sim_cfg: SimulatorConfig) -> Result:
    """Simulate, analyse after every run, and evaluate each detector at each checkpoint."""
    sim = simulate(replace(sim_cfg, seed=seed, runs=max(checkpoints)))
    variant = replace(config, cross_run_evidence_on_unprotected=True)
    previous: dict[str, PreviousState | None] = {t.name: None for t in sim.tests}
    previous_variant: dict[str, PreviousState | None] = dict(previous)
    results: Result = {}
    for runs in range(1, max(checkpoints) + 1):
        now = sim.now_after(runs)
        flagged: dict[str, bool] = {}
        flagged_variant: dict[str, bool] = {}
        scores: dict[str, float] = {}
        for test, observations in sim.observations_until(runs):
            verdict = classify(observations, config, previous[test.name], now)
            previous[test.name] = verdict.to_previous()
            flagged[test.name] = verdict.status is Status.FLAKY
            verdict = classify(observations, variant, previous_variant[test.name], now)
            previous_variant[test.name] = verdict.to_previous()
            flagged_variant[test.name] = verdict.status is Status.FLAKY
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
        results[runs] = {
            "status": (_evaluate(sim, config, runs, flagged), None),
            "status, cross-run evidence on feature branches": (
                _evaluate(sim, config, runs, flagged_variant),
                None,
            ),
            "original score >= 0.30": (_evaluate(sim, config, runs, default), None),
            "original score, best threshold": (best[1], best[2]),
        }
    return results


HEADER = (
    "| runs | detector | precision | recall (raw) | recall (failed) | recall (same code) "
    "| F1 (raw) | F1 (failed) | broken→flaky | fixed→flaky |"
)


def _row(runs: int, label: str, rows: list[tuple[Counts, float | None]]) -> str:
    def mean(values: list[float]) -> str:
        avg = sum(values) / len(values)
        return f"{avg:.3f}" if len(values) == 1 else f"{avg:.3f} ({min(values):.2f})"

    counts = [c for c, _ in rows]
    thresholds = [t for _, t in rows if t is not None]
    if thresholds:
        label += f" ({'/'.join(f'{t:.2f}' for t in thresholds)})"
    return (
        f"| {runs} | {label} | {mean([c.precision for c in counts])} | {mean([c.recall for c in counts])} "
        f"| {mean([c.recall_failed for c in counts])} | {mean([c.recall_same_code for c in counts])} "
        f"| {mean([c.f1(c.recall) for c in counts])} | {mean([c.f1(c.recall_failed) for c in counts])} "
        f"| {sum(c.broken_as_flaky for c in counts)}/{sum(c.broken for c in counts)} "
        f"| {sum(c.fixed_as_flaky for c in counts)}/{sum(c.fixed for c in counts)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=SimulatorConfig().seed)
    parser.add_argument("--seeds", type=int, default=1, help="aggregate this many consecutive seeds")
    parser.add_argument("--runs", default="10,30,60")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    parser.add_argument(
        "--retry-share", type=float, default=None, help="what-if: share of tests retried in-run"
    )
    parser.add_argument("--rerun-probability", type=float, default=None, help="what-if: failed runs re-run")
    args = parser.parse_args()
    checkpoints = sorted(int(x) for x in args.runs.split(","))
    config = AnalysisConfig()
    sim_cfg = SimulatorConfig(seed=args.seed, runs=max(checkpoints))
    if args.retry_share is not None:
        sim_cfg = replace(sim_cfg, retry_suite_share=args.retry_share)
    if args.rerun_probability is not None:
        sim_cfg = replace(sim_cfg, rerun_probability=args.rerun_probability)
    seeds = list(range(args.seed, args.seed + args.seeds))
    print(
        f"seeds {seeds[0]}..{seeds[-1]}; per seed {sim_cfg.healthy_tests} healthy, "
        f"{sim_cfg.flaky_tests} flaky (p {sim_cfg.flaky_p_min:.0%}..{sim_cfg.flaky_p_max:.0%}), "
        f"{sim_cfg.broken_tests} broken, {sim_cfg.fixed_tests} broken-then-fixed tests"
    )
    print(f"simulator: {sim_cfg}")
    print(f"analysis: {config}")
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        per_seed = list(
            pool.map(run, seeds, [checkpoints] * len(seeds), [config] * len(seeds), [sim_cfg] * len(seeds))
        )
    print("\nmean over seeds (worst seed in parentheses); broken/fixed counts summed over seeds\n")
    print(HEADER)
    print("|---|---|---|---|---|---|---|---|---|---|")
    for runs in checkpoints:
        for label in per_seed[0][runs]:
            print(_row(runs, label, [result[runs][label] for result in per_seed]))
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
