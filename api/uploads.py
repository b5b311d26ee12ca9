"""Reading uploaded files from a multipart form without ever holding more than the upload
limit, and storing them in the document store.

FastAPI's `UploadFile` parameters would parse the whole body before the route runs, so the
upload routes read the form themselves: a declared `Content-Length` above the limit is refused
before a byte is read, the body stream is cut off once it passes the limit (a chunked upload
has no length to check), and each file part is read in chunks up to the limit.

The ops route and the delivery batch take one `file`; the upload pages behind signed links
take several (`open_upload_form`): each is read, checked and stored one after the other, so
no more than one file's bytes are held at a time, and a file past the limit is marked as
such without stopping the others."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message, Receive

from api.errors import Problem
from core.documents import DocumentStore
from core.uploads import UploadRejected, validate_upload
from schemas.documents import DocumentKind, DocumentRef

# Room for the boundaries, part headers and the small text fields around the file.
FORM_OVERHEAD = 16 * 1024
_CHUNK = 64 * 1024


class UploadTooLarge(Exception):
    """The body or the file is larger than the upload limit (nothing was stored)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the file is larger than {max_bytes} bytes")
        self.max_bytes = max_bytes
        self.reason = f"the file is larger than the {max_bytes}-byte limit"


class _BodyTooLarge(Exception):
    pass


@dataclass
class UploadForm:
    """The text fields of the form and the one file (None when no file part was sent)."""

    fields: Mapping[str, str] = field(default_factory=dict)
    data: bytes | None = None
    filename: str | None = None


class SentFile:
    """One file part of a multi-file form, read on demand (the form is open meanwhile)."""

    def __init__(self, upload: UploadFile, max_bytes: int) -> None:
        self._upload = upload
        self._max_bytes = max_bytes
        self.filename = upload.filename or None

    async def read(self) -> bytes:
        """The file's bytes; UploadTooLarge beyond the limit (read no further)."""
        return await _read_capped(self._upload, self._max_bytes)


@dataclass
class UploadParts:
    """The text fields of a multi-file form and its file parts, in the order sent (an
    empty file input's part, with neither a name nor bytes, is left out)."""

    fields: Mapping[str, str]
    files: list[SentFile]


def _capped(receive: Receive, limit: int) -> Receive:
    received = 0

    async def capped_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge
        return message

    return capped_receive


async def _read_capped(upload: UploadFile, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise UploadTooLarge(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload_form(request: Request, *, max_bytes: int) -> UploadForm:
    """The form of a multipart upload with one `file`; UploadTooLarge beyond `max_bytes`.

    A malformed multipart body is Starlette's 400 (HTTPException); a body that is not
    multipart reads as an empty form (the route then says which fields are missing)."""
    limit = max_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise UploadTooLarge(max_bytes)
    capped = Request(request.scope, _capped(request.receive, limit))
    try:
        form = await capped.form(max_files=1, max_fields=10, max_part_size=FORM_OVERHEAD)
    except _BodyTooLarge:
        raise UploadTooLarge(max_bytes) from None
    try:
        result = UploadForm(
            fields={k: v.strip() for k, v in form.multi_items() if isinstance(v, str)}
        )
        file = form.get("file")
        if isinstance(file, UploadFile):
            result.data = await _read_capped(file, max_bytes)
            result.filename = file.filename
        return result
    finally:
        await form.close()


@asynccontextmanager
async def open_upload_form(
    request: Request, *, max_bytes: int, max_files: int, max_field_bytes: int
) -> AsyncIterator[UploadParts]:
    """The form of a multipart upload with up to `max_files` `file` parts, each up to
    `max_bytes`, and text fields up to `max_field_bytes` each; open while the block runs.

    The whole body may be up to `max_files` files plus the fields: beyond it, UploadTooLarge
    before a byte is read (a declared length) or once the stream passes it. Up to four times
    `max_files` parts are parsed, so that the caller can say how many were sent and refuse
    them itself; more, a field past its size or a malformed body is Starlette's 400
    (HTTPException)."""
    limit = max_files * max_bytes + max_field_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise UploadTooLarge(max_bytes)
    capped = Request(request.scope, _capped(request.receive, limit))
    try:
        form = await capped.form(
            max_files=4 * max_files, max_fields=10, max_part_size=max_field_bytes
        )
    except _BodyTooLarge:
        raise UploadTooLarge(max_bytes) from None
    try:
        files = [
            SentFile(value, max_bytes)
            for key, value in form.multi_items()
            if key == "file" and isinstance(value, UploadFile) and (value.filename or value.size)
        ]
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        yield UploadParts(fields=fields, files=files)
    finally:
        await form.close()


def too_large_problem(err: UploadTooLarge) -> Problem:
    return Problem(413, f"file: {err.reason}", errors=[{"field": "file", "message": err.reason}])


async def store_upload(
    store: DocumentStore,
    data: bytes,
    *,
    kind: DocumentKind,
    filename: str | None,
    max_bytes: int,
    held: Iterable[Mapping[str, Any]] = (),
) -> DocumentRef | None:
    """Check the bytes for `kind` (images re-encoded, PDFs parsed: in a thread) and store
    what is kept, unless the case already holds the same document for the same item
    (`held`: its listed documents, by kind and SHA-256): then nothing is stored and the
    answer is None. UploadRejected names the field and says why."""
    checked = await run_in_threadpool(
        validate_upload, data, None, filename, kind=kind, max_bytes=max_bytes
    )
    digest = checked.sha256
    if any(doc.get("kind") == kind.value and doc.get("sha256") == digest for doc in held):
        return None
    return await run_in_threadpool(store.put_validated, checked, kind=kind)


__all__ = [
    "SentFile",
    "UploadForm",
    "UploadParts",
    "UploadRejected",
    "UploadTooLarge",
    "open_upload_form",
    "read_upload_form",
    "store_upload",
    "too_large_problem",
]
