"""Charts as inline SVG, drawn on the server: no charting library, no script, no network.

Colours come from CSS classes (light and dark themes live in static/app.css); every chart has a
`<title>` and an `aria-label`, so a screen reader says what it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from markupsafe import Markup, escape

from flakeguard.web.views import CommitGroup

OUTCOME_CLASS: dict[str | None, str] = {
    "passed": "o-pass",
    "failed": "o-fail",
    "error": "o-fail",
    "skipped": "o-skip",
}


def _svg(width: float, height: float, label: str, body: str, css: str) -> Markup:
    text = escape(label)
    return Markup(
        f'<svg class="{css}" viewBox="0 0 {width:g} {height:g}" width="{width:g}" height="{height:g}" '
        f'role="img" aria-label="{text}" focusable="false"><title>{text}</title>{body}</svg>'
    )


def outcome_strip(outcomes: Sequence[str], *, cell: int = 6, gap: int = 2) -> Markup:
    """A row of small squares, newest left, one per execution (the repository page's history);
    failures are drawn taller, so the strip does not rely on colour alone."""
    if not outcomes:
        return Markup('<span class="muted">no executions</span>')
    failed = sum(1 for o in outcomes if o in ("failed", "error"))
    label = f"Last {len(outcomes)} executions, newest first: {failed} failed"
    css = [OUTCOME_CLASS.get(o, "o-skip") for o in outcomes]
    rects = "".join(
        f'<rect x="{i * (cell + gap)}" y="0" width="{cell}" height="14" class="o-fail"/>'
        if c == "o-fail"
        else f'<rect x="{i * (cell + gap)}" y="3" width="{cell}" height="8" class="{c}"/>'
        for i, c in enumerate(css)
    )
    return _svg(len(outcomes) * (cell + gap) - gap, 14, label, rects, "strip")


def meter(value: float, label: str, *, width: int = 120) -> Markup:
    """A horizontal bar for a value in [0, 1]."""
    value = min(max(value, 0.0), 1.0)
    body = (
        f'<rect x="0" y="0" width="{width}" height="8" rx="4" class="meter-bg"/>'
        f'<rect x="0" y="0" width="{value * width:.1f}" height="8" rx="4" class="meter-fg"/>'
    )
    return _svg(width, 8, label, body, "meter")


def sparkline(values: Sequence[int], label: str, *, width: int = 120, height: int = 28) -> Markup:
    """A small line of counts over time, with the last value marked."""
    if not values:
        return Markup('<span class="muted">no data yet</span>')
    top = max(max(values), 1)
    step = width / max(len(values) - 1, 1)
    points = [(i * step, height - 3 - (v / top) * (height - 6)) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    area = f"0,{height} {line} {points[-1][0]:.1f},{height}"
    last_x, last_y = points[-1]
    body = (
        f'<polygon points="{area}" class="spark-area"/>'
        f'<polyline points="{line}" class="spark-line" fill="none"/>'
        f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.5" class="spark-dot"/>'
    )
    return _svg(width, height, label, body, "spark")


def trend_chart(
    points: Sequence[tuple[datetime, int]], label: str, *, width: int = 640, height: int = 180
) -> Markup:
    """Counts over time with a y axis (0 .. max) and the first and last dates on the x axis."""
    if not points:
        return Markup('<p class="muted">No history yet.</p>')
    left, right, top, bottom = 36, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(max(v for _, v in points), 1)
    step = plot_w / max(len(points) - 1, 1)
    xy = [(left + i * step, top + plot_h - (v / peak) * plot_h) for i, (_, v) in enumerate(points)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    area = f"{left},{top + plot_h} {line} {xy[-1][0]:.1f},{top + plot_h}"
    grid = "".join(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h - f * plot_h:.1f}" '
        f'y2="{top + plot_h - f * plot_h:.1f}" class="grid"/>'
        f'<text x="{left - 6}" y="{top + plot_h - f * plot_h + 4:.1f}" class="axis" text-anchor="end">'
        f"{round(peak * f)}</text>"
        for f in (0.0, 0.5, 1.0)
    )
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="spark-dot"><title>'
        f"{escape(at.strftime('%b %d'))}: {v}</title></circle>"
        for (x, y), (at, v) in zip(xy, points, strict=True)
    )
    labels = (
        f'<text x="{left}" y="{height - 6}" class="axis">{escape(points[0][0].strftime("%b %d"))}</text>'
        f'<text x="{width - right}" y="{height - 6}" class="axis" text-anchor="end">'
        f"{escape(points[-1][0].strftime('%b %d'))}</text>"
    )
    body = (
        f'{grid}<polygon points="{area}" class="spark-area"/>'
        f'<polyline points="{line}" class="spark-line" fill="none"/>{dots}{labels}'
    )
    return _svg(width, height, label, body, "trend")


def _attempt_words(group: CommitGroup) -> str:
    parts = []
    for attempt in group.attempts:
        outcomes = ", ".join(
            e.outcome + (f" (retry {e.ordinal})" if e.ordinal else "") for e in attempt.executions
        )
        which = f"run {attempt.run_id}" + (
            f" re-run {attempt.run_attempt}" if attempt.run_attempt > 1 else ""
        )
        parts.append(f"{which}: {outcomes}")
    return "; ".join(parts)


def commit_history(groups: Sequence[CommitGroup], run_url: Callable[[int, int], str]) -> Markup:
    """The test page's history: one box per commit (newest first) linking to its newest run, with a
    cell per execution in the order they ran; in-run retries narrower, re-run attempts after a ↻.

    Built here rather than in the template: ~10x faster for thousands of executions (measured with
    bench/bench_dashboard.py), and the markup stays small (no attribute per cell)."""
    items = []
    for group in groups:
        newest = group.newest
        when = f"{newest.started_at:%Y-%m-%d %H:%M} UTC"
        label = escape(f"{group.label()}. {_attempt_words(group)}. Newest {when}")
        href = escape(run_url(newest.run_id, newest.run_attempt))
        sha, branch = escape(group.head_sha[:7]), escape(group.branch or "")
        cells = []
        for index, attempt in enumerate(group.attempts):
            if attempt.run_attempt > 1:
                cells.append('<b class="rerun">↻</b>')
            elif index:
                cells.append('<b class="gap"></b>')
            cells.extend(
                f'<i class="c {OUTCOME_CLASS.get(e.outcome, "o-skip")}{" retry" if e.ordinal else ""}"></i>'
                for e in attempt.executions
            )
        items.append(
            f'<li class="commit{" mixed" if group.flaky_here else ""}">'
            f'<a href="{href}" aria-label="{label}" title="{label}">'
            f'<code>{sha}</code><span class="branch">{branch}</span></a>'
            f'<span class="cells" aria-hidden="true">{"".join(cells)}</span></li>'
        )
    return Markup(f'<ol class="history" aria-label="Executions grouped by commit">{"".join(items)}</ol>')
