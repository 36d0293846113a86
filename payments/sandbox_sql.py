"""The sandbox provider's records in SQL (tables sandbox_charges and sandbox_refunds).

SqlSandboxRecords implements payments.sandbox_records.SandboxRecords. Each method is its own
short transaction: the sandbox plays an outside provider, whose records never share a
transaction with ours. put_* insert or replace by provider_ref (ON CONFLICT DO UPDATE).

SandboxProvider serialises its check-then-put steps with an in-process lock only. Two
processes sharing these tables could both pass its refundable check, so put_refund repeats
that check in its own transaction with the charge row locked (FOR UPDATE on PostgreSQL; BEGIN
IMMEDIATE already serialises writers on SQLite) and refuses a refund that would take the
refunds past the charge, as the sandbox itself would. The same race on create_charge (one
idempotency key used by two processes at once) is not closed here: the second put replaces the
first.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, Engine, Row, Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from payments.errors import ProviderError
from payments.providers import ProviderStatus
from payments.sandbox_records import PROVIDER_NAME, Behaviour, SandboxCharge, SandboxRefund
from payments.schema import sandbox_charges, sandbox_refunds

_KEY = "provider_ref"


class SqlSandboxRecords:
    """SandboxRecords over SQL, for a sandbox shared by several API workers."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get_charge(self, provider_ref: str) -> SandboxCharge | None:
        with self._engine.begin() as conn:
            row = conn.execute(
                select(sandbox_charges).where(sandbox_charges.c.provider_ref == provider_ref)
            ).first()
        return None if row is None else _charge_from_row(row)

    def put_charge(self, charge: SandboxCharge) -> None:
        values: dict[str, object] = {
            "provider_ref": charge.provider_ref,
            "idempotency_key": charge.idempotency_key,
            "intent_id": charge.intent_id,
            "payment_method": charge.payment_method,
            "behaviour": charge.behaviour.value,
            "amount_minor": charge.amount_minor,
            "currency": charge.currency,
            "status": charge.status.value,
            "failure_code": charge.failure_code,
            "created_at": charge.created_at,
            "updated_at": charge.updated_at,
            "settled_on": charge.settled_on,
        }
        with self._engine.begin() as conn:
            _upsert(conn, sandbox_charges, values)

    def get_refund(self, provider_ref: str) -> SandboxRefund | None:
        with self._engine.begin() as conn:
            row = conn.execute(
                select(sandbox_refunds).where(sandbox_refunds.c.provider_ref == provider_ref)
            ).first()
        return None if row is None else _refund_from_row(row)

    def put_refund(self, refund: SandboxRefund) -> None:
        """Insert or replace the refund.

        Raises ProviderError(code="no_such_charge") when its charge is not stored, and
        ProviderError(code="amount_too_large") when it and the charge's other refunds would
        exceed the charge (a concurrent refund got there first); nothing is written then.
        """
        values: dict[str, object] = {
            "provider_ref": refund.provider_ref,
            "idempotency_key": refund.idempotency_key,
            "charge_ref": refund.charge_ref,
            "amount_minor": refund.amount_minor,
            "currency": refund.currency,
            "created_at": refund.created_at,
            "settled_on": refund.settled_on,
        }
        with self._engine.begin() as conn:
            _check_refundable(conn, refund)
            _upsert(conn, sandbox_refunds, values)

    def refunds_of(self, charge_ref: str) -> list[SandboxRefund]:
        """The charge's refunds, oldest first (then by reference)."""
        query = (
            select(sandbox_refunds)
            .where(sandbox_refunds.c.charge_ref == charge_ref)
            .order_by(sandbox_refunds.c.created_at, sandbox_refunds.c.provider_ref)
        )
        with self._engine.begin() as conn:
            return [_refund_from_row(row) for row in conn.execute(query)]

    def charges_settled_on(self, day: date) -> list[SandboxCharge]:
        query = (
            select(sandbox_charges)
            .where(sandbox_charges.c.settled_on == day)
            .order_by(sandbox_charges.c.provider_ref)
        )
        with self._engine.begin() as conn:
            return [_charge_from_row(row) for row in conn.execute(query)]

    def refunds_settled_on(self, day: date) -> list[SandboxRefund]:
        query = (
            select(sandbox_refunds)
            .where(sandbox_refunds.c.settled_on == day)
            .order_by(sandbox_refunds.c.provider_ref)
        )
        with self._engine.begin() as conn:
            return [_refund_from_row(row) for row in conn.execute(query)]


def _check_refundable(conn: Connection, refund: SandboxRefund) -> None:
    charge_amount = conn.scalar(
        select(sandbox_charges.c.amount_minor)
        .where(sandbox_charges.c.provider_ref == refund.charge_ref)
        .with_for_update()
    )
    if charge_amount is None:
        raise _refused("no charge has this reference", "no_such_charge")
    others = conn.scalar(
        select(func.coalesce(func.sum(sandbox_refunds.c.amount_minor), 0)).where(
            sandbox_refunds.c.charge_ref == refund.charge_ref,
            sandbox_refunds.c.provider_ref != refund.provider_ref,
        )
    )
    if int(others or 0) + refund.amount_minor > int(charge_amount):
        raise _refused("the refund exceeds the unrefunded amount", "amount_too_large")


def _refused(message: str, code: str) -> ProviderError:
    return ProviderError(f"sandbox: {message}", provider=PROVIDER_NAME, retryable=False, code=code)


def _upsert(conn: Connection, table: Table, values: dict[str, object]) -> None:
    """Insert the row, or replace every column of the row with the same provider_ref."""
    columns = [name for name in values if name != _KEY]
    if conn.dialect.name == "postgresql":
        pg = pg_insert(table).values(values)
        conn.execute(
            pg.on_conflict_do_update(
                index_elements=[_KEY], set_={name: pg.excluded[name] for name in columns}
            )
        )
        return
    lite = sqlite_insert(table).values(values)
    conn.execute(
        lite.on_conflict_do_update(
            index_elements=[_KEY], set_={name: lite.excluded[name] for name in columns}
        )
    )


def _charge_from_row(row: Row[tuple[object, ...]]) -> SandboxCharge:
    m = row._mapping
    settled_on = m["settled_on"]
    failure_code = m["failure_code"]
    return SandboxCharge(
        provider_ref=str(m["provider_ref"]),
        idempotency_key=str(m["idempotency_key"]),
        intent_id=str(m["intent_id"]),
        payment_method=str(m["payment_method"]),
        behaviour=Behaviour(str(m["behaviour"])),
        amount_minor=_as_int(m["amount_minor"]),
        currency=str(m["currency"]),
        status=ProviderStatus(str(m["status"])),
        failure_code=None if failure_code is None else str(failure_code),
        created_at=_as_datetime(m["created_at"]),
        updated_at=_as_datetime(m["updated_at"]),
        settled_on=None if settled_on is None else _as_date(settled_on),
    )


def _refund_from_row(row: Row[tuple[object, ...]]) -> SandboxRefund:
    m = row._mapping
    return SandboxRefund(
        provider_ref=str(m["provider_ref"]),
        idempotency_key=str(m["idempotency_key"]),
        charge_ref=str(m["charge_ref"]),
        amount_minor=_as_int(m["amount_minor"]),
        currency=str(m["currency"]),
        created_at=_as_datetime(m["created_at"]),
        settled_on=_as_date(m["settled_on"]),
    )


def _as_int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError("expected an integer column value")
    return value


def _as_datetime(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError("expected a datetime column value")
    return value


def _as_date(value: object) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError("expected a date column value")
    return value
