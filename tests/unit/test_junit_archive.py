"""Artifact ZIP reading: members, refusals, limits."""

from __future__ import annotations

import io
import zipfile

from flakeguard.junit import ArchiveLimits, ParseLimits, Refusal, read_artifact, read_report
from flakeguard.junit.archive import iter_artifact
from flakeguard.model import Outcome
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml, zip_members

GOOD = junit_xml([SuiteSpec("s", [CaseSpec("C", "a"), CaseSpec("C", "b", Outcome.FAILED)])])


def test_reads_xml_members_and_skips_others() -> None:
    data = zip_members({"reports/TEST-a.xml": GOOD, "reports/b.XML": GOOD, "log.txt": b"x", "dir/": b""})
    report = read_artifact(data, artifact="junit-results")
    assert [m.member for m in report.members] == ["reports/TEST-a.xml", "reports/b.XML"]
    assert report.refusals == []
    assert report.execution_count == 4
    sources = {source for source, _ in report.executions()}
    assert sources == {"junit-results!reports/TEST-a.xml", "junit-results!reports/b.XML"}


def test_bad_member_is_refused_and_others_still_parsed() -> None:
    data = zip_members(
        {
            "a.xml": GOOD,
            "broken.xml": b"<testsuite>\n<testcase name='x'>\n",
            "xxe.xml": b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><testsuite/>",
            "z.xml": GOOD,
        }
    )
    report = read_artifact(data, artifact="art")
    assert [m.member for m in report.members] == ["a.xml", "z.xml"]
    assert [(r.member, r.reason_code) for r in report.refusals] == [
        ("broken.xml", "malformed_xml"),
        ("xxe.xml", "dtd_forbidden"),
    ]
    assert report.refusals[0].line is not None and report.refusals[0].artifact == "art"


def test_member_refused_midway_keeps_none_of_its_executions() -> None:
    cases = "".join(f"<testcase name='t{i}'/>" for i in range(500))
    data = zip_members({"half.xml": f"<testsuite>{cases}<oops></testsuite>".encode()})
    report = read_artifact(data, artifact="a")
    assert report.members == [] and report.refusals[0].reason_code == "malformed_xml"


def test_whole_archive_refusals() -> None:
    assert read_artifact(b"not a zip", artifact="a").refusals[0].reason_code == "bad_zip"
    assert read_artifact(b"", artifact="a").refusals[0].reason_code == "bad_zip"
    big = zip_members({"a.xml": GOOD})
    too_large = read_artifact(big, artifact="a", archive_limits=ArchiveLimits(max_download_bytes=10))
    assert too_large.refusals == [Refusal("a", None, None, "too_large", too_large.refusals[0].message)]
    many = zip_members({f"r{i}.xml": GOOD for i in range(5)})
    refused = read_artifact(many, artifact="a", archive_limits=ArchiveLimits(max_members=4))
    assert [r.reason_code for r in refused.refusals] == ["too_many_members"] and refused.members == []
    truncated = big[: len(big) // 2] + big[-22:]
    assert read_artifact(truncated, artifact="a").refusals[0].reason_code == "bad_zip"


def test_crc_mismatch_refuses_the_member() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("a.xml", GOOD)
        zf.writestr("b.xml", GOOD)
    data = bytearray(buf.getvalue())
    at = data.find(b'name="a"')
    data[at + 6] = ord("q")  # still well-formed XML, but the stored CRC no longer matches
    report = read_artifact(bytes(data), artifact="a")
    assert [(r.member, r.reason_code) for r in report.refusals] == [("a.xml", "bad_zip")]
    assert [m.member for m in report.members] == ["b.xml"]


def test_parse_limits_apply_to_members() -> None:
    deep = ("<testsuite>" * 40 + "</testsuite>" * 40).encode()
    report = read_artifact(zip_members({"d.xml": deep}), artifact="a", parse_limits=ParseLimits(max_depth=8))
    assert report.refusals[0].reason_code == "too_deep"


def test_file_object_input_and_iteration() -> None:
    items = list(iter_artifact(io.BytesIO(zip_members({"a.xml": GOOD})), artifact="a"))
    assert len(items) == 1 and not isinstance(items[0], Refusal)


def test_read_report_for_plain_files() -> None:
    ok = read_report(GOOD, artifact="upload", member="TEST-x.xml")
    assert ok.members[0].source == "upload!TEST-x.xml" and len(ok.members[0].executions) == 2
    bad = read_report(b"<x", artifact="upload", member="bad.xml")
    assert bad.refusals[0].reason_code == "malformed_xml" and bad.members == []


def test_control_characters_in_member_names_are_neutralised() -> None:
    report = read_artifact(zip_members({"a\x1b[31m.xml": b"<x"}), artifact="a")
    assert report.refusals[0].member == "a?[31m.xml"
