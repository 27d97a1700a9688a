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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from flakeguard.analysis import AnalysisConfig, PreviousState, Status, classify, original_score  # noqa: E402
from flakeguard.testing.ci_simulator import SimulatorConfig, TestKind, simulate  # noqa: E402


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


def _evaluate(sim, config, runs, called_flaky):  # type: ignore[no-untyped-def]
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
        elif test.kind in (TestKind.FIXED, TestKind.BROKEN) and test.break_at is not None and test.break_at < runs:
            counts.fixed += 1
            counts.fixed_as_flaky += flagged
    return counts


def run(seed: int, checkpoints: list[int], config: AnalysisConfig) -> dict[int, tuple[Counts, Counts, Counts, float]]:
    sim_cfg = SimulatorConfig(seed=seed, runs=max(checkpoints))
    sim = simulate(sim_cfg)
    previous: dict[str, PreviousState | None] = {t.name: None for t in sim.tests}
    results: dict[int, tuple[Counts, Counts, Counts, float]] = {}
    for runs in range(1, max(checkpoints) + 1):
        now = sim.now_after(runs)
        statuses: dict[str, bool] = {}
        scores: dict[str, float] = {}
        for test, observations in sim.observations_until(runs):
            verdict = classify(observations, config, previous[test.name], now)
            previous[test.name] = verdict.to_previous()
            statuses[test.name] = verdict.status is Status.FLAKY
            if runs in checkpoints:
                score = original_score(observations, config, now=now)
                scores[test.name] = -1.0 if score is None else score.score
        if runs not in checkpoints:
            continue
        status_counts = _evaluate(sim, config, runs, statuses)
        default_counts = _evaluate(
            sim, config, runs, {k: v >= config.flakiness_threshold for k, v in scores.items()}
        )
        best: tuple[float, Counts, float] | None = None
        for step in range(0, 101):
            threshold = step / 100
            counts = _evaluate(sim, config, runs, {k: v >= threshold for k, v in scores.items()})
            if best is None or counts.f1(counts.recall) > best[0]:
                best = (counts.f1(counts.recall), counts, threshold)
        assert best is not None
        results[runs] = (status_counts, default_counts, best[1], best[2])
    return results


def _row(label: str, c: Counts) -> str:
    return (
        f"| {label:<28} | {c.precision:9.3f} | {c.recall:6.3f} | {c.recall_failed:6.3f} | "
        f"{c.recall_same_code:9.3f} | {c.f1(c.recall):6.3f} | {c.f1(c.recall_failed):8.3f} | "
        f"{c.broken_as_flaky:>2}/{c.broken:<2} | {c.fixed_as_flaky:>2}/{c.fixed:<2} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=SimulatorConfig().seed)
    parser.add_argument("--seeds", type=int, default=1, help="average over this many consecutive seeds")
    parser.add_argument("--runs", default="10,30,60")
    args = parser.parse_args()
    checkpoints = sorted(int(x) for x in args.runs.split(","))
    config = AnalysisConfig()
    sim_cfg = SimulatorConfig(seed=args.seed, runs=max(checkpoints))
    print(
        f"seed {args.seed} (+{args.seeds - 1} more)  tests: {sim_cfg.healthy_tests} healthy, {sim_cfg.flaky_tests} flaky "
        f"(p {sim_cfg.flaky_p_min:.0%}..{sim_cfg.flaky_p_max:.0%}), {sim_cfg.broken_tests} broken, "
        f"{sim_cfg.fixed_tests} broken-then-fixed"
    )
    print(f"config: {config}")
    started = time.perf_counter()
    for seed in range(args.seed, args.seed + args.seeds):
        results = run(seed, checkpoints, config)
        print(f"\nseed {seed}")
        print(
            "| runs / detector              | precision | recall | rec≥1F | rec same | F1 raw | F1 ≥1F   | brk→fl | fix→fl |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for runs, (status, default, best, threshold) in results.items():
            print(_row(f"{runs} runs: status", status))
            print(_row(f"{runs} runs: score >= 0.30", default))
            print(_row(f"{runs} runs: score >= {threshold:.2f} (best)", best))
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
