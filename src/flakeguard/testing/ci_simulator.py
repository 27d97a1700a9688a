"""A seeded simulator of CI histories with known truth, for measuring flaky-test detection.

The simulated repository has a default branch (`main`) and a few feature branches. Every workflow run
tests one commit and executes every test once (plus in-run retries for tests in retrying suites);
failed runs are sometimes re-run (attempt 2, same commit, every test again). The truth of each test:

* **healthy** — always passes on working code;
* **flaky** — every execution fails independently with probability `p_fail` (1 % .. 50 %, log-uniform);
* **broken** — passes until a commit breaks it, fails on every commit from then on;
* **fixed** — broken for a stretch of commits then fixed, either on every branch (a regression on
  main) or on one feature branch only (work in progress);

plus **infrastructure outages**: a run attempt where almost every test fails, whatever its truth.

Whether a commit breaks a test depends on the commit (its creation index), not on the time it runs,
so re-running a commit reproduces a genuine breakage — only flakiness and outages differ between
executions of the same commit. Nothing here is random at import; everything derives from the seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from flakeguard.analysis.model import Observation
from flakeguard.model import Outcome

MAIN = "main"


class TestKind(StrEnum):
    __test__ = False

    HEALTHY = "healthy"
    FLAKY = "flaky"
    BROKEN = "broken"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    seed: int = 20250101
    runs: int = 60
    healthy_tests: int = 300
    flaky_tests: int = 100
    broken_tests: int = 15
    fixed_tests: int = 25
    flaky_p_min: float = 0.01
    flaky_p_max: float = 0.50
    main_share: float = 0.5  # share of runs on main; the rest on feature branches
    feature_branches: int = 6
    retrigger_probability: float = 0.15  # a feature-branch run re-tests the branch's previous commit
    rerun_probability: float = 0.4  # a failed run gets a second attempt on the same commit
    retry_suite_share: float = 0.25  # share of tests in suites with in-run retries
    max_retries: int = 2
    outage_probability: float = 0.04  # per run attempt
    skipping_test_share: float = 0.05  # tests that are skipped in some runs (platform conditions)
    skip_probability: float = 0.3
    run_interval: timedelta = timedelta(hours=8)
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SimTest:
    __test__ = False

    name: str
    kind: TestKind
    p_fail: float = 0.0
    retries: bool = False
    skips: bool = False
    break_at: int | None = None  # commits created at run index >= break_at are broken ...
    fixed_at: int | None = None  # ... and < fixed_at (None: never fixed)
    break_branch: str | None = None  # None: every branch; else only that feature branch

    def broken_on(self, commit_index: int, branch: str) -> bool:
        if self.break_at is None or commit_index < self.break_at:
            return False
        if self.fixed_at is not None and commit_index >= self.fixed_at:
            return False
        return self.break_branch is None or self.break_branch == branch

    def truth_after(self, runs: int) -> TestKind:
        """The truth once `runs` runs have happened: flaky, broken (now) or healthy."""
        if self.kind is TestKind.FLAKY:
            return TestKind.FLAKY
        if self.kind in (TestKind.BROKEN, TestKind.FIXED) and self.break_branch is None:
            assert self.break_at is not None
            last = runs - 1
            if self.break_at <= last and (self.fixed_at is None or last < self.fixed_at):
                return TestKind.BROKEN
        return TestKind.HEALTHY


@dataclass(frozen=True, slots=True)
class SimRun:
    index: int
    run_id: int
    attempt: int
    branch: str
    head_sha: str
    started_at: datetime
    outage: bool


@dataclass(slots=True)
class SimHistory:
    config: SimulatorConfig
    tests: list[SimTest]
    runs: list[SimRun] = field(default_factory=list)
    # per test, in the order executed (chronological)
    observations: dict[str, list[Observation]] = field(default_factory=dict)
    run_index_of: dict[int, int] = field(default_factory=dict)  # run_id -> run index

    def observations_until(self, runs: int) -> Iterator[tuple[SimTest, list[Observation]]]:
        """Each test with its observations from the first `runs` runs."""
        for test in self.tests:
            yield test, [o for o in self.observations[test.name] if self.run_index_of[o.run_id] < runs]

    def now_after(self, runs: int) -> datetime:
        """A moment just after the `runs`-th run (and its re-run) finished."""
        return self.config.start + self.config.run_interval * (runs - 1) + timedelta(hours=3)


def _make_tests(cfg: SimulatorConfig, rng: random.Random) -> list[SimTest]:
    tests: list[SimTest] = []
    features = [f"feature/{i}" for i in range(cfg.feature_branches)]

    def with_traits(test: SimTest) -> SimTest:
        retries = rng.random() < cfg.retry_suite_share
        skips = rng.random() < cfg.skipping_test_share
        return replace(test, retries=retries, skips=skips)

    for i in range(cfg.healthy_tests):
        tests.append(with_traits(SimTest(f"healthy_{i:03d}", TestKind.HEALTHY)))
    log_min, log_max = math.log(cfg.flaky_p_min), math.log(cfg.flaky_p_max)
    for i in range(cfg.flaky_tests):
        p = math.exp(log_min + (log_max - log_min) * i / max(1, cfg.flaky_tests - 1))
        tests.append(with_traits(SimTest(f"flaky_{i:03d}_p{p:.3f}", TestKind.FLAKY, p_fail=p)))
    for i in range(cfg.broken_tests):
        break_at = rng.randrange(max(1, cfg.runs // 10), cfg.runs)
        tests.append(with_traits(SimTest(f"broken_{i:03d}", TestKind.BROKEN, break_at=break_at)))
    for i in range(cfg.fixed_tests):
        break_at = rng.randrange(1, max(2, cfg.runs - 6))
        fixed_at = break_at + rng.randint(2, 8)
        branch = None if i % 2 == 0 else rng.choice(features)
        fixed = SimTest(
            f"fixed_{i:03d}", TestKind.FIXED, break_at=break_at, fixed_at=fixed_at, break_branch=branch
        )
        tests.append(with_traits(fixed))
    return tests


def simulate(cfg: SimulatorConfig | None = None) -> SimHistory:
    """Simulate `cfg.runs` workflow runs (plus re-run attempts) of every test."""
    cfg = cfg or SimulatorConfig()
    rng = random.Random(cfg.seed)
    tests = _make_tests(cfg, rng)
    history = SimHistory(config=cfg, tests=tests, observations={t.name: [] for t in tests})
    features = [f"feature/{i}" for i in range(cfg.feature_branches)]
    last_commit: dict[str, tuple[str, int]] = {}  # branch -> (sha, creation index)
    run_id = 1000

    for index in range(cfg.runs):
        branch = MAIN if rng.random() < cfg.main_share else rng.choice(features)
        previous = last_commit.get(branch)
        if branch != MAIN and previous is not None and rng.random() < cfg.retrigger_probability:
            sha, created = previous
        else:
            sha, created = f"{rng.getrandbits(160):040x}", index
        last_commit[branch] = (sha, created)
        run_id += 1
        history.run_index_of[run_id] = index
        started = cfg.start + cfg.run_interval * index
        attempt = 1
        while True:
            outage = rng.random() < cfg.outage_probability
            severity = rng.uniform(0.9, 1.0) if outage else 0.0
            executions: dict[str, list[Outcome]] = {}
            for test in tests:
                if test.skips and rng.random() < cfg.skip_probability:
                    executions[test.name] = [Outcome.SKIPPED]
                    continue
                broken = test.broken_on(created, branch)
                outcomes: list[Outcome] = []
                for _ in range(1 + (cfg.max_retries if test.retries else 0)):
                    failed = (
                        broken
                        or (outage and rng.random() < severity)
                        or (test.kind is TestKind.FLAKY and rng.random() < test.p_fail)
                    )
                    outcomes.append(Outcome.FAILED if failed else Outcome.PASSED)
                    if not failed:
                        break
                executions[test.name] = outcomes
            failing = sum(1 for outs in executions.values() if Outcome.FAILED in outs)
            share = failing / len(tests)
            attempt_start = started + timedelta(hours=1) * (attempt - 1)
            history.runs.append(SimRun(index, run_id, attempt, branch, sha, attempt_start, outage))
            for name, outs in executions.items():
                for ordinal, outcome in enumerate(outs):
                    history.observations[name].append(
                        Observation(
                            outcome=outcome,
                            started_at=attempt_start,
                            head_sha=sha,
                            branch=branch,
                            run_id=run_id,
                            run_attempt=attempt,
                            ordinal=ordinal,
                            run_failure_share=share,
                        )
                    )
            if attempt == 1 and failing > 0 and rng.random() < cfg.rerun_probability:
                attempt = 2
                continue
            break
    return history
