"""The figures of a VAT return, from the service's own invoices (docs/EINVOICE.md, "VAT return").

A chain is an original and the invoices that reference it. It counts in the period of its
original's issue day, at its effective VAT:
- nothing, once the original is cancelled;
- otherwise the VAT of its latest correction (each correction restates the whole invoice), or the
  original's when there is none, less the VAT of its sales returns.
A correction or a return issued later therefore restates the original's period: the VAT return of
that period no longer matches (its signed `declared` figures differ), and the business amends it.

Output VAT sums the chains the taxpayer sold; input VAT the chains it bought whose latest
answerable invoice (latest correction, else the original) the buyer accepted, or did not answer
within its window (deemed accepted). The credit brought forward is the negative balance of the
previous period's accepted return.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import Connection, and_, select

from signatures.errors import FieldError
from tax import filing_store
from tax.calendar import Period, period_containing
from tax.errors import TaxFieldError
from tax.invoice_schema import tax_invoices
from tax.invoice_store import (
    Decision,
    InvoiceStatus,
    StoredInvoice,
    decision_on,
    invoices_referencing,
    stored_of,
)
from tax.rulepack import RulePack
from tax.vat import VAT, VatFigures

# Originals one side of one period may hold for a VAT return computed here; beyond, the return
# is refused (rule too_many_invoices) rather than read without bound.
MAX_PERIOD_INVOICES = 200_000
_COUNTED = (Decision.ACCEPTED, Decision.DEEMED_ACCEPTED)


def figures(
    conn: Connection, pack: RulePack, *, taxpayer: str, period: Period, today: date
) -> VatFigures:
    """Output and input VAT of `taxpayer` in `period`, and the credit brought forward.

    Raises TaxFieldError (/payload/period, too_many_invoices) beyond MAX_PERIOD_INVOICES."""
    sold = _originals(conn, pack, period, seller=taxpayer)
    bought = _originals(conn, pack, period, buyer=taxpayer)
    output, sales = _effective(conn, sold, today=today, buyer_side=False)
    input_vat, purchases = _effective(conn, bought, today=today, buyer_side=True)
    return VatFigures(
        output, sales, input_vat, purchases, _brought_forward(conn, pack, taxpayer, period)
    )


def _originals(
    conn: Connection,
    pack: RulePack,
    period: Period,
    *,
    seller: str | None = None,
    buyer: str | None = None,
) -> list[StoredInvoice]:
    c = tax_invoices.c
    side = c.seller == seller if seller is not None else c.buyer == buyer
    query = (
        select(tax_invoices)
        .where(
            and_(
                side,
                c.jurisdiction == pack.jurisdiction,
                c.subtype == "original",
                c.status == InvoiceStatus.ISSUED,
                c.issued_on >= period.start,
                c.issued_on <= period.end,
            )
        )
        .order_by(c.issued_at, c.tax_id)
        .limit(MAX_PERIOD_INVOICES + 1)
    )
    rows = [stored_of(row) for row in conn.execute(query).all()]
    if len(rows) > MAX_PERIOD_INVOICES:
        message = f"more than {MAX_PERIOD_INVOICES} invoices on one side of one period"
        raise TaxFieldError((FieldError("/payload/period", "too_many_invoices", message),))
    return rows


def _effective(
    conn: Connection, originals: Sequence[StoredInvoice], *, today: date, buyer_side: bool
) -> tuple[int, int]:
    """(Σ effective VAT, invoices counted) over the chains of `originals`."""
    followers = invoices_referencing(conn, [o.tax_id for o in originals])
    total = counted = 0
    for original in originals:
        chain = followers.get(original.tax_id, [])
        corrections = [i for i in chain if i.subtype == "corrective"]
        returns = [i for i in chain if i.subtype == "sales_return"]
        latest = corrections[-1] if corrections else original
        if buyer_side and decision_on(latest, today) not in _COUNTED:
            continue
        total += latest.vat_minor - sum(r.vat_minor for r in returns)
        counted += 1 + len(corrections) + len(returns)
    return total, counted


def _brought_forward(conn: Connection, pack: RulePack, taxpayer: str, period: Period) -> int:
    previous = period_containing(pack, period.start - timedelta(days=1), kind=period.kind)
    head = filing_store.head_of(
        conn, taxpayer=taxpayer, jurisdiction=pack.jurisdiction, kind=VAT, period=previous.label
    )
    return 0 if head is None else max(head.credits_minor - head.tax_minor, 0)
