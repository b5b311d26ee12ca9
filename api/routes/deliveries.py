"""`POST /deliveries`: the routing system's stop outcomes in, as a JSON list or a CSV file.

The records are what invoicing prices: one row per (shipment, attempt), shared with the failed
attempts the failed-delivery cases record. Reading is `api.delivery_batch`, recording
`api.delivery_ingest`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.delivery_batch import read_batch
from api.delivery_ingest import record_deliveries
from api.deps import Now, OpsKey, SessionDep
from schemas.deliveries import (
    COLUMNS,
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    DeliveryBatchResult,
    DeliveryRecordIn,
)

router = APIRouter(tags=["deliveries"])


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` put in place (an OpenAPI request body written
    by hand cannot point into a `$defs` of its own)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_CSV_SCHEMA = {
    "type": "string",
    "description": "UTF-8, comma-separated, a header row naming exactly the columns "
    f"{', '.join(COLUMNS)} (any order), then one record per row. Empty cells are absent "
    "values (zone, residential); residential is true/false/1/0 (any case); attempted_at is "
    "ISO 8601 with its offset.",
    "example": "shipment_id,client_id,depot_id,attempted_at,outcome,zone,residential,"
    "attempt_number\nSHP-1001,demo-shop,depot-north,2026-11-21T09:30:00Z,delivered,B,true,1\n",
}

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "maxItems": MAX_BATCH_RECORDS,
                    "items": _inlined(DeliveryRecordIn.model_json_schema()),
                }
            },
            "text/csv": {"schema": _CSV_SCHEMA},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


@router.post(
    "/deliveries",
    summary="Record stop outcomes from the routing system",
    description=f"""Up to {MAX_BATCH_RECORDS} records ({MAX_BATCH_BYTES // (1024 * 1024)} MiB)
per batch as `application/json` (a list of objects), `text/csv` or a CSV `file` in
`multipart/form-data`. Idempotent per (shipment_id, attempt_number): a re-sent batch records
nothing new (`new` = 0, all `duplicates`), a record that completes a stored one (a zone or
residential flag it lacked, the confirmation of a failed attempt a failed-delivery case
recorded) is `updated`.

Every bad record is reported with its `row` (1-based, among the data rows: the CSV header
does not count) and `field`: a malformed value, an unknown client or depot, a timestamp more
than 5 minutes ahead or more than 366 days ago, a second record of the same stop with
other facts, or a record that contradicts the stored one (another client, depot, outcome, time
or zone). By default the batch is all or nothing: any bad record and nothing is recorded (422,
problem+json listing the errors). With `?partial=true` the good records are recorded and the
bad ones listed (200). More than {MAX_BATCH_RECORDS} records is a 413.""",
    openapi_extra=_BODY,
    responses={
        413: {"description": f"More than {MAX_BATCH_RECORDS} records, or a body too large."},
        415: {"description": "Not JSON, CSV or a multipart form."},
        422: {"description": "A bad record (nothing recorded), or an unreadable body."},
    },
)
async def post_deliveries(
    request: Request,
    session: SessionDep,
    _: OpsKey,
    now: Now,
    partial: Annotated[
        bool, Query(description="Record the good records even when some are refused.")
    ] = False,
) -> DeliveryBatchResult:
    rows = await read_batch(request, now=now)
    return await record_deliveries(session, rows, partial=partial, now=now)
