"""The CI simulator: seeded, and its histories obey the truth it reports."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import pytest

from flakeguard.model import Outcome
from flakeguard.testing.ci_simulator import (
    Flavour,
    SimulatorConfig,
    TestKind,
    hard_profile,
    plain_profile,
    simulate,
)

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


# ----------------------------------------------------------------- the profiles of issue 12


def small(profile: SimulatorConfig) -> SimulatorConfig:
    return replace(profile, healthy_tests=30, flaky_tests=12, broken_tests=4, fixed_tests=4)


def test_plain_profile_has_no_retries_no_reruns_and_two_outages() -> None:
    sim = simulate(small(plain_profile(seed=3, runs=30)))
    every = [o for observations in sim.observations.values() for o in observations]
    assert {o.ordinal for o in every} == {0}
    assert {o.run_attempt for o in every} == {1}
    assert sum(r.outage for r in sim.runs) == 2
    assert min(t.p_fail for t in sim.tests if t.kind is TestKind.FLAKY) == pytest.approx(0.05)
    main_runs = sum(r.branch == "main" for r in sim.runs)
    assert 0.5 < main_runs / len(sim.runs) < 0.85  # about two thirds
    failures = [o for o in every if o.is_failure]
    assert failures and all(o.signature is not None for o in failures)


def test_a_dying_shard_fails_a_block_of_tests_with_one_signature_flagged_as_infrastructure() -> None:
    sim = simulate(replace(small(plain_profile(seed=5, runs=20)), shard_deaths=1, outage_runs=0))
    (death,) = [r for r in sim.runs if r.shard_death]
    in_run = [
        o for observations in sim.observations.values() for o in observations if o.run_id == death.run_id
    ]
    flagged = [o for o in in_run if o.infrastructure]
    assert 0.2 * len(in_run) <= len(flagged) <= 0.5 * len(in_run) + 1
    assert len({o.signature for o in flagged}) == 1
    assert all(o.outcome is Outcome.ERROR for o in flagged)
    # the share rule (above 80 % of the run failing) would not have caught it
    assert all(o.run_failure_share <= 0.8 for o in in_run)


def test_real_world_flaky_tests_behave_as_described() -> None:
    sim = simulate(small(hard_profile(seed=9, runs=40, retries=True)))
    by_name = {t.name: t for t in sim.tests}
    slow = {r.run_id for r in sim.runs if r.slow_day}
    assert slow
    for name, observations in sim.observations.items():
        test = by_name[name]
        clean = [o for o in observations if not o.infrastructure and o.run_failure_share <= 0.8]
        if test.flavour is Flavour.ORDER:  # an in-run retry runs it alone: it passes
            assert all(not o.is_failure for o in clean if o.ordinal > 0)
        if test.flavour is Flavour.NEWLY:  # healthy on the commits before the intermittent failure
            assert test.flaky_from is not None
            early = [o for o in clean if sim.run_index_of[o.run_id] < test.flaky_from]
            assert not any(o.is_failure for o in early)
    renamed = [t for t in sim.tests if t.runs_until is not None]
    assert renamed
    for old in renamed:
        new = by_name[f"{old.name}_new"]
        assert new.runs_from == old.runs_until
        assert all(sim.run_index_of[o.run_id] < new.runs_from for o in sim.observations[old.name])
        assert all(sim.run_index_of[o.run_id] >= new.runs_from for o in sim.observations[new.name])


def test_quarantined_tests_keep_running_but_do_not_trigger_reruns() -> None:
    profile = replace(
        small(hard_profile(seed=4, runs=40, retries=True)),
        quarantined_share=1.0,  # every flaky test of the original kinds is quarantined
        broken_tests=0,
        fixed_tests=0,
        order_dependent_tests=0,
        newly_flaky_tests=0,
        renamed_tests=0,
        quarantined_broken_tests=0,
    )
    sim = simulate(profile)
    quarantined = {t.name for t in sim.tests if t.quarantined}
    assert quarantined
    assert all(sim.observations[name] for name in quarantined)
    reruns = {r.run_id for r in sim.runs if r.attempt == 2}
    red_only_by_quarantined = []
    for run in sim.runs:
        if run.attempt != 1 or run.outage or run.shard_death:
            continue
        failing = {
            name
            for name, observations in sim.observations.items()
            if any(o.is_failure and o.run_id == run.run_id and o.run_attempt == 1 for o in observations)
        }
        if failing and failing <= quarantined:
            red_only_by_quarantined.append(run.run_id)
    assert red_only_by_quarantined
    assert not reruns.intersection(red_only_by_quarantined)


def test_the_default_profile_does_not_draw_from_the_extra_stream() -> None:
    # the original histories stay exactly what they were (the golden analysis outputs rely on it)
    assert simulate(SMALL).observations == simulate(replace(SMALL, signatures=False)).observations
    assert all(o.signature is None for obs in simulate(SMALL).observations.values() for o in obs)
