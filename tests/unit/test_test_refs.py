"""Naming a test the way FlakeGuard prints it resolves to that test, or says why it cannot."""

from __future__ import annotations

import pytest

from flakeguard.junit.identity import KEY_SEP, make_key
from flakeguard.pipeline.test_refs import NamedTest, resolve_references


def named(test_id: int, classname: str, name: str, suite: str = "pytest") -> NamedTest:
    return NamedTest(test_id, make_key(suite, classname, name, None), classname, name)


TESTS = [
    named(11, "tests.test_module_0", "test_case_000"),
    named(12, "tests.test_module_1", "test_case_001"),
    named(13, "tests.test_login.TestLogin", "test_ok"),
    named(14, "tests.test_signup.TestSignup", "test_ok"),
    named(15, "", "renders the header"),
    named(16, "tests.test_params", "test_sum[1-2]"),
]


@pytest.mark.parametrize(
    ("ref", "test_id"),
    [
        ("tests.test_module_0 › test_case_000", 11),  # as the report prints it
        ("tests.test_module_0::test_case_000", 11),
        ("tests.test_module_0.test_case_000", 11),
        ("test_case_000", 11),  # the bare name, when unique
        ("test_module_0 › test_case_000", 11),  # an end of the printed name, from a boundary
        ("TestLogin.test_ok", 13),
        ("TestSignup::test_ok", 14),
        ("…_module_1 › test_case_001", 12),  # a name a table shortened
        ("12", 12),  # the id `quarantine list` prints
        ("renders the header", 15),
        ("test_sum[1-2]", 16),
    ],
)
def test_a_test_can_be_named_as_it_is_printed(ref: str, test_id: int) -> None:
    resolved = resolve_references([ref], TESTS)
    assert resolved.complete and resolved.ids == [test_id]


def test_the_full_key_also_with_the_escapes_json_prints() -> None:
    key = TESTS[0].key
    assert resolve_references([key], TESTS).ids == [11]
    assert resolve_references([key.replace(KEY_SEP, "\\u001f")], TESTS).ids == [11]


def test_a_name_several_tests_answer_to_is_ambiguous_and_lists_them() -> None:
    resolved = resolve_references(["test_ok"], TESTS)
    assert resolved.ids == [] and not resolved.complete
    assert resolved.ambiguous == {
        "test_ok": [
            "tests.test_login.TestLogin › test_ok (id 13)",
            "tests.test_signup.TestSignup › test_ok (id 14)",
        ]
    }
    assert "'test_ok' names 2 tests" in resolved.describe_problems()


def test_a_suffix_inside_a_word_is_not_a_name() -> None:
    resolved = resolve_references(["case_000", "nothing"], TESTS)
    assert resolved.unknown == ["case_000", "nothing"]
    assert resolved.describe_problems() == "unknown test(s): case_000, nothing"


def test_ids_come_back_once_in_the_order_given() -> None:
    resolved = resolve_references(["test_case_001", "11", "tests.test_module_1::test_case_001"], TESTS)
    assert resolved.ids == [12, 11]
