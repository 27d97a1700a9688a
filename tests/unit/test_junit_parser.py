"""Dialect features of the streaming JUnit parser, one small document each."""

from __future__ import annotations

import io

import pytest

from flakeguard.junit import JUnitError, ParseLimits, iter_testcases, parse_duration, parse_report
from flakeguard.model import Outcome, TestExecution
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml


def parse(xml: str | bytes, limits: ParseLimits = ParseLimits()) -> list[TestExecution]:
    data = xml.encode() if isinstance(xml, str) else xml
    return list(parse_report(io.BytesIO(data), source="r.xml", limits=limits))


def test_builder_report_roundtrip() -> None:
    doc = junit_xml(
        [
            SuiteSpec(
                "s",
                [
                    CaseSpec("a.B", "ok", time_s=1.5, file="a/b.py", line=12),
                    CaseSpec("a.B", "bad", Outcome.FAILED, message="boom", details="trace"),
                    CaseSpec("a.B", "err", Outcome.ERROR),
                    CaseSpec("a.B", "skip", Outcome.SKIPPED),
                ],
            )
        ]
    )
    ex = parse(doc)
    assert [e.outcome for e in ex] == [Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED]
    assert (ex[0].file, ex[0].line, ex[0].duration_s, ex[0].suite) == ("a/b.py", 12, 1.5, "s")
    assert (ex[1].message, ex[1].details) == ("boom", "trace")
    assert all(e.ordinal == 0 for e in ex)


def test_nested_suites_any_depth_give_suite_path() -> None:
    ex = parse(
        "<testsuites name='root label'><testsuite name='a'><testsuite name='b'><testsuite name='c'>"
        "<testcase classname='k' name='t'/></testsuite></testsuite>"
        "<testcase classname='k' name='u'/></testsuite></testsuites>"
    )
    assert [e.suite for e in ex] == ["a / b / c", "a"]
    assert ex[0].key != ex[1].key
    assert "root label" not in ex[0].key


def test_testcase_directly_under_root_and_lone_testcase_root() -> None:
    assert [e.name for e in parse("<testsuites><testcase name='x'/></testsuites>")] == ["x"]
    assert [e.name for e in parse("<testcase name='y'/>")] == ["y"]


def test_precedence_error_failure_skipped() -> None:
    ex = parse(
        "<testsuite name='s'>"
        "<testcase name='a'><skipped/><failure message='f'/><error message='e'/></testcase>"
        "<testcase name='b'><skipped/><failure message='f'/></testcase>"
        "<testcase name='c'><system-out>x</system-out><skipped message='why'/></testcase>"
        "</testsuite>"
    )
    assert [(e.outcome, e.message) for e in ex] == [
        (Outcome.ERROR, "f"),  # the first result's message is kept
        (Outcome.FAILED, "f"),
        (Outcome.SKIPPED, "why"),
    ]


def test_surefire_flaky_failure_is_failed_then_passed() -> None:
    ex = parse(
        "<testsuite name='s'><testcase classname='C' name='t' time='2'>"
        "<flakyFailure message='m1' type='T' time='0.5'><stackTrace>st1</stackTrace>"
        "<system-out>o1</system-out></flakyFailure>"
        "<flakyError message='m2'><stackTrace>st2</stackTrace></flakyError>"
        "</testcase></testsuite>"
    )
    assert [(e.outcome, e.ordinal, e.message, e.details) for e in ex] == [
        (Outcome.FAILED, 0, "m1", "st1"),
        (Outcome.ERROR, 1, "m2", "st2"),
        (Outcome.PASSED, 2, None, None),
    ]
    assert ex[0].system_out == "o1" and ex[0].duration_s == 0.5 and ex[2].duration_s == 2.0
    assert len({e.key for e in ex}) == 1


def test_surefire_rerun_failure_all_failed() -> None:
    groups = list(
        iter_testcases(
            io.BytesIO(
                b"<testsuite name='s'><testcase name='t'><failure message='first'>trace</failure>"
                b"<rerunFailure message='second'/><rerunError message='third'/></testcase></testsuite>"
            ),
            source="r",
        )
    )
    assert len(groups) == 1
    assert [(e.outcome, e.ordinal) for e in groups[0]] == [
        (Outcome.FAILED, 0),
        (Outcome.ERROR, 1),
        (Outcome.FAILED, 2),
    ]
    assert groups[0][-1].message == "first"


