"""The local document store, upload validation by content, and file-name sanitizing."""

from __future__ import annotations

import hashlib
import io
import stat
from pathlib import Path

import pytest
from PIL import Image

from core.documents import DocumentNotFound, LocalDocumentStore
from core.settings import Settings
from core.uploads import UploadRejected, detect_content_type, sanitize_filename, validate_upload
from schemas.documents import CLAIM_CHECKLISTS, ClaimType, DocumentKind
from tests import files

PNG = files.png()
JPEG = files.image("JPEG")
PDF = files.pdf()
WEBP = files.image("WEBP")
HEIC = files.heic()
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(56)
TEXT = "I, Zoë Example, received the parcel crushed on 20 Nov — kettle broken.\n".encode()


@pytest.fixture
def store(tmp_path: Path) -> LocalDocumentStore:
    return LocalDocumentStore(tmp_path / "documents", max_bytes=1024)


# --- the store ------------------------------------------------------------------------------


def test_stored_document_reads_back_byte_for_byte(store: LocalDocumentStore) -> None:
    ref = store.put(PDF, kind=DocumentKind.PROOF_OF_VALUE, declared_name="receipt.pdf")
    assert store.get(ref.id) == PDF


def test_reference_carries_checksum_size_and_detected_type(store: LocalDocumentStore) -> None:
    ref = store.put(PNG, kind=DocumentKind.DAMAGE_PHOTOS, declared_name="box.png")
    stored = store.get(ref.id)  # the image as re-encoded
    assert ref.sha256 == hashlib.sha256(stored).hexdigest()
    assert ref.size_bytes == len(stored)
    assert ref.content_type == "image/png"
    assert ref.kind is DocumentKind.DAMAGE_PHOTOS


def test_file_is_stored_under_its_id_with_mode_0600(
    store: LocalDocumentStore, tmp_path: Path
) -> None:
    ref = store.put(PDF, kind=DocumentKind.PROOF_OF_VALUE, declared_name="receipt.pdf")
    path = tmp_path / "documents" / ref.id[:2] / ref.id
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_declared_name_never_reaches_the_file_system(
    store: LocalDocumentStore, tmp_path: Path
) -> None:
    ref = store.put(PDF, kind=DocumentKind.OTHER, declared_name="../../evil-name.pdf")
    stored = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()]
    assert stored == [Path("documents") / ref.id[:2] / ref.id]
    assert ref.original_name_sanitized == "evil-name.pdf"


def test_no_temporary_file_is_left_behind(store: LocalDocumentStore, tmp_path: Path) -> None:
    store.put(PDF, kind=DocumentKind.OTHER, declared_name=None)
    assert not [p for p in tmp_path.rglob(".incoming-*")]


def test_rejected_upload_stores_nothing(store: LocalDocumentStore, tmp_path: Path) -> None:
    with pytest.raises(UploadRejected):
        store.put(EXE, kind=DocumentKind.DAMAGE_PHOTOS, declared_name="photo.png")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_unknown_id_is_not_found(store: LocalDocumentStore) -> None:
    with pytest.raises(DocumentNotFound):
        store.get("9b2f3c1e-6a0d-4c1b-9f3e-2a7d5c8e1f00")


@pytest.mark.parametrize(
    "ref_id", ["../../etc/passwd", "..", "", "ABC", "9B2F3C1E6A0D4C1B9F3E2A7D5C8E1F00"]
)
def test_an_id_the_store_never_issued_is_not_found(store: LocalDocumentStore, ref_id: str) -> None:
    with pytest.raises(DocumentNotFound):
        store.get(ref_id)


# --- validation by content ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (PDF, "application/pdf"),
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
        (HEIC, "image/heic"),
        (TEXT, "text/plain"),
    ],
)
def test_content_type_is_detected_from_the_bytes(data: bytes, content_type: str) -> None:
    assert detect_content_type(data) == content_type


def test_empty_upload_is_rejected() -> None:
    with pytest.raises(UploadRejected, match="empty") as rejected:
        validate_upload(b"", "image/png", "a.png", kind=DocumentKind.DAMAGE_PHOTOS)
    assert rejected.value.field == "file"


def test_upload_over_the_limit_is_rejected() -> None:
    data = PNG + bytes(1024)
    with pytest.raises(UploadRejected, match="larger than 1024 bytes"):
        validate_upload(data, "image/png", "a.png", kind=DocumentKind.DAMAGE_PHOTOS, max_bytes=1024)


def test_upload_exactly_at_the_limit_is_accepted() -> None:
    data = PDF + b"\n" * (1024 - len(PDF))
    upload = validate_upload(data, None, None, kind=DocumentKind.PROOF_OF_VALUE, max_bytes=1024)
    assert upload.size_bytes == 1024


