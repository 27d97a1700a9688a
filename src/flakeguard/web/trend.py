"""The flaky count over time: what the analysis would have said on each day, replayed.

No status history is stored, so the trend replays the pure analysis core over the stored executions:
for each point in time `t`, every test is analysed on its executions started up to `t`, with the
verdict of the previous point as its previous state (the same hysteresis the workers apply). Only tests
with a failure in the window can be flaky, so only their histories are replayed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from flakeguard.analysis import AnalysisConfig, Observation, PreviousState, Status, analyze_test


def trend_points(now: datetime, *, days: int, step_days: int) -> list[datetime]:
    """`now` and the points `step_days` apart before it, oldest first, covering `days`."""
    return [now - timedelta(days=d) for d in range(days, -1, -step_days)]


def flaky_counts(
    histories: Mapping[int, Sequence[Observation]], config: AnalysisConfig, points: Sequence[datetime]
) -> list[int]:
    """How many of these tests were flaky at each point (oldest point first)."""
    counts = [0] * len(points)
    for observations in histories.values():
        ordered = sorted(observations, key=lambda obs: obs.started_at)
        starts = [obs.started_at for obs in ordered]
        previous: PreviousState | None = None
        for index, at in enumerate(points):
            seen = ordered[: bisect_right(starts, at)]
            if not seen:
                continue
            verdict = analyze_test(seen, config, previous, at).verdict
            previous = verdict.to_previous()
            if verdict.status is Status.FLAKY:
                counts[index] += 1
    return counts
