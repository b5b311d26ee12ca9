"""Reading stored documents back inside an activity: the bytes must still be the ones the
workflow's `DocumentRef` was issued for, and a document that is gone is a permanent failure
(retrying will not bring it back; a person has to re-upload it)."""

from __future__ import annotations

import asyncio
import hashlib

from temporalio.exceptions import ApplicationError

from activities.errors import DOCUMENT_INTEGRITY, DOCUMENT_MISSING
from core.documents import DocumentNotFound, DocumentStore
from schemas.documents import DocumentRef


def check_integrity(ref: DocumentRef, data: bytes) -> None:
    """DocumentIntegrity (non-retryable) unless `data` is what `ref` was stored as."""
    if len(data) != ref.size_bytes or hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ApplicationError(
            f"document {ref.id} ({ref.kind.value}) does not match its checksum",
            type=DOCUMENT_INTEGRITY,
            non_retryable=True,
        )


async def load_document(store: DocumentStore | None, ref: DocumentRef) -> bytes:
    """The stored bytes of `ref`, checked against its checksum (the file read runs in a
    thread). DocumentMissing or DocumentIntegrity, both non-retryable, otherwise."""
    if store is None:
        raise ApplicationError(
            f"document {ref.id} ({ref.kind.value}) cannot be read: no document store configured",
            type=DOCUMENT_MISSING,
            non_retryable=True,
        )
    try:
        data = await asyncio.to_thread(store.get, ref.id)
    except DocumentNotFound:
        raise ApplicationError(
            f"document {ref.id} ({ref.kind.value}) is not in the document store",
            type=DOCUMENT_MISSING,
            non_retryable=True,
        ) from None
    check_integrity(ref, data)
    return data
