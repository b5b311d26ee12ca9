"""A weekly report's documents (`activities.report_documents`): the charts drawn on the Agg
backend, the same bytes for the same figures, a fixed size and no metadata; the PDF copy with
the figures table and the charts, the same bytes for the same report; the CSV's exact rows;
the inline images as SendGrid receives them; and the report run's workflow module free of
matplotlib, fpdf2 and the email backends."""

from __future__ import annotations

import datetime as dt
import io
import struct
import subprocess
import sys
from pathlib import Path

import pypdf

from activities.email_backends import EmailAttachment, OutgoingEmail, SendGridBackend
from activities.report_documents import (
    CHART_NAMES,
    render_charts,
    render_report_pdf,
    render_rows_csv,
)
from schemas.report_figures import ROW_COLUMNS, build_report, underlying_rows, window
from schemas.reporting import ReportKind
from tests.test_report_figures import WEEK_STOPS, inputs

ROOT = Path(__file__).resolve().parent.parent.parent
AS_OF = dt.datetime(2026, 11, 30, 7, tzinfo=dt.UTC)


def report():
    return build_report(inputs(stops=WEEK_STOPS), ReportKind.WEEKLY, "2026-W48")


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        chunks.append((kind, data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def test_the_charts_are_drawn_on_agg_without_pyplot():
    import matplotlib

    assert matplotlib.get_backend().lower() == "agg"
    assert "matplotlib.pyplot" not in sys.modules


def test_the_same_figures_draw_the_same_pngs_of_a_fixed_size_without_metadata():
    first, second = render_charts(report()), render_charts(report())

    assert list(first) == list(CHART_NAMES)
    for name, png in first.items():
        assert png == second[name], name
        chunks = png_chunks(png)
        width, height = struct.unpack(">II", chunks[0][1][:8])
        assert (chunks[0][0], width, height) == (b"IHDR", 640, 320)
        kinds = {kind for kind, _ in chunks}
        assert not kinds & {b"tEXt", b"iTXt", b"zTXt", b"tIME"}, (name, kinds)


def test_other_figures_draw_another_chart():
    empty = build_report(inputs(), ReportKind.WEEKLY, "2026-W48")
    assert render_charts(empty)["trend"] != render_charts(report())["trend"]


def test_the_pdf_copy_has_the_figures_table_and_the_three_charts_and_is_reproducible():
    charts = render_charts(report())

    pdf = render_report_pdf(
        report(), charts, client_name="Acme Retail", issuer="casedesk", as_of=AS_OF
    )

    again = render_report_pdf(
        report(), charts, client_name="Acme Retail", issuer="casedesk", as_of=AS_OF
    )
    assert pdf == again
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Weekly performance report 2026-W48" in text
    assert "Acme Retail (client acme), 2026-11-23 to 2026-11-29 (America/New_York)" in text
    for line in (
        "First-attempt success",
        "75.0%",
        "On-time rate",
        "66.7%",
        "Claims per 1,000 stops",
    ):
        assert line in text, line
    assert "W45 | W46 | W47 | W48" in text
    assert sum(len(page.images) for page in reader.pages) == 3
    assert reader.metadata is not None and reader.metadata.title == (
        "Weekly performance report 2026-W48"
    )


def test_the_csv_holds_the_rows_with_a_header_and_crlf_lines():
    data = inputs(stops=WEEK_STOPS)

    text = render_rows_csv(underlying_rows(data, window(ReportKind.WEEKLY, "2026-W48"))).decode()

    lines = text.split("\r\n")
    assert lines[0] == ",".join(ROW_COLUMNS)
    assert len([line for line in lines if line.startswith("stop,")]) == 10
    assert lines[-1] == ""


def test_sendgrid_gets_inline_images_with_their_content_ids_and_files_as_attachments():
    backend = SendGridBackend(api_key="SG.x", from_email="casedesk@example.com")
    email = OutgoingEmail(
        key="report-weekly-acme-2026-W48/to/x",
        message_id="m-1",
        to_email="rita@acme.example",
        to_name="Rita",
        subject="Weekly",
        text="text",
        html='<img src="cid:trend">',
        attachments=(
            EmailAttachment("report.pdf", "application/pdf", b"%PDF-1"),
            EmailAttachment("trend.png", "image/png", b"\x89PNG", content_id="trend"),
        ),
    )

    payload = backend._mail(email).get()

    assert [
        (a["filename"], a["type"], a["disposition"], a.get("content_id"))
        for a in payload["attachments"]
    ] == [
        ("report.pdf", "application/pdf", "attachment", None),
        ("trend.png", "image/png", "inline", "trend"),
    ]


def test_the_report_run_module_imports_neither_matplotlib_nor_fpdf_nor_the_email_backends():
    probe = (
        "import sys, workflows.report_run; "
        "print(sorted(m for m in ('matplotlib', 'fpdf', 'sendgrid', 'activities.reporting', "
        "'activities.messaging') if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
