"""Quarantine timelines through the store (auto, quiet-period release, manual decisions, history),
and the quarantine API and CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from flakeguard.cli import app
from flakeguard.config import Settings
from flakeguard.pipeline.quarantine import (
    quarantine_history,
    quarantine_list,
    quarantine_tests,
    release_tests,
    resolve_tests,
)
from flakeguard.server.app import create_api_app
from flakeguard.services import Services

from .history_helpers import T0, F, History, P, case_id, quarantine_state, recompute_repo, results

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
OTHERS = ("test_ok_1", "test_ok_2", "test_ok_3", "test_ok_4")


async def flaky_history(h: History, name: str = "flaky", start: datetime = T0) -> datetime:
    """10 green runs, then 4 runs with an in-run retry (fail, then pass): a confident flake.

    Returns the start of the last flaky run (the newest flaky evidence)."""
    at = await h.series(name, [P] * 10, start=start)
    for _ in range(4):
        at += 6 * HOUR
        await h.run({name: [F, P], **{o: P for o in OTHERS}}, at=at)
    return at


async def green_runs(h: History, names: tuple[str, ...], start: datetime, days: int) -> datetime:
    at = start
    for _ in range(days):
        at += DAY
        await h.run({n: P for n in (*names, *OTHERS)}, at=at)
    return at


async def events(h: History) -> list[tuple[str, bool, str]]:
    async with h.services.sessions() as session:
        history = await quarantine_history(session, h.repository_id)
    return [(e.action, e.automatic, e.actor) for e in reversed(history)]


async def test_auto_quarantine_above_the_floor_and_release_after_the_quiet_period(services: Services) -> None:
    h = await History(services).create()
    last_flake = await flaky_history(h)
    # without updateQuarantineStatus nothing is quarantined
    await recompute_repo(h, last_flake + HOUR)
    assert await quarantine_state(h) == {}
    row = (await results(h))["flaky"]
    assert row["status"] == "flaky" and row["confidence"] >= 0.9
    summary = (await recompute_repo(h, last_flake + HOUR, update_quarantine=True)).summary
    assert summary.quarantined == 1 and summary.released == 0
    assert await quarantine_state(h) == {"flaky": (True, True)}
    # green for 6 days: still within the 7-day quiet period
    at = await green_runs(h, ("flaky",), last_flake, 6)
    await recompute_repo(h, at + HOUR, update_quarantine=True)
    assert await quarantine_state(h) == {"flaky": (True, True)}
    # 7 quiet days: released, although the status is still flaky (evidence stays in the window)
    at = await green_runs(h, ("flaky",), at, 1)
    summary = (await recompute_repo(h, last_flake + 7 * DAY + HOUR, update_quarantine=True)).summary
    assert summary.released == 1
    assert await quarantine_state(h) == {"flaky": (False, True)}
    assert (await results(h))["flaky"]["status"] == "flaky"
    # it flakes again: back in
    await h.run({"flaky": [F, P], **{o: P for o in OTHERS}}, at=at + HOUR)
    await recompute_repo(h, at + 2 * HOUR, update_quarantine=True)
    assert await quarantine_state(h) == {"flaky": (True, True)}
    assert await events(h) == [
        ("quarantine", True, "flakeguard"),
        ("release", True, "flakeguard"),
        ("quarantine", True, "flakeguard"),
    ]


async def test_below_the_confidence_floor_is_not_quarantined(services: Services) -> None:
    h = await History(services).create()
    at = await h.series("once", [P] * 60, step=timedelta(hours=4))
    await h.run({"once": [F, P], **{o: P for o in OTHERS}}, at=at + HOUR)  # one flake in 61 runs
    await recompute_repo(h, at + 2 * HOUR, update_quarantine=True)
    row = (await results(h))["once"]
    assert row["status"] == "flaky" and row["confidence"] < 0.9
    assert await quarantine_state(h) == {}


async def test_manual_quarantine_is_never_released_automatically(services: Services) -> None:
    h = await History(services).create()
    at = await h.series("muted", [P] * 6)
    async with services.sessions.begin() as session:
        changed = await quarantine_tests(
            session,
            h.repository_id,
            [await case_id(h, "muted")],
            reason="blocks the release",
            actor="alice",
            now=at,
        )
    assert changed == 1
    at = await green_runs(h, ("muted",), at, 20)
    summary = (await recompute_repo(h, at + HOUR, update_quarantine=True)).summary
    assert summary.released == 0
    assert await quarantine_state(h) == {"muted": (True, False)}
    assert await events(h) == [("quarantine", False, "alice")]


async def test_manual_release_is_not_fought_until_new_flaky_evidence(services: Services) -> None:
    h = await History(services).create()
    last_flake = await flaky_history(h)
    await recompute_repo(h, last_flake + HOUR, update_quarantine=True)
    assert await quarantine_state(h) == {"flaky": (True, True)}
    async with services.sessions.begin() as session:
        released = await release_tests(
            session,
            h.repository_id,
            [await case_id(h, "flaky")],
            reason="fixed in #123",
            actor="bob",
            now=last_flake + 2 * HOUR,
        )
    assert released == 1
    # same evidence, fresh and confident: automatic quarantine leaves the human decision alone
    await recompute_repo(h, last_flake + 3 * HOUR, update_quarantine=True)
    assert await quarantine_state(h) == {"flaky": (False, False)}
    # a new flake after the release: quarantined again, automatically
    await h.run({"flaky": [F, P], **{o: P for o in OTHERS}}, at=last_flake + 4 * HOUR)
    await recompute_repo(h, last_flake + 5 * HOUR, update_quarantine=True)
    assert await quarantine_state(h) == {"flaky": (True, True)}
    assert await events(h) == [
        ("quarantine", True, "flakeguard"),
        ("release", False, "bob"),
        ("quarantine", True, "flakeguard"),
    ]


async def test_broken_is_never_quarantined_and_leaves_an_auto_quarantine(services: Services) -> None:
    h = await History(services).create()
    last_flake = await flaky_history(h, "breaks")
    at = await h.series("always", [F] * 6, start=last_flake - 5 * DAY)
    await recompute_repo(h, max(at, last_flake) + HOUR, update_quarantine=True)
    assert (await results(h))["always"]["status"] == "broken"
    assert await quarantine_state(h) == {"breaks": (True, True)}
    # the flaky test now fails on every run across commits: broken -> released at once
    at = max(at, last_flake)
    for i in range(4):
        await h.run({"breaks": F, **{o: P for o in OTHERS}}, at=at + (i + 1) * HOUR)
    await recompute_repo(h, at + 5 * HOUR, update_quarantine=True)
    assert (await results(h))["breaks"]["status"] == "broken"
    assert await quarantine_state(h) == {"breaks": (False, True)}


async def test_manual_changes_count_only_real_changes_and_resolve_keys(services: Services) -> None:
    h = await History(services).create()
    await h.run({"a": P, "b": F}, at=T0)
    async with services.sessions.begin() as session:
        resolved = await resolve_tests(
            session, h.repository_id, [h.key("a"), str(await case_id(h, "b")), "999"]
        )
        assert resolved.unknown == ["999"] and len(resolved.ids) == 2
        assert await quarantine_tests(session, h.repository_id, resolved.ids, reason="x", actor="me") == 2
        assert await quarantine_tests(session, h.repository_id, resolved.ids, reason="x", actor="me") == 0
        assert [e.name for e in await quarantine_list(session, h.repository_id)] == ["a", "b"]
        assert await release_tests(session, h.repository_id, resolved.ids[:1], reason="y", actor="me") == 1
        assert await release_tests(session, h.repository_id, resolved.ids[:1], reason="y", actor="me") == 0
        # ids of another repository are ignored
        assert await quarantine_tests(session, h.repository_id + 1, resolved.ids, reason="x", actor="me") == 0
    assert [a for a, _, _ in await events(h)] == ["quarantine", "quarantine", "release"]


async def test_quarantine_api(services: Services) -> None:
    h = await History(services).create()
    await h.run({"a": P, "b": F}, at=T0)
    api = create_api_app(services, api_token="s3cret")
    auth = {"authorization": "Bearer s3cret"}
    base = "/api/v1/repos/acme/app/quarantine"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://api") as client:
        assert (await client.get(base)).status_code == 401
        assert (await client.get("/api/v1/repos/acme/nope/quarantine", headers=auth)).status_code == 404
        body = {"tests": [h.key("a"), "nope"], "reason": "flaky on CI", "actor": "carol"}
        missing = await client.post(base, json=body, headers=auth)
        assert missing.status_code == 404 and missing.json()["detail"]["unknown"] == ["nope"]
        assert (await client.post(base, json={"tests": [], "reason": "x"}, headers=auth)).status_code == 422
        added = await client.post(base, json={**body, "tests": [h.key("a")]}, headers=auth)
        assert added.status_code == 200 and added.json()["changed"] == 1
        listed = (await client.get(base, headers=auth)).json()
        assert listed["repository"] == "acme/app" and listed["count"] == 1
        entry = listed["tests"][0]
        assert {
            k: entry[k] for k in ("key", "suite", "classname", "name", "reason", "actor", "automatic")
        } == {
            "key": h.key("a"),
            "suite": "suite",
            "classname": "tests.Suite",
            "name": "a",
            "reason": "flaky on CI",
            "actor": "carol",
            "automatic": False,
        }
        assert entry["file"] == "tests/suite.py" and datetime.fromisoformat(entry["since"])
        test = entry["id"]
        released = await client.post(
            f"{base}/release", json={"tests": [test], "reason": "fixed"}, headers=auth
        )
        assert released.json()["changed"] == 1
        assert (await client.get(base, headers=auth)).json()["tests"] == []
        history = (await client.get(f"{base}/history", headers=auth)).json()["events"]
        assert [(e["action"], e["actor"], e["automatic"]) for e in history] == [
            ("release", "api", False),
            ("quarantine", "carol", False),
        ]
        only_b = await client.get(f"{base}/history", params={"test": h.key("b")}, headers=auth)
        assert only_b.json()["events"] == []


def test_quarantine_cli(settings: Settings) -> None:
    async def setup() -> str:
        services = Services.create(settings)
        try:
            h = await History(services).create()
            await h.run({"a": P, "b": F}, at=T0)
            return h.key("b")
        finally:
            await services.close()

    key = asyncio.run(setup())
    runner = CliRunner()
    env = {"DATABASE_URL": str(settings.database_url), "LOG_LEVEL": "warn", "FLAKEGUARD_ENV": "test"}
    added = runner.invoke(
        app,
        ["quarantine", "add", "--repo", "acme/app", "--test", key, "--reason", "flaky", "--actor", "dave"],
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert "quarantined 1 of 1" in added.output
    listed = runner.invoke(app, ["quarantine", "list", "--repo", "acme/app", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert [(t["name"], t["actor"], t["automatic"]) for t in data["tests"]] == [("b", "dave", False)]
    table = runner.invoke(app, ["quarantine", "list", "--repo", "acme/app"], env=env)
    assert table.exit_code == 0 and "flaky" in table.output
    unknown = runner.invoke(
        app, ["quarantine", "release", "--repo", "acme/app", "--test", "zzz", "--reason", "r"], env=env
    )
    assert unknown.exit_code == 1
    released = runner.invoke(
        app, ["quarantine", "release", "--repo", "acme/app", "--test", key, "--reason", "ok"], env=env
    )
    assert released.exit_code == 0 and "released 1 of 1" in released.output
    history = runner.invoke(app, ["quarantine", "history", "--repo", "acme/app", "--json"], env=env)
    assert [e["action"] for e in json.loads(history.stdout)["events"]] == ["release", "quarantine"]
    assert runner.invoke(app, ["quarantine", "list", "--repo", "acme/nope"], env=env).exit_code == 1
