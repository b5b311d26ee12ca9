"""Reading a batch of delivery records: a JSON list, a CSV body or a CSV file in a multipart
form, each record parsed on its own so that every bad one is reported with its row number.

What makes the whole batch unreadable (no body, not JSON, not UTF-8, a CSV header that lacks
or adds columns, too many records) is a problem for the whole request; what is wrong with one
record is a `RowError` on that row, and the other rows are still read.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from api.errors import Problem, invalid
from api.uploads import UploadTooLarge, read_upload_form
from schemas.deliveries import (
    COLUMNS,
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    OPTIONAL_COLUMNS,
    DeliveryRecordIn,
    RowError,
)

CSV_TYPES = ("text/csv", "application/csv")
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
_WHOLE_NUMBER = re.compile(r"\d{1,6}")
_ALL_COLUMNS = COLUMNS + OPTIONAL_COLUMNS
_MAX_ROW_ERRORS = len(_ALL_COLUMNS) + 2  # a row with a thousand unknown fields says so ten times
_PATTERN_MESSAGES = {
    "shipment_id": "letters, digits, '.', '_' and '-' only, 1 to 64 characters",
    "client_id": "letters, digits, '.', '_' and '-' only, 1 to 64 characters",
    "depot_id": "letters, digits, '.', '_' and '-' only, 1 to 64 characters",
    "zone": "letters, digits, spaces, '.', '_', '/' and '-', starting and ending with a "
    "letter or digit, at most 32 characters",
}


@dataclass
class ParsedRow:
    """One data row: the record when it parsed, else its errors (`line`: CSV only)."""

    row: int
    record: DeliveryRecordIn | None
    errors: list[RowError] = field(default_factory=list)
    line: int | None = None

    def error(self, field_name: str, message: str) -> RowError:
        return RowError(row=self.row, field=field_name, message=message, line=self.line)


def too_many_records(count: str) -> Problem:
    return Problem(
        413,
        f"a batch holds at most {MAX_BATCH_RECORDS} records; this one has {count}: split it",
        errors=[{"field": "body", "message": f"more than {MAX_BATCH_RECORDS} records"}],
    )


def _too_large() -> Problem:
    message = f"the body is larger than {MAX_BATCH_BYTES} bytes"
    return Problem(
        413, f"{message}: split the batch", errors=[{"field": "body", "message": message}]
    )


# --- the body -----------------------------------------------------------------------------


async def _read_body(request: Request) -> bytes:
    """The whole body, refused (413) past MAX_BATCH_BYTES without reading further."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > MAX_BATCH_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BATCH_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request) -> tuple[str, dict[str, str]]:
    raw = request.headers.get("content-type", "")
    media, _, rest = raw.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            params[name.strip().lower()] = value.strip().strip('"').lower()
    return media.strip().lower(), params


async def read_batch(request: Request, *, now: datetime) -> list[ParsedRow]:
    """The request's records, by its content type: `application/json` (a list of objects),
    `text/csv` (a header row, then one record per row) or `multipart/form-data` (a CSV
    `file`). Anything else is a 415."""
    media, params = _media_type(request)
    if media == "application/json":
        return parse_json(await _read_body(request), now=now)
    if media in CSV_TYPES:
        charset = params.get("charset", "utf-8")
        if charset not in ("utf-8", "utf8", "us-ascii"):
            raise Problem(415, f"a CSV body is UTF-8 text; charset={charset} is not accepted")
        return parse_csv(await _read_body(request), now=now)
    if media == "multipart/form-data":
        try:
            form = await read_upload_form(request, max_bytes=MAX_BATCH_BYTES)
        except UploadTooLarge:
            raise _too_large() from None
        if form.data is None:
            raise invalid("file", "field required: attach the CSV file as `file`")
        return parse_csv(form.data, now=now)
    shown = media or "none"
    raise Problem(
        415,
        f"content type {shown!r} is not accepted: send application/json (a list of "
        "records), text/csv or multipart/form-data with a CSV `file`",
    )


# --- one record -----------------------------------------------------------------------------


def _message(error: Any) -> str:
    loc = error.get("loc", ())
    name = str(loc[0]) if loc else ""
    kind = error.get("type", "")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return f"unknown field; the fields are: {', '.join(_ALL_COLUMNS)}"
    if kind == "string_pattern_mismatch" and name in _PATTERN_MESSAGES:
        return _PATTERN_MESSAGES[name]
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def _validate(parsed: ParsedRow, data: dict[str, Any], now: datetime) -> ParsedRow:
    """The record from `data`; every field's first error on the row otherwise (fields that
    already have an error, e.g. a CSV cell that did not convert, keep only that one)."""
    seen = {error.field for error in parsed.errors}
    try:
        record = DeliveryRecordIn.model_validate(
            {k: v for k, v in data.items() if k not in seen}, context={"now": now}
        )
    except ValidationError as err:
        for error in err.errors():
            loc = error.get("loc", ())
            name = str(loc[0])[:64] if loc else "row"
            if name not in seen:  # one message per field: the first says enough
                seen.add(name)
                parsed.errors.append(parsed.error(name, _message(error)))
            if len(parsed.errors) >= _MAX_ROW_ERRORS:
                break
        return parsed
    if not parsed.errors:
        parsed.record = record
    return parsed


