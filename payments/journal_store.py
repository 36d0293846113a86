"""Storage of the double-entry book (payments.schema.journal_entries, journal_postings).

An entry is written once and never updated: its entry_id is deterministic (payment:<intent>,
refund:<refund>, fee:<reference>), and post_entry inserts it with ON CONFLICT DO NOTHING, so
booking the same movement twice, even from two racing transactions, books it once. Balances are
always sums of postings, never stored.

Every function takes a Connection inside the caller's transaction and never commits; none
raises IntegrityError in normal use (a failed statement would abort a whole PostgreSQL
transaction, which runs without savepoints).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, date

from sqlalchemy import Connection, Insert, Row, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from payments.journal import (
    AccountKind,
    JournalEntry,
    Posting,
    account_id,
    is_balanced,
    make_entry,
)
from payments.providers import SettlementKind
from payments.reconciliation import MAX_RECONCILIATION_RECORDS, BookedMovement
from payments.schema import journal_entries, journal_postings
from signatures.registry_schema import as_utc

__all__ = [
    "MAX_BALANCE_ACCOUNTS",
    "balances",
    "book_totals",
    "booked_movements",
    "get_entry",
    "insert_unless_present",
    "post_entry",
]

# Accounts one balances() call may name: an IN list far below the drivers' limits.
MAX_BALANCE_ACCOUNTS = 1000
# The accounts reconciliation shows an agency (payments.reconciliation.filter_for_agency).
_AGENCY_PREFIXES = (f"{AccountKind.AGENCY_REVENUE.value}:", f"{AccountKind.AGENCY_REFUNDS.value}:")

_Row = Row[tuple[object, ...]]


def insert_unless_present(conn: Connection, table: Table, values: Mapping[str, object]) -> bool:
    """INSERT one row … ON CONFLICT (primary key) DO NOTHING; True if the row was inserted.

    On PostgreSQL a racing insert of the same key waits for the first transaction and then does
    nothing (or inserts, if the first rolled back): no unique violation aborts the caller's
    transaction. Raises ValueError for a database other than SQLite or PostgreSQL.
    """
    key = list(table.primary_key.columns)
    statement: Insert
    if conn.dialect.name == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
    elif conn.dialect.name == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=key)
    else:
        raise ValueError(f"no ON CONFLICT insert for the {conn.dialect.name} dialect")
    # RETURNING says whether the row went in: an INSERT's rowcount is not reliable across
    # drivers (psycopg reports -1 here unless SQLAlchemy is told to preserve it).
    inserted = conn.execute(statement.values(**values).returning(*key)).first()
    return inserted is not None


def post_entry(
    conn: Connection,
    entry: JournalEntry,
    *,
    provider: str | None = None,
    provider_ref: str | None = None,
    movement: SettlementKind | None = None,
) -> bool:
    """Book `entry` (booked_on = the UTC date of occurred_at) and its postings, lines 0..n-1.

    `provider` and `provider_ref` say which provider's charge or refund moved the money;
    `movement` (charge or refund) makes the entry a line of that provider's reconciliation, and
    then needs both, and exactly one posting on provider_clearing:<provider>. Returns False, and
    writes nothing, when an entry with this entry_id is already booked.

    Raises ValueError for a movement without provider, provider_ref or its one
    provider_clearing posting; AssertionError for an unbalanced entry (JournalEntry checks that
    when built, so this is defence in depth against a value built around the check).
    """
    if not is_balanced([entry]):
        raise AssertionError(f"post_entry: entry {entry.entry_id!r} does not balance")
    if movement is not None:
        if provider is None or provider_ref is None:
            raise ValueError("a provider movement needs provider and provider_ref")
        clearing = account_id(AccountKind.PROVIDER_CLEARING, provider)
        if sum(posting.account == clearing for posting in entry.postings) != 1:
            raise ValueError(f"a provider movement has exactly one {clearing} posting")
    header = {
        "entry_id": entry.entry_id,
        "occurred_at": entry.occurred_at,
        "booked_on": entry.occurred_at.astimezone(UTC).date(),
        "cause": entry.cause,
        "reference": entry.reference,
        "provider": provider,
        "provider_ref": provider_ref,
        "movement": None if movement is None else movement.value,
    }
    if not insert_unless_present(conn, journal_entries, header):
        return False
    rows = [
        {
            "entry_id": entry.entry_id,
            "line": line,
            "account": posting.account,
            "amount_minor": posting.amount_minor,
            "currency": posting.currency,
        }
        for line, posting in enumerate(entry.postings)
    ]
    conn.execute(journal_postings.insert(), rows)
    return True


def get_entry(conn: Connection, entry_id: str) -> JournalEntry | None:
    """The entry `entry_id` rebuilt with make_entry (so re-checked), or None.

    Raises JournalEntryError when the stored rows no longer make a valid entry.
    """
    header = conn.execute(
        select(journal_entries).where(journal_entries.c.entry_id == entry_id)
    ).one_or_none()
    if header is None:
        return None
    rows = conn.execute(
        select(journal_postings)
        .where(journal_postings.c.entry_id == entry_id)
        .order_by(journal_postings.c.line)
    ).all()
    return make_entry(
        entry_id=str(header.entry_id),
        occurred_at=as_utc(header.occurred_at),
        cause=str(header.cause),
        reference=str(header.reference),
        postings=[_posting(row) for row in rows],
    )


def _posting(row: _Row) -> Posting:
    return Posting(str(row.account), int(row.amount_minor), str(row.currency))


def balances(
    conn: Connection, *, accounts: Collection[str] | None = None
) -> dict[tuple[str, str], int]:
    """The balance (debit positive) of every (account, currency) with postings, zero sums
    included; only `accounts` when given.

    Raises ValueError when more than MAX_BALANCE_ACCOUNTS accounts are named.
    """
    amount = func.sum(journal_postings.c.amount_minor)
    query = select(journal_postings.c.account, journal_postings.c.currency, amount).group_by(
        journal_postings.c.account, journal_postings.c.currency
    )
    if accounts is not None:
        if len(accounts) > MAX_BALANCE_ACCOUNTS:
            raise ValueError(f"balances() names at most {MAX_BALANCE_ACCOUNTS} accounts")
        query = query.where(journal_postings.c.account.in_(sorted(accounts)))
    # PostgreSQL sums BIGINT as NUMERIC (a Decimal): int() makes both databases agree.
    return {(str(a), str(c)): int(total) for a, c, total in conn.execute(query).all()}


def book_totals(conn: Connection) -> dict[str, int]:
    """Per currency, the sum of every posting: 0 in a sound book (each entry balances)."""
    amount = func.sum(journal_postings.c.amount_minor)
    query = select(journal_postings.c.currency, amount).group_by(journal_postings.c.currency)
    return {str(currency): int(total) for currency, total in conn.execute(query).all()}


def booked_movements(conn: Connection, *, provider: str, day: date) -> list[BookedMovement]:
    """What the book says moved through `provider` on the UTC day `day`, for reconcile().

    One BookedMovement per entry posted with that provider, that booked_on and a movement:
    amount_minor is the absolute provider_clearing:<provider> posting (currency its currency),
    agency_accounts the sorted distinct agency_revenue:/agency_refunds: accounts of the entry.
    At most MAX_RECONCILIATION_RECORDS + 1 entries are read, so that reconcile() refuses an
    oversized day (too_many_records) instead of this loading it all. Ordered by entry_id.
    """
    entries = (
        select(journal_entries.c.entry_id)
        .where(
            journal_entries.c.provider == provider,
            journal_entries.c.booked_on == day,
            journal_entries.c.movement.is_not(None),
        )
        .order_by(journal_entries.c.entry_id)
        .limit(MAX_RECONCILIATION_RECORDS + 1)
        .subquery()
    )
    query = (
        select(
            journal_entries,
            journal_postings.c.account,
            journal_postings.c.amount_minor,
            journal_postings.c.currency,
        )
        .select_from(journal_entries)
        .join(entries, entries.c.entry_id == journal_entries.c.entry_id)
        .join(journal_postings, journal_postings.c.entry_id == journal_entries.c.entry_id)
        .order_by(journal_entries.c.entry_id, journal_postings.c.line)
    )
    grouped: dict[str, list[_Row]] = defaultdict(list)
    for row in conn.execute(query).all():
        grouped[str(row.entry_id)].append(row)
    clearing = account_id(AccountKind.PROVIDER_CLEARING, provider)
    return [_movement(rows, clearing=clearing, day=day) for rows in grouped.values()]


def _movement(rows: list[_Row], *, clearing: str, day: date) -> BookedMovement:
    first = rows[0]
    # post_entry refuses a movement without exactly one clearing posting.
    (clearing_row,) = (row for row in rows if row.account == clearing)
    agency_accounts = sorted(
        {str(row.account) for row in rows if str(row.account).startswith(_AGENCY_PREFIXES)}
    )
    return BookedMovement(
        provider=str(first.provider),
        provider_ref=str(first.provider_ref),
        kind=SettlementKind(first.movement),
        amount_minor=abs(int(clearing_row.amount_minor)),
        currency=str(clearing_row.currency),
        booked_on=day,
        entry_id=str(first.entry_id),
        agency_accounts=tuple(agency_accounts),
    )
