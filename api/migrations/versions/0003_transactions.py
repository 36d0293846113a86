"""Accepted transactions (replay-proof by a unique signer+nonce) and idempotency keys.

Revision ID: 0003_transactions
Revises: 0002_key_registry
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_transactions"
down_revision = "0002_key_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transactions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("leaf_index", sa.BigInteger, nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("signer", sa.Text, nullable=False),
        sa.Column("on_behalf_of", sa.Text, nullable=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("nonce", sa.Text, nullable=False),
        sa.Column("kid", sa.Text, nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("jws", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("receipt_tree_size", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("signer", "nonce", name="transactions_signer_nonce_unique"),
        sa.CheckConstraint("leaf_index >= 0", name="transactions_leaf_index_nonnegative"),
    )
    op.create_index("transactions_owner_idx", "transactions", ["owner", "leaf_index"])
    op.create_index("transactions_signer_idx", "transactions", ["signer", "leaf_index"])
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("tx_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("idempotency_keys_created_idx", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("transactions")
