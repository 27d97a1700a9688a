"""Automatic quarantine rules. Pure: the store records the decisions as history.

* A **flaky** test whose confidence is at least `quarantine_confidence_floor` and whose newest flaky
  evidence is fresh (within `quarantine_quiet_days`) is quarantined automatically.
* An **automatic** quarantine is released once there has been no flaky evidence for
  `quarantine_quiet_days`, or as soon as the test is **broken** (a broken test needs a fix, not a
  mute).
* **Broken** tests are never quarantined automatically.
* **Manual** quarantines are never released automatically; a **manual release** blocks automatic
  quarantine until flaky evidence newer than the release appears.
"""

from __future__ import annotations

from datetime import datetime

from flakeguard.analysis.model import (
    AnalysisConfig,
    QuarantineAction,
    QuarantineDecision,
    QuarantineOrigin,
    QuarantineState,
    Status,
    Verdict,
)


def _newest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def decide_quarantine(
    verdict: Verdict,
    current: QuarantineState | None,
    config: AnalysisConfig,
    now: datetime,
    last_flaky_evidence_at: datetime | None = None,
) -> QuarantineDecision:
    """What to do with a test's quarantine after a new verdict.

    `last_flaky_evidence_at` lets the store supply evidence it remembers beyond the lookback window;
    the newer of it and `verdict.last_flaky_evidence_at` is used.
    """
    last_evidence = _newest(verdict.last_flaky_evidence_at, last_flaky_evidence_at)
    fresh = last_evidence is not None and now - last_evidence < config.quiet_period

    if current is not None and current.quarantined:
        if current.origin is QuarantineOrigin.MANUAL:
            return QuarantineDecision(
                QuarantineAction.KEEP,
                True,
                "manual quarantine: released only by hand",
                origin=QuarantineOrigin.MANUAL,
            )
        if verdict.status is Status.BROKEN:
            return QuarantineDecision(
                QuarantineAction.RELEASE, False, "broken: needs a fix, not a quarantine"
            )
        if not fresh:
            return QuarantineDecision(
                QuarantineAction.RELEASE,
                False,
                f"no flaky evidence for {config.quarantine_quiet_days} days",
            )
        return QuarantineDecision(QuarantineAction.KEEP, True, "still flaky")

    if verdict.status is not Status.FLAKY:
        return QuarantineDecision(QuarantineAction.NONE, False, f"status is {verdict.status.value}")
    if verdict.confidence < config.quarantine_confidence_floor:
        return QuarantineDecision(
            QuarantineAction.NONE,
            False,
            f"confidence {verdict.confidence:.2f} below the floor {config.quarantine_confidence_floor:.2f}",
        )
    if not fresh:
        return QuarantineDecision(QuarantineAction.NONE, False, "no recent flaky evidence")
    if (
        current is not None
        and current.origin is QuarantineOrigin.MANUAL
        and last_evidence is not None
        and last_evidence <= current.since
    ):
        return QuarantineDecision(
            QuarantineAction.NONE, False, "released by hand; waiting for new flaky evidence"
        )
    return QuarantineDecision(
        QuarantineAction.QUARANTINE,
        True,
        f"flaky with confidence {verdict.confidence:.2f}: {verdict.reason}",
    )
