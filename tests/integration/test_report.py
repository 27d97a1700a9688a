"""`flakeguard report`: the JSON shape exactly, the impact order, status filters, table and Markdown."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from flakeguard.cli import app
from flakeguard.config import Settings
from flakeguard.pipeline.quarantine import quarantine_tests
from flakeguard.pipeline.report import (
    ReportRow,
    build_report,
    parse_statuses,
    render_markdown,
    report_json,
    shorten,
)
from flakeguard.services import Services

from .history_helpers import T0, F, History, P, S, case_id, recompute_repo

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)
FIELDS = {
    "key",
    "suite",
    "classname",
    "name",
    "file",
    "executions",
    "skipped",
    "failures",
    "failure_rate",
    "score",
    "status",
    "confidence",
    "evidence",
    "quarantined",
    "last_failure_at",
}


async def suite(services: Services) -> History:
    """10 runs of 10 tests. `lonely` fails alone in green runs (each failure made a run red on its own);
    `crowd` fails in runs where four other tests fail too (its failures weigh less); `broken` fails from
    run 5 on; `never_run` has a test case but no results; the rest pass."""
    h = await History(services).create()
    greens = [f"test_green_{i}" for i in range(5)]
    for i in range(10):
        crowd_run = i in (2, 5, 8)
        outcomes = {
            "lonely": F if i in (1, 4, 7) else P,
            "crowd": F if crowd_run else P,
            "broken": F if i >= 5 else P,
            **{g: (F if crowd_run and j < 3 else P) for j, g in enumerate(greens)},
        }
        await h.run(outcomes, at=T0 + i * 6 * HOUR)
    await recompute_repo(h, T0 + 60 * HOUR)
    await h.run({"never_run": P}, at=T0 - timedelta(days=400))  # a test case outside every window
    async with services.sessions.begin() as session:
        await quarantine_tests(session, h.repository_id, [await case_id(h, "lonely")], reason="r", actor="me")
    return h


async def test_json_shape_and_impact_order(services: Services) -> None:
    h = await suite(services)
    async with services.sessions() as session:
        rows = await build_report(session, h.repository_id)
    assert rows == sorted(rows, key=ReportRow.sort_key)  # the database sorts as stated in Python
    generated = datetime(2024, 7, 1, tzinfo=UTC)
    data = json.loads(json.dumps(report_json("acme/app", rows, generated)))
    assert set(data) == {"repository", "generated_at", "tests"}
    assert data["repository"] == "acme/app" and data["generated_at"] == "2024-07-01T00:00:00+00:00"
    assert len(data["tests"]) == 9
    for test in data["tests"]:
        assert set(test) == FIELDS
        assert isinstance(test["executions"], int) and isinstance(test["failures"], int)
        assert isinstance(test["failure_rate"], float) and isinstance(test["confidence"], float)
        assert test["score"] is None or isinstance(test["score"], float)
        assert test["status"] in {"healthy", "flaky", "broken", "insufficient_data"}
        assert isinstance(test["evidence"], dict) and set(test["evidence"]) == {"reason", "items"}
        assert isinstance(test["quarantined"], bool)
        assert test["last_failure_at"] is None or datetime.fromisoformat(test["last_failure_at"]).tzinfo
    names = [t["name"] for t in data["tests"]]
    # impact: broken 5 failures alone in their runs (5 x 0.9), lonely 3 x 0.9, crowd 3 x 0.5 ...
    assert names[:3] == ["broken", "lonely", "crowd"]
    assert names[-1] == "never_run"  # not analysed: last, as insufficient data
    by_name = {t["name"]: t for t in data["tests"]}
    lonely = by_name["lonely"]
    assert lonely["quarantined"] is True and lonely["executions"] == 10 and lonely["failures"] == 3
    assert lonely["failure_rate"] == pytest.approx(0.3)
    assert (
        lonely["key"] == h.key("lonely")
        and lonely["classname"] == "tests.Suite"
        and lonely["suite"] == "suite"
    )
    assert lonely["file"] == "tests/suite.py"
    assert lonely["last_failure_at"] == (T0 + 7 * 6 * HOUR).isoformat()
    assert by_name["broken"]["status"] == "broken"
    assert by_name["never_run"]["status"] == "insufficient_data"
    assert by_name["never_run"]["evidence"]["reason"] == "not analysed yet"


async def test_status_filter(services: Services) -> None:
    h = await suite(services)
    async with services.sessions() as session:
        broken = await build_report(session, h.repository_id, parse_statuses("broken"))
        some = await build_report(session, h.repository_id, parse_statuses("flaky, broken"))
    assert [r.name for r in broken] == ["broken"]
    assert {r.status for r in some} <= {"flaky", "broken"} and "broken" in {r.name for r in some}
    assert parse_statuses("") is None
    with pytest.raises(ValueError, match="unknown status"):
        parse_statuses("flaky,weird")


async def test_counts_say_how_many_ran_and_a_test_that_never_ran_has_no_rate(services: Services) -> None:
    """Skipped executions did not run: `2/3 · 100.0%` was two failures of two that ran, one skipped;
    `0/30 · 0.0%` was a test skipped every time."""
    h = await History(services).create()
    for outcomes in ({"sometimes": F, "always_skipped": S}, {"sometimes": F, "always_skipped": S}):
        await h.run(outcomes, at=T0)
    await h.run({"sometimes": S, "always_skipped": S}, at=T0 + HOUR)
    await recompute_repo(h, T0 + 2 * HOUR)
    async with services.sessions() as session:
        rows = {r.name: r for r in await build_report(session, h.repository_id)}
    sometimes, skipped = rows["sometimes"], rows["always_skipped"]
    assert (sometimes.executions, sometimes.skipped, sometimes.failures_text, sometimes.rate_text) == (
        3,
        1,
        "2/2",
        "100.0%",
    )
    assert (skipped.executions, skipped.skipped, skipped.failures_text, skipped.rate_text) == (
        3,
        3,
        "0/0",
        "–",
    )
    assert skipped.to_json()["skipped"] == 3
    text = render_markdown("acme/app", list(rows.values()), T0)
    assert "| 0/0 | 3 | – |" in text and "| 2/2 | 1 | 100.0% |" in text


def test_shorten_keeps_the_end() -> None:
    assert shorten("short", 10) == "short"
    text = "com.example.very.long.package.name.SomeClass › test_the_important_part"
    cut = shorten(text, 40)
    assert len(cut) == 40 and cut.endswith("test_the_important_part") and "…" in cut


async def test_markdown_is_a_table(services: Services) -> None:
    h = await suite(services)
    async with services.sessions() as session:
        rows = await build_report(session, h.repository_id)
    text = render_markdown("acme/app", rows, datetime(2024, 7, 1, tzinfo=UTC))
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| # |"))
    assert lines[header + 1].startswith("|--:|")
    body = lines[header + 2 :]
    assert len(body) == len(rows) and all(line.count(" | ") >= 9 for line in body)
    assert "`tests.Suite › broken`" in body[0]


def test_report_cli(settings: Settings) -> None:
    async def setup() -> None:
        services = Services.create(settings)
        try:
            await suite(services)
        finally:
            await services.close()

    asyncio.run(setup())
    runner = CliRunner()
    env = {"DATABASE_URL": str(settings.database_url), "LOG_LEVEL": "warn", "FLAKEGUARD_ENV": "test"}
    as_json = runner.invoke(
        app, ["report", "--repo", "acme/app", "--format", "json", "--status", "broken"], env=env
    )
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert [t["name"] for t in data["tests"]] == ["broken"] and set(data["tests"][0]) == FIELDS
    table = runner.invoke(app, ["report", "--repo", "acme/app"], env={**env, "COLUMNS": "100"})
    assert table.exit_code == 0, table.output
    assert "broken" in table.output and "lonely" in table.output
    assert max(len(line) for line in table.output.splitlines()) <= 100
    markdown = runner.invoke(app, ["report", "--repo", "acme/app", "--format", "markdown"], env=env)
    assert markdown.exit_code == 0 and "| # | Test |" in markdown.output
    assert runner.invoke(app, ["report", "--repo", "acme/app", "--status", "nope"], env=env).exit_code == 2
    assert runner.invoke(app, ["report", "--repo", "acme/none"], env=env).exit_code == 1
