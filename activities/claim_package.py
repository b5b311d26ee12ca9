"""The claim package: one ZIP the carrier's or insurer's claims desk can read without casedesk.

    cover.html, cover.txt   claim summary, timeline, checklist (present with checksum, or
                            missing with ops' reason)
    manifest.json           every document's id, kind, path, sha256 and size
    documents/<kind>/<n>-<name>.<ext>

The extension comes from the detected content type, the name from the sanitized label (or the
kind), so nothing the uploader chose decides a path. The same input gives the same bytes
(fixed timestamps, permissions and order): a retried activity compiles an identical package.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from activities.documents import check_integrity
from activities.rendering import human_datetime
from core.uploads import download_name
from schemas.documents import CLAIM_CHECKLISTS, ClaimPackageInput, DocumentKind, DocumentRef

DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
NO_REASON = "No reason given."
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP entry can carry


@dataclass(frozen=True)
class PackagedDocument:
    ref: DocumentRef
    data: bytes
    path: str


def claim_package_templates(template_dir: Path = DEFAULT_TEMPLATE_DIR) -> jinja2.Environment:
    """Built once in the worker; HTML is autoescaped (descriptions and names are untrusted)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["human_datetime"] = human_datetime
    return env


def _kind_order(summary: ClaimPackageInput) -> list[DocumentKind]:
    checklist = CLAIM_CHECKLISTS[summary.claim_type]
    return [*checklist, *(kind for kind in DocumentKind if kind not in checklist)]


def _missing_reason(summary: ClaimPackageInput, kind: DocumentKind) -> str:
    return summary.missing_reasons.get(kind, "").strip() or NO_REASON


def _place(
    summary: ClaimPackageInput, documents: list[tuple[DocumentRef, bytes]]
) -> list[PackagedDocument]:
    """Documents in checklist order, then by time stored; numbered within their kind."""
    unique = {ref.id: (ref, data) for ref, data in documents}
    order = {kind: index for index, kind in enumerate(_kind_order(summary))}
    ranked = sorted(unique.values(), key=lambda d: (order[d[0].kind], d[0].stored_at, d[0].id))
    placed: list[PackagedDocument] = []
    counts: dict[DocumentKind, int] = {}
    for ref, data in ranked:
        check_integrity(ref, data)
        counts[ref.kind] = counts.get(ref.kind, 0) + 1
        name = f"{counts[ref.kind]}-{download_name(ref)}"
        placed.append(PackagedDocument(ref, data, f"documents/{ref.kind.value}/{name}"))
    return placed


def _checklist(summary: ClaimPackageInput, placed: list[PackagedDocument]) -> list[dict[str, Any]]:
    rows = []
    for kind in _kind_order(summary):
        present = [p for p in placed if p.ref.kind is kind]
        required = kind in CLAIM_CHECKLISTS[summary.claim_type]
        if not (present or required):
            continue
        rows.append(
            {
                "kind": kind.value,
                "label": kind.description,
                "required": required,
                "documents": [{"path": p.path, "sha256": p.ref.sha256} for p in present],
                "missing_reason": None if present else _missing_reason(summary, kind),
            }
        )
    return rows


def _manifest(summary: ClaimPackageInput, placed: list[PackagedDocument]) -> bytes:
    checklist = CLAIM_CHECKLISTS[summary.claim_type]
    manifest = {
        "case_id": summary.case_id,
        "shipment_id": summary.shipment_id,
        "claim_type": summary.claim_type.value,
        "compiled_at": summary.compiled_at.isoformat(),
        "documents": [
            {
                "id": p.ref.id,
                "kind": p.ref.kind.value,
                "path": p.path,
                "sha256": p.ref.sha256,
                "size_bytes": p.ref.size_bytes,
                "content_type": p.ref.content_type,
            }
            for p in placed
        ],
        "missing": [
            {"kind": kind.value, "reason": _missing_reason(summary, kind)}
            for kind in checklist
            if not any(p.ref.kind is kind for p in placed)
        ],
    }
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _write(archive: zipfile.ZipFile, path: str, data: bytes) -> None:
    info = zipfile.ZipInfo(path, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever the platform: part of the bytes
    info.external_attr = 0o100644 << 16
    archive.writestr(info, data, compresslevel=6)


def build_claim_package(
    summary: ClaimPackageInput,
    documents: list[tuple[DocumentRef, bytes]],
    *,
    templates: jinja2.Environment | None = None,
) -> bytes:
    """The ZIP for `summary` with `documents` (each checked against its checksum first)."""
    env = templates or claim_package_templates()
    placed = _place(summary, documents)
    context = {
        "claim": summary,
        "claim_type_label": summary.claim_type.description,
        "timeline": sorted(summary.timeline, key=lambda e: (e.at, e.seq)),
        "checklist": _checklist(summary, placed),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _write(
            archive, "cover.html", env.get_template("claims/cover.html").render(context).encode()
        )
        _write(archive, "cover.txt", env.get_template("claims/cover.txt").render(context).encode())
        _write(archive, "manifest.json", _manifest(summary, placed))
        for document in placed:
            _write(archive, document.path, document.data)
    return buffer.getvalue()
