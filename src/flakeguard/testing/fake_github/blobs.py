"""The artifact download host: `GET …/artifacts/{id}/zip` answers 302 to a URL here, HMAC-signed
and expiring after `artifact_url_ttl` seconds, like GitHub's signed blob storage URLs (API-NOTES §2).

It runs as a second server on another loopback address, so the client must not send the API's
`Authorization` header there (the URL is the credential).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlencode

from flakeguard.testing.fake_github.state import State

_REFUSED = b"<Error><Code>AuthenticationFailed</Code></Error>"


class BlobHost:
    def __init__(self, state: State, url_ttl: float) -> None:
        self.state = state
        self.url_ttl = url_ttl
        self.base_url = ""
        self._secret = secrets.token_bytes(32)
        self._truncate: dict[int, float] = {}
        self._lock = threading.Lock()

    def signed_url(self, artifact_id: int, *, expires: float | None = None) -> str:
        exp = int(expires if expires is not None else time.time() + self.url_ttl)
        query = {
            "urlExpires": str(exp),
            "urlSigningMethod": "HMACV1",
            "urlSignature": self._sign(artifact_id, exp),
        }
        return f"{self.base_url}/_blob/{artifact_id}?" + urlencode(query)

    def truncate_next(self, artifact_id: int, keep: float) -> None:
        """The next download of the artifact is cut to `keep` of its bytes (Content-Length matching)."""
        with self._lock:
            self._truncate[artifact_id] = keep

    def serve(self, artifact_id: int, query: Mapping[str, str]) -> tuple[int, bytes, dict[str, str]]:
        try:
            exp = int(query.get("urlExpires", ""))
        except ValueError:
            return 403, _REFUSED, {}
        if not hmac.compare_digest(self._sign(artifact_id, exp), query.get("urlSignature", "")):
            return 403, _REFUSED, {}
        if time.time() > exp:
            return 403, b"<Error><Code>AuthenticationFailed</Code><Message>expired</Message></Error>", {}
        artifact = self.state.artifact(artifact_id)
        with self._lock:
            keep = self._truncate.pop(artifact_id, None)
        if artifact is None:
            return 404, b"<Error><Code>BlobNotFound</Code></Error>", {}
        data = artifact.data if keep is None else artifact.data[: int(len(artifact.data) * keep)]
        return 200, data, {"content-type": "application/zip"}

    def _sign(self, artifact_id: int, exp: int) -> str:
        mac = hmac.new(self._secret, f"{artifact_id}:{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")
