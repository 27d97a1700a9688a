"""Bearer-token auth for the management API. Compared in constant time; never logged."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status


def require_api_token(request: Request) -> None:
    expected = request.app.state.api_token
    header = request.headers.get("authorization", "")
    scheme, _, supplied = header.partition(" ")
    if expected is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the API is disabled: set FLAKEGUARD_API_TOKEN"
        )
    if scheme.lower() != "bearer" or not supplied:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