# --- JSON ---------------------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_json(body: bytes, *, now: datetime) -> list[ParsedRow]:
    if not body.strip():
        raise invalid("body", "the body is empty: send a JSON list of records")
    try:
        # Decimals, not floats: no float is ever made from the input (a number where the
        # record wants a text or an integer is then refused by the record's strict types).
        data = json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
    except RecursionError:
        raise invalid("body", "not valid JSON: nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        reason = err.msg if isinstance(err, json.JSONDecodeError) else "not UTF-8 JSON text"
        where = (
            f" (line {err.lineno}, column {err.colno})"
            if isinstance(err, json.JSONDecodeError)
            else ""
        )
        raise invalid("body", f"not valid JSON: {reason}{where}") from None
    if not isinstance(data, list):
        raise invalid("body", "a batch is a JSON list of records: [{...}, ...]")
    if len(data) > MAX_BATCH_RECORDS:
        raise too_many_records(str(len(data)))
    rows: list[ParsedRow] = []
    for index, item in enumerate(data, start=1):
        parsed = ParsedRow(row=index, record=None)
        if isinstance(item, dict):
            rows.append(_validate(parsed, item, now))
        else:
            parsed.errors.append(parsed.error("row", "a record is a JSON object"))
            rows.append(parsed)
    return rows


# --- CSV ----------------------------------------------------------------------------------


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise invalid(
            "body", f"the CSV is not UTF-8 text (byte {err.start + 1} is not valid UTF-8)"
        ) from None


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on; a malformed file is a 422 at its line."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as err:
        raise invalid("body", f"the CSV is malformed at line {reader.line_num}: {err}") from None


def _header(cells: list[str]) -> list[str]:
    names = [cell.strip().lower() for cell in cells]
    problems: list[str] = []
    missing = [name for name in COLUMNS if name not in names]
    if missing:
        problems.append(f"the header row lacks {', '.join(missing)}")
    unknown = sorted({name for name in names if name not in _ALL_COLUMNS})
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:10])
        problems.append(f"unknown column(s) {shown}")
    repeated = sorted({name for name in names if names.count(name) > 1 and name in _ALL_COLUMNS})
    if repeated:
        problems.append(f"column(s) named twice: {', '.join(repeated)}")
    if problems:
        hint = (
            f"a comma-separated header row naming exactly: {', '.join(COLUMNS)} (and, "
            f"optionally, {', '.join(OPTIONAL_COLUMNS)})"
        )
        raise invalid("header", f"{'; '.join(problems)} ({hint})")
    return names


def _cell(name: str, raw: str, parsed: ParsedRow) -> Any:
    """A CSV cell as the record's value: empty is absent, a number or boolean is parsed
    (strictly: `attempt_number` digits only, `residential` true/false/1/0)."""
    value = raw.strip()
    if value == "":
        return None
    if name == "attempt_number":
        if not _WHOLE_NUMBER.fullmatch(value):
            parsed.errors.append(parsed.error(name, f"{value[:20]!r} is not a whole number"))
            return None
        return int(value)
    if name == "residential":
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        parsed.errors.append(
            parsed.error(name, f"{value[:20]!r} is not true, false, 1 or 0 (or empty)")
        )
        return None
    return value


def parse_csv(body: bytes, *, now: datetime) -> list[ParsedRow]:
    text = _decode(body)
    if not text.strip():
        raise invalid("body", "the body is empty: send a CSV with a header row")
    records = _records(text)
    header: list[str] | None = None
    rows: list[ParsedRow] = []
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, or a row of empty cells
        if header is None:
            header = _header(cells)
            continue
        if len(rows) == MAX_BATCH_RECORDS:
            raise too_many_records(f"more than {MAX_BATCH_RECORDS}")
        parsed = ParsedRow(row=len(rows) + 1, record=None, line=line)
        rows.append(parsed)
        if len(cells) != len(header):
            message = f"{len(cells)} cells where the header has {len(header)} columns"
            parsed.errors.append(parsed.error("row", message))
            continue
        data = {name: _cell(name, raw, parsed) for name, raw in zip(header, cells, strict=True)}
        _validate(parsed, {k: v for k, v in data.items() if v is not None}, now)
    return rows
