"""Payments: payables, intents and their events, provider events, refunds, the double-entry
journal, outbound webhook events and deliveries, and the embedded sandbox provider's records.

payments/schema.py describes the same tables; tests/db/test_payments_schema.py checks the two
agree.

Revision ID: 0004_payments
Revises: 0003_transactions
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_payments"
down_revision = "0003_transactions"
branch_labels = None
depends_on = None

TABLES_IN_DROP_ORDER = (
    "refunds",
    "intent_events",
    "webhook_deliveries",
    "payment_intents",
    "journal_postings",
    "webhook_endpoints",
    "sandbox_refunds",
    "sandbox_charges",
    "provider_events",
    "payables",
    "outbound_events",
    "journal_entries",
)


def upgrade() -> None:
    op.create_table(
        "journal_entries",
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("booked_on", sa.Date, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=True),
        sa.Column("provider_ref", sa.Text, nullable=True),
        sa.Column("movement", sa.Text, nullable=True),
    )
    op.create_index("journal_entries_booked", "journal_entries", ["provider", "booked_on"])
    op.create_table(
        "outbound_events",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("agency", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("outbound_events_agency", "outbound_events", ["agency", "created_at"])
    op.create_table(
        "payables",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("debtor", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("transfers", sa.Text, nullable=False),
        sa.Column("allows_instalments", sa.Boolean, nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("bill_id", sa.Text, nullable=True),
        sa.Column("payment_id", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("paid_minor", sa.BigInteger, nullable=False),
        sa.Column("refunded_minor", sa.BigInteger, nullable=False),
        sa.Column("payments_made", sa.Integer, nullable=False),
        sa.Column("active_intent_id", sa.Text, nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("bill_id", "payment_id", name="payables_bill_payment_unique"),
    )
    op.create_index("payables_debtor", "payables", ["debtor", "issued_at"])
    op.create_index("payables_issuer", "payables", ["issuer", "issued_at"])
    op.create_table(
        "provider_events",
        sa.Column("provider", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("charge_ref", sa.Text, nullable=False),
        sa.Column("intent_id", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
    )
    op.create_index("provider_events_intent", "provider_events", ["intent_id"])
    op.create_table(
        "sandbox_charges",
        sa.Column("provider_ref", sa.Text, primary_key=True),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("intent_id", sa.Text, nullable=False),
        sa.Column("payment_method", sa.Text, nullable=False),
        sa.Column("behaviour", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("failure_code", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_on", sa.Date, nullable=True),
    )
    op.create_index("sandbox_charges_settled", "sandbox_charges", ["settled_on"])
    op.create_table(
        "sandbox_refunds",
        sa.Column("provider_ref", sa.Text, primary_key=True),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("charge_ref", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_on", sa.Date, nullable=False),
    )
    op.create_index("sandbox_refunds_charge", "sandbox_refunds", ["charge_ref"])
    op.create_index("sandbox_refunds_settled", "sandbox_refunds", ["settled_on"])
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("agency", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("hmac_secrets", sa.Text, nullable=False),
        sa.Column("ed25519", sa.Boolean, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("webhook_endpoints_agency", "webhook_endpoints", ["agency"])
    op.create_table(
        "journal_postings",
        sa.Column("entry_id", sa.Text, sa.ForeignKey("journal_entries.entry_id"), primary_key=True),
        sa.Column("line", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
    )
    op.create_index("journal_postings_account", "journal_postings", ["account", "currency"])
    op.create_table(
        "payment_intents",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("payable_id", sa.Text, sa.ForeignKey("payables.id"), nullable=False),
        sa.Column("payer", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("provider_ref", sa.Text, nullable=True),
        sa.Column("last_provider_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_code", sa.Text, nullable=True),
        sa.Column("action_url", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("provider", "provider_ref", name="payment_intents_provider_ref_unique"),
    )
    op.create_index("payment_intents_payable", "payment_intents", ["payable_id"])
    op.create_index("payment_intents_payer", "payment_intents", ["payer", "created_at"])
    op.create_index("payment_intents_state", "payment_intents", ["state", "created_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, sa.ForeignKey("outbound_events.id"), nullable=False),
        sa.Column("endpoint_id", sa.Text, sa.ForeignKey("webhook_endpoints.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("log", sa.Text, nullable=False),
        sa.UniqueConstraint(
            "event_id", "endpoint_id", name="webhook_deliveries_event_endpoint_unique"
        ),
    )
    op.create_index("webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"])
    op.create_table(
        "intent_events",
        sa.Column("intent_id", sa.Text, sa.ForeignKey("payment_intents.id"), primary_key=True),
        sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("from_state", sa.Text, nullable=True),
        sa.Column("to_state", sa.Text, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider_event_id", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("intent_id", sa.Text, sa.ForeignKey("payment_intents.id"), nullable=False),
        sa.Column("payable_id", sa.Text, sa.ForeignKey("payables.id"), nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("provider_ref", sa.Text, nullable=True),
        sa.Column("failure_code", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
    )
    op.create_index("refunds_intent", "refunds", ["intent_id"])
    op.create_index("refunds_payable", "refunds", ["payable_id"])


def downgrade() -> None:
    for name in TABLES_IN_DROP_ORDER:
        op.drop_table(name)
