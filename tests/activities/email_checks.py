"""Checks every email template family shares: its three files exist, and its HTML keeps to
the base layout's phone-width column."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from activities.rendering import DEFAULT_TEMPLATE_DIR


def missing_files(templates: Iterable[str]) -> list[str]:
    """The `.subject.txt`, `.txt` and `.html` files of `templates` that do not exist."""
    root = Path(DEFAULT_TEMPLATE_DIR)
    return [
        f"{name}{suffix}"
        for name in templates
        for suffix in (".subject.txt", ".txt", ".html")
        if not (root / f"{name}{suffix}").is_file()
    ]


def template_body(html: str) -> str:
    """The template's own part of the HTML: between the greeting and the footer."""
    return html[html.index("Hello ") : html.index("This is an automated message")]


def assert_phone_width(html: str) -> str:
    """The base layout is one 600px column that shrinks to the screen (`max-width:600px;
    width:100%`); a template's own HTML adds nothing with a fixed width that could push it
    wider, no unbreakable lines, no layout tables, and no text smaller than the footer's.
    Returns the template's own HTML for further checks."""
    own = template_body(html)
    assert 'style="max-width:600px;width:100%;' in html
    assert not re.search(r"width\s*[:=]\s*\"?\d+(px)?(?![\d%])", own), "fixed width in body"
    assert re.findall(r'width="([^"]*)"', own) in ([], ["100%"])
    assert "nowrap" not in own and "<img" not in own
    assert all('role="presentation"' in table for table in re.findall(r"<table[^>]*>", own))
    assert all(int(size) >= 12 for size in re.findall(r"font-size:(\d+)px", own))
    return own
