"""Adapter from an artifact ZIP to (member, executions) pairs for the ingest pipeline.

TODO(lead): replace the member loop with flakeguard.junit.archive's guarded reader once it lands.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from flakeguard.junit import JUnitError, ParseLimits, parse_report
from flakeguard.model import TestExecution


@dataclass(frozen=True, slots=True)
class ArtifactLimits:
    max_download_bytes: int
    max_members: int
    max_total_uncompressed: int
    max_ratio: int
    parse: ParseLimits

    @classmethod
    def from_settings(
        cls, *, max_download_bytes: int, max_members: int, max_total_uncompressed: int, max_ratio: int,
        max_output_bytes: int,
    ) -> ArtifactLimits:
        return cls(max_download_bytes, max_members, max_total_uncompressed, max_ratio,
                   ParseLimits(max_output_bytes=max_output_bytes))


@dataclass(frozen=True, slots=True)
class Refusal:
    artifact: str
    member: str | None
    line: int | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact, "member": self.member, "line": self.line, "reason": self.code,
                "message": self.message}


def iter_artifact_reports(
    archive: IO[bytes], *, artifact: str, limits: ArtifactLimits
) -> Iterator[Refusal | tuple[str, Iterator[TestExecution]]]:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        yield Refusal(artifact, None, None, "bad_zip", str(exc))
        return
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.lower().endswith(".xml"):
                continue
            with zf.open(info) as stream:
                source = f"{artifact}!{info.filename}"
                try:
                    yield info.filename, parse_report(stream, source=source, limits=limits.parse)
                except JUnitError as exc:
                    yield Refusal(artifact, info.filename, exc.line, exc.code, exc.reason)
