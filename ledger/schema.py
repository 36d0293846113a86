"""The ledger's tables, as SQLAlchemy Core metadata. The migrations create them; this describes.

- ledger_entries: one row per leaf; `leaf_hash` = SHA-256(0x00 ‖ leaf) is the level-0 node.
- ledger_nodes: every perfect subtree of level ≥ 1, written once when its last leaf arrives.
- ledger_checkpoints: the signed note for every tree size an append produced.
All three are append-only: database triggers refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
)

metadata = MetaData()

entries = Table(
    "ledger_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
)

nodes = Table(
    "ledger_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

APPEND_ONLY_TABLES = ("ledger_entries", "ledger_nodes", "ledger_checkpoints")
