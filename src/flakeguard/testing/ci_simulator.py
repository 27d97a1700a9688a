"""A seeded simulator of CI histories with known truth, for measuring flaky-test detection.

The simulated repository has a default branch (`main`) and a few feature branches. Every workflow run
tests one commit and executes every test once (plus in-run retries for tests in retrying suites);
failed runs are sometimes re-run (attempt 2, same commit, every test again). The truth of each test:

* **healthy** — always passes on working code;
* **flaky** — every execution fails independently with probability `p_fail` (log-spaced over
  `flaky_p_min` .. `flaky_p_max`);
* **broken** — passes until a commit breaks it, fails on every commit from then on;
* **fixed** — broken for a stretch of commits then fixed, either on every branch (a regression on
  main) or on one feature branch only (work in progress);

plus **infrastructure outages**: a run attempt where almost every test fails, whatever its truth.

Whether a commit breaks a test depends on the commit (its creation index), not on the time it runs,
so re-running a commit reproduces a genuine breakage — only flakiness and outages differ between
executions of the same commit. Nothing here is random at import; everything derives from the seed.

**What real suites do besides** (all off by default; `hard_profile` turns them on), drawn from a
second random stream so that the default histories stay exactly what they were:

* `slow_days` — days (`slow_day_runs` consecutive runs) on which the *timing-sensitive* flaky tests
  (`timing_sensitive_share` of them) fail far more often: failures correlated in time, which on a
  protected branch look like a regression over several commits;
* `order_dependent_tests` — flaky tests that fail when a polluting test ran before them in the same
  worker (the order is shuffled per run attempt); an in-run retry runs them alone and passes;
* `newly_flaky_tests` — healthy until a commit introduces an intermittent failure, flaky on every
  commit created from then on (they *are* flaky from that commit on and must be found);
* `shard_deaths` — run attempts in which one shard or runner dies and every test on it (20-50 % of
  the tests) errors with the same message;
* `renamed_tests` — tests (half healthy, half flaky) renamed at some run: two identities, the old
  one with the history before, the new one with the history after;
* `quarantined_share` of the flaky tests and `quarantined_broken_tests` extra tests are quarantined
  and keep running: their failures do not fail the run, so they never cause a re-run; the
  quarantined broken tests break for real at some commit and stay broken;
* `outage_runs` — exactly this many runs (first attempts) are outages, beside `outage_probability`;
* `signatures` — every failure gets a message and a stack trace in the style of its cause, its
  `Observation.signature` is `failure_signature(...)` of them and `Observation.infrastructure` is
  set as the pipeline sets it (`infrastructure_signatures` per run attempt).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from flakeguard.analysis.model import AnalysisConfig, Observation
from flakeguard.analysis.signatures import failure_signature, infrastructure_signatures
from flakeguard.model import Outcome

MAIN = "main"
DEFAULT_SEED = 20250101


class TestKind(StrEnum):
    __test__ = False

    HEALTHY = "healthy"
    FLAKY = "flaky"
    BROKEN = "broken"
    FIXED = "fixed"


class Flavour(StrEnum):
    """How a flaky test fails (the `hard_profile` adds all but `independent`)."""

    INDEPENDENT = "independent"  # every execution independently with p_fail
    TIMING = "timing"  # much more often on slow CI days
    ORDER = "order"  # when a polluting test ran earlier in the same worker; passes alone
    NEWLY = "newly"  # healthy until commit `flaky_from`, then independent with p_fail


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    seed: int = DEFAULT_SEED
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
    # What real suites do besides (see the module docstring); all off by default.
    outage_runs: int = 0
    slow_days: int = 0
    slow_day_runs: int = 3
    timing_sensitive_share: float = 0.0
    order_dependent_tests: int = 0
    newly_flaky_tests: int = 0
    shard_deaths: int = 0
    renamed_tests: int = 0
    quarantined_share: float = 0.0
    quarantined_broken_tests: int = 0
    signatures: bool = False


def plain_profile(seed: int = DEFAULT_SEED, runs: int = 40, *, retries: bool = False) -> SimulatorConfig:
    """CI as most teams run it: no in-run retry, no re-run attempt, a third of the runs on feature
    branches, flaky tests failing 5 %-50 % of the time, broken, broken-then-fixed and branch-only
    regressions, two infrastructure outages. With `retries`, the same with the default simulator's
    in-run retries (a quarter of the tests) and re-runs (40 % of failed runs)."""
    default = SimulatorConfig()
    return SimulatorConfig(
        seed=seed,
        runs=runs,
        flaky_p_min=0.05,
        main_share=2 / 3,
        rerun_probability=default.rerun_probability if retries else 0.0,
        retry_suite_share=default.retry_suite_share if retries else 0.0,
        outage_probability=0.0,
        outage_runs=2,
        signatures=True,
    )


def hard_profile(seed: int = DEFAULT_SEED, runs: int = 40, *, retries: bool = False) -> SimulatorConfig:
    """`plain_profile` plus everything real suites do besides: slow days, order-dependent and newly
    flaky tests, dying shards, renamed and quarantined tests."""
    return replace(
        plain_profile(seed, runs, retries=retries),
        slow_days=2,
        timing_sensitive_share=0.2,
        order_dependent_tests=10,
        newly_flaky_tests=10,
        shard_deaths=2,
        renamed_tests=10,
        quarantined_share=0.1,
        quarantined_broken_tests=2,
    )


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
    flavour: Flavour = Flavour.INDEPENDENT
    flaky_from: int | None = None  # NEWLY: commits created at run index >= flaky_from are flaky
    runs_from: int = 0  # renamed tests: the identity exists in runs [runs_from, runs_until)
    runs_until: int | None = None
    quarantined: bool = False  # its failures do not fail the run (no re-run because of it)

    def broken_on(self, commit_index: int, branch: str) -> bool:
        if self.break_at is None or commit_index < self.break_at:
            return False
        if self.fixed_at is not None and commit_index >= self.fixed_at:
            return False
        return self.break_branch is None or self.break_branch == branch

    def flaky_on(self, commit_index: int) -> bool:
        return self.kind is TestKind.FLAKY and (self.flaky_from is None or commit_index >= self.flaky_from)

    def runs_in(self, index: int) -> bool:
        return index >= self.runs_from and (self.runs_until is None or index < self.runs_until)

    def truth_after(self, runs: int) -> TestKind:
        """The truth once `runs` runs have happened: flaky, broken (now) or healthy."""
        if self.kind is TestKind.FLAKY:
            if self.flaky_from is not None and self.flaky_from > runs - 1:
                return TestKind.HEALTHY  # the intermittent failure is not introduced yet
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
    shard_death: bool = False
    slow_day: bool = False


@dataclass(slots=True)
class SimHistory:
    config: SimulatorConfig
    tests: list[SimTest]
    runs: list[SimRun] = field(default_factory=list)
    # per test, in the order executed (chronological)
    observations: dict[str, list[Observation]] = field(default_factory=dict)
    run_index_of: dict[int, int] = field(default_factory=dict)  # run_id -> run index

    def observations_until(self, runs: int) -> Iterator[tuple[SimTest, list[Observation]]]:
        """Each test with its observations from the first `runs` runs (renamed identities that have
        not run yet are left out)."""
        for test in self.tests:
            if test.runs_from >= runs:
                continue
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


def _add_real_world_tests(cfg: SimulatorConfig, tests: list[SimTest], rng: random.Random) -> list[SimTest]:
    """The `hard_profile` additions, drawn from their own random stream."""
    log_min, log_max = math.log(max(cfg.flaky_p_min, 0.05)), math.log(cfg.flaky_p_max)

    def p_between(low: float, high: float) -> float:
        return math.exp(rng.uniform(math.log(low), math.log(high)))

    out: list[SimTest] = []
    for test in tests:
        if test.kind is TestKind.FLAKY and rng.random() < cfg.timing_sensitive_share:
            test = replace(test, flavour=Flavour.TIMING)
        if test.kind is TestKind.FLAKY and rng.random() < cfg.quarantined_share:
            test = replace(test, quarantined=True)
        out.append(test)
    for i in range(cfg.order_dependent_tests):
        out.append(
            SimTest(f"order_{i:03d}", TestKind.FLAKY, p_fail=p_between(0.1, 0.5), flavour=Flavour.ORDER)
        )
    for i in range(cfg.newly_flaky_tests):
        p = math.exp(log_min + (log_max - log_min) * rng.random())
        start = rng.randrange(cfg.runs // 5, max(cfg.runs // 5 + 1, cfg.runs - cfg.runs // 5))
        out.append(
            SimTest(
                f"newly_{i:03d}_p{p:.3f}", TestKind.FLAKY, p_fail=p, flavour=Flavour.NEWLY, flaky_from=start
            )
        )
    for i in range(cfg.renamed_tests):
        at = rng.randrange(cfg.runs // 4, max(cfg.runs // 4 + 1, cfg.runs - cfg.runs // 4))
        if i % 2:
            p = p_between(0.08, 0.5)
            base = SimTest(f"renamed_{i:03d}_p{p:.3f}", TestKind.FLAKY, p_fail=p)
        else:
            base = SimTest(f"renamed_{i:03d}", TestKind.HEALTHY)
        out.append(replace(base, runs_until=at))
        out.append(replace(base, name=f"{base.name}_new", runs_from=at))
    for i in range(cfg.quarantined_broken_tests):
        break_at = rng.randrange(max(1, cfg.runs // 10), cfg.runs)
        out.append(
            SimTest(f"quarantined_broken_{i:03d}", TestKind.BROKEN, break_at=break_at, quarantined=True)
        )
    return out


def _message(test: SimTest, cause: str, rng: random.Random, started: datetime) -> tuple[str, str]:
    """A failure message and stack trace in the style of its cause, with the details that vary between
    occurrences (numbers, addresses, temp dirs, times) varying."""
    module = test.name.split("_p0")[0].removesuffix("_new")
    path = f"/home/runner/work/app/app/tests/test_{module}.py"
    frame = f'  File "{path}", line {40 + len(module)}, in test_{module}'
    if cause == "broken":
        return (
            f"AssertionError: assert status == 200 (got 500 from handler {module})",
            f"Traceback (most recent call last):\n{frame}\nAssertionError",
        )
    if cause == "outage":
        return (
            f'psycopg.OperationalError: connection to server at "10.0.{rng.randrange(255)}.'
            f'{rng.randrange(255)}", port 5432 failed: Connection refused',
            'Traceback (most recent call last):\n  File "/home/runner/work/app/app/tests/conftest.py", '
            "line 12, in db\npsycopg.OperationalError",
        )
    if cause == "shard":
        return (
            f"The runner has received a shutdown signal (exit code 143) at {started.isoformat()}",
            "",
        )
    if cause == "order":
        return (
            f"AssertionError: expected 0 rows in table jobs, found {rng.randrange(1, 9)}",
            f"Traceback (most recent call last):\n{frame}\nAssertionError",
        )
    if cause == "timing" or rng.random() < 0.5:
        return (
            f"TimeoutError: operation took {rng.randrange(501, 4000)} ms (limit 500 ms) at "
            f"{(started + timedelta(seconds=rng.randrange(3600))).time().isoformat()}",
            f"Traceback (most recent call last):\n{frame}\nTimeoutError",
        )
    return (
        f"ConnectionResetError: [Errno 104] reset by peer 0x{rng.getrandbits(48):012x} "
        f"in /tmp/pytest-of-runner/pytest-{rng.randrange(1000)}/test_{module}0/sock",
        f"Traceback (most recent call last):\n{frame}\nConnectionResetError",
    )


def simulate(cfg: SimulatorConfig | None = None) -> SimHistory:
    """Simulate `cfg.runs` workflow runs (plus re-run attempts) of every test."""
    cfg = cfg or SimulatorConfig()
    rng = random.Random(cfg.seed)
    # Everything beyond the original simulator draws from this stream, so that the original
    # histories (and the golden analysis outputs over them) stay exactly the same.
    extra = random.Random(cfg.seed * 7919 + 1)
    tests = _make_tests(cfg, rng)
    real_world = bool(
        cfg.timing_sensitive_share
        or cfg.quarantined_share
        or cfg.order_dependent_tests
        or cfg.newly_flaky_tests
        or cfg.renamed_tests
        or cfg.quarantined_broken_tests
    )
    if real_world:
        tests = _add_real_world_tests(cfg, tests, extra)
    history = SimHistory(config=cfg, tests=tests, observations={t.name: [] for t in tests})
    features = [f"feature/{i}" for i in range(cfg.feature_branches)]
    last_commit: dict[str, tuple[str, int]] = {}  # branch -> (sha, creation index)
    run_id = 1000
    outage_at = (
        set(extra.sample(range(cfg.runs), min(cfg.outage_runs, cfg.runs))) if cfg.outage_runs else set()
    )
    shard_at = (
        set(extra.sample(range(cfg.runs), min(cfg.shard_deaths, cfg.runs))) if cfg.shard_deaths else set()
    )
    slow_at: set[int] = set()
    for _ in range(cfg.slow_days):
        first = extra.randrange(max(1, cfg.runs - cfg.slow_day_runs))
        slow_at.update(range(first, first + cfg.slow_day_runs))
    analysis_config = AnalysisConfig()

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
        slow = index in slow_at
        attempt = 1
        while True:
            outage = rng.random() < cfg.outage_probability or (attempt == 1 and index in outage_at)
            severity = rng.uniform(0.9, 1.0) if outage else 0.0
            shard: range | None = None
            if attempt == 1 and index in shard_at:
                size = round(len(tests) * extra.uniform(0.2, 0.5))
                begin = extra.randrange(len(tests) - size + 1)
                shard = range(begin, begin + size)
            executions: dict[str, list[tuple[Outcome, str | None]]] = {}
            for position, test in enumerate(tests):
                if not test.runs_in(index):
                    continue
                if test.skips and rng.random() < cfg.skip_probability:
                    executions[test.name] = [(Outcome.SKIPPED, None)]
                    continue
                if shard is not None and position in shard:
                    executions[test.name] = [(Outcome.ERROR, "shard")]
                    continue
                broken = test.broken_on(created, branch)
                outcomes: list[tuple[Outcome, str | None]] = []
                for retry in range(1 + (cfg.max_retries if test.retries else 0)):
                    cause = _cause(test, created, broken, outage, severity, slow, retry, rng, extra)
                    outcomes.append((Outcome.PASSED, None) if cause is None else (Outcome.FAILED, cause))
                    if cause is None:
                        break
                executions[test.name] = outcomes
            failing = sum(1 for outs in executions.values() if any(o.is_failure for o, _ in outs))
            share = failing / len(executions)
            attempt_start = started + timedelta(hours=1) * (attempt - 1)
            history.runs.append(
                SimRun(index, run_id, attempt, branch, sha, attempt_start, outage, shard is not None, slow)
            )
            signatures: dict[tuple[str, int], str | None] = {}
            infra: frozenset[str] = frozenset()
            if cfg.signatures:
                signatures, infra = _signatures(tests, executions, attempt_start, extra, analysis_config)
            for name, outs in executions.items():
                for ordinal, (outcome, _) in enumerate(outs):
                    signature = signatures.get((name, ordinal))
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
                            signature=signature,
                            infrastructure=signature is not None and signature in infra,
                        )
                    )
            blocking = (
                failing
                if not real_world
                else sum(
                    1
                    for test in tests
                    if not test.quarantined and any(o.is_failure for o, _ in executions.get(test.name, ()))
                )
            )
            if attempt == 1 and blocking > 0 and rng.random() < cfg.rerun_probability:
                attempt = 2
                continue
            break
    return history


def _cause(
    test: SimTest,
    created: int,
    broken: bool,
    outage: bool,
    severity: float,
    slow: bool,
    retry: int,
    rng: random.Random,
    extra: random.Random,
) -> str | None:
    """Why this execution fails, or None when it passes. The original simulator's draws (`rng`) are
    made exactly as before; the real-world flavours draw from `extra`."""
    if broken:
        return "broken"
    if outage and rng.random() < severity:
        return "outage"
    if test.kind is not TestKind.FLAKY:
        return None
    flavour = test.flavour
    if flavour is Flavour.INDEPENDENT:
        return "flaky" if rng.random() < test.p_fail else None
    if flavour is Flavour.TIMING:
        p = min(0.9, 3 * test.p_fail + 0.4) if slow else test.p_fail / 3
        return "timing" if extra.random() < p else None
    if flavour is Flavour.ORDER:  # an in-run retry runs the test alone: it passes
        return "order" if retry == 0 and extra.random() < test.p_fail else None
    if not test.flaky_on(created):
        return None
    return "flaky" if extra.random() < test.p_fail else None


def _signatures(
    tests: list[SimTest],
    executions: dict[str, list[tuple[Outcome, str | None]]],
    started: datetime,
    rng: random.Random,
    config: AnalysisConfig,
) -> tuple[dict[tuple[str, int], str | None], frozenset[str]]:
    """Each failing execution's signature, and the run attempt's infrastructure signatures, computed
    as the pipeline computes them."""
    by_name = {t.name: t for t in tests}
    signatures: dict[tuple[str, int], str | None] = {}
    failing: Counter[str] = Counter()
    for name, outs in executions.items():
        seen: set[str] = set()
        for ordinal, (outcome, cause) in enumerate(outs):
            if cause is None or not outcome.is_failure:
                continue
            signature = failure_signature(*_message(by_name[name], cause, rng, started))
            signatures[(name, ordinal)] = signature
            if signature is not None and signature not in seen:
                seen.add(signature)
                failing[signature] += 1
    return signatures, infrastructure_signatures(failing, len(executions), config)
