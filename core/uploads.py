"""Upload checks: what a file really is (by its bytes), whether that is allowed for the
document kind, what of it may be kept, and a file name safe to show.

The client's declared content type and file name are never trusted: the type is detected from
magic bytes, and the name is only kept, sanitized, as a label (never as a path). Then each
type is checked for what it may carry besides its content:

- images are decoded and re-encoded (Pillow; HEIC through pillow-heif, kept as JPEG): what is
  stored is the picture alone, never the uploaded bytes, so a PNG carrying HTML (a
  polyglot) or a photo's metadata (EXIF GPS position, camera serial) never reaches a claim
  package; the EXIF orientation is applied to the pixels first;
- PDFs are parsed (pypdf) and refused when anything reachable from their catalogue runs or
  carries something: JavaScript, an open or page action that launches or submits, embedded
  files or file attachments, rich media, XFA forms; an encrypted PDF cannot be checked and
  is refused too;
- text (an attestation) must be UTF-8 prose: no control characters and no markup anywhere.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PdfReadError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

from schemas.documents import DocumentKind, DocumentRef

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_NAME_LENGTH = 100

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
WEBP = "image/webp"
HEIC = "image/heic"
HEIF = "image/heif"
TEXT = "text/plain"
# Only for the claim packages casedesk compiles itself (`DocumentStore.put_package`): uploads
# never accept archives.
ZIP = "application/zip"
ZIP_MAGIC = b"PK\x03\x04"
# Only for the invoice lines casedesk renders itself (`DocumentStore.put_generated`).
CSV = "text/csv"

IMAGES = frozenset({PNG, JPEG, WEBP, HEIC, HEIF})
EXTENSIONS = {
    PDF: "pdf",
    PNG: "png",
    JPEG: "jpg",
    WEBP: "webp",
    HEIC: "heic",
    HEIF: "heif",
    TEXT: "txt",
    ZIP: "zip",
    CSV: "csv",
}

ALLOWED_CONTENT_TYPES: dict[DocumentKind, frozenset[str]] = {
    kind: frozenset({PDF, *IMAGES}) for kind in DocumentKind
}
ALLOWED_CONTENT_TYPES[DocumentKind.DAMAGE_PHOTOS] = IMAGES
ALLOWED_CONTENT_TYPES[DocumentKind.INVOICE] = frozenset({PDF})
# Never uploaded: casedesk renders an invoice's lines itself (`put_generated`).
ALLOWED_CONTENT_TYPES[DocumentKind.INVOICE_LINES] = frozenset()
# Customers may type their statement; an attestation alone accepts plain text.
ALLOWED_CONTENT_TYPES[DocumentKind.CUSTOMER_ATTESTATION] = frozenset({PDF, TEXT, *IMAGES})

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"heif"}
# Text may hold tabs, line breaks and form feeds; any other control character means binary.
_BINARY_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_WINDOWS_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])$", re.IGNORECASE)
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_SAFE_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,10}$")


class UploadRejected(ValueError):
    """An upload that cannot be stored; `field` names the request field for a 422."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ValidatedUpload:
    content_type: str
    size_bytes: int
    sanitized_name: str | None
    declared_content_type: str | None
    data: bytes
    """What is stored: an image re-encoded, a PDF or a text as sent (once checked)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _iso_bmff_type(data: bytes) -> str | None:
    """HEIC/HEIF: an ISO base media `ftyp` box whose major (or a compatible) brand is HEIF."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(data[0:4], "big")
    if box_size < 16 or box_size > len(data):
        return None
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, box_size - 3, 4)]
    if brands[0] in _HEIC_BRANDS:
        return HEIC
    if brands[0] in _HEIF_BRANDS:
        return HEIC if any(b in _HEIC_BRANDS for b in brands) else HEIF
    return None


# A tag, a comment, a doctype or a processing instruction, wherever it stands (after a
# zero-width character too): a browser or a viewer might render the text as HTML or SVG.
_MARKUP = re.compile(r"<\s*[A-Za-z!/?]")


