"""Every email template in Debian's chromium, with realistic values and a signed link as long
as the real ones: on a 360px phone nothing scrolls sideways, and on a wide screen the message
is one column of at most 600px."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from activities.rendering import EmailRenderer
from tests.activities.test_email_layout import REALISTIC, TEMPLATES

pytestmark = pytest.mark.browser


async def test_no_email_scrolls_sideways_on_a_phone_nor_grows_past_600px(chromium: Browser):
    renderer = EmailRenderer()
    phone = await chromium.new_page(viewport={"width": 360, "height": 740})
    wide = await chromium.new_page(viewport={"width": 1280, "height": 900})
    too_wide: list[str] = []
    for template in TEMPLATES:
        html = renderer.render(template, dict(REALISTIC)).html
        await phone.set_content(html)
        scroll = await phone.evaluate("document.documentElement.scrollWidth")
        if scroll > 360:
            too_wide.append(f"{template}: {scroll}px wide on a 360px screen")
        await wide.set_content(html)
        column = await wide.evaluate(
            "Math.max(...[...document.querySelectorAll('table')].slice(1)"
            ".map(t => t.getBoundingClientRect().width))"
        )
        if column > 600:
            too_wide.append(f"{template}: a {column}px column")
    assert not too_wide, "\n".join(too_wide)
