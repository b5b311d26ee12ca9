"""The minimal PDF writer: a well-formed PDF 1.4 file whose text reads back as written."""

from __future__ import annotations

import re

from activities.pdf import escape_text, render_pdf

_SHOWN = re.compile(rb"\(((?:\\.|[^\\)])*)\) Tj")
_ESCAPE = re.compile(rb"\\([0-7]{3}|.)", re.DOTALL)


def pdf_text(data: bytes) -> list[str]:
    """Every string the content streams show, unescaped (the tests' own tiny PDF reader)."""

    def unescape(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        return bytes([int(code, 8)]) if len(code) == 3 else code

    return [_ESCAPE.sub(unescape, shown).decode("cp1252") for shown in _SHOWN.findall(data)]


def page_count(data: bytes) -> int:
    found = re.search(rb"/Type /Pages /Kids \[[^\]]*\] /Count (\d+)", data)
    assert found is not None
    return int(found.group(1))


def test_output_is_a_pdf_1_4_file_ending_with_eof():
    data = render_pdf(["one line"])

    assert data.startswith(b"%PDF-1.4\n")
    assert data.endswith(b"%%EOF\n")


def test_cross_reference_table_points_at_every_object():
    data = render_pdf([f"line {n}" for n in range(120)], title="Many lines")

    startxref = int(re.findall(rb"startxref\n(\d+)\n", data)[-1])
    assert data[startxref:].startswith(b"xref\n")
    header = re.match(rb"xref\n0 (\d+)\n", data[startxref:])
    assert header is not None
    count = int(header.group(1))
    entries = re.findall(rb"(\d{10}) 00000 n \n", data[startxref:])
    assert len(entries) == count - 1
    for number, offset in enumerate(entries, start=1):
        assert data[int(offset) :].startswith(b"%d 0 obj\n" % number)


def test_stream_lengths_match_their_content():
    data = render_pdf(["a", "b"], title="T")

    for length, body in re.findall(rb"<< /Length (\d+) >>\nstream\n(.*?)\nendstream", data, re.S):
        assert int(length) == len(body)


def test_lines_title_and_page_numbers_read_back_in_order():
    data = render_pdf(["first", "second"], title="Attempt record")

    assert pdf_text(data) == ["Attempt record", "first", "second", "Page 1 of 1"]
    assert b"/BaseFont /Helvetica " in data and b"/BaseFont /Helvetica-Bold " in data


def test_long_documents_continue_on_further_pages():
    lines = [f"line {n}" for n in range(150)]

    data = render_pdf(lines, title="Long")

    assert page_count(data) == 3
    text = pdf_text(data)
    assert [t for t in text if t.startswith("line ")] == lines
    assert "Page 3 of 3" in text


def test_long_lines_are_wrapped_not_cut():
    words = " ".join(f"word{n}" for n in range(60))

    text = pdf_text(render_pdf([words]))

    assert len(text) > 2
    assert " ".join(t.strip() for t in text[:-1]) == words


def test_parentheses_and_backslashes_are_escaped():
    assert escape_text(r"a (b) \c") == rb"a \(b\) \\c"
    data = render_pdf([r"unbalanced ) ( \ text"])

    assert pdf_text(data)[0] == r"unbalanced ) ( \ text"


def test_non_ascii_text_is_winansi_and_unknown_characters_become_question_marks():
    data = render_pdf(["Zoë — 5 €", "中"])

    assert pdf_text(data)[:2] == ["Zoë — 5 €", "?"]
    assert "Zoë".encode() not in data  # octal escapes, never raw UTF-8


def test_same_lines_give_the_same_bytes():
    assert render_pdf(["x", "y"], title="t") == render_pdf(["x", "y"], title="t")
