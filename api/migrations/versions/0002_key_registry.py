"""The key registry: signer keys and their events, delegations, registration challenges.

Not append-only, unlike the ledger: these tables hold current state, changed by INSERTs of
events and UPDATEs of revocations and challenges; the history is in the ledger, whose leaves are
the signed transactions behind every row. signatures/registry_schema.py describes the tables.

Revision ID: 0002_key_registry
Revises: 0001_ledger
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_key_registry"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    _signer_keys()
    _key_events()
    _delegations()
    _key_challenges()


def _signer_keys() -> None:
    op.create_table(
        "signer_keys",
        sa.Column("kid", sa.Text, primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("jwk", sa.Text, nullable=False),
        sa.Column("alg", sa.Text, nullable=False),
        sa.Column("assurance", sa.Text, nullable=False),
        sa.Column("not_before", _TIMESTAMP, nullable=False),
        sa.Column("not_after", _TIMESTAMP, nullable=True),
        sa.Column("registered_index", sa.BigInteger, nullable=False),
        sa.Column("x5c", sa.Text, nullable=True),
        sa.CheckConstraint("alg IN ('EdDSA', 'ES256', 'PS256')", name="signer_keys_alg"),
        sa.CheckConstraint(
            "assurance IN ('registered', 'certified')", name="signer_keys_assurance"
        ),
        sa.CheckConstraint("registered_index >= 0", name="signer_keys_index_nonnegative"),
    )
    op.create_index("signer_keys_subject", "signer_keys", ["subject"])


def _key_events() -> None:
    op.create_table(
        "key_events",
        sa.Column("kid", sa.Text, sa.ForeignKey("signer_keys.kid"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
        sa.CheckConstraint("seq >= 0", name="key_events_seq_nonnegative"),
        sa.CheckConstraint(
            "kind IN ('registered', 'suspended', 'reinstated', 'revoked')", name="key_events_kind"
        ),
        sa.CheckConstraint("ledger_index >= 0", name="key_events_index_nonnegative"),
    )


def _delegations() -> None:
    op.create_table(
        "delegations",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("grantor", sa.Text, nullable=False),
        sa.Column("delegate", sa.Text, nullable=False),
        sa.Column("types", sa.Text, nullable=False),
        sa.Column("granted_at", _TIMESTAMP, nullable=False),
        sa.Column("not_after", _TIMESTAMP, nullable=False),
        sa.Column("revoked_at", _TIMESTAMP, nullable=True),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
        sa.Column("revocation_ledger_index", sa.BigInteger, nullable=True),
        sa.CheckConstraint("ledger_index >= 0", name="delegations_index_nonnegative"),
        sa.CheckConstraint(
            "(revoked_at IS NULL) = (revocation_ledger_index IS NULL)",
            name="delegations_revocation_complete",
        ),
    )
    op.create_index("delegations_grantor_delegate", "delegations", ["grantor", "delegate"])
    op.create_index("delegations_delegate", "delegations", ["delegate"])


def _key_challenges() -> None:
    op.create_table(
        "key_challenges",
        sa.Column("challenge", sa.Text, primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("expires_at", _TIMESTAMP, nullable=False),
        sa.Column("consumed_at", _TIMESTAMP, nullable=True),
    )
    op.create_index("key_challenges_subject", "key_challenges", ["subject"])


def downgrade() -> None:
    for table in ("key_challenges", "delegations", "key_events", "signer_keys"):
        op.drop_table(table)
