"""Tax clearance: whether a taxpayer owes tax that is overdue, from the service's own records.

A service that requires tax clearance (a licence renewal) asks here instead of asking the
citizen for a certificate: the tax payables (kind tax, created by assessments) of the taxpayer
that are still owed, open or partially paid, and whose due day has passed. A payable due on the
day asked about is not overdue yet (it may be paid that day).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection

from payments.payable_store import MAX_DEBTS_LISTED, StoredPayable, unpaid_payables
from payments.payables import PayableKind

__all__ = ["MAX_DEBTS_LISTED", "overdue_tax"]


def overdue_tax(conn: Connection, *, taxpayer: str, on: date) -> list[StoredPayable]:
    """The tax payables of `taxpayer` still owed and due before `on` (the taxpayer is
    cleared when the list is empty), oldest due first, at most MAX_DEBTS_LISTED."""
    return unpaid_payables(conn, debtor=taxpayer, kinds=(PayableKind.TAX,), due_before=on)
