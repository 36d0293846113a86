"""The electronic-invoice transaction types (tax.invoice.submit, tax.invoice.respond), for the
registry (api.transactions.registry) to add to its default types.

Both are signed by the party itself or by a representative it delegated the type to
(`on_behalf_of`). A seller is a subject that files VAT returns in the pack (legal entities:
ir-lid, ee-rg); a buyer that answers may be any identified subject.
"""

from __future__ import annotations

from api.auth import Role
from api.transactions.registry import TransactionType
from signatures.jws import MAX_PAYLOAD_BYTES
from tax import invoice_handlers

_PARTIES = frozenset({Role.BUSINESS, Role.CITIZEN})


def invoice_types() -> list[TransactionType]:
    """tax.invoice.submit (a batch of up to 1,000 invoices, by their seller; its envelope may
    reach signatures.jws.MAX_PAYLOAD_BYTES) and tax.invoice.respond (the buyer accepts or
    rejects one invoice)."""
    return [
        TransactionType(
            invoice_handlers.SUBMIT_TYPE,
            1,
            _PARTIES,
            True,
            invoice_handlers.parse_submit_envelope,
            invoice_handlers.handle_invoice_submit,
            # A batch of up to 1,000 invoices: about 0.45 MB with one line each, 0.6 MB with two.
            max_envelope_bytes=MAX_PAYLOAD_BYTES,
        ),
        TransactionType(
            invoice_handlers.RESPOND_TYPE,
            1,
            _PARTIES,
            True,
            invoice_handlers.parse_respond_envelope,
            invoice_handlers.handle_invoice_respond,
        ),
    ]
