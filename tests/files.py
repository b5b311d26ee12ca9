"""Real files for the upload tests, made here (no binary fixtures): images through Pillow,
PDFs through pypdf, with the hostile extras the upload checks must catch."""

from __future__ import annotations

import io

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, PdfObject, TextStringObject

# The EXIF tags of a phone photo's position (GPSInfo IFD) and orientation.
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def image(fmt: str = "PNG", size: tuple[int, int] = (4, 2), color: str = "red", **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt, **save)
    return out.getvalue()


def png(**kw) -> bytes:
    return image("PNG", **kw)


def jpeg_with_gps(orientation: int = 6) -> bytes:
    """A JPEG as a phone writes it: where it was taken, and rotated by EXIF."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)})
    return image("JPEG", size=(4, 2), exif=exif.tobytes())


def heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return image("HEIF", size=(4, 2))


def pdf(**catalog: object) -> bytes:
    """A one-page PDF; `catalog` entries are added to its catalogue (e.g. an /OpenAction)."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    for key, value in catalog.items():
        writer._root_object[NameObject(f"/{key}")] = value  # type: ignore[index]
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def action(kind: str, **entries: str) -> DictionaryObject:
    body: dict[NameObject, PdfObject] = {NameObject("/S"): NameObject(f"/{kind}")}
    body |= {NameObject(f"/{k}"): TextStringObject(v) for k, v in entries.items()}
    return DictionaryObject(body)


def pdf_with_javascript() -> bytes:
    return pdf(OpenAction=action("JavaScript", JS="app.alert('pwned')"))


def pdf_with_launch() -> bytes:
    return pdf(OpenAction=action("Launch", F="cmd.exe"))


def pdf_with_embedded_file() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_attachment("invoice.exe", b"MZ\x90\x00")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt(user_password="secret", owner_password="owner")  # noqa: S106
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


def png_html_polyglot() -> bytes:
    """A valid PNG with an HTML page after its end: sniffed as HTML by some browsers."""
    return png() + HTML
