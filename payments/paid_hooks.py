"""Work other packages attach to a payable becoming paid, run in the payment's own transaction.

payments may not import the packages above it (licences, tax), yet their state may wait for a
payment: a licence renewal completes when its fee is paid. Such a package registers a hook once
(at start-up, when the service is assembled); payment_flow runs every registered hook right
after it has written a payable as PAID, in the same database transaction, so the payment and
what it completes commit together or not at all.

A hook:
- receives the Connection (inside the transaction, holding the payable's row lock), the paid
  Payable and the time of the payment event;
- must ignore payables that are not its own (every hook sees every paid payable) and be
  idempotent (a payable becomes paid once, but a rolled-back attempt is applied again);
- must not commit, and should not block on other work: it runs while the payable is locked.

A hook that raises propagates: the whole transaction that booked the payment rolls back (the
intent's state, the journal entry, the payable's status and the agency's events with it), and
the provider's answer is applied again by the caller's machinery: a webhook that failed is
answered with an error, so the provider redelivers it; a charge's answer lost this way leaves
the intent created, and the payer's retry of the payment.create (same Idempotency-Key) asks
the provider again with the same charge key and applies the same answer. Until one succeeds the
payment is not booked (reconciliation shows the provider's charge the book lacks): a payment is
never booked without what it completes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from payments.payables import Payable, PayableStatus

__all__ = [
    "MAX_PAID_HOOKS",
    "PaidHook",
    "paid_hooks",
    "register_paid_hook",
    "run_paid_hooks",
    "unregister_paid_hook",
]

PaidHook = Callable[[Connection, Payable, datetime], None]

# Hooks one process may register: a handful of domain packages, each with one hook.
MAX_PAID_HOOKS = 16

_hooks: list[PaidHook] = []


def register_paid_hook(hook: PaidHook) -> None:
    """Run `hook` whenever a payable becomes paid. Registering the same hook again does
    nothing. Raises ValueError past MAX_PAID_HOOKS hooks."""
    if hook in _hooks:
        return
    if len(_hooks) >= MAX_PAID_HOOKS:
        raise ValueError(f"at most {MAX_PAID_HOOKS} paid hooks")
    _hooks.append(hook)


def unregister_paid_hook(hook: PaidHook) -> None:
    """Stop running `hook` (tests); a hook not registered is ignored."""
    if hook in _hooks:
        _hooks.remove(hook)


def paid_hooks() -> tuple[PaidHook, ...]:
    """The registered hooks, in the order they run (registration order)."""
    return tuple(_hooks)


def run_paid_hooks(conn: Connection, payable: Payable, *, at: datetime) -> None:
    """Run every registered hook for `payable`, just written as paid, in registration order.

    Raises ValueError when `payable` is not paid (a programming error), and whatever a hook
    raises (the caller's transaction must then roll back; see the module's docstring).
    """
    if payable.status is not PayableStatus.PAID:
        raise ValueError("paid hooks run for a paid payable only")
    for hook in tuple(_hooks):
        hook(conn, payable, at)
