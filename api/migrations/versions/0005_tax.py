"""Tax: signed returns and their chains of versions.

tax/schema.py describes the same table; tests/db/test_tax_store.py checks the two agree.

Revision ID: 0005_tax
Revises: 0004_payments
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_tax"
down_revision = "0004_payments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tax_filings",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("taxpayer", sa.Text, nullable=False),
        sa.Column("signer", sa.Text, nullable=False),
        sa.Column("jurisdiction", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("amends", sa.Text, nullable=True),
        sa.Column("superseded_by", sa.Text, nullable=True),
        sa.Column("pack_version", sa.Text, nullable=False),
        sa.Column("trace_sha256", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("tax_minor", sa.BigInteger, nullable=False),
        sa.Column("credits_minor", sa.BigInteger, nullable=False),
        sa.Column("due_minor", sa.BigInteger, nullable=False),
        sa.Column("credit_minor", sa.BigInteger, nullable=False),
        sa.Column("due_on", sa.Date, nullable=True),
        sa.Column("first_filed_on", sa.Date, nullable=True),
        sa.Column("payable_id", sa.Text, nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.UniqueConstraint(
            "taxpayer",
            "jurisdiction",
            "kind",
            "period",
            "version",
            name="tax_filings_version_unique",
        ),
    )
    op.create_index("tax_filings_taxpayer", "tax_filings", ["taxpayer", "submitted_at"])


def downgrade() -> None:
    op.drop_table("tax_filings")
