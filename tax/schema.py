"""The tax tables, as SQLAlchemy Core metadata (migration 0005_tax creates them).

- tax_filings: one row per signed return (tax.return.personal, tax.return.corporate), written in
  the same database transaction as its ledger leaf, and never changed afterwards except for
  ``superseded_by``, set when an amendment replaces it. Accepted filings of one obligation
  (taxpayer, jurisdiction, kind, period) form a chain of versions 1, 2, …: the unique constraint
  makes a second version N impossible, whatever the caller checked. A rejected filing has no
  version (NULL, which the constraint does not compare) and never joins the chain.
- ``detail`` is the RFC 8785 canonical JSON of what the filer is shown: the computation with its
  full trace, the issues, the assessment and the difference from the previous version.

Amounts are integer minor units (BigInteger) in the pack's currency.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

from signatures.registry_schema import UtcDateTime

metadata = MetaData()

tax_filings = Table(
    "tax_filings",
    metadata,
    Column("id", Text, primary_key=True),  # the id of the transaction that filed it
    Column("taxpayer", Text, nullable=False),  # subject text: the person or the entity
    Column("signer", Text, nullable=False),  # who signed: the taxpayer or its representative
    Column("jurisdiction", Text, nullable=False),
    Column("kind", Text, nullable=False),  # personal | corporate
    Column("period", Text, nullable=False),  # the pack's period label: 1403, 2025, 2025-03
    Column("status", Text, nullable=False),  # accepted | rejected
    Column("version", Integer, nullable=True),  # 1.. along the chain; NULL when rejected
    Column("amends", Text, nullable=True),  # the filing this one supersedes
    Column("superseded_by", Text, nullable=True),
    Column("pack_version", Text, nullable=False),
    Column("trace_sha256", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    Column("credits_minor", BigInteger, nullable=False),
    Column("due_minor", BigInteger, nullable=False),  # this version's assessment
    Column("credit_minor", BigInteger, nullable=False),
    Column("due_on", Date, nullable=True),
    # The day (in the pack's time zone) the chain's first version was accepted: whether the
    # obligation was met on time. NULL when rejected.
    Column("first_filed_on", Date, nullable=True),
    Column("payable_id", Text, nullable=True),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    Column("detail", Text, nullable=False),
    UniqueConstraint(
        "taxpayer", "jurisdiction", "kind", "period", "version", name="tax_filings_version_unique"
    ),
    Index("tax_filings_taxpayer", "taxpayer", "submitted_at"),
)
