"""A minimal PDF 1.4 writer for the documents casedesk produces itself (attempt records, the
statement that no proof of delivery exists): lines of text in Helvetica on A4 pages.

No dependency and nothing clever: uncompressed content streams, the standard Type 1 fonts
(every PDF reader has them, so nothing is embedded), WinAnsi text, no creation date. The same
lines give the same bytes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 56
FONT_SIZE = 10
LEADING = 14
TITLE_SIZE = 14
TITLE_LEADING = 24
# Helvetica averages ~0.5 em per character: 90 characters fill the 483-point text width.
WRAP_COLUMNS = 90


def escape_text(text: str) -> bytes:
    """`text` as the inside of a PDF literal string in WinAnsi (cp1252) encoding: backslash and
    parentheses escaped, anything outside printable ASCII as an octal escape, characters
    WinAnsi lacks as `?`."""
    out = bytearray()
    for byte in text.encode("cp1252", errors="replace"):
        if byte in b"\\()":
            out += b"\\" + bytes([byte])
        elif 32 <= byte < 127:
            out.append(byte)
        else:
            out += b"\\%03o" % byte
    return bytes(out)


def _wrap(lines: Sequence[str]) -> list[str]:
    wrapped: list[str] = []
    for line in lines:
        wrapped += textwrap.wrap(line, WRAP_COLUMNS, subsequent_indent="    ") or [""]
    return wrapped


def _paginate(title: str | None, lines: list[str]) -> list[list[str]]:
    usable = PAGE_HEIGHT - 2 * MARGIN - LEADING  # the last line keeps room for the footer
    first = (usable - (TITLE_LEADING if title else 0)) // LEADING
    rest = usable // LEADING
    pages = [lines[:first]]
    for start in range(first, len(lines), rest):
        pages.append(lines[start : start + rest])
    return pages


def _content(title: str | None, lines: list[str], number: int, total: int) -> bytes:
    ops = [b"BT", b"%d %d Td" % (MARGIN, PAGE_HEIGHT - MARGIN - TITLE_SIZE)]
    if title and number == 1:
        ops += [b"/F2 %d Tf" % TITLE_SIZE, b"(" + escape_text(title) + b") Tj"]
        ops += [b"0 %d Td" % -TITLE_LEADING]
    ops += [b"/F1 %d Tf" % FONT_SIZE, b"%d TL" % LEADING]
    for index, line in enumerate(lines):
        if index:
            ops.append(b"T*")
        ops.append(b"(" + escape_text(line) + b") Tj")
    ops.append(b"ET")
    footer = f"Page {number} of {total}"
    ops += [b"BT", b"/F1 8 Tf", b"%d %d Td" % (MARGIN, MARGIN // 2)]
    ops += [b"(" + escape_text(footer) + b") Tj", b"ET"]
    return b"\n".join(ops) + b"\n"


def render_pdf(lines: Sequence[str], *, title: str | None = None) -> bytes:
    """A PDF of `lines` (long ones wrapped), `title` in bold on the first page, as many A4
    pages as it takes, each with "Page n of N" at the bottom."""
    pages = _paginate(title, _wrap(lines))
    first_page = 5  # 1 catalog, 2 page tree, 3 and 4 fonts, then (page, content) pairs
    page_ids = [first_page + 2 * i for i in range(len(pages))]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % i for i in page_ids), len(pages)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    for number, (page_id, page_lines) in enumerate(zip(page_ids, pages, strict=True), start=1):
        stream = _content(title, page_lines, number, len(pages))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>"
            % (PAGE_WIDTH, PAGE_HEIGHT, page_id + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    info_id = len(objects) + 1
    objects.append(
        b"<< /Producer (casedesk)%s >>"
        % (b" /Title (" + escape_text(title) + b")" if title else b"")
    )

    # The binary comment line tells transfer tools the file is not text.
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, info_id)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