def test_executable_declared_as_png_is_rejected() -> None:
    with pytest.raises(UploadRejected, match="unsupported content"):
        validate_upload(EXE, "image/png", "photo.png", kind=DocumentKind.DAMAGE_PHOTOS)


def test_png_declared_as_pdf_is_accepted_as_png() -> None:
    upload = validate_upload(PNG, "application/pdf", "x.pdf", kind=DocumentKind.PROOF_OF_VALUE)
    assert upload.content_type == "image/png"
    assert upload.declared_content_type == "application/pdf"


def test_text_is_not_accepted_as_damage_photos() -> None:
    with pytest.raises(UploadRejected, match="text/plain is not accepted for damage_photos"):
        validate_upload(TEXT, "image/jpeg", "p.jpg", kind=DocumentKind.DAMAGE_PHOTOS)


def test_pdf_is_not_accepted_as_damage_photos() -> None:
    with pytest.raises(UploadRejected, match="application/pdf is not accepted"):
        validate_upload(PDF, "application/pdf", "p.pdf", kind=DocumentKind.DAMAGE_PHOTOS)


def test_text_is_accepted_as_a_customer_attestation() -> None:
    upload = validate_upload(TEXT, None, None, kind=DocumentKind.CUSTOMER_ATTESTATION)
    assert upload.content_type == "text/plain"


def test_text_is_not_accepted_as_proof_of_value() -> None:
    with pytest.raises(UploadRejected):
        validate_upload(TEXT, "text/plain", "r.txt", kind=DocumentKind.PROOF_OF_VALUE)


def test_markup_is_not_accepted_as_text() -> None:
    html = b"<html><script>alert(1)</script></html>"
    with pytest.raises(UploadRejected, match="markup"):
        validate_upload(html, "text/plain", "a.txt", kind=DocumentKind.CUSTOMER_ATTESTATION)


def test_binary_that_is_valid_utf8_is_not_text() -> None:
    assert detect_content_type(b"abc\x00\x01def") is None


# --- file names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "sanitized"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
        ("C:\\Users\\ann\\photo.JPG", "photo.jpg"),
        ("CON.txt", "_CON.txt"),
        ("lpt1", "_lpt1"),
        ("a\x00b.pdf", "ab.pdf"),
        (".htaccess", "htaccess"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("re<ce>ipt?.pdf", "re_ce_ipt_.pdf"),
        ("photo.with a space", "photo.with a space"),
        ("Zoë's box.png", "Zoë's box.png"),
    ],
)
def test_hostile_names_are_disarmed(declared: str, sanitized: str) -> None:
    assert sanitize_filename(declared) == sanitized


@pytest.mark.parametrize(
    "declared", ["", None, "..", "...", "/", "\\", "\x00\x01", "\u202e", " . "]
)
def test_a_name_with_nothing_usable_left_is_none(declared: str | None) -> None:
    assert sanitize_filename(declared) is None


def test_long_name_is_cut_to_100_characters_keeping_the_extension() -> None:
    name = sanitize_filename("a" * 300 + ".pdf")
    assert name == "a" * 96 + ".pdf"


def test_name_is_sanitized_on_the_way_into_the_reference(store: LocalDocumentStore) -> None:
    ref = store.put(PNG, kind=DocumentKind.DAMAGE_PHOTOS, declared_name="..\\..\\CON.png")
    assert ref.original_name_sanitized == "_CON.png"


# --- checklists -----------------------------------------------------------------------------


def test_every_claim_type_has_a_checklist() -> None:
    assert set(CLAIM_CHECKLISTS) == set(ClaimType)


def test_only_theft_needs_a_police_report() -> None:
    needing = {t for t, kinds in CLAIM_CHECKLISTS.items() if DocumentKind.POLICE_REPORT in kinds}
    assert needing == {ClaimType.THEFT}


def test_only_damaged_needs_damage_photos() -> None:
    needing = {t for t, kinds in CLAIM_CHECKLISTS.items() if DocumentKind.DAMAGE_PHOTOS in kinds}
    assert needing == {ClaimType.DAMAGED}


# --- compiled packages ------------------------------------------------------------------------

ZIP = b"PK\x03\x04" + bytes(26) + b"cover.txt"


def test_package_is_stored_as_a_zip_of_kind_other(store: LocalDocumentStore) -> None:
    ref = store.put_package(ZIP, name="claim-package-SHP-1.zip")

    assert (ref.kind, ref.content_type) == (DocumentKind.OTHER, "application/zip")
    assert ref.original_name_sanitized == "claim-package-SHP-1.zip"
    assert ref.sha256 == hashlib.sha256(ZIP).hexdigest()
    assert store.get(ref.id) == ZIP


@pytest.mark.parametrize(
    "data", [PDF, PNG, b"PK\x05\x06" + bytes(18)], ids=["pdf", "png", "empty-zip"]
)
def test_package_that_is_not_a_zip_is_refused(store: LocalDocumentStore, data: bytes) -> None:
    with pytest.raises(UploadRejected):
        store.put_package(data, name="claim-package.zip")


