"""The document store: claim evidence lives here, outside the workflow, which keeps only the
`DocumentRef` (id + checksum).

`LocalDocumentStore` is the embedded default: one file per document under
`root/<first two hex digits of the id>/<id>`, written atomically (temp file + `os.replace`)
with mode 0600. The path is built from the generated id only, never from the client's file
name. Calls are blocking file I/O: run them in a sync activity or a thread
(`asyncio.to_thread`, `fastapi.concurrency.run_in_threadpool`).

Evidence goes in through `put`, which checks the bytes against what the kind accepts; the
claim packages casedesk compiles itself go in through `put_package` (ZIP only, never offered
to uploaders).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.uploads import (
    CSV,
    DEFAULT_MAX_UPLOAD_BYTES,
    PDF,
    PNG,
    ZIP,
    ZIP_MAGIC,
    UploadRejected,
    ValidatedUpload,
    sanitize_filename,
    validate_upload,
)
from schemas.documents import DocumentKind, DocumentRef

if TYPE_CHECKING:
    from core.settings import Settings


GENERATED_TYPES: dict[DocumentKind, str] = {
    DocumentKind.INVOICE: PDF,
    DocumentKind.INVOICE_LINES: CSV,
    DocumentKind.REPORT_CHART: PNG,
    DocumentKind.REPORT_PDF: PDF,
    DocumentKind.REPORT_ROWS: CSV,
}
"""What each kind of document casedesk renders itself is."""


class DocumentNotFound(LookupError):
    """No document is stored under that id (or the id is not one the store could issue)."""


class DocumentStore(Protocol):
    def put(self, data: bytes, *, kind: DocumentKind, declared_name: str | None) -> DocumentRef:
        """Validate `data` by content for `kind` (UploadRejected if refused) and store it."""
        ...

    def put_validated(self, upload: ValidatedUpload, *, kind: DocumentKind) -> DocumentRef:
        """Store what `validate_upload` kept of an upload (its checks already passed)."""
        ...

    def put_package(self, data: bytes, *, name: str) -> DocumentRef:
        """Store a compiled claim package: a ZIP (by its bytes), kind OTHER, labelled `name`."""
        ...

    def put_generated(
        self, data: bytes, *, kind: DocumentKind, content_type: str, name: str
    ) -> DocumentRef:
        """Store a document casedesk rendered itself (an invoice's PDF or CSV, a report's
        charts, PDF and CSV), of a type `GENERATED_TYPES` allows, labelled `name`."""
        ...

    def get(self, ref_id: str) -> bytes:
        """The stored bytes; DocumentNotFound if there are none."""
        ...


def _canonical_id(ref_id: str) -> str:
    """Only ids this store issues can reach the file system (no `..`, no separators)."""
    try:
        parsed = uuid.UUID(ref_id)
    except (ValueError, TypeError, AttributeError):
        raise DocumentNotFound(f"no document {ref_id!r}") from None
    if str(parsed) != ref_id:
        raise DocumentNotFound(f"no document {ref_id!r}")
    return ref_id


class LocalDocumentStore:
    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> None:
        self._root = Path(root)
        self._max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalDocumentStore:
        return cls(settings.resolved_documents_dir, max_bytes=settings.max_upload_bytes)

    def path_for(self, ref_id: str) -> Path:
        ref_id = _canonical_id(ref_id)
        return self._root / ref_id[:2] / ref_id

    def put(self, data: bytes, *, kind: DocumentKind, declared_name: str | None) -> DocumentRef:
        upload = validate_upload(data, None, declared_name, kind=kind, max_bytes=self._max_bytes)
        return self.put_validated(upload, kind=kind)

    def put_validated(self, upload: ValidatedUpload, *, kind: DocumentKind) -> DocumentRef:
        return self._store(
            upload.data, kind=kind, content_type=upload.content_type, label=upload.sanitized_name
        )

    def put_package(self, data: bytes, *, name: str) -> DocumentRef:
        # No size limit here: casedesk built the package, and each document in it passed the
        # upload limit when it was stored.
        if not data.startswith(ZIP_MAGIC):
            raise UploadRejected("package", "a claim package must be a ZIP archive")
        return self._store(
            data, kind=DocumentKind.OTHER, content_type=ZIP, label=sanitize_filename(name)
        )

    def put_generated(
        self, data: bytes, *, kind: DocumentKind, content_type: str, name: str
    ) -> DocumentRef:
        # Rendered here (no upload limit applies), but still checked: a PDF is one by its
        # bytes, and only the kinds casedesk renders are stored this way.
        if GENERATED_TYPES.get(kind) != content_type:
            raise UploadRejected(
                "document", f"casedesk does not render {kind.value} as {content_type}"
            )
        if (
            not data
            or (content_type == PDF and not data.startswith(b"%PDF-"))
            or (content_type == PNG and not data.startswith(b"\x89PNG\r\n\x1a\n"))
        ):
            raise UploadRejected("document", f"not a {content_type} document")
        return self._store(
            data, kind=kind, content_type=content_type, label=sanitize_filename(name)
        )

    def _store(
        self, data: bytes, *, kind: DocumentKind, content_type: str, label: str | None
    ) -> DocumentRef:
        ref_id = str(uuid.uuid4())
        path = self.path_for(ref_id)
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        # mkstemp creates the file 0600 whatever the umask; a reader never sees half a file.
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return DocumentRef(
            id=ref_id,
            kind=kind,
            sha256=hashlib.sha256(data).hexdigest(),
            content_type=content_type,
            size_bytes=len(data),
            original_name_sanitized=label,
            stored_at=datetime.now(UTC),
        )

    def get(self, ref_id: str) -> bytes:
        try:
            return self.path_for(ref_id).read_bytes()
        except FileNotFoundError:
            raise DocumentNotFound(f"no document {ref_id!r}") from None
