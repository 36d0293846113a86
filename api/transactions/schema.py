"""Accepted transactions and idempotency keys, as SQLAlchemy Core metadata (migration 0003).

- transactions: one row per accepted transaction, beside its ledger leaf (same leaf_index): the
  canonical envelope, the JWS and the canonical domain result, readable by their owner only.
  (signer, nonce) is unique: a replayed envelope is refused by any worker on any machine.
  receipt_tree_size is the checkpoint the first receipt proved against, so an idempotent retry
  gets the very same receipt back.
- idempotency_keys: (caller, key) → the request's canonical hash and the transaction it made.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

transactions = Table(
    "transactions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("leaf_index", BigInteger, nullable=False, unique=True),
    Column("type", Text, nullable=False),
    Column("signer", Text, nullable=False),
    Column("on_behalf_of", Text, nullable=True),
    Column("owner", Text, nullable=False),
    Column("nonce", Text, nullable=False),
    Column("kid", Text, nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("jws", Text, nullable=False),
    Column("result", Text, nullable=False),
    Column("receipt_tree_size", BigInteger, nullable=False),
    UniqueConstraint("signer", "nonce", name="transactions_signer_nonce_unique"),
    Index("transactions_owner_idx", "owner", "leaf_index"),
    Index("transactions_signer_idx", "signer", "leaf_index"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("caller", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_sha256", LargeBinary(32), nullable=False),
    Column("tx_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("idempotency_keys_created_idx", "created_at"),
)