def test_package_name_is_sanitized_and_never_a_path(
    store: LocalDocumentStore, tmp_path: Path
) -> None:
    ref = store.put_package(ZIP, name="../../etc/claim.zip")

    assert ref.original_name_sanitized == "claim.zip"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [ref.id]


def test_package_is_not_bound_by_the_upload_limit(store: LocalDocumentStore) -> None:
    big = ZIP + bytes(4096)  # the fixture's store takes uploads of up to 1024 bytes

    assert store.put_package(big, name="big.zip").size_bytes == len(big)


def test_uploads_never_accept_a_zip(store: LocalDocumentStore) -> None:
    with pytest.raises(UploadRejected):
        store.put(ZIP, kind=DocumentKind.OTHER, declared_name="package.zip")


# --- settings ---------------------------------------------------------------------------------


def test_store_from_settings_defaults_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, max_upload_bytes=10)

    store = LocalDocumentStore.from_settings(settings)
    ref = store.put_package(ZIP, name="p.zip")

    assert settings.resolved_documents_dir == tmp_path / "documents"
    assert (tmp_path / "documents" / ref.id[:2] / ref.id).is_file()
    with pytest.raises(UploadRejected, match="larger than 10 bytes"):
        store.put(PDF, kind=DocumentKind.OTHER, declared_name=None)


def test_documents_dir_setting_moves_the_store(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", documents_dir=elsewhere)

    assert settings.resolved_documents_dir == elsewhere
    assert settings.max_upload_bytes == 20 * 1024 * 1024


# --- what an upload may carry besides its content -------------------------------------------


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (files.pdf_with_javascript, "JavaScript"),
        (files.pdf_with_launch, "launch actions"),
        (files.pdf_with_embedded_file, "embedded files"),
        (files.encrypted_pdf, "encrypted"),
    ],
    ids=["OpenAction JavaScript", "Launch", "embedded file", "encrypted"],
)
def test_a_pdf_that_runs_or_carries_something_is_refused(make, reason: str) -> None:
    with pytest.raises(UploadRejected, match=reason) as rejected:
        validate_upload(make(), None, "receipt.pdf", kind=DocumentKind.PROOF_OF_VALUE)
    assert rejected.value.field == "file"


def test_a_pdf_that_is_only_a_header_is_refused() -> None:
    with pytest.raises(UploadRejected, match="could not be read"):
        validate_upload(b"%PDF-1.4\n%%EOF\n", None, None, kind=DocumentKind.PROOF_OF_VALUE)


def test_the_documents_casedesk_renders_itself_pass_the_pdf_check() -> None:
    from activities.pdf import render_pdf

    data = render_pdf(["Driver note: see /JavaScript and /Launch (typed)"] * 80, title="Record")
    upload = validate_upload(data, None, None, kind=DocumentKind.ATTEMPT_RECORD)
    assert upload.content_type == "application/pdf" and upload.data == data


def test_a_png_html_polyglot_is_stored_as_the_picture_alone() -> None:
    upload = validate_upload(files.png_html_polyglot(), None, None, kind=DocumentKind.DAMAGE_PHOTOS)

    assert upload.content_type == "image/png"
    assert b"<html" not in upload.data and b"script" not in upload.data
    assert Image.open(io.BytesIO(upload.data)).size == (4, 2)


def test_a_photos_gps_position_never_reaches_the_store(store: LocalDocumentStore) -> None:
    photo = files.jpeg_with_gps(orientation=6)
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(files.GPS_IFD)

    ref = store.put(photo, kind=DocumentKind.DAMAGE_PHOTOS, declared_name="IMG_0001.jpg")

    kept = Image.open(io.BytesIO(store.get(ref.id)))
    assert dict(kept.getexif()) == {} and b"Exif" not in store.get(ref.id)
    assert kept.size == (2, 4)  # turned as the camera said, before the EXIF was dropped


def test_a_heic_photo_is_kept_as_jpeg() -> None:
    upload = validate_upload(files.heic(), None, "IMG.heic", kind=DocumentKind.DAMAGE_PHOTOS)

    assert upload.content_type == "image/jpeg" and upload.data.startswith(b"\xff\xd8\xff")


def test_an_image_that_does_not_decode_is_refused() -> None:
    broken = files.png()[:40]  # the header of a PNG, no picture
    with pytest.raises(UploadRejected, match="could not be read"):
        validate_upload(broken, None, None, kind=DocumentKind.DAMAGE_PHOTOS)


def test_html_after_a_zero_width_character_is_not_text() -> None:
    disguised = "\u200b".encode() + files.HTML
    with pytest.raises(UploadRejected, match="markup"):
        validate_upload(disguised, None, None, kind=DocumentKind.CUSTOMER_ATTESTATION)
