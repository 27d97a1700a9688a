"""The test identity rule: stable keys across runs and tools, readable display names."""

from __future__ import annotations

import io

import pytest

from flakeguard.junit import display_name, make_key, parse_report
from flakeguard.junit.identity import MAX_KEY_CHARS, normalize, split_key


def keys(xml: str) -> list[str]:
    return [e.key for e in parse_report(io.BytesIO(xml.encode()), source="r")]


@pytest.mark.parametrize(
    ("run1", "run2"),
    [
        # timestamps, UUIDs, addresses, durations, tmp dirs, runner workspaces, browser versions
        ("suite 2024-05-01T12:00:03.123Z", "suite 2024-06-02T08:11:00Z"),
        ("job 3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e", "job 0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"),
        ("test_obj[<Foo at 0x7f3a9c2b1d60>]", "test_obj[<Foo at 0x7f00aa112233>]"),
        ("loads the page (123 ms)", "loads the page (98ms)"),
        (
            "test_x[/tmp/pytest-of-runner/pytest-12/test_x0]",
            "test_x[/tmp/pytest-of-runner/pytest-99/test_x0]",
        ),
        ("/home/runner/work/app/app/tests/a.spec.ts", "/__w/app/app/tests/a.spec.ts"),
        ("  name   with\tspaces ", "name with spaces"),
    ],
)
def test_volatile_parts_do_not_change_the_key(run1: str, run2: str) -> None:
    assert normalize(run1) == normalize(run2)
    assert make_key(normalize(run1), "C", run1, None) == make_key(normalize(run2), "C", run2, None)


def test_browser_versions_in_suites_and_classnames_do_not_change_the_key() -> None:
    old, new = "Chrome Headless 120.0.6099.109 (Linux x86_64)", "Chrome Headless 121.0.6167.85 (Linux x86_64)"
    assert normalize(old) == normalize(new) == "Chrome Headless (Linux x86_64)"
    assert make_key(normalize(old), old + ".Comp", "t", None) == make_key(
        normalize(new), new + ".Comp", "t", None
    )
    # in a test's own name, a version is meaningful
    assert make_key("s", "C", "works on Chrome 120.0", None) != make_key(
        "s", "C", "works on Chrome 121.0", None
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("test_parse[1.2.3]", "test_parse[1.2.4]"),
        ("Instance/FooTest.Bar/0", "Instance/FooTest.Bar/1"),
        ("retries 3 times", "retries 4 times"),
        ("TestFoo/sub_case", "TestFoo/other_case"),
    ],
)
def test_meaningful_numbers_and_names_stay_distinct(a: str, b: str) -> None:
    assert make_key("s", "C", a, None) != make_key("s", "C", b, None)


def test_key_components_are_unambiguous() -> None:
    assert make_key("a", "b c", "d", None) != make_key("a", "b", "c d", None)
    suites, classname, name, file_part = split_key(make_key("x\x1ey", "C", "n", None))
    assert (suites, classname, name, file_part) == (["x", "y"], "C", "n", "")


def test_file_is_used_only_without_classname() -> None:
    assert make_key("s", "", "renders", "a.test.ts") != make_key("s", "", "renders", "b.test.ts")
    assert make_key("s", "C", "t", "a.py") == make_key("s", "C", "t", "/home/runner/work/r/r/a.py")
    assert make_key("s", "C", "t", "a.py") == make_key("s", "C", "t", None)


def test_long_keys_are_bounded_and_unique() -> None:
    k1 = make_key("s", "C", "x" * 5000 + "1", None)
    k2 = make_key("s", "C", "x" * 5000 + "2", None)
    assert len(k1) <= MAX_KEY_CHARS and len(k2) <= MAX_KEY_CHARS and k1 != k2


def test_root_testsuites_name_and_hostnames_are_not_identity() -> None:
    doc = (
        "<testsuites name='CI job {n}'><testsuite name='s' hostname='{host}'>"
        "<testcase classname='C' name='t'/></testsuite></testsuites>"
    )
    assert keys(doc.format(n=17, host="fv-az12-1")) == keys(doc.format(n=18, host="fv-az99-7"))


