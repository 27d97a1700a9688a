"""The web dashboard: server-rendered pages on the API's HTTP port (see README, docs/OPERATIONS.md).

`install(app)` adds the pages, their static files (htmx vendored, CSS) and their error pages to the
API app; it needs `app.state.services` and `app.state.api_token` set.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from flakeguard.web.pages import LoginRequired, PageNotFound, on_login_required, on_page_not_found, router
from flakeguard.web.security import WebSecurity


def install(app: FastAPI) -> None:
    settings = app.state.services.settings
    app.state.web_security = WebSecurity(
        app.state.api_token, public=settings.web_public, session_hours=settings.web_session_hours
    )
    app.state.web_figures = {}
    app.include_router(router)
    app.mount("/static", StaticFiles(packages=[("flakeguard.web", "static")]), name="static")
    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(PageNotFound, on_page_not_found)