def test_repeated_testcases_are_reruns_while_every_earlier_one_failed() -> None:
    # gotestsum --rerun-fails, pytest-style reruns: a failed test is re-run, the re-run passes
    ex = parse(
        "<testsuite name='s'><testcase classname='C' name='t'><failure/></testcase>"
        "<testcase classname='C' name='other'/><testcase classname='C' name='t'/></testsuite>"
    )
    assert [(e.name, e.ordinal, e.outcome) for e in ex] == [
        ("t", 0, Outcome.FAILED),
        ("other", 0, Outcome.PASSED),
        ("t", 1, Outcome.PASSED),
    ]
    assert ex[0].key == ex[2].key


def test_a_same_name_testcase_after_a_pass_is_a_case_of_its_own() -> None:
    # Nothing re-runs a test that passed: after a pass, a testcase with the same name is another case
    # (Boost.Test data-driven cases, an xUnit theory), told apart by its position in the suite.
    ex = parse(
        "<testsuite name='s'><testcase classname='C' name='t'><failure/></testcase>"
        "<testcase classname='C' name='t'/><testcase classname='C' name='other'/>"
        "<testcase classname='C' name='t'/></testsuite>"
    )
    assert [(e.name, e.ordinal) for e in ex] == [("t", 0), ("t", 1), ("other", 0), ("t #3", 0)]
    assert len({e.key for e in ex}) == 3


def test_boost_data_driven_cases_with_one_name_are_three_tests() -> None:
    # Boost.Test writes every sample of a data-driven test case under the test case's name.
    ex = parse(
        "<testsuite tests='3' failures='1' name='Master_Test_Suite'>"
        "<testcase assertions='1' classname='suite' name='parse_sample' time='0'/>"
        "<testcase assertions='1' classname='suite' name='parse_sample' time='0'/>"
        "<testcase assertions='1' classname='suite' name='parse_sample' time='0'>"
        "<failure message='check v == 3 has failed [2 != 3]'/></testcase></testsuite>"
    )
    assert [(e.name, e.ordinal, e.outcome) for e in ex] == [
        ("parse_sample", 0, Outcome.PASSED),
        ("parse_sample #2", 0, Outcome.PASSED),
        ("parse_sample #3", 0, Outcome.FAILED),
    ]


def test_same_name_testcases_with_other_parameters_are_cases_of_their_own() -> None:
    # testcase <properties> (parameters) or another `line` tell cases apart even after a failure
    ex = parse(
        "<testsuite name='s'>"
        "<testcase classname='C' name='t'><properties><property name='n' value='1'/></properties>"
        "<failure/></testcase>"
        "<testcase classname='C' name='t'><properties><property name='n' value='2'/></properties>"
        "</testcase>"
        "<testcase classname='C' name='u' line='10'><failure/></testcase>"
        "<testcase classname='C' name='u' line='20'/>"
        "<testcase classname='C' name='v' line='30'><failure/></testcase>"
        "<testcase classname='C' name='v' line='30'/></testsuite>"
    )
    assert [(e.name, e.ordinal) for e in ex] == [
        ("t", 0),
        ("t #2", 0),
        ("u", 0),
        ("u #2", 0),
        ("v", 0),
        ("v", 1),  # same line, no parameters: a rerun
    ]


def test_a_real_testcase_named_like_a_case_keeps_every_identity_unique() -> None:
    ex = parse(
        "<testsuite name='s'><testcase name='t #2'/><testcase name='t'/><testcase name='t'/>"
        "<testcase name='t'/><testcase name='t #3'/><testcase name='t #3'><failure/></testcase></testsuite>"
    )
    names = [e.name for e in ex]
    # "t #2" exists: the second "t" becomes "t #3"; a real "t #3" after that is taken, so it becomes
    # the next case, each time (a name clash this odd only has to stay unique and deterministic)
    assert names == ["t #2", "t", "t #3", "t #4", "t #5", "t #6"]
    assert len({(e.key, e.ordinal) for e in ex}) == len(ex)


def test_a_report_of_identical_testcases_is_read_in_linear_time_and_bounded() -> None:
    # hostile or broken generators: 30,000 identical passing testcases in one suite
    doc = "<testsuite name='s'>" + "<testcase classname='b' name='t'/>" * 30_000 + "</testsuite>"
    ex = parse(doc)
    assert len(ex) == 30_000
    assert len({(e.key, e.ordinal) for e in ex}) == 30_000
    # at most 10,000 cases of one name; the rest are reruns of the last one (no new key each)
    assert len({e.key for e in ex}) == 10_000
    assert ex[-1].name == "t #10000" and ex[-1].ordinal == 20_000