def _text_type(data: bytes) -> str | None:
    """UTF-8 prose, without markup anywhere."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if _BINARY_TEXT.search(text) or _MARKUP.search(text):
        return None
    return TEXT if text.strip() else None


def _has_markup(data: bytes) -> bool:
    try:
        return _MARKUP.search(data.decode("utf-8-sig")) is not None
    except UnicodeDecodeError:
        return False


def detect_content_type(data: bytes) -> str | None:
    """The real type of `data` from its first bytes, or None if it is not one we accept."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if len(data) >= 12 and data[0:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return _iso_bmff_type(data) or _text_type(data)


def validate_upload(
    data: bytes,
    declared_content_type: str | None,
    declared_name: str | None,
    *,
    kind: DocumentKind,
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
) -> ValidatedUpload:
    """Accept `data` as a document of `kind`, or raise UploadRejected saying why.

    The declared content type is kept for the record only: a PNG declared as a PDF is
    accepted as a PNG, an executable declared as a PNG is refused."""
    if not data:
        raise UploadRejected("file", "the file is empty")
    if len(data) > max_bytes:
        raise UploadRejected("file", f"the file is larger than {max_bytes} bytes")
    content_type = detect_content_type(data)
    if content_type is None and _has_markup(data):
        raise UploadRejected("file", "text must be plain: markup such as <html> is not accepted")
    if content_type is None:
        raise UploadRejected(
            "file", "unsupported content: send a PDF or an image (PNG, JPEG, WEBP, HEIC)"
        )
    allowed = ALLOWED_CONTENT_TYPES[kind]
    if content_type not in allowed:
        accepted = ", ".join(sorted(allowed))
        raise UploadRejected(
            "file", f"{content_type} is not accepted for {kind.value} (accepted: {accepted})"
        )
    kept = data
    if content_type in IMAGES:
        kept, content_type = reencoded_image(data, content_type)
    elif content_type == PDF:
        check_pdf(data)
    return ValidatedUpload(
        content_type=content_type,
        size_bytes=len(kept),
        sanitized_name=sanitize_filename(declared_name),
        declared_content_type=declared_content_type,
        data=kept,
    )


# --- images ---------------------------------------------------------------------------------

MAX_IMAGE_PIXELS = 50_000_000
"""A phone photo is 12 to 50 megapixels; more is a decompression bomb."""
_PILLOW_FORMATS = {PNG: "PNG", JPEG: "JPEG", WEBP: "WEBP", HEIC: "HEIF", HEIF: "HEIF"}
_JPEG_QUALITY = 90

pillow_heif.register_heif_opener()


def reencoded_image(data: bytes, content_type: str) -> tuple[bytes, str]:
    """The picture of `data` alone, encoded afresh, and its type: PNG stays PNG (lossless),
    WEBP stays WEBP, JPEG and HEIC/HEIF become JPEG. Nothing of the upload but the pixels
    survives: no metadata, no trailing bytes, no extra chunks, only the first frame."""
    try:
        with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[content_type]]) as opened:
            if opened.width * opened.height > MAX_IMAGE_PIXELS:
                raise UploadRejected("file", "the image has too many pixels")
            opened.load()
            image = ImageOps.exif_transpose(opened)
            out = io.BytesIO()
            if content_type == PNG:
                image.save(out, "PNG")
            elif content_type == WEBP:
                image.save(out, "WEBP", quality=_JPEG_QUALITY)
            else:
                rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
                rgb.save(out, "JPEG", quality=_JPEG_QUALITY)
                content_type = JPEG
    except UploadRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as err:
        raise UploadRejected("file", "the image could not be read") from err
    return out.getvalue(), content_type


# --- PDFs -----------------------------------------------------------------------------------