def test_playwright_projects_are_distinct_tests() -> None:
    doc = (
        "<testsuites id='' name='' tests='2'>"
        "<testsuite name='example.spec.ts' hostname='chromium' timestamp='2024-01-01T00:00:00'>"
        "<testcase name='has title' classname='example.spec.ts'/></testsuite>"
        "<testsuite name='example.spec.ts' hostname='firefox' timestamp='2024-01-01T00:00:00'>"
        "<testcase name='has title' classname='example.spec.ts'/></testsuite></testsuites>"
    )
    executions = list(parse_report(io.BytesIO(doc.encode()), source="r"))
    assert executions[0].key != executions[1].key
    assert [e.ordinal for e in executions] == [0, 0]
    assert executions[0].suite == "[chromium] / example.spec.ts"


@pytest.mark.parametrize(
    "doc",
    [
        # Surefire
        "<testsuite name='com.acme.FooTest' hostname='{host}' timestamp='{ts}' time='{t}'>"
        "<testcase name='bar' classname='com.acme.FooTest' time='{t}'/></testsuite>",
        # pytest
        "<testsuites><testsuite name='pytest' hostname='{host}' timestamp='{ts}' time='{t}'>"
        "<testcase classname='tests.test_x' name='test_y[a-1]' file='tests/test_x.py' line='3' time='{t}'/>"
        "</testsuite></testsuites>",
        # jest-junit
        "<testsuites name='jest tests' time='{t}'><testsuite name='Button' timestamp='{ts}' time='{t}'>"
        "<testcase classname='Button renders' name='Button renders' time='{t}'/></testsuite></testsuites>",
        # go-junit-report / gotestsum
        "<testsuites><testsuite name='example.com/pkg' timestamp='{ts}' hostname='{host}'>"
        "<testcase classname='example.com/pkg' name='TestFoo/sub' time='{t}'/></testsuite></testsuites>",
        # vitest
        "<testsuites name='vitest tests'><testsuite name='src/a.test.ts' timestamp='{ts}' hostname='{host}'>"
        "<testcase classname='src/a.test.ts' name='math &gt; adds' time='{t}'/></testsuite></testsuites>",
        # mocha / Cypress (mocha-junit-reporter)
        "<testsuites name='Mocha Tests' time='{t}'><testsuite name='Root Suite' timestamp='{ts}'/>"
        "<testsuite name='login' timestamp='{ts}' file='cypress/e2e/login.cy.ts'>"
        "<testcase name='login works' classname='works' time='{t}'/></testsuite></testsuites>",
        # PHPUnit
        "<testsuites><testsuite name='' tests='1'>"
        "<testsuite name='FooTest' file='/home/runner/work/r/r/tests/FooTest.php'>"
        "<testsuite name='FooTest::testBar' tests='1'>"
        "<testcase name='testBar with data set #0' class='FooTest'"
        " classname='FooTest' file='/home/runner/work/r/r/tests/FooTest.php' line='12' time='{t}'/>"
        "</testsuite></testsuite></testsuite></testsuites>",
        # googletest
        "<testsuites name='AllTests' timestamp='{ts}' time='{t}'><testsuite name='FooTest'>"
        "<testcase name='Bar' status='run' result='completed' time='{t}' classname='FooTest'/>"
        "</testsuite></testsuites>",
        # bazel
        "<testsuites><testsuite name='//pkg:foo_test' timestamp='{ts}' hostname='{host}'>"
        "<testcase name='//pkg:foo_test' status='run' duration='3' time='{t}'/></testsuite></testsuites>",
    ],
    ids=["surefire", "pytest", "jest", "go", "vitest", "mocha", "phpunit", "googletest", "bazel"],
)
def test_same_test_same_key_across_runs(doc: str) -> None:
    run1 = keys(doc.format(host="fv-az12-34", ts="2024-05-01T12:00:00", t="1.234"))
    run2 = keys(doc.format(host="runner-xyz", ts="2024-06-30T23:59:59.999Z", t="99.1"))
    assert run1 and run1 == run2


def test_display_name() -> None:
    assert display_name("com.acme.FooTest", "bar") == "com.acme.FooTest › bar"
    assert display_name("Button renders", "Button renders") == "Button renders"
    assert display_name("", "adds") == "adds"
    assert display_name("spec.ts", "has title", "firefox") == "[firefox] spec.ts › has title"
