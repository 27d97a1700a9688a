"""Pure parts of check-run publishing and webhook routing: the external id and annotation identity."""

from __future__ import annotations

import pytest

from flakeguard.pipeline.checks import RunRef, _annotation_key, external_id_for, parse_external_id
from flakeguard.pipeline.webhooks import Outcome


def test_external_id_round_trip() -> None:
    value = external_id_for("acme", "project", 12345, 2)
    assert value == "acme/project/12345/2"
    assert parse_external_id(value) == RunRef("acme", "project", 12345, 2)


@pytest.mark.parametrize(
    "value",
    [None, "", "12345", "acme/project/12345", "acme/project/x/1", "acme/project/1/0", "a//1/1", "a/b/1/1/1"],
)
def test_foreign_external_ids_are_not_ours(value: str | None) -> None:
    assert parse_external_id(value) is None


def test_a_reclassified_test_keeps_its_annotation_identity() -> None:
    new = {"path": "tests/a.py", "start_line": 3, "title": "New failure: pkg.T.test_x"}
    quarantined = {"path": "tests/a.py", "start_line": 3, "title": "Quarantined: pkg.T.test_x"}
    other = {"path": "tests/a.py", "start_line": 3, "title": "New failure: pkg.T.test_y"}
    assert _annotation_key(new) == _annotation_key(quarantined) != _annotation_key(other)


def test_outcome_body() -> None:
    assert Outcome(202, "ignored", {"reason": "x"}).body == {"status": "ignored", "reason": "x"}
