"""The one request object every handler gets, the reply it returns and the error it raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flakeguard.testing.fake_github.budgets import Budget
from flakeguard.testing.fake_github.state import Token

JSON = dict[str, Any]
DOCS = "https://docs.github.com/rest"


@dataclass(frozen=True)
class ApiRequest:
    """A routed, authenticated API request."""

    method: str
    path: str
    template: str
    params: Mapping[str, str]  # path parameters, e.g. {"owner": "acme", "run_id": "12345"}
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: JSON  # {} when the request had none
    token: Token | None  # None for the App's JWT
    budget: Budget  # the caller's primary rate-limit budget

    def int_param(self, name: str) -> int | None:
        raw = self.params[name]
        return int(raw) if raw.isdigit() else None


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able, or None
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = False  # a GET body that can be answered 304


class ApiError(Exception):
    """An error answer in GitHub's `basic-error` shape (`validation-error` with `errors`).

    `charge=False` for answers GitHub gives before it knows whose budget to spend (a credential
    that does not resolve): those carry no `x-ratelimit-*` headers."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        charge: bool = True,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.charge = charge
        self.extra = extra

    def body(self) -> JSON:
        out: JSON = {"message": self.message, "documentation_url": DOCS, "status": str(self.status)}
        out.update(self.extra)
        return out


def not_found() -> ApiError:
    return ApiError(404, "Not Found")
