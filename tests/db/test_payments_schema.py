"""The migrated database matches payments/schema.py, on SQLite and PostgreSQL.

alembic's autogenerate comparison lists what a migration would have to change to turn the
database into the metadata: for the payments tables it must be nothing. Tables the payments
metadata does not describe (the ledger's, the registry's, alembic_version) are left out of the
comparison, so their absence from payments.schema is not a difference.

Types are compared (compare_type=True): UtcDateTime is a TypeDecorator over
DateTime(timezone=True), and alembic compares a TypeDecorator by its impl, so the migration's
plain sa.DateTime(timezone=True) columns agree with it and no special handling is needed.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    ForeignKeyConstraint,
    Index,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

from payments import schema


def _differences(engine: Engine, metadata: MetaData) -> list[Any]:
    tables = set(metadata.tables)

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        return type_ != "table" or name in tables

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name}
        )
        return list(compare_metadata(context, metadata))


def test_migration_matches_payments_schema(engine: Engine) -> None:
    assert _differences(engine, schema.metadata) == []


def test_the_comparison_sees_a_difference(engine: Engine) -> None:
    """The check above can fail: each drift of the metadata from the migration is reported."""
    changed = MetaData()
    for table in schema.metadata.tables.values():
        table.to_metadata(changed)
    refunds = changed.tables["refunds"]
    refunds.append_column(Column("note", Text, nullable=True))  # a column
    Index("refunds_state", refunds.c.state)  # an index
    payables = changed.tables["payables"]
    Table("payables", changed, Column("reference", BigInteger), extend_existing=True)  # a type
    payables.constraints -= {c for c in payables.constraints if isinstance(c, UniqueConstraint)}
    events = changed.tables["intent_events"]
    events.c.detail.nullable = True  # nullability
    events.constraints -= {c for c in events.constraints if isinstance(c, ForeignKeyConstraint)}
    assert _kinds(_differences(engine, changed)) == {
        "add_column",
        "add_index",
        "modify_type",
        "remove_constraint",  # the (bill_id, payment_id) unique constraint
        "modify_nullable",
        "remove_fk",
    }


def _kinds(differences: list[Any]) -> set[str]:
    # A difference is a tuple ("add_column", …), or a list of ("modify_…", …) for one column.
    return {str(d[0] if isinstance(d, tuple) else d[0][0]) for d in differences}
