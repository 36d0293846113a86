"""The licence tables, as SQLAlchemy Core metadata (migration 0007_licences creates them).

- licences: one row per licence, created by its licence.issue transaction (whose id it takes)
  in the same database transaction as that transaction's ledger leaf. Afterwards the term
  (valid_from, expires_on; both days inclusive), the stored status (valid | suspended |
  revoked; `expired` is never stored, it is computed from the term and the day) and its reason
  change, always by compare-and-set on ``version``. A type's numbers are unique: the constraint
  makes a second licence with the same number impossible, whatever the caller checked.
- licence_renewals: one row per accepted licence.renew (its transaction id). A renewal waits
  for its fee (``awaiting_payment``) or is ``completed`` at once; one that waited ends
  ``completed`` (its fee paid), ``lapsed`` (not paid by the due day) or ``void`` (the licence
  was revoked first). The partial unique index allows at most one renewal awaiting payment per
  licence, on both databases: two renewals of one licence racing cannot both wait for a fee.
- licence_events: the licence's history, numbered 1, 2, … per licence (issued, suspended,
  reinstated, revoked, renewed, renewal_requested, renewal_lapsed, renewal_void), with the
  signed transaction each event follows from (for a renewal completed by its fee's payment: the
  licence.renew transaction, with reason fee_paid).

Amounts are integer minor units (BigInteger) with an ISO 4217 code beside them; datetimes are
UtcDateTime; dates are the issuing jurisdiction's days, stored as Gregorian dates.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from signatures.registry_schema import UtcDateTime

# The one renewal status the partial unique index counts.
AWAITING_PAYMENT = "awaiting_payment"

metadata = MetaData()

licences = Table(
    "licences",
    metadata,
    Column("id", Text, primary_key=True),  # the id of the licence.issue transaction
    Column("licence_type", Text, nullable=False),  # a licence type code, e.g. ir.driving
    Column("number", Text, nullable=False),  # the agency's licence number
    Column("holder", Text, nullable=False),  # subject text
    Column("issuer", Text, nullable=False),  # agency:<id>
    Column("valid_from", Date, nullable=False),
    Column("expires_on", Date, nullable=False),  # the term's last day
    Column("status", Text, nullable=False),  # valid | suspended | revoked
    Column("status_reason", Text, nullable=True),  # the agency's reason code of the last action
    Column("version", Integer, nullable=False),  # 1, then +1 per change (compare-and-set)
    Column("issued_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),  # the leaf of the licence.issue
    UniqueConstraint("licence_type", "number", name="licences_number_unique"),
    Index("licences_holder", "holder", "issued_at"),
    Index("licences_issuer", "issuer", "issued_at"),
)

_AWAITING = text(f"status = '{AWAITING_PAYMENT}'")

licence_renewals = Table(
    "licence_renewals",
    metadata,
    Column("id", Text, primary_key=True),  # the id of the licence.renew transaction
    Column("licence_id", Text, ForeignKey("licences.id"), nullable=False),
    Column("holder", Text, nullable=False),
    Column("status", Text, nullable=False),  # awaiting_payment | completed | lapsed | void
    Column("payable_id", Text, nullable=True),  # the fee payable; NULL when the type has no fee
    Column("fee_amount_minor", BigInteger, nullable=True),
    Column("fee_currency", Text, nullable=True),
    Column("new_valid_from", Date, nullable=False),  # the term the renewal gives
    Column("new_expires_on", Date, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    Column("ledger_index", BigInteger, nullable=False),  # the leaf of the licence.renew
    Index(
        "licence_renewals_one_awaiting",
        "licence_id",
        unique=True,
        sqlite_where=_AWAITING,
        postgresql_where=_AWAITING,
    ),
    Index("licence_renewals_licence", "licence_id", "requested_at"),
    Index("licence_renewals_payable", "payable_id"),
)

licence_events = Table(
    "licence_events",
    metadata,
    Column("licence_id", Text, ForeignKey("licences.id"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),  # 1, 2, … per licence
    Column("kind", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("tx_id", Text, nullable=True),  # the signed transaction it follows from
    Column("reason", Text, nullable=True),
)
