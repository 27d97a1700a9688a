"""The CI simulator: seeded, and its histories obey the truth it reports."""

from __future__ import annotations

from collections import defaultdict

from flakeguard.testing.ci_simulator import SimulatorConfig, TestKind, simulate

SMALL = SimulatorConfig(seed=7, runs=20, healthy_tests=20, flaky_tests=10, broken_tests=4, fixed_tests=4)


def test_same_seed_same_history() -> None:
    assert simulate(SMALL).observations == simulate(SMALL).observations


def test_genuine_breakage_is_a_property_of_the_commit() -> None:
    sim = simulate(SMALL)
    for test in sim.tests:
        outcomes: dict[str, set[bool]] = defaultdict(set)
        for o in sim.observations[test.name]:
            if not o.is_skipped and o.run_failure_share <= 0.8:
                outcomes[o.head_sha].add(o.is_failure)
        mixed = [sha for sha, seen in outcomes.items() if len(seen) == 2]
        if test.kind is not TestKind.FLAKY:
            assert not mixed, test  # only flaky tests (and outages) differ on the same commit


def test_healthy_tests_fail_only_in_outages() -> None:
    sim = simulate(SMALL)
    for test in sim.tests:
        if test.kind is TestKind.HEALTHY:
            assert all(o.run_failure_share > 0.8 for o in sim.observations[test.name] if o.is_failure)


def test_truth_follows_break_and_fix() -> None:
    sim = simulate(SMALL)
    for test in sim.tests:
        if test.kind is TestKind.FIXED and test.break_branch is None:
            assert test.break_at is not None and test.fixed_at is not None
            assert test.truth_after(test.break_at) is TestKind.HEALTHY
            assert test.truth_after(test.break_at + 1) is TestKind.BROKEN
            assert test.truth_after(test.fixed_at + 1) is TestKind.HEALTHY


def test_reruns_repeat_the_commit() -> None:
    sim = simulate(SMALL)
    first = {r.run_id: r.head_sha for r in sim.runs if r.attempt == 1}
    reruns = [r for r in sim.runs if r.attempt == 2]
    assert reruns
    assert all(r.head_sha == first[r.run_id] for r in reruns)
