"""The electronic-invoice tables, as SQLAlchemy Core metadata (migration 0006_invoices creates
them). Its own MetaData: tax/schema.py describes the E-tax I tables and stays unchanged.

- tax_invoices: one row per RECORDED invoice (a batch's invalid invoices are not stored here:
  they live, with their errors, in the result of the transaction that carried them). Written in
  the same database transaction as the ledger leaf of that transaction; afterwards only
  ``status`` (``issued`` → ``cancelled``, by a cancellation invoice) and the buyer's decision
  (``decision``, ``decided_at``, ``decision_tx_id``: ``pending`` → ``accepted`` | ``rejected``,
  once) change. ``deemed_accepted`` is never stored: it is a pending decision whose
  ``respond_by`` day has passed, computed when read.
  ``decision`` is NULL when no buyer decides: a type-2 invoice (buyer not identified), a
  cancellation or a sales return.
  ``respond_by`` is the last day (pack time zone) the buyer may answer: the issue day plus the
  pack's ``invoice.response_window_days`` in force on the issue day, fixed when recorded.
  ``body`` is the RFC 8785 canonical JSON of the invoice exactly as the seller signed it.
- tax_memory_ids: which seller a memory ID (the first 6 characters of a tax ID) belongs to. The
  first seller that records an invoice under it owns it (trust on first use): a tax ID's day and
  serial are the seller's own sequence, so two sellers sharing a memory ID could issue the same
  tax ID.

Amounts are integer minor units (BigInteger) in the pack's currency.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, MetaData, Table, Text

from signatures.registry_schema import UtcDateTime

metadata = MetaData()

tax_invoices = Table(
    "tax_invoices",
    metadata,
    Column("tax_id", Text, primary_key=True),  # 22 characters (tax.tax_ids)
    Column("jurisdiction", Text, nullable=False),
    Column("seller", Text, nullable=False),  # subject text
    Column("signer", Text, nullable=False),  # the seller or its representative
    Column("buyer", Text, nullable=True),  # NULL for type 2 (buyer not identified)
    Column("invoice_type", Integer, nullable=False),  # 1 | 2
    Column("pattern", Integer, nullable=False),
    Column("subtype", Text, nullable=False),  # original | corrective | cancellation | sales_return
    Column("reference_tax_id", Text, nullable=True),  # the ORIGINAL's tax ID, else NULL
    Column("issued_at", UtcDateTime, nullable=False),
    Column("issued_on", Date, nullable=False),  # the issue day in the pack's time zone
    Column("status", Text, nullable=False),  # issued | cancelled
    Column("decision", Text, nullable=True),  # pending | accepted | rejected; NULL: none due
    Column("respond_by", Date, nullable=True),  # NULL when no decision is due
    Column("decided_at", UtcDateTime, nullable=True),
    Column("decision_tx_id", Text, nullable=True),
    Column("currency", Text, nullable=False),
    Column("before_discount_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("after_discount_minor", BigInteger, nullable=False),
    Column("vat_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    Column("tx_id", Text, nullable=False),  # the tax.invoice.submit transaction that carried it
    Column("body", Text, nullable=False),
    # Listing newest first by (issued_at, tax_id), for each side.
    Index("tax_invoices_seller", "seller", "issued_at", "tax_id"),
    Index("tax_invoices_buyer", "buyer", "issued_at", "tax_id"),
    # An original's corrections, returns and cancellation.
    Index("tax_invoices_reference", "reference_tax_id"),
)

tax_memory_ids = Table(
    "tax_memory_ids",
    metadata,
    Column("memory_id", Text, primary_key=True),  # 6 characters [A-Z0-9]
    Column("seller", Text, nullable=False),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("tx_id", Text, nullable=False),  # the transaction that bound it
)