# Keys and values that make a PDF do something or carry something besides its pages.
_ACTIVE_KEYS = frozenset(
    {"/JavaScript", "/JS", "/EmbeddedFiles", "/EmbeddedFile", "/RichMedia", "/XFA"}
)
_ACTIVE_ACTIONS = frozenset(
    {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToE", "/RichMediaExecute"}
)
_ACTIVE_TYPES = frozenset({"/FileAttachment", "/EmbeddedFile", "/Filespec", "/RichMedia"})
MAX_PDF_OBJECTS = 200_000


def check_pdf(data: bytes) -> None:
    """UploadRejected unless `data` is a readable, unencrypted PDF with nothing active."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise UploadRejected("file", "an encrypted PDF cannot be checked; send it unlocked")
        found = _active_content(reader.trailer)
        if not reader.pages:
            raise UploadRejected("file", "the PDF has no pages")
    except UploadRejected:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError, RecursionError) as err:
        raise UploadRejected("file", "the PDF could not be read") from err
    if found is not None:
        raise UploadRejected("file", f"PDFs with {found} are not accepted")


def _active_content(root: object) -> str | None:
    """What active content is reachable from `root` (the trailer), or None."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    visited = 0
    while stack:
        node = stack.pop()
        if isinstance(node, IndirectObject):
            ref = (node.idnum, node.generation)
            if ref in seen:
                continue
            seen.add(ref)
            node = node.get_object()
        visited += 1
        if visited > MAX_PDF_OBJECTS:
            return "too many objects to check"
        if isinstance(node, DictionaryObject):
            for key, value in node.items():
                if key in _ACTIVE_KEYS:
                    return _what(key)
                if key == "/S" and isinstance(value, NameObject) and value in _ACTIVE_ACTIONS:
                    return _what(value)
                if key in ("/Type", "/Subtype") and value in _ACTIVE_TYPES:
                    return _what(str(value))
                stack.append(value)
        elif isinstance(node, ArrayObject):
            stack.extend(node)
    return None


def _what(name: str) -> str:
    return {
        "/JavaScript": "JavaScript",
        "/JS": "JavaScript",
        "/Launch": "launch actions",
        "/SubmitForm": "form submissions",
        "/ImportData": "data imports",
        "/GoToE": "embedded documents",
        "/EmbeddedFiles": "embedded files",
        "/EmbeddedFile": "embedded files",
        "/Filespec": "embedded files",
        "/FileAttachment": "file attachments",
        "/RichMedia": "rich media",
        "/RichMediaExecute": "rich media",
        "/XFA": "XFA forms",
    }.get(name, name.lstrip("/"))


def sanitize_filename(name: str | None) -> str | None:
    """A display label from a client's file name: no directories, control or formatting
    characters (such as a right-to-left override), leading dots or reserved Windows device
    names, at most 100 characters; None if nothing usable is left."""
    if not name:
        return None
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = _WINDOWS_FORBIDDEN.sub("_", name)
    name = " ".join(name.split())
    name = name.lstrip(". ").rstrip(". ")
    if not name:
        return None

    stem, dot, extension = name.rpartition(".")
    if not dot or not _SAFE_EXTENSION.match(extension):
        stem, extension = name, ""
    stem = stem.rstrip(". ")
    if not stem:
        return None
    # Windows treats "CON.txt" and "con.tar.gz" as the device too: disarm the first part.
    if _WINDOWS_RESERVED.match(stem.split(".")[0].strip()):
        stem = f"_{stem}"

    suffix = f".{extension.lower()}" if extension else ""
    stem = stem[: MAX_NAME_LENGTH - len(suffix)].rstrip(". ")
    return f"{stem}{suffix}" if stem else None


def download_name(ref: DocumentRef) -> str:
    """A file name for a recipient: the sanitized label's stem (or the kind) and the
    extension of the detected content type, so the uploader's extension never decides it."""
    label = sanitize_filename(ref.original_name_sanitized)
    stem = label.rsplit(".", 1)[0] if label and "." in label else label
    return f"{stem or ref.kind.value}.{EXTENSIONS.get(ref.content_type, 'bin')}"
