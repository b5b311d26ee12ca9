"""An invoice as the client receives it: the PDF (fpdf2) and the CSV of every stop it bills.

Both are rendered from the invoice as recorded (`InvoiceSheet`, built from the invoice tables),
never re-priced: what the PDF says is what the database holds. Money is shown with the
currency's own minor units ("1,234.50 GBP", "150,000 JPY"; babel, through
`activities.rendering.money`). The PDF is A4 with the standard Helvetica fonts (nothing
embedded): text outside Windows-1252 is shown with its closest plain letters, or `?`. The
same invoice renders to the same bytes (the PDF's dates are the invoice's own).

The CSV is UTF-8, comma-separated, RFC 4180 quoting, one header row, one row per stop in the
order they were billed; amounts are exact decimal strings in the invoice's currency.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from activities.rendering import human_date, money


@dataclass(frozen=True)
class SheetLine:
    kind: str
    description: str
    zone: str | None
    quantity: int
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class SheetTax:
    tax_rate: Decimal
    taxable: Decimal
    amount: Decimal


@dataclass(frozen=True)
class SheetStop:
    shipment_id: str
    attempt_number: int
    attempted_at: dt.datetime
    local_date: dt.date
    outcome: str
    zone: str | None
    residential: bool | None
    agreement_effective_from: dt.date
    base_rate: Decimal
    zone_rate: Decimal
    residential_surcharge: Decimal
    failed_attempt_fee: Decimal
    amount: Decimal


@dataclass(frozen=True)
class InvoiceSheet:
    """An invoice as recorded, ready to render."""

    invoice_id: str
    client_id: str
    client_name: str
    timezone: str
    period_start: dt.date
    period_end: dt.date
    issued_on: dt.date
    due_on: dt.date
    payment_terms_days: int
    currency: str
    lines: Sequence[SheetLine]
    stops_total: Decimal
    minimum_charge: Decimal
    subtotal: Decimal
    taxes: Sequence[SheetTax]
    tax: Decimal
    total: Decimal
    stops: Sequence[SheetStop]
    issuer: str


def _pdf_text(text: str) -> str:
    """Text the standard fonts can show (Windows-1252): accents kept where the encoding has
    them, other letters reduced to their base letter, anything else `?`."""
    try:
        text.encode("cp1252")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for char in text:
        try:
            char.encode("cp1252")
            out.append(char)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("cp1252", "ignore").decode("cp1252")
            out.append(base or "?")
    return "".join(out)


def percent(rate: Decimal) -> str:
    """Decimal("0.20") -> "20%", Decimal("0.175") -> "17.5%"."""
    shown = format((rate * 100).normalize(), "f")
    return f"{shown}%"


_KIND_LABELS = {
    "delivered_stop": "Delivered stops",
    "failed_attempt": "Failed delivery attempts",
    "minimum_charge": "Minimum charge",
}


class _InvoicePdf(FPDF):
    def __init__(self, sheet: InvoiceSheet) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._sheet = sheet
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(18, 18, 18)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(107, 114, 128)
        self.cell(
            0,
            5,
            _pdf_text(f"{self._sheet.invoice_id} - page {self.page_no()} of {{nb}}"),
            align="C",
        )


def render_invoice_pdf(sheet: InvoiceSheet) -> bytes:
    """The invoice: who and when, a table of its lines by kind and zone, the totals (stops,
    minimum-charge uplift, subtotal, tax per rate, total) and the payment terms."""
    pdf = _InvoicePdf(sheet)
    issued = dt.datetime.combine(sheet.issued_on, dt.time(0), tzinfo=dt.UTC)
    pdf.set_creation_date(issued)
    pdf.set_title(_pdf_text(f"Invoice {sheet.invoice_id}"))
    pdf.set_author(_pdf_text(sheet.issuer))
    pdf.set_subject(_pdf_text(f"Invoice {sheet.invoice_id} to {sheet.client_name}"))
    pdf.alias_nb_pages()
    pdf.add_page()
    cur = sheet.currency

    pdf.set_font("Helvetica", style="B", size=20)
    pdf.cell(0, 10, "Invoice", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, _pdf_text(f"From {sheet.issuer}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    facts = [
        ("Invoice number", sheet.invoice_id),
        ("Bill to", f"{sheet.client_name} (client {sheet.client_id})"),
        ("Invoice date", human_date(sheet.issued_on)),
        (
            "Billing period",
            f"{human_date(sheet.period_start)} to {human_date(sheet.period_end)} "
            f"({sheet.timezone})",
        ),
        ("Payment terms", f"{sheet.payment_terms_days} days"),
        ("Due date", human_date(sheet.due_on)),
        ("Currency", cur),
    ]
    with pdf.table(
        col_widths=(35, 139),
        first_row_as_headings=False,
        borders_layout="NONE",
        line_height=6,
    ) as table:
        for label, value in facts:
            row = table.row()
            row.cell(label, style=FontFace(emphasis="BOLD"))
            row.cell(_pdf_text(value))
    pdf.ln(6)

    stop_lines = [line for line in sheet.lines if line.kind != "minimum_charge"]
    pdf.set_font("Helvetica", style="B", size=12)
    pdf.cell(0, 8, "Summary by kind and zone", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=9)
    with pdf.table(
        col_widths=(34, 62, 16, 14, 24, 24),
        text_align=("LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=FontFace(emphasis="BOLD", fill_color=(229, 231, 235)),
        line_height=5,
    ) as table:
        heading = table.row()
        for title in ("Kind", "Description", "Zone", "Qty", "Unit price", "Amount"):
            heading.cell(title)
        for line in stop_lines:
            row = table.row()
            row.cell(_KIND_LABELS.get(line.kind, line.kind))
            row.cell(_pdf_text(line.description))
            row.cell(_pdf_text(line.zone or "-"))
            row.cell(str(line.quantity))
            row.cell(money(line.unit_price, cur))
            row.cell(money(line.amount, cur))
    pdf.ln(4)

    totals = [("Stops", money(sheet.stops_total, cur))]
    if sheet.minimum_charge > 0:
        totals.append(("Minimum-charge uplift", money(sheet.minimum_charge, cur)))
    totals.append(("Subtotal", money(sheet.subtotal, cur)))
    for tax in sheet.taxes:
        label = f"Tax at {percent(tax.tax_rate)} on {money(tax.taxable, cur)}"
        totals.append((label, money(tax.amount, cur)))
    if len(sheet.taxes) > 1:
        totals.append(("Tax", money(sheet.tax, cur)))
    totals.append(("Total due", money(sheet.total, cur)))
    pdf.set_font("Helvetica", size=10)
    with pdf.table(
        col_widths=(70, 40),
        width=110,
        align="RIGHT",
        text_align=("LEFT", "RIGHT"),
        first_row_as_headings=False,
        line_height=6,
    ) as table:
        for index, (label, value) in enumerate(totals):
            bold = index == len(totals) - 1
            style = FontFace(emphasis="BOLD") if bold else None
            row = table.row()
            row.cell(label, style=style)
            row.cell(value, style=style)
    pdf.ln(8)

    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(
        0,
        5,
        _pdf_text(
            f"Payment terms: {sheet.payment_terms_days} days. Please pay "
            f"{money(sheet.total, cur)} by {human_date(sheet.due_on)}, quoting "
            f"{sheet.invoice_id}. Every stop this invoice bills ({len(sheet.stops)}) is listed "
            f"with its price in the attached {sheet.invoice_id}.csv."
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    return bytes(pdf.output())


CSV_COLUMNS = (
    "invoice_id",
    "shipment_id",
    "attempt_number",
    "attempted_at",
    "local_date",
    "outcome",
    "zone",
    "residential",
    "agreement_effective_from",
    "base_rate",
    "zone_rate",
    "residential_surcharge",
    "failed_attempt_fee",
    "amount",
    "currency",
)


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def render_invoice_csv(sheet: InvoiceSheet) -> bytes:
    """One row per stop billed; `attempted_at` in UTC (ISO 8601), `local_date` in the client's
    time zone, amounts exact to the currency's minor units. The amounts add up to the stops
    total (before any minimum-charge uplift)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for stop in sheet.stops:
        writer.writerow(
            (
                sheet.invoice_id,
                stop.shipment_id,
                stop.attempt_number,
                stop.attempted_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                stop.local_date.isoformat(),
                stop.outcome,
                stop.zone or "",
                _flag(stop.residential),
                stop.agreement_effective_from.isoformat(),
                format(stop.base_rate, "f"),
                format(stop.zone_rate, "f"),
                format(stop.residential_surcharge, "f"),
                format(stop.failed_attempt_fee, "f"),
                format(stop.amount, "f"),
                sheet.currency,
            )
        )
    return out.getvalue().encode("utf-8")
