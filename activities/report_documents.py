"""A weekly report's documents: its charts (PNG, matplotlib), its PDF copy (fpdf2) and the CSV
of every row behind its figures, all rendered from the same `Report` the email shows.

**Charts.** matplotlib's Agg backend is selected explicitly when this module is imported, and
pyplot is never imported: each chart is a `Figure` drawn on its own Agg canvas (no display, no
global figure state shared between threads). Output is deterministic: a fixed size and DPI,
the bundled DejaVu Sans font, and no metadata (the PNG's "Software" entry is dropped; PNGs
carry no timestamp), so the same figures render to the same bytes.

- `trend`: first-attempt success and on-time rate, week by week over 12 weeks (a week without
  data is a gap, never a zero);
- `failed-reasons`: failed attempts by reason in the week (`reason not reported` included);
- `claims`: claims by outcome (paid, denied and withdrawn in the week, open at its end).

**PDF.** A4, the standard Helvetica fonts (nothing embedded), the figures table (this week,
the week before, the four-week trend) and the three charts; dated the run's day, so the same
report renders to the same bytes.

**CSV.** UTF-8, RFC 4180, one header row (`schemas.report_figures.ROW_COLUMNS`), one row per
stop in the period and per case a figure counts, exact values.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # before anything draws: no display, ever

from fpdf import FPDF  # noqa: E402
from fpdf.enums import XPos, YPos  # noqa: E402
from fpdf.fonts import FontFace  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from activities.invoice_documents import _pdf_text  # noqa: E402
from schemas.report_figures import (  # noqa: E402
    ROW_COLUMNS,
    FigureLine,
    Report,
    figure_table,
)

CHART_NAMES = ("trend", "failed-reasons", "claims")
"""The charts of a weekly report; each is served as `GET /reports/{client}/charts/{name}.png`."""
CHART_SIZE_INCHES = (6.4, 3.2)
CHART_DPI = 100  # 640 x 320 pixels: sharp at phone width, small in the email
_BLUE, _GREEN, _GREY, _RED, _AMBER = "#2563eb", "#059669", "#6b7280", "#dc2626", "#d97706"


def _figure() -> Figure:
    figure = Figure(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=CHART_DPI, metadata={"Software": None})
    return out.getvalue()


def _week_label(label: str) -> str:
    return label.split("-", 1)[1] if "-W" in label else label


def trend_chart(report: Report) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    labels = [_week_label(point.period) for point in report.series]
    positions = list(range(len(labels)))
    for values, name, colour in (
        ([p.first_attempt_success.percent for p in report.series], "First-attempt success", _BLUE),
        ([p.on_time.percent for p in report.series], "On time", _GREEN),
    ):
        shown = [float(v) if v is not None else math.nan for v in values]
        axes.plot(positions, shown, marker="o", linewidth=2, markersize=4, color=colour, label=name)
    axes.set_xticks(positions, labels, fontsize=8)
    axes.set_ylim(0, 105)
    axes.set_ylabel("%")
    axes.set_title(f"{report.client_id}: 12 weeks to {report.period}", fontsize=10)
    axes.grid(axis="y", color="#e5e7eb")
    axes.legend(loc="lower left", fontsize=8, frameon=False)
    if all(p.first_attempt_success.percent is None for p in report.series):
        axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", color=_GREY)
    return _png(figure)


def _bars(
    title: str, labels: Sequence[str], counts: Sequence[int], colours: Sequence[str]
) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    positions = list(range(len(labels)))
    axes.barh(positions, counts, color=list(colours))
    axes.set_yticks(positions, labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_title(title, fontsize=10)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    for position, count in zip(positions, counts, strict=True):
        axes.text(count, position, f" {count}", va="center", fontsize=8)
    axes.set_xlim(0, max([*counts, 1]) * 1.15)
    if not labels:
        axes.text(0.5, 0.5, "none", transform=axes.transAxes, ha="center", color=_GREY)
    return _png(figure)


def failed_reasons_chart(report: Report) -> bytes:
    reasons = report.figures.failed_by_reason
    labels = [reason.replace("_", " ") for reason in reasons]
    return _bars(
        f"Failed attempts by reason, {report.period}",
        labels,
        list(reasons.values()),
        [_GREY if "not reported" in label else _RED for label in labels],
    )


def claims_chart(report: Report) -> bytes:
    f = report.figures
    return _bars(
        f"Claims by outcome, {report.period}",
        ["paid", "denied", "withdrawn", "open at the end"],
        [f.claims_paid, f.claims_denied, f.claims_withdrawn, f.claims_open],
        [_GREEN, _RED, _GREY, _AMBER],
    )


def render_charts(report: Report) -> dict[str, bytes]:
    """Every chart of a weekly report, by name."""
    return {
        "trend": trend_chart(report),
        "failed-reasons": failed_reasons_chart(report),
        "claims": claims_chart(report),
    }


# --- the PDF copy ----------------------------------------------------------------------------


class _ReportPdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._title = title
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(18, 18, 18)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(107, 114, 128)
        self.cell(0, 5, _pdf_text(f"{self._title} - page {self.page_no()} of {{nb}}"), align="C")


def render_report_pdf(
    report: Report,
    charts: dict[str, bytes],
    *,
    client_name: str,
    issuer: str,
    as_of: dt.datetime,
) -> bytes:
    title = f"Weekly performance report {report.period}"
    pdf = _ReportPdf(title)
    pdf.set_creation_date(as_of.astimezone(dt.UTC).replace(microsecond=0))
    pdf.set_title(_pdf_text(title))
    pdf.set_author(_pdf_text(issuer))
    pdf.set_subject(_pdf_text(f"{title} for {client_name}"))
    pdf.alias_nb_pages()
    pdf.add_page()
    f = report.figures
    pdf.set_font("Helvetica", style="B", size=18)
    pdf.cell(0, 9, _pdf_text(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=10)
    pdf.cell(
        0,
        6,
        _pdf_text(
            f"{client_name} (client {report.client_id}), {f.start.isoformat()} to "
            f"{f.end.isoformat()} ({report.timezone})"
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(3)
    _figures_table(pdf, figure_table(report), [t.period for t in report.trend])
    pdf.ln(4)
    for name in CHART_NAMES:
        if name in charts:
            if pdf.get_y() > 190:
                pdf.add_page()
            pdf.image(io.BytesIO(charts[name]), w=170)
            pdf.ln(3)
    pdf.set_font("Helvetica", size=8)
    pdf.multi_cell(
        0,
        4,
        _pdf_text(
            "Rates are rounded half-up to 0.1%, claims per 1,000 stops to 0.01, hours to 0.1; "
            "'no data' where a figure has nothing to divide by. Every stop and case behind "
            f"these figures is in the attached CSV. Computed {as_of.isoformat()} by {issuer}."
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    return bytes(pdf.output())


def _figures_table(pdf: FPDF, lines: Sequence[FigureLine], trend_periods: Sequence[str]) -> None:
    pdf.set_font("Helvetica", size=8)
    with pdf.table(
        col_widths=(58, 24, 24, 68),
        text_align=("LEFT", "RIGHT", "RIGHT", "LEFT"),
        headings_style=FontFace(emphasis="BOLD", fill_color=(229, 231, 235)),
        line_height=4.5,
    ) as table:
        heading = table.row()
        for text in (
            "Figure",
            "This week",
            "Week before",
            "4 weeks: " + " | ".join(_week_label(p) for p in trend_periods),
        ):
            heading.cell(_pdf_text(text))
        for line in lines:
            row = table.row()
            row.cell(_pdf_text(line.name))
            row.cell(_pdf_text(line.current))
            row.cell(_pdf_text(line.previous))
            row.cell(_pdf_text(" | ".join(line.trend)))


def render_rows_csv(rows: Sequence[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(ROW_COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