def test_same_suite_path_in_two_elements_continues_ordinals() -> None:
    ex = parse(
        "<testsuites><testsuite name='s'><testcase name='t'><failure/></testcase></testsuite>"
        "<testsuite name='x'><testcase name='t'/></testsuite>"
        "<testsuite name='s'><testcase name='t'><failure/></testcase><testcase name='t'/></testsuite>"
        "</testsuites>"
    )
    assert [(e.suite, e.ordinal) for e in ex] == [("s", 0), ("x", 0), ("s", 1), ("s", 2)]


def test_report_properties_are_collected_when_asked() -> None:
    properties: dict[str, str] = {}
    xml = (
        "<testsuites><testsuite name='s'><properties><property name='python_version' value='3.11.7'/>"
        "<property name='os.name' value='Linux'/><property name='python_version' value='ignored'/>"
        "</properties><testcase name='t'><properties><property name='case' value='1'/></properties>"
        "</testcase></testsuite></testsuites>"
    )
    list(parse_report(io.BytesIO(xml.encode()), source="r", properties=properties))
    assert properties == {"python_version": "3.11.7", "os.name": "Linux"}


@pytest.mark.parametrize(
    ("attrs", "outcome"),
    [
        ('status="run" result="completed"', Outcome.PASSED),
        ('status="notrun"', Outcome.SKIPPED),
        ('status="disabled"', Outcome.SKIPPED),
        ('status="Skipped"', Outcome.SKIPPED),
        ('result="suppressed"', Outcome.SKIPPED),
        ('result="skipped"', Outcome.SKIPPED),
        ('status="run"', Outcome.PASSED),
    ],
)
def test_status_and_result_attributes(attrs: str, outcome: Outcome) -> None:
    assert parse(f"<testsuite name='g'><testcase name='t' {attrs}/></testsuite>")[0].outcome is outcome


def test_result_child_wins_over_status_attribute() -> None:
    ex = parse("<testsuite><testcase name='t' status='disabled'><failure/></testcase></testsuite>")
    assert ex[0].outcome is Outcome.FAILED


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1.5", 1.5),
        ("8.7e-05", 8.7e-05),
        ("2,503.1", 2503.1),
        ("1,234", 1234.0),
        ("0,014", 0.014),
        ("", None),
        (None, None),
        ("-3.2", None),
        ("nan", None),
        ("inf", None),
        ("<<computed>>", None),
        ("12ms", 0.012),
        ("1.5 s", 1.5),
        ("300ns", 3e-7),
        ("1500000000", 1.5),  # an integer count of nanoseconds
        ("86400", 86400.0),
    ],
)
def test_odd_time_values(value: str | None, seconds: float | None) -> None:
    got = parse_duration(value)
    assert got == pytest.approx(seconds) if seconds is not None else got is None


def test_missing_classname_name_and_file_line_attributes() -> None:
    ex = parse(
        "<testsuite name='s'><testcase name='t' file='src/x.test.ts' line='42'/>"
        "<testcase classname='only'/><testcase line='abc'/></testsuite>"
    )
    assert (ex[0].classname, ex[0].file, ex[0].line) == ("", "src/x.test.ts", 42)
    assert (ex[1].classname, ex[1].name) == ("only", "")
    assert ex[2].line is None


def test_properties_are_skipped_and_outputs_kept() -> None:
    ex = parse(
        "<testsuite name='s'><properties><property name='a' value='b'/></properties>"
        "<system-out>suite out</system-out>"
        "<testcase name='t'><properties><property name='p' value='q'/></properties>"
        "<system-out><![CDATA[hello <world>]]></system-out><system-err>oops</system-err></testcase>"
        "</testsuite>"
    )
    assert (ex[0].system_out, ex[0].system_err) == ("hello <world>", "oops")


def test_outputs_messages_and_details_are_truncated_to_limits() -> None:
    limits = ParseLimits(max_output_bytes=100, max_message_bytes=50, max_details_bytes=80)
    big = "é" * 5000
    ex = parse(
        f"<testsuite><testcase name='t'><failure message='{big}'>{big}</failure>"
        f"<system-out>{big}</system-out></testcase></testsuite>",
        limits,
    )
    e = ex[0]
    assert e.message is not None and e.details is not None and e.system_out is not None
    assert len(e.message.encode()) <= 50 and len(e.details.encode()) <= 80
    assert len(e.system_out.encode()) <= 100 and e.system_out.endswith("[truncated]")


