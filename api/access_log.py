"""Signed links never reach the logs: the token of every `/r/{token}` path is redacted (and
so is the free-text search of `GET /cases?q=`).

A customer's link is a bearer credential (whoever has it acts as the customer), and uvicorn's
access log writes each request's full path, so `install_log_redaction` adds a filter to
uvicorn's access logger and to our own (`casedesk.api`, whose error lines name the path). It is
installed by `create_app`, which runs after uvicorn has configured its logging, however the
API is started (`make run`, the image, a test)."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "…redacted…"
_LINK = re.compile(r"(/r/)[^\s?#\"']+")
_SEARCH = re.compile(r"([?&]q=)[^&#\s\"']*")
LOGGERS = ("uvicorn.access", "casedesk.api")


def redact(text: str) -> str:
    """`text` with every `/r/<token>` path's token and every free-text search (`?q=`, which
    may be a customer's name or email) replaced (the rest is kept)."""
    return _SEARCH.sub(rf"\g<1>{REDACTED}", _LINK.sub(rf"\g<1>{REDACTED}", text))


class RedactLinkTokens(logging.Filter):
    """Rewrites a record's message and string arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted(value) for key, value in record.args.items()}
        return True


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def install_log_redaction() -> None:
    """Idempotent: one filter per logger, however many apps are created."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactLinkTokens) for f in logger.filters):
            logger.addFilter(RedactLinkTokens())
