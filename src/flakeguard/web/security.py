"""Who may see and change what on the dashboard: the session cookie and CSRF tokens.

* Reading needs a session — the login form takes the API token (`FLAKEGUARD_API_TOKEN`) — unless
  `WEB_PUBLIC=true`, which opens the pages read-only.
* Changing anything (quarantine, release) always needs a session, whatever `WEB_PUBLIC` says.
* The session is a cookie signed and timestamped by itsdangerous with the API token as the key
  (`WEB_SESSION_HOURS`): HttpOnly, SameSite=Strict, Secure when served over https. Changing the token
  ends every session. It holds only the display name given at login (the actor in the history).
* Every POST form carries a CSRF token: the signature of a random value kept in its own HttpOnly,
  SameSite=Strict cookie (a signed double-submit cookie, so the login form is covered before any
  session exists). A POST whose token does not match its cookie, or whose Origin or Referer names
  another host, is refused.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "flakeguard_session"
CSRF_COOKIE = "flakeguard_csrf"
CSRF_FIELD = "csrf_token"
DEFAULT_ACTOR = "dashboard"
MAX_NAME = 100


@dataclass(frozen=True, slots=True)
class Viewer:
    """Someone logged in with the token (may act)."""

    name: str


class WebSecurity:
    def __init__(self, api_token: str | None, *, public: bool, session_hours: int) -> None:
        self.token = api_token
        self.public = public
        self.session_seconds = session_hours * 3600
        # Without a token nobody can log in; the key then only signs CSRF tokens of this process.
        key = api_token if api_token is not None else secrets.token_urlsafe(32)
        self._sessions = URLSafeTimedSerializer(key, salt="flakeguard.web.session")
        self._csrf = URLSafeTimedSerializer(key, salt="flakeguard.web.csrf")

    @property
    def login_possible(self) -> bool:
        return self.token is not None

    def token_matches(self, supplied: str) -> bool:
        return self.token is not None and hmac.compare_digest(supplied.encode(), self.token.encode())

    # ---------------------------------------------------------------------------- the session

    def viewer(self, request: Request) -> Viewer | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw or self.token is None:
            return None
        try:
            data = self._sessions.loads(raw, max_age=self.session_seconds)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return None
        return Viewer(name=data["name"])

    def may_read(self, request: Request) -> bool:
        return self.public or self.viewer(request) is not None

    def start_session(self, request: Request, response: Response, name: str) -> None:
        display = " ".join(name.split())[:MAX_NAME] or DEFAULT_ACTOR
        response.set_cookie(
            SESSION_COOKIE,
            self._sessions.dumps({"name": display}),
            max_age=self.session_seconds,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )

    def end_session(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
        )

    # ---------------------------------------------------------------------------------- CSRF

    def _seed(self, request: Request) -> str:
        seed = getattr(request.state, "csrf_seed", None)
        if seed is None:
            seed = request.cookies.get(CSRF_COOKIE) or ""
            if len(seed) < 32:
                seed = secrets.token_urlsafe(32)
                request.state.csrf_new = True
            request.state.csrf_seed = seed
        return str(seed)

    def csrf_token(self, request: Request) -> str:
        """The token to put in this page's forms (sets the CSRF cookie on the response if new)."""
        return str(self._csrf.dumps(self._seed(request)))

    def keep_csrf_cookie(self, request: Request, response: Response) -> None:
        if getattr(request.state, "csrf_new", False):
            response.set_cookie(
                CSRF_COOKIE,
                request.state.csrf_seed,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/",
            )

    def csrf_valid(self, request: Request, token: str | None) -> bool:
        seed = request.cookies.get(CSRF_COOKIE)
        if not token or not seed or not _same_origin(request):
            return False
        try:
            signed = self._csrf.loads(token, max_age=self.session_seconds)
        except BadSignature:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed.encode(), seed.encode())


def _same_origin(request: Request) -> bool:
    """A browser names the page a POST comes from; it must be this host (when it says)."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is not None:
        return origin != "null" and urlsplit(origin).netloc == host
    referer = request.headers.get("referer")
    return referer is None or urlsplit(referer).netloc == host
