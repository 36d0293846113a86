"""The licence transaction types, for the registry (api.transactions.registry) to add to its
default types: licence.issue, licence.suspend, licence.reinstate and licence.revoke (by the
issuing agency) and licence.renew (by the holder, or by a representative an entity holder
delegated the type to, with on_behalf_of).

A renewal waiting for its fee completes in the payment's own database transaction, through
payments' paid hooks: registering these types registers that hook (once per process).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from api.auth import Role
from api.transactions.registry import TransactionType
from licences import handlers, renewals
from licences.types import LicenceTypeBook
from payments.fees import FeeBook
from payments.paid_hooks import register_paid_hook
from signatures.canonical import JsonValue
from signatures.envelope import Envelope

_AGENCIES = frozenset({Role.AGENCY})
_HOLDERS = frozenset({Role.CITIZEN, Role.BUSINESS})


def licence_types(*, book: LicenceTypeBook, fee_book: FeeBook) -> list[TransactionType]:
    """The five licence types over `book` (licence types) and `fee_book` (renewal fees)."""
    register_paid_hook(renewals.complete_paid_renewal)

    def issue(conn: Connection, envelope: Envelope, **at: Any) -> dict[str, JsonValue]:
        return handlers.handle_licence_issue(conn, envelope, book=book, **at)

    def renew(conn: Connection, envelope: Envelope, **at: Any) -> dict[str, JsonValue]:
        return renewals.handle_licence_renew(conn, envelope, book=book, fee_book=fee_book, **at)

    def action_type(name: str) -> TransactionType:
        action = handlers.AGENCY_ACTIONS[name]

        def act(conn: Connection, envelope: Envelope, **at: Any) -> dict[str, JsonValue]:
            return handlers.handle_licence_action(conn, envelope, action=action, book=book, **at)

        return TransactionType(name, 1, _AGENCIES, False, handlers.parse_licence_action, act)

    return [
        TransactionType(
            "licence.issue",
            1,
            _AGENCIES,
            False,
            lambda e: handlers.parse_licence_issue(e, book=book),
            issue,
        ),
        *(action_type(name) for name in handlers.AGENCY_ACTIONS),
        TransactionType("licence.renew", 1, _HOLDERS, True, renewals.parse_licence_renew, renew),
    ]
