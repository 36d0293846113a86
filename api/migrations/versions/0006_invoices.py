"""Electronic invoices: recorded invoices and the memory IDs their sellers hold.

tax/invoice_schema.py describes the same tables; tests/db/test_invoice_store.py checks the two
agree.

Revision ID: 0006_invoices
Revises: 0005_tax
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_invoices"
down_revision = "0005_tax"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tax_invoices",
        sa.Column("tax_id", sa.Text, primary_key=True),
        sa.Column("jurisdiction", sa.Text, nullable=False),
        sa.Column("seller", sa.Text, nullable=False),
        sa.Column("signer", sa.Text, nullable=False),
        sa.Column("buyer", sa.Text, nullable=True),
        sa.Column("invoice_type", sa.Integer, nullable=False),
        sa.Column("pattern", sa.Integer, nullable=False),
        sa.Column("subtype", sa.Text, nullable=False),
        sa.Column("reference_tax_id", sa.Text, nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_on", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=True),
        sa.Column("respond_by", sa.Date, nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_tx_id", sa.Text, nullable=True),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("before_discount_minor", sa.BigInteger, nullable=False),
        sa.Column("discount_minor", sa.BigInteger, nullable=False),
        sa.Column("after_discount_minor", sa.BigInteger, nullable=False),
        sa.Column("vat_minor", sa.BigInteger, nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
        sa.Column("tx_id", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("tax_invoices_seller", "tax_invoices", ["seller", "issued_at", "tax_id"])
    op.create_index("tax_invoices_buyer", "tax_invoices", ["buyer", "issued_at", "tax_id"])
    op.create_index("tax_invoices_reference", "tax_invoices", ["reference_tax_id"])
    op.create_table(
        "tax_memory_ids",
        sa.Column("memory_id", sa.Text, primary_key=True),
        sa.Column("seller", sa.Text, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tx_id", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tax_memory_ids")
    op.drop_table("tax_invoices")
