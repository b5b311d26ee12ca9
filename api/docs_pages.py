"""`/docs` (Swagger UI) and `/redoc` (ReDoc) with no CDN: the pages load their scripts and
styles from `/docs-assets/`, the copies that the pinned `fastapi-offline` package ships
(Swagger UI 5, ReDoc 2), so the API documents itself on a machine with no internet.

FastAPI's own page builders are kept (the same pages, the same `swagger_ui_parameters`); only
the asset URLs change. Each page answers with a Content-Security-Policy that allows its one
inline script by hash and nothing off the origin, so a browser refuses any request elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))

SWAGGER_UI_PARAMETERS = {
    # Swagger UI would send the document to validator.swagger.io for its badge.
    "validatorUrl": None,
}

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: bytes) -> str:
    """Same-origin scripts, styles, images and fetches, plus the page's inline scripts by hash.
    Inline styles and `data:` images are Swagger UI's and ReDoc's own; ReDoc's search runs in
    a `blob:` worker."""
    scripts = ["'self'"] + [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]
    return (
        f"default-src 'none'; script-src {' '.join(scripts)}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def _page(built: HTMLResponse) -> Callable[[], HTMLResponse]:
    """The page's bytes and headers, computed once; each request gets a response of its own
    (middleware may add headers to it)."""
    html = bytes(built.body)
    headers = {
        "Content-Security-Policy": docs_policy(html),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return lambda: HTMLResponse(html, headers=headers)


def install_docs(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Mount the assets and add `/docs` and `/redoc`; the app is made with
    `docs_url=None, redoc_url=None` so FastAPI's CDN pages are not there too."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    title = app.title

    # Static pages: built (and their policy hashed) once, not on every request.
    docs = _page(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - API docs",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
    )
    reference = _page(
        get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
    )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return docs()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return reference()
