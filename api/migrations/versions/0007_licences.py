"""Licences: licences, their renewals (at most one awaiting payment per licence) and events.

licences/schema.py describes the same tables; tests/db/test_licence_store.py checks the two
agree.

Revision ID: 0007_licences
Revises: 0006_invoices
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_licences"
down_revision = "0006_invoices"
branch_labels = None
depends_on = None

# Written out, not imported from licences.schema: a migration keeps the schema of its day.
_AWAITING = sa.text("status = 'awaiting_payment'")


def upgrade() -> None:
    op.create_table(
        "licences",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("licence_type", sa.Text, nullable=False),
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("expires_on", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("licence_type", "number", name="licences_number_unique"),
    )
    op.create_index("licences_holder", "licences", ["holder", "issued_at"])
    op.create_index("licences_issuer", "licences", ["issuer", "issued_at"])
    op.create_table(
        "licence_renewals",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("licence_id", sa.Text, sa.ForeignKey("licences.id"), nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("payable_id", sa.Text, nullable=True),
        sa.Column("fee_amount_minor", sa.BigInteger, nullable=True),
        sa.Column("fee_currency", sa.Text, nullable=True),
        sa.Column("new_valid_from", sa.Date, nullable=False),
        sa.Column("new_expires_on", sa.Date, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "licence_renewals_one_awaiting",
        "licence_renewals",
        ["licence_id"],
        unique=True,
        sqlite_where=_AWAITING,
        postgresql_where=_AWAITING,
    )
    op.create_index("licence_renewals_licence", "licence_renewals", ["licence_id", "requested_at"])
    op.create_index("licence_renewals_payable", "licence_renewals", ["payable_id"])
    op.create_table(
        "licence_events",
        sa.Column("licence_id", sa.Text, sa.ForeignKey("licences.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tx_id", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("licence_events")
    op.drop_table("licence_renewals")
    op.drop_table("licences")
