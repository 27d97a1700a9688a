"""The one error type of JUnit ingestion and its bounded set of reason codes."""

from __future__ import annotations

from typing import Final

# Reason codes: short, bounded strings, safe as metric label values.
MALFORMED_XML: Final = "malformed_xml"  # not well-formed XML, empty file, truncated file
NOT_JUNIT: Final = "not_junit"  # well-formed XML whose root is not <testsuites>/<testsuite>
DTD_FORBIDDEN: Final = "dtd_forbidden"  # any DOCTYPE, DTD or entity declaration
TOO_DEEP: Final = "too_deep"  # element nesting deeper than ParseLimits.max_depth
TOO_LARGE: Final = "too_large"  # a tag/text run, a report or an archive over its size limit
BAD_ENCODING: Final = "bad_encoding"  # invalid bytes for the encoding, unknown encoding
ZIP_BOMB: Final = "zip_bomb"  # a member over the compression-ratio or size limits
TOO_MANY_MEMBERS: Final = "too_many_members"  # an archive with more members than allowed
BAD_ZIP: Final = "bad_zip"  # not a ZIP, corrupt, encrypted, unsupported compression, CRC error
UNSAFE_MEMBER_NAME: Final = "unsafe_member_name"  # absolute or `..` member names (never used as paths)

REASON_CODES: Final = frozenset(
    {
        MALFORMED_XML,
        NOT_JUNIT,
        DTD_FORBIDDEN,
        TOO_DEEP,
        TOO_LARGE,
        BAD_ENCODING,
        ZIP_BOMB,
        TOO_MANY_MEMBERS,
        BAD_ZIP,
        UNSAFE_MEMBER_NAME,
    }
)


class JUnitError(Exception):
    """A report (or archive) that is refused. `str()` names the source and the line.

    `code` is one of `REASON_CODES`; `line` is the 1-based line of the report where the problem was
    found, or None where no line applies (an empty file, a whole archive).
    """

    def __init__(self, source: str, line: int | None, reason: str, code: str = MALFORMED_XML) -> None:
        assert code in REASON_CODES, code
        super().__init__(source, line, reason, code)
        self.source = source
        self.line = line
        self.reason = reason
        self.code = code

    def __str__(self) -> str:
        where = f"{self.source}, line {self.line}" if self.line else self.source
        return f"{where}: {self.reason} [{self.code}]"

    def __reduce__(self) -> tuple[type[JUnitError], tuple[str, int | None, str, str]]:
        return (JUnitError, (self.source, self.line, self.reason, self.code))
