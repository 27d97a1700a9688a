"""Templates and their filters, and the response headers every dashboard page carries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from flakeguard import __version__
from flakeguard.junit.identity import display_name, display_suite
from flakeguard.web import charts
from flakeguard.web.security import CSRF_FIELD, WebSecurity

# No inline script or style anywhere: the pages pass a strict policy (the browser tests would see
# a violation as a console error). Inline SVG is markup, not an image, so it needs no source.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def percent(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def duration(seconds: float | None) -> str:
    """12 s, 3 min 20 s, 1 h 05 min."""
    if seconds is None:
        return "–"
    total = round(seconds)
    if total < 60:
        return f"{seconds:.0f} s" if seconds >= 1 or seconds == 0 else f"{seconds:.1f} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def timestamp(value: datetime | None) -> str:
    return "–" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"  # pragma: no cover


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("flakeguard.web", "templates"),
        autoescape=select_autoescape(("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        percent=percent,
        number=number,
        duration=duration,
        timestamp=timestamp,
        ago=ago,
        short_sha=lambda sha: (sha or "")[:7],
    )
    env.globals.update(
        display_name=display_name,
        display_suite=display_suite,
        charts=charts,
        version=__version__,
        csrf_field=CSRF_FIELD,
    )
    return env


ENVIRONMENT = _environment()


def render(
    request: Request, security: WebSecurity, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    viewer = security.viewer(request)
    html = ENVIRONMENT.get_template(template).render(
        request=request,
        viewer=viewer,
        public=security.public,
        login_possible=security.login_possible,
        csrf_token=security.csrf_token(request),
        now=datetime.now(UTC),
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    security.keep_csrf_cookie(request, response)
    return response
