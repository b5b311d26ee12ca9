"""`/docs` and `/redoc` in Debian's chromium: both render from the app's own assets, nothing
reaches another origin (ReDoc's footer logo names Redocly's CDN: the page's policy refuses
it before it is fetched, and ReDoc then leaves the logo out), and Swagger UI's "Try it out"
starts from the demo data's example."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, ConsoleMessage, Page

from api.main import create_app
from core.settings import Settings

pytestmark = pytest.mark.browser


@pytest.fixture
async def docs_base(tmp_path: Path) -> AsyncIterator[str]:
    """The app on a local port: the docs pages need neither Temporal nor a database."""
    app = create_app(Settings(_env_file=None, environment="test", data_dir=tmp_path))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


class Traffic:
    """What a page asked for, and which of those requests the browser refused."""

    def __init__(self, page: Page) -> None:
        self.requests: list[str] = []
        self.refused: set[str] = set()
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message: ConsoleMessage) -> None:
        refused = re.match(
            r"Loading the \w+ '([^']+)' violates .*Content Security Policy", message.text
        )
        if refused:
            self.refused.add(refused.group(1))
        elif message.type == "error":
            self.errors.append(message.text)

    def assert_only_from(self, base: str) -> None:
        elsewhere = [
            url
            for url in self.requests
            if not url.startswith((f"{base}/", f"blob:{base}/", "data:"))
        ]
        assert set(elsewhere) <= self.refused, f"fetched from elsewhere: {elsewhere}"
        assert not self.errors, self.errors


async def test_swagger_ui_renders_offline_and_try_it_out_starts_from_the_demo_data(
    chromium: Browser, docs_base: str
):
    page = await chromium.new_page()
    traffic = Traffic(page)
    await page.goto(f"{docs_base}/docs")
    title = page.locator(".swagger-ui .info .title")
    await title.wait_for(timeout=20_000)
    assert "casedesk" in await title.inner_text()

    path = page.locator('.opblock-summary-path[data-path="/cases/failed-deliveries"]')
    await path.first.click()
    await page.locator("button.try-out__btn").first.click()
    body = json.loads(await page.locator("textarea.body-param__text").first.input_value())

    assert body["client_id"] == "demo-shop" and body["driver_id"] == "driver-001"
    assert body["customer"]["email"].endswith("@example.com")
    traffic.assert_only_from(docs_base)


async def test_redoc_renders_offline(chromium: Browser, docs_base: str):
    page = await chromium.new_page()
    traffic = Traffic(page)
    await page.goto(f"{docs_base}/redoc")
    heading = page.locator("h1").first
    await heading.wait_for(timeout=20_000)

    assert "casedesk" in await heading.inner_text()
    operation = page.locator("h2", has_text="Open a failed-delivery case")
    await operation.first.wait_for(timeout=5_000)
    traffic.assert_only_from(docs_base)
