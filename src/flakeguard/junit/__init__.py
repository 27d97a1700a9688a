"""JUnit ingestion: hardened streaming parser, test identity, guarded artifact ZIP reading.

Pure library code: no I/O beyond the streams it is given, no metrics, no logging.
"""

from flakeguard.junit.errors import REASON_CODES, JUnitError
from flakeguard.junit.identity import display_name, make_key
from flakeguard.junit.parser import ParseLimits, iter_testcases, parse_duration, parse_report

__all__ = [
    "REASON_CODES",
    "JUnitError",
    "ParseLimits",
    "display_name",
    "iter_testcases",
    "make_key",
    "parse_duration",
    "parse_report",
]
