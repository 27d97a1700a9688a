"""JUnit ingestion: hardened streaming parser, test identity, guarded artifact ZIP reading.

Pure library code: no I/O beyond the streams it is given, no metrics, no logging.
See docs/JUNIT.md.
"""

from flakeguard.junit.archive import (
    ArchiveLimits,
    ArtifactReport,
    MemberReport,
    Refusal,
    iter_artifact,
    read_artifact,
    read_report,
)
from flakeguard.junit.context import context_from
from flakeguard.junit.errors import REASON_CODES, JUnitError
from flakeguard.junit.identity import display_name, make_key
from flakeguard.junit.parser import ParseLimits, iter_testcases, parse_duration, parse_report

__all__ = [
    "REASON_CODES",
    "ArchiveLimits",
    "ArtifactReport",
    "JUnitError",
    "MemberReport",
    "ParseLimits",
    "Refusal",
    "context_from",
    "display_name",
    "iter_artifact",
    "iter_testcases",
    "make_key",
    "parse_duration",
    "parse_report",
    "read_artifact",
    "read_report",
]