def test_utf8_bom_and_declared_latin1_and_utf16() -> None:
    assert parse(
        b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?><testsuite><testcase name="b"/></testsuite>'
    )
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><testsuite><testcase name="caf\xe9"/></testsuite>'
    assert parse(latin.encode("latin-1"))[0].name == "café"
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><testsuite><testcase name="ü"/></testsuite>'
    assert parse(utf16.encode("utf-16"))[0].name == "ü"


def test_default_namespace_is_ignored() -> None:
    ex = parse(
        "<testsuites xmlns='urn:x'><testsuite name='s'><testcase name='t'><failure/></testcase>"
        "</testsuite></testsuites>"
    )
    assert [(e.suite, e.name, e.outcome) for e in ex] == [("s", "t", Outcome.FAILED)]


def test_comments_and_processing_instructions_are_ignored() -> None:
    ex = parse("<?xml version='1.0'?><!-- c --><?pi x?><testsuite><!-- c --><testcase name='t'/></testsuite>")
    assert len(ex) == 1


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        (b"", "malformed_xml"),
        (b"   ", "malformed_xml"),
        (b"<testsuite><testcase name='t'>", "malformed_xml"),
        (b"<testsuite><testcase name='t'/></testsuite><extra/>", "malformed_xml"),
        (b"<suites><suite/></suites>", "not_junit"),
        (b"<results><testsuite><testcase/></testsuite></results>", "not_junit"),
        (b"<?xml version='1.0' encoding='bogus-enc'?><testsuite/>", "bad_encoding"),
        (b"<testsuite><testcase name='\xff\xfe'/></testsuite>", "bad_encoding"),
        (b"<!DOCTYPE testsuite><testsuite/>", "dtd_forbidden"),
        (b"<testsuite><testcase name='&undefined;'/></testsuite>", "malformed_xml"),
    ],
)
def test_refusals_carry_code_source_and_line(doc: bytes, code: str) -> None:
    with pytest.raises(JUnitError) as caught:
        parse(doc)
    assert caught.value.code == code
    assert "r.xml" in str(caught.value)


def test_error_names_the_line() -> None:
    with pytest.raises(JUnitError) as caught:
        parse("<testsuite>\n<testcase name='a'/>\n<testcase name='b'>\n</testsuite>")
    assert caught.value.line in (3, 4)
    assert f"line {caught.value.line}" in str(caught.value)


def test_max_depth_is_ours_and_configurable() -> None:
    doc = (
        "<testsuites>"
        + "<testsuite name='s'>" * 20
        + "<testcase name='t'/>"
        + "</testsuite>" * 20
        + "</testsuites>"
    )
    assert len(parse(doc)) == 1
    with pytest.raises(JUnitError) as caught:
        parse(doc, ParseLimits(max_depth=10))
    assert caught.value.code == "too_deep"
    empty_deep = "<testsuites>" + "<testsuite>" * 20 + "</testsuite>" * 20 + "</testsuites>"
    with pytest.raises(JUnitError):
        parse(empty_deep, ParseLimits(max_depth=10))


def test_token_limit_refuses_a_large_attribute_and_text() -> None:
    limits = ParseLimits(max_token_bytes=256 * 1024)
    with pytest.raises(JUnitError) as caught:
        parse(f"<testsuite><testcase name='{'a' * 600_000}'/></testsuite>", limits)
    assert caught.value.code == "too_large"
    with pytest.raises(JUnitError) as caught:
        parse(
            f"<testsuite><testcase name='t'><system-out>{'x' * 600_000}</system-out></testcase></testsuite>",
            limits,
        )
    assert caught.value.code == "too_large"


def test_report_size_limit() -> None:
    doc = junit_xml([SuiteSpec("s", [CaseSpec("c", f"t{i}") for i in range(2000)])])
    with pytest.raises(JUnitError) as caught:
        parse(doc, ParseLimits(max_report_bytes=len(doc) // 2))
    assert caught.value.code == "too_large"


def test_parsing_is_deterministic() -> None:
    doc = junit_xml([SuiteSpec("s", [CaseSpec("c", "t", flaky_failures=2), CaseSpec("c", "t")])])
    assert parse(doc) == parse(doc)


def test_junit_error_pickles() -> None:
    import pickle

    err = JUnitError("a!b.xml", 3, "bad", "malformed_xml")
    again = pickle.loads(pickle.dumps(err))
    assert (again.source, again.line, again.reason, again.code) == ("a!b.xml", 3, "bad", "malformed_xml")
    assert str(again) == "a!b.xml, line 3: bad [malformed_xml]"
