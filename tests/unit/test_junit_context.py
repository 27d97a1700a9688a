"""`context_from`: the matrix leg a report came from, from its artifact name and report properties."""

from __future__ import annotations

import pytest

from flakeguard.junit import context_from


@pytest.mark.parametrize(
    ("artifact", "expected"),
    [
        ("test-results-py310", "py3.10"),
        ("test-results-py311", "py3.11"),
        ("pytest-report-windows-2022-python-3.11", "windows-2022 py3.11"),
        ("junit (ubuntu-latest, 3.12)", "ubuntu 3.12"),  # "latest" is no version; 3.12 stays a word
        ("results-macos-14-node-20", "macos-14 node20"),
        ("surefire-reports-jdk-17", "java17"),
        ("temurin-21-results.zip", "java21"),
        ("integration-postgres14", "integration postgres14"),
        ("e2e-chromium-arm64", "arm64 e2e chromium"),
    ],
)
def test_the_artifact_name_tells_the_leg(artifact: str, expected: str) -> None:
    assert context_from(artifact, {}) == expected


@pytest.mark.parametrize(
    "artifact",
    [
        "junit.xml",
        "test-results",
        "surefire-reports",
        "test-results-12345678-a1b2c3d",  # run number and sha: different every run
        "reports-run42-attempt2",
        "junit-2024-05-01T10:00:00Z",
    ],
)
def test_nothing_that_changes_from_run_to_run_is_a_context(artifact: str) -> None:
    assert context_from(artifact, None) is None


@pytest.mark.parametrize(
    "artifact", ["junit-shard-1", "junit-shard-2", "junit-1of4", "junit-part3", "e2e-node2", "junit-chunk-7"]
)
def test_shards_are_slices_of_one_leg_not_legs(artifact: str) -> None:
    assert context_from(artifact, None) in (None, "e2e")


def test_report_properties_tell_what_ran_and_win_over_the_name() -> None:
    assert context_from("artifact", {"python_version": "3.11.7", "os.name": "Linux"}) == "linux py3.11"
    assert context_from("results-py310", {"python_version": "3.11.2"}) == "py3.11"
    # Surefire writes the JVM's properties; an old version string reads as its major version
    assert context_from("test-results-ubuntu-22.04", {"os.name": "Linux", "java.version": "1.8.0_292"}) == (
        "ubuntu-22.04 java8"
    )
    assert context_from(None, {"go.version": "go1.22.6 linux/amd64"}) == "x64 go1.22"
    # patch versions are not legs: the same leg keeps its label across runner image updates
    assert context_from(None, {"java.version": "17.0.8"}) == context_from(None, {"java.version": "17.0.11"})


def test_unknown_properties_are_ignored() -> None:
    assert context_from(None, {"user.dir": "/home/runner/work/x/x", "basedir": "/tmp/x"}) is None
    assert context_from("", {"python_version": "unknown"}) is None
