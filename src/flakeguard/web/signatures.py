"""Failure signatures for the test page: a test's failures grouped by their normalised message.

STOPGAP until issue 12 lands: failure fingerprints are being built in `flakeguard.analysis` (branch
i12a) and are not stored yet. Until then the dashboard groups failures by `signature_of`, a small
normalisation of the stored message text. Replace `signature_of` (and its callers' grouping) by the
analysis fingerprint when it lands; nothing else on the page depends on how the key is made.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flakeguard.junit.identity import normalize

NO_MESSAGE = "(no message)"
MAX_SIGNATURE = 200

# Beyond what test identity already normalises (timestamps, UUIDs, addresses, temporary paths):
# hex ids (commit shas, hashes) and numbers, which differ between runs of the same failure.
_HEX = re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{7,}\b")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")


def signature_of(message: str | None) -> str:
    """The first line of a failure message with its volatile parts (times, ids, addresses, numbers,
    temporary paths) replaced, so the same failure in different runs gets the same key."""
    first_line = (message or "").strip().split("\n", 1)[0]
    text = _NUMBER.sub("<n>", _HEX.sub("<hex>", normalize(first_line)))
    return text[:MAX_SIGNATURE] or NO_MESSAGE


@dataclass(frozen=True, slots=True)
class FailureSignature:
    signature: str
    count: int
    sample: str  # the newest message with this signature, as stored
    first_seen: datetime
    last_seen: datetime


def group_failures(failures: Iterable[tuple[str | None, datetime]]) -> list[FailureSignature]:
    """(message, when) of failing executions -> signatures, most frequent first, then most recent."""
    groups: dict[str, list[tuple[str | None, datetime]]] = {}
    for message, at in failures:
        groups.setdefault(signature_of(message), []).append((message, at))
    signatures = []
    for signature, items in groups.items():
        newest = max(items, key=lambda item: item[1])
        signatures.append(
            FailureSignature(
                signature=signature,
                count=len(items),
                sample=(newest[0] or "").strip() or NO_MESSAGE,
                first_seen=min(at for _, at in items),
                last_seen=newest[1],
            )
        )
    signatures.sort(key=lambda s: (-s.count, -s.last_seen.timestamp(), s.signature))
    return signatures
