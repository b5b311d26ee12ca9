"""`/docs` and `/redoc` work with no internet: the pages name only assets the app serves
itself (from the pinned `fastapi-offline` package), and each page's Content-Security-Policy
lets a browser fetch nothing from anywhere else."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from api.main import create_app
from core.settings import Settings

DOC_PAGES = ("/docs", "/redoc")


class _Urls(HTMLParser):
    """Every URL an HTML page makes the browser fetch: src, href, spec-url attributes and the
    `url:` that Swagger UI's inline script loads."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.scripts.append(data)
            self.urls += re.findall(r"""\burl:\s*['"]([^'"]+)['"]""", data)


@pytest.fixture
async def client(tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(_env_file=None, environment="test", data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _page(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, _Urls]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    parsed = _Urls()
    parsed.feed(response.text)
    return response, parsed


@pytest.mark.parametrize("path", DOC_PAGES)
async def test_a_docs_page_names_only_same_origin_urls(client: httpx.AsyncClient, path: str):
    response, page = await _page(client, path)

    assert page.urls, "the page loads its assets"
    for url in page.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not on the app's own origin"
        assert url.startswith("/"), url
    # Nothing else on the page points off the origin either (a CDN, Google Fonts, a badge).
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", response.text), response.text


@pytest.mark.parametrize("path", DOC_PAGES)
async def test_a_docs_pages_assets_answer_with_javascript_css_or_an_image(
    client: httpx.AsyncClient, path: str
):
    _, page = await _page(client, path)
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}

    assets = [url for url in page.urls if url != "/openapi.json"]
    assert any(url.endswith(".js") for url in assets), assets
    for url in assets:
        answer = await client.get(url)
        assert answer.status_code == 200, url
        expected = next(kind for suffix, kind in kinds.items() if url.endswith(suffix))
        assert expected in answer.headers["content-type"], (url, answer.headers)
        assert len(answer.content) > 1000, url
    openapi = await client.get("/openapi.json")
    assert openapi.status_code == 200 and openapi.json()["info"]["title"] == "casedesk"


async def test_swagger_ui_loads_its_stylesheet_and_never_asks_the_online_validator(
    client: httpx.AsyncClient,
):
    _, page = await _page(client, "/docs")

    assert any(url.endswith("swagger-ui.css") for url in page.urls)
    assert '"validatorUrl": null' in page.scripts[0]


@pytest.mark.parametrize("path", DOC_PAGES)
async def test_a_docs_pages_policy_allows_its_own_scripts_and_no_other_origin(
    client: httpx.AsyncClient, path: str
):
    response, page = await _page(client, path)
    policy = dict(
        (directive.split(" ", 1) + [""])[:2]
        for directive in (
            part.strip() for part in response.headers["content-security-policy"].split(";")
        )
    )

    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    scripts = policy["script-src"].split()
    assert "'unsafe-inline'" not in scripts
    for body in page.scripts:  # each inline script runs: the policy names it by its hash
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in scripts
    for directive, sources in policy.items():
        assert "http" not in sources and "*" not in sources, (directive, sources)


async def test_fastapis_cdn_pages_are_not_served_beside_them(client: httpx.AsyncClient):
    for path in DOC_PAGES:
        assert "cdn.jsdelivr.net" not in (await client.get(path)).text
    assert (await client.get("/docs/oauth2-redirect")).status_code == 404
