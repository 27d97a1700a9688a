"""Quarantine timelines: when a test goes in, when it comes out, and what a human decision does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flakeguard.analysis import (
    AnalysisConfig,
    QuarantineAction,
    QuarantineOrigin,
    QuarantineState,
    Status,
    Verdict,
    decide_quarantine,
)

DAY0 = datetime(2025, 3, 1, tzinfo=UTC)
CONFIG = AnalysisConfig()  # confidence floor 0.9, quiet period 7 days


def day(n: float) -> datetime:
    return DAY0 + timedelta(days=n)


def flaky(confidence: float = 0.99, last_evidence_day: float = 0) -> Verdict:
    return Verdict(Status.FLAKY, confidence, "flaky", last_flaky_evidence_at=day(last_evidence_day))


def auto_quarantined_on(n: float) -> QuarantineState:
    return QuarantineState(True, QuarantineOrigin.AUTO, day(n), "flaky")


def test_auto_quarantine_and_release_timeline() -> None:
    # day 0: a confident flake -> quarantined
    decision = decide_quarantine(flaky(), None, CONFIG, day(0))
    assert decision.action is QuarantineAction.QUARANTINE and decision.quarantined and decision.changed
    assert decision.actor == "flakeguard" and decision.origin is QuarantineOrigin.AUTO
    state = auto_quarantined_on(0)
    # day 6.9: no new flake yet, still within the quiet period -> kept
    assert decide_quarantine(flaky(), state, CONFIG, day(6.9)).action is QuarantineAction.KEEP
    # day 7: seven quiet days -> released (the status may still be flaky: evidence stays 30 days)
    released = decide_quarantine(flaky(), state, CONFIG, day(7))
    assert released.action is QuarantineAction.RELEASE and not released.quarantined
    # day 8: still "flaky" from old evidence, but nothing fresh -> stays out
    assert decide_quarantine(flaky(), None, CONFIG, day(8)).action is QuarantineAction.NONE
    # day 9: it flakes again -> back in
    assert (
        decide_quarantine(flaky(last_evidence_day=9), None, CONFIG, day(9)).action
        is QuarantineAction.QUARANTINE
    )


def test_new_flakes_extend_the_quarantine() -> None:
    state = auto_quarantined_on(0)
    assert (
        decide_quarantine(flaky(last_evidence_day=5), state, CONFIG, day(11)).action is QuarantineAction.KEEP
    )
    assert (
        decide_quarantine(flaky(last_evidence_day=5), state, CONFIG, day(12)).action
        is QuarantineAction.RELEASE
    )


def test_below_the_confidence_floor_nothing_happens() -> None:
    decision = decide_quarantine(flaky(confidence=0.85), None, CONFIG, day(0))
    assert decision.action is QuarantineAction.NONE
    assert "below the floor" in decision.reason


def test_the_store_may_remember_evidence_beyond_the_lookback() -> None:
    verdict = Verdict(Status.FLAKY, 0.99, "flaky", last_flaky_evidence_at=None)
    state = auto_quarantined_on(0)
    assert (
        decide_quarantine(verdict, state, CONFIG, day(3), last_flaky_evidence_at=day(1)).action
        is QuarantineAction.KEEP
    )
    assert decide_quarantine(verdict, state, CONFIG, day(3)).action is QuarantineAction.RELEASE


def test_broken_tests_are_never_auto_quarantined_and_leave_auto_quarantine() -> None:
    broken = Verdict(Status.BROKEN, 0.99, "failing since ...")
    assert decide_quarantine(broken, None, CONFIG, day(0)).action is QuarantineAction.NONE
    released = decide_quarantine(broken, auto_quarantined_on(0), CONFIG, day(1))
    assert released.action is QuarantineAction.RELEASE
    assert "broken" in released.reason


def test_healthy_and_insufficient_data_are_not_quarantined() -> None:
    for status in (Status.HEALTHY, Status.INSUFFICIENT_DATA):
        assert (
            decide_quarantine(Verdict(status, 0.5, ""), None, CONFIG, day(0)).action is QuarantineAction.NONE
        )


def test_manual_quarantine_is_never_auto_released() -> None:
    manual = QuarantineState(True, QuarantineOrigin.MANUAL, day(0), "blocks the release", actor="alice")
    for verdict in (Verdict(Status.HEALTHY, 0.9, ""), Verdict(Status.BROKEN, 0.9, ""), flaky()):
        decision = decide_quarantine(verdict, manual, CONFIG, day(60))
        assert decision.action is QuarantineAction.KEEP and decision.quarantined
        assert decision.origin is QuarantineOrigin.MANUAL


def test_manual_release_waits_for_new_evidence() -> None:
    released_by_hand = QuarantineState(False, QuarantineOrigin.MANUAL, day(2), "fixed the race", actor="bob")
    # the flake of day 1 is older than the release: the human decision stands
    decision = decide_quarantine(flaky(last_evidence_day=1), released_by_hand, CONFIG, day(3))
    assert decision.action is QuarantineAction.NONE
    assert "released by hand" in decision.reason
    # a new flake on day 4 is news
    assert (
        decide_quarantine(flaky(last_evidence_day=4), released_by_hand, CONFIG, day(4)).action
        is QuarantineAction.QUARANTINE
    )


def test_quiet_period_is_configurable() -> None:
    config = AnalysisConfig(quarantine_quiet_days=2)
    assert (
        decide_quarantine(flaky(), auto_quarantined_on(0), config, day(2)).action is QuarantineAction.RELEASE
    )
