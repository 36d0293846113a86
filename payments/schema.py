"""The payments tables, as SQLAlchemy Core metadata (migration 0004_payments creates them).

Current state, written in the same database transaction as the ledger leaf of the signed
transaction that caused it (bill.issue, payment.create, refund.create), or by the short
transaction that applies a provider's answer after the signed one committed:

- payables: what is owed; ``active_intent_id`` is the one intent that may still charge it
  (set by payment.create, cleared when that intent ends), so two payments of one bill can
  never both reach the provider.
- payment_intents + intent_events: one attempt to pay, and every change of its state with its
  cause (payments.intents is the rule).
- provider_events: every verified inbound webhook event, unique by (provider, event_id): a
  delivery seen twice is recognised by the primary key, not by reading first.
- refunds: one row per refund.create; ``state`` pending until the provider answers.
- journal_entries + journal_postings: the double-entry book; an entry is written once (its
  entry_id is deterministic: payment:<intent>, refund:<refund>) and never updated.
- outbound_events, webhook_endpoints, webhook_deliveries: events for agencies and their
  at-least-once delivery log (payments.webhook_schedule is the rule).
- sandbox_charges, sandbox_refunds: the embedded sandbox provider's own records (its side
  of the world, as Stripe keeps its own).

Amounts are integer minor units (BigInteger) with an ISO 4217 code beside them; every
datetime column is a UtcDateTime. JSON columns hold RFC 8785 canonical text.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

from signatures.registry_schema import UtcDateTime

metadata = MetaData()

payables = Table(
    "payables",
    metadata,
    Column("id", Text, primary_key=True),  # the id of the transaction that issued it
    Column("kind", Text, nullable=False),
    Column("issuer", Text, nullable=False),  # agency:<id>
    Column("debtor", Text, nullable=False),  # subject text
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column(
        "transfers", Text, nullable=False
    ),  # canonical JSON list of {account, amount_minor, category}
    Column("allows_instalments", Boolean, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("reference", Text, nullable=False),
    Column("bill_id", Text, nullable=True),  # bills only: the bill ID and payment ID
    Column("payment_id", Text, nullable=True),
    Column("status", Text, nullable=False),
    Column("paid_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("payments_made", Integer, nullable=False),
    Column("active_intent_id", Text, nullable=True),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    UniqueConstraint("bill_id", "payment_id", name="payables_bill_payment_unique"),
    Index("payables_debtor", "debtor", "issued_at"),
    Index("payables_issuer", "issuer", "issued_at"),
)

payment_intents = Table(
    "payment_intents",
    metadata,
    Column("id", Text, primary_key=True),  # the id of the payment.create transaction
    Column("payable_id", Text, ForeignKey("payables.id"), nullable=False),
    Column("payer", Text, nullable=False),  # the subject who owns the payment (signer or entity)
    Column("provider", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("sequence", Integer, nullable=False),  # events so far
    Column("provider_ref", Text, nullable=True),
    Column("last_provider_event_at", UtcDateTime, nullable=True),
    Column("failure_code", Text, nullable=True),
    Column("action_url", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    UniqueConstraint("provider", "provider_ref", name="payment_intents_provider_ref_unique"),
    Index("payment_intents_payable", "payable_id"),
    Index("payment_intents_payer", "payer", "created_at"),
    Index("payment_intents_state", "state", "created_at"),
)

intent_events = Table(
    "intent_events",
    metadata,
    Column("intent_id", Text, ForeignKey("payment_intents.id"), primary_key=True),
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("from_state", Text, nullable=True),
    Column("to_state", Text, nullable=False),
    Column("cause", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("provider_event_id", Text, nullable=True),
    Column("detail", Text, nullable=False),
)

provider_events = Table(
    "provider_events",
    metadata,
    Column("provider", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("charge_ref", Text, nullable=False),
    Column("intent_id", Text, nullable=True),  # None: no intent has this charge (yet)
    Column("status", Text, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("outcome", Text, nullable=False),  # payments.intents.ProviderEventOutcome, or "orphan"
    Index("provider_events_intent", "intent_id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Text, primary_key=True),  # the id of the refund.create transaction
    Column("intent_id", Text, ForeignKey("payment_intents.id"), nullable=False),
    Column("payable_id", Text, ForeignKey("payables.id"), nullable=False),
    Column("requested_by", Text, nullable=False),  # agency:<id>
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("state", Text, nullable=False),  # pending, succeeded, failed
    Column("provider_ref", Text, nullable=True),
    Column("failure_code", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    Index("refunds_intent", "intent_id"),
    Index("refunds_payable", "payable_id"),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("entry_id", Text, primary_key=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("booked_on", Date, nullable=False),  # the UTC day of occurred_at
    Column("cause", Text, nullable=False),
    Column("reference", Text, nullable=False),
    Column("provider", Text, nullable=True),  # money through a provider: which, and its ref
    Column("provider_ref", Text, nullable=True),
    Column(
        "movement", Text, nullable=True
    ),  # charge or refund (SettlementKind), for reconciliation
    Index("journal_entries_booked", "provider", "booked_on"),
)

journal_postings = Table(
    "journal_postings",
    metadata,
    Column("entry_id", Text, ForeignKey("journal_entries.entry_id"), primary_key=True),
    Column("line", Integer, primary_key=True, autoincrement=False),
    Column("account", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # + debit, - credit
    Column("currency", Text, nullable=False),
    Index("journal_postings_account", "account", "currency"),
)

outbound_events = Table(
    "outbound_events",
    metadata,
    Column("id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("agency", Text, nullable=False),  # agency:<id> the event is for
    Column("created_at", UtcDateTime, nullable=False),
    Column("body", Text, nullable=False),  # payments.webhook_schedule.encode_event, as sent
    Index("outbound_events_agency", "agency", "created_at"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Text, primary_key=True),
    Column("agency", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("hmac_secrets", Text, nullable=False),  # JSON list, newest first (rotation)
    Column("ed25519", Boolean, nullable=False),  # also sign with the service's webhook key
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("webhook_endpoints_agency", "agency"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Text, primary_key=True),
    Column("event_id", Text, ForeignKey("outbound_events.id"), nullable=False),
    Column("endpoint_id", Text, ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("state", Text, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("log", Text, nullable=False),  # JSON list of attempts and replays, oldest first
    UniqueConstraint("event_id", "endpoint_id", name="webhook_deliveries_event_endpoint_unique"),
    Index("webhook_deliveries_due", "state", "next_attempt_at"),
)

sandbox_charges = Table(
    "sandbox_charges",
    metadata,
    Column("provider_ref", Text, primary_key=True),
    Column("idempotency_key", Text, nullable=False),
    Column("intent_id", Text, nullable=False),
    Column("payment_method", Text, nullable=False),
    Column("behaviour", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("failure_code", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("settled_on", Date, nullable=True),
    Index("sandbox_charges_settled", "settled_on"),
)

sandbox_refunds = Table(
    "sandbox_refunds",
    metadata,
    Column("provider_ref", Text, primary_key=True),
    Column("idempotency_key", Text, nullable=False),
    Column("charge_ref", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("settled_on", Date, nullable=False),
    Index("sandbox_refunds_charge", "charge_ref"),
    Index("sandbox_refunds_settled", "settled_on"),
)

PAYMENTS_TABLES = tuple(metadata.tables)
