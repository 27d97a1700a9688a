"""What the fake received and answered, for tests to assert on (and to check every answer
against GitHub's OpenAPI description: `flakeguard.testing.openapi.check_fake_responses`)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from flakeguard.testing.fake_github.faults import path_matches


class RecordedRequest(tuple[str, str, dict[str, str]]):
    """One request the fake received: unpacks as `(method, path, headers)`.

    `headers` has lower-case names. Also `.query` (the raw query string), `.server`
    (`"api"` or `"blob"`, the signed download host) and `.at` (epoch seconds when it arrived).
    """

    query: str
    server: str
    at: float

    def __new__(
        cls,
        method: str,
        path: str,
        headers: dict[str, str],
        query: str = "",
        server: str = "api",
        at: float | None = None,
    ) -> RecordedRequest:
        self = super().__new__(cls, (method, path, headers))
        self.query = query
        self.server = server
        self.at = time.time() if at is None else at
        return self

    @property
    def method(self) -> str:
        return self[0]

    @property
    def path(self) -> str:
        return self[1]

    @property
    def headers(self) -> dict[str, str]:
        return self[2]


@dataclass(frozen=True)
class RecordedResponse:
    """One response the API server sent: `template` is None for unknown paths and the edge's refusals."""

    method: str
    path: str
    template: str | None
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Journal:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.responses: list[RecordedResponse] = []
        self._lock = threading.Lock()

    def request(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def response(self, response: RecordedResponse) -> None:
        with self._lock:
            self.responses.append(response)

    def requests_to(self, pattern: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and path_matches(pattern, r.path, None)
            ]
