"""Guarded reading of CI artifact ZIPs: parse the JUnit reports inside without extracting anything.

* Nothing is written to disk and member names are never used as paths: they are labels in results
  and refusals only (control characters replaced, length bounded). Names that *would* escape a
  directory (absolute, ``..`` segments, drive letters) are refused as ``unsafe_member_name`` anyway,
  because no test tool writes them and they signal a crafted archive.
* Whole-archive checks before any member is read: download size, the member count stated in the
  end-of-central-directory record *and* the size of the central directory (zipfile would otherwise
  build one object per entry, whatever the count field claims), then the parsed member count.
* Per member, decompressed bytes are counted while streaming (header sizes are not trusted): the
  member size, the compression ratio (decompressed / compressed, checked once a member passed 1 MiB)
  and the total for the archive are enforced as the parser pulls data, so a bomb stops at the limit.
* Reports are members whose name ends in ``.xml`` (case-insensitive); others are skipped silently.
* Each member is all-or-nothing: its executions are kept only if it parses completely. A refused
  member becomes a `Refusal` and the other members are still read. Pure: no logging, no metrics.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, BinaryIO

from flakeguard.junit import errors as E
from flakeguard.junit.errors import JUnitError
from flakeguard.junit.parser import KiB, MiB, ParseLimits, parse_report
from flakeguard.model import TestExecution

__all__ = [
    "ArchiveLimits",
    "ArtifactReport",
    "MemberReport",
    "Refusal",
    "iter_artifact",
    "read_artifact",
    "read_report",
]


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Limits for one artifact ZIP. All configurable; sizes in bytes."""

    max_download_bytes: int = 512 * MiB
    max_members: int = 10_000
    max_total_uncompressed_bytes: int = 2 * 1024 * MiB
    max_member_bytes: int = 1024 * MiB
    max_compression_ratio: float = 200.0
    """Decompressed/compressed bytes per member. JUnit XML compresses 5-50x; zeros ~1000x."""
    ratio_grace_bytes: int = 1 * MiB
    """The ratio is only enforced once a member has produced this much (small members cannot harm)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused archive (member None) or member, for the worker to count by `reason_code`."""

    artifact: str
    member: str | None
    line: int | None
    reason_code: str
    message: str


@dataclass(frozen=True, slots=True)
class MemberReport:
    """The executions of one report that parsed completely, and its suite-level properties (what
    `flakeguard.junit.context_from(artifact, properties)` reads the matrix leg from)."""

    artifact: str
    member: str
    executions: list[TestExecution]
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The name used for idempotency: (source, key, ordinal) identifies an execution."""
        return f"{self.artifact}!{self.member}"


@dataclass(slots=True)
class ArtifactReport:
    artifact: str
    members: list[MemberReport] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    def executions(self) -> Iterator[tuple[str, TestExecution]]:
        """Every accepted execution with its source, member by member."""
        for member in self.members:
            source = member.source
            for execution in member.executions:
                yield source, execution

    @property
    def execution_count(self) -> int:
        return sum(len(m.executions) for m in self.members)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _label(name: str) -> str:
    """A member name made safe to print and store (it is never used as a path)."""
    cleaned = _CONTROL.sub("?", name)
    return cleaned if len(cleaned) <= 300 else cleaned[:280] + "...(truncated)"


def _unsafe(name: str) -> bool:
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        return True
    return any(part == ".." for part in normalized.split("/")) or "\x00" in name


class _Budget:
    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0


class _CountingMember(io.RawIOBase):
    """A zip member stream that counts what it decompresses and stops at the limits."""

    def __init__(
        self,
        raw: IO[bytes],
        compressed: int,
        source: str,
        limits: ArchiveLimits,
        budget: _Budget,
    ) -> None:
        super().__init__()
        self._raw = raw
        self._compressed = max(compressed, 1)
        self._source = source
        self._limits = limits
        self._budget = budget
        self.count = 0

    def readable(self) -> bool:
        return True

    def _consumed(self) -> int:
        """Compressed bytes inflated so far. zipfile keeps no public counter; its ZipExtFile tracks
        the compressed bytes still to read in `_compress_left` and its zlib decompressor the bytes
        read but not inflated yet (both there since Python 3.2; tests/faults pin the behaviour).
        Without them, fall back to the member's whole compressed size (catches a bomb later)."""
        left = getattr(self._raw, "_compress_left", None)
        if not isinstance(left, int):
            return self._compressed
        # Read from the archive but not yet inflated: not consumed yet.
        tail = getattr(getattr(self._raw, "_decompressor", None), "unconsumed_tail", b"")
        pending = len(tail) if isinstance(tail, bytes) else 0
        return max(self._compressed - left - pending, 1)

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(size if size is not None and size > 0 else 64 * KiB)
        n = len(data)
        self.count += n
        self._budget.total += n
        limits = self._limits
        if self.count > limits.max_member_bytes:
            raise JUnitError(
                self._source, None, f"member inflates beyond {limits.max_member_bytes} bytes", E.ZIP_BOMB
            )
        if (
            self.count > limits.ratio_grace_bytes
            and self.count / self._consumed() > limits.max_compression_ratio
        ):
            raise JUnitError(
                self._source,
                None,
                f"compression ratio above {limits.max_compression_ratio:g}:1",
                E.ZIP_BOMB,
            )
        if self._budget.total > limits.max_total_uncompressed_bytes:
            raise JUnitError(
                self._source,
                None,
                f"archive inflates beyond {limits.max_total_uncompressed_bytes} bytes",
                E.ZIP_BOMB,
            )
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"


