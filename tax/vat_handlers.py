"""The VAT return's transaction type, tax.return.vat (docs/EINVOICE.md, "VAT return"), and its
preview: both compute from the service's own invoices (tax.vat_store) and go through the same
chain of versions, assessment and payable as every return (tax.handlers.file_return)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import Connection

from signatures.canonical import JsonValue
from signatures.envelope import Envelope
from signatures.errors import EnvelopeError
from tax import filing_store, vat_store
from tax.calendar import Period
from tax.errors import TaxFieldError
from tax.filing_store import StoredFiling
from tax.handlers import (
    Filing,
    assess_outcome,
    check_chain,
    file_return,
    outcome_json,
    require_filer,
    taxpayer_of,
)
from tax.rulepack import RulePack
from tax.trace import Computation
from tax.vat import VAT, VatReturn, compute_vat, parse_vat_return


def parse_vat_filing(payload: JsonValue, *, taxpayer: str) -> tuple[VatReturn, RulePack]:
    """The VAT return and its pack. Raises TaxFieldError (payload), or require_filer's."""
    data, pack = parse_vat_return(payload)
    require_filer(pack, VAT, taxpayer)
    return data, pack


def parse_vat_envelope(envelope: Envelope) -> VatReturn:
    """The pipeline's payload check. Raises EnvelopeError naming /payload/… fields."""
    try:
        return parse_vat_filing(envelope.payload, taxpayer=taxpayer_of(envelope))[0]
    except TaxFieldError as error:
        raise EnvelopeError(error.errors) from None


def _computer(
    conn: Connection, pack: RulePack, data: VatReturn, *, taxpayer: str
) -> Callable[[StoredFiling | None, date], Computation]:
    def compute(head: StoredFiling | None, filed_on: date) -> Computation:
        figures = vat_store.figures(
            conn, pack, taxpayer=taxpayer, period=data.period, today=filed_on
        )
        return compute_vat(pack, data, figures, today=filed_on)

    return compute


def handle_vat_return(
    conn: Connection,
    envelope: Envelope,
    *,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
) -> dict[str, JsonValue]:
    """Record a signed VAT return. Raises EnvelopeError (payload), FilingChainError (amends)."""
    taxpayer = taxpayer_of(envelope)
    try:
        data, pack = parse_vat_filing(envelope.payload, taxpayer=taxpayer)
    except TaxFieldError as error:
        raise EnvelopeError(error.errors) from None
    filing = Filing(envelope, pack, VAT, data.period.label, data.amends, taxpayer)
    return file_return(
        conn,
        filing,
        compute=_computer(conn, pack, data, taxpayer=taxpayer),
        tx_id=tx_id,
        accepted_at=accepted_at,
        ledger_index=ledger_index,
    )


def preview_vat(
    conn: Connection, pack: RulePack, *, taxpayer: str, period: Period, today: date
) -> dict[str, JsonValue]:
    """What filing the period's VAT return today would give, with the figures to sign.

    The preview amends the current head when there is one. Raises FilingChainError
    (chain_too_long) when the chain holds its most versions already."""
    figures = vat_store.figures(conn, pack, taxpayer=taxpayer, period=period, today=today)
    head = filing_store.head_of(
        conn, taxpayer=taxpayer, jurisdiction=pack.jurisdiction, kind=VAT, period=period.label
    )
    data = VatReturn(
        pack.jurisdiction,
        period,
        figures.output_vat_minor,
        figures.input_vat_minor,
        (),
        head.filing_id if head else None,
    )
    check_chain(head, amends=data.amends, version_limit=filing_store.MAX_CHAIN_VERSIONS)
    outcome = assess_outcome(
        pack, compute_vat(pack, data, figures, today=today), head=head, filed_on=today
    )
    return {
        "declared": {
            "output_vat_minor": figures.output_vat_minor,
            "input_vat_minor": figures.input_vat_minor,
        },
        "amends": data.amends,
        "sales": figures.sales,
        "purchases": figures.purchases,
        **outcome_json(pack, outcome, payable_id=None),
    }
