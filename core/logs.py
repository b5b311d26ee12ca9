"""Log lines as text (the default) or, with `CASEDESK_LOG_FORMAT=json`, one JSON object per
line (python-json-logger): `timestamp` (UTC, ISO 8601), `level`, `logger`, `message`, and
`case_id`, `workflow_id`, `run_id` on every line that has them.

Where the ids come from: activity lines (`activity.logger`) carry the activity's workflow in
`temporal_activity`, workflow lines (`workflow.logger`) carry `temporal_workflow` (both set by
the SDK); API lines logged while a `/cases/{case_id}` route (or an opening) runs carry the
case from `CASE_ID`. A case's id is its workflow id (`failed-delivery-S-1`, ...), so a line
about a case workflow gets `case_id` too; the invoicing and report runs are not cases.

Nothing here adds message text: what a line says is what its caller logged, and callers log
ids, types, statuses and counts, never personal data or secrets (`api.access_log` redacts the
customers' link tokens from the access log)."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from temporalio import activity, workflow

from core.settings import Settings
from schemas.enums import CaseType

CASE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "casedesk_case_id", default=None
)
"""The case an API request is about (set by `api.deps.current_case` and by an opening)."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"
RENAMED = {"levelname": "level", "name": "logger"}
# uvicorn's loggers keep their own handlers (and do not propagate): their lines get the same
# format as everything else.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_CASE_PREFIXES = tuple(f"{case_type.workflow_id_prefix}-" for case_type in CaseType)


def is_case_id(workflow_id: str) -> bool:
    return workflow_id.startswith(_CASE_PREFIXES)


class CaseIds(logging.Filter):
    """Puts `case_id`, `workflow_id` and `run_id` on the records that have them."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        workflow_id = run_id = None
        if isinstance(details := fields.get("temporal_activity"), Mapping):
            workflow_id, run_id = details.get("workflow_id"), details.get("workflow_run_id")
        elif isinstance(details := fields.get("temporal_workflow"), Mapping):
            workflow_id, run_id = details.get("workflow_id"), details.get("run_id")
        if workflow_id:
            fields.setdefault("workflow_id", workflow_id)
            if is_case_id(workflow_id):
                fields.setdefault("case_id", workflow_id)
        if run_id:
            fields.setdefault("run_id", run_id)
        if "case_id" not in fields and (case_id := CASE_ID.get()):
            fields["case_id"] = case_id
        return True


def json_formatter() -> logging.Formatter:
    # uvicorn's `color_message` is its message again, with terminal colour codes; Core's
    # forwarded `temporal_log` is the whole Rust record, its fields already in the message.
    return JsonFormatter(
        JSON_FIELDS,
        rename_fields=RENAMED,
        timestamp=True,
        reserved_attrs=[*RESERVED_ATTRS, "color_message", "temporal_log"],
    )


def configure_logging(settings: Settings, *, level: int | None = None) -> None:
    """Formats every line of the process (root and uvicorn's handlers) per the settings.

    `level`: the process owns the root logger (the worker): without handlers it gets one on
    stderr at that level, in text as ever. The API passes none: uvicorn owns the logging
    there, and text leaves it as it is. JSON puts the formatter and the id filter on every
    handler of the root and uvicorn's loggers, first giving the root one on stderr if it has
    none (where Python's last-resort handler wrote). Idempotent."""
    root = logging.getLogger()
    if level is not None and not root.handlers:
        logging.basicConfig(level=level, format=TEXT_FORMAT)
    if settings.log_format != "json":
        return
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    # The ids are fields of their own: the SDK's "({'workflow_id': ...})" suffix would repeat them.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    for logger in (root, *(logging.getLogger(name) for name in UVICORN_LOGGERS)):
        for handler in logger.handlers:
            use_json(handler)


def use_json(handler: logging.Handler) -> None:
    handler.setFormatter(json_formatter())
    if not any(isinstance(f, CaseIds) for f in handler.filters):
        handler.addFilter(CaseIds())