def _central_directory(fp: BinaryIO, size: int) -> tuple[int, int] | None:
    """(entry count, central directory bytes) from the end records, or None if there are none."""
    tail_len = min(size, 22 + 65_535)
    fp.seek(size - tail_len)
    tail = fp.read(tail_len)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        return None
    _, _, _, _, entries, cd_size, _, _ = struct.unpack("<4s4H2LH", tail[at : at + 22])
    if (
        (entries == 0xFFFF or cd_size == 0xFFFFFFFF)
        and at >= 20
        and tail[at - 20 : at - 16] == _EOCD64_LOCATOR
    ):
        (offset64,) = struct.unpack("<Q", tail[at - 12 : at - 4])
        fp.seek(offset64)
        rec = fp.read(56)
        if len(rec) == 56 and rec[:4] == b"PK\x06\x06":
            entries, cd_size = struct.unpack("<QQ", rec[32:40] + rec[40:48])
    return entries, cd_size


def iter_artifact(
    data: BinaryIO | bytes,
    *,
    artifact: str,
    archive_limits: ArchiveLimits = ArchiveLimits(),
    parse_limits: ParseLimits = ParseLimits(),
) -> Iterator[MemberReport | Refusal]:
    """Member by member: a `MemberReport` per report that parsed, a `Refusal` per refused one (or a
    single `Refusal` with member None for a refused archive). Holds one member's executions at a
    time. `data` must be seekable (bytes, a file, a SpooledTemporaryFile).
    """
    fp: BinaryIO = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data

    def refuse(code: str, message: str, member: str | None = None, line: int | None = None) -> Refusal:
        return Refusal(artifact, member, line, code, message)

    try:
        size = fp.seek(0, io.SEEK_END)
    except (OSError, ValueError):
        yield refuse(E.BAD_ZIP, "archive stream is not seekable")
        return
    if size > archive_limits.max_download_bytes:
        yield refuse(E.TOO_LARGE, f"archive of {size} bytes is over {archive_limits.max_download_bytes}")
        return
    directory = _central_directory(fp, size)
    if directory is None:
        yield refuse(E.BAD_ZIP, "not a ZIP archive (no end of central directory record)")
        return
    entries, cd_size = directory
    # 46 bytes of fixed header per entry + a generous 466 bytes of name/extra/comment on average.
    if entries > archive_limits.max_members or cd_size > archive_limits.max_members * 512:
        yield refuse(
            E.TOO_MANY_MEMBERS,
            f"archive lists {entries} members ({cd_size} directory bytes);"
            f" limit {archive_limits.max_members}",
        )
        return
    fp.seek(0)
    try:
        zf = zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        yield refuse(E.BAD_ZIP, f"corrupt ZIP archive: {exc}")
        return
    with zf:
        infos = zf.infolist()
        if len(infos) > archive_limits.max_members:
            yield refuse(E.TOO_MANY_MEMBERS, f"archive has {len(infos)} members")
            return
        budget = _Budget()
        for info in infos:
            if info.is_dir():
                continue
            label = _label(info.filename)
            if _unsafe(info.filename):
                yield refuse(E.UNSAFE_MEMBER_NAME, "member name is absolute or contains '..'", label)
                continue
            if not info.filename.lower().endswith(".xml"):
                continue
            if budget.total >= archive_limits.max_total_uncompressed_bytes:
                yield refuse(E.ZIP_BOMB, "archive's total uncompressed limit reached", label)
                continue
            source = f"{artifact}!{label}"
            try:
                properties: dict[str, str] = {}
                with zf.open(info) as raw:
                    stream = _CountingMember(raw, info.compress_size, source, archive_limits, budget)
                    executions = list(
                        parse_report(stream, source=source, limits=parse_limits, properties=properties)  # type: ignore[arg-type]
                    )
            except JUnitError as exc:
                yield refuse(exc.code, f"{exc.reason}", label, exc.line)
                continue
            except (
                zipfile.BadZipFile,
                NotImplementedError,
                RuntimeError,
                EOFError,
                OSError,
                ValueError,
            ) as exc:
                # CRC mismatch, truncated data, encrypted or unsupported compression method.
                yield refuse(E.BAD_ZIP, f"unreadable member: {exc}", label)
                continue
            yield MemberReport(artifact, label, executions, properties)


def read_artifact(
    data: BinaryIO | bytes,
    *,
    artifact: str,
    archive_limits: ArchiveLimits = ArchiveLimits(),
    parse_limits: ParseLimits = ParseLimits(),
) -> ArtifactReport:
    """All reports of one artifact ZIP: accepted members with their executions, and refusals."""
    report = ArtifactReport(artifact)
    for item in iter_artifact(
        data, artifact=artifact, archive_limits=archive_limits, parse_limits=parse_limits
    ):
        if isinstance(item, Refusal):
            report.refusals.append(item)
        else:
            report.members.append(item)
    return report


def read_report(
    data: BinaryIO | bytes,
    *,
    artifact: str,
    member: str,
    parse_limits: ParseLimits = ParseLimits(),
) -> ArtifactReport:
    """One plain XML report (an uploaded file, a file on disk) in the same shape as `read_artifact`."""
    stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    label = _label(member)
    source = f"{artifact}!{label}"
    report = ArtifactReport(artifact)
    properties: dict[str, str] = {}
    try:
        executions = list(parse_report(stream, source=source, limits=parse_limits, properties=properties))
    except JUnitError as exc:
        report.refusals.append(Refusal(artifact, label, exc.line, exc.code, exc.reason))
    else:
        report.members.append(MemberReport(artifact, label, executions, properties))
    return report
