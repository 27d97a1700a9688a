from __future__ import annotations
import pytest
from flakeguard.pipeline.quarantine import quarantine_tests, release_tests, quarantine_list, quarantine_history, resolve_tests
from tests.integration.history_helpers import History, T0, P, F

pytestmark = pytest.mark.integration

async def test_manual(services):
    h = await History(services).create()
    await h.run({"a": P, "b": F}, at=T0)
    async with services.sessions.begin() as s:
        r = await resolve_tests(s, h.repository_id, [h.key("a"), "999"])
        assert r.unknown == ["999"]
        assert await quarantine_tests(s, h.repository_id, r.ids, reason="x", actor="me") == 1
        assert await quarantine_tests(s, h.repository_id, r.ids, reason="x", actor="me") == 0
    async with services.sessions.begin() as s:
        lst = await quarantine_list(s, h.repository_id)
        assert [e.name for e in lst] == ["a"]
        assert await release_tests(s, h.repository_id, r.ids, reason="y", actor="me") == 1
        assert await release_tests(s, h.repository_id, r.ids, reason="y", actor="me") == 0
        assert await quarantine_list(s, h.repository_id) == []
        hist = await quarantine_history(s, h.repository_id)
        assert [e.action for e in hist] == ["release", "quarantine"]
