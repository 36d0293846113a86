"""The registry of transaction types: each declares its payload rules, who may submit it, and
the handler that applies it. Domains add types here without touching the pipeline.

A handler runs inside the batch's write transaction, within its own SAVEPOINT, with the signature
already verified; it raises its package's error to refuse (nothing it wrote survives), or returns
the domain result (hashed into the ledger leaf, stored beside it for the owner):

    handler(conn, envelope, *, tx_id, accepted_at, ledger_index) -> dict[str, JsonValue]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from api.auth import Role
from api.payments.runtime import PaymentsRuntime
from licences.types import LicenceTypeBook, default_licence_types
from payments import handlers as payment_handlers
from payments.fees import load_default_fee_schedules
from signatures import registry_handlers, registry_payloads
from signatures.canonical import MAX_JSON_BYTES, JsonValue
from signatures.envelope import Envelope
from signatures.jwk import PublicJwk
from signatures.registry_handlers import Handler
from tax import handlers as tax_handlers
from tax import vat_handlers


@dataclass(frozen=True)
class TransactionType:
    """One transaction type.

    roles: the caller must hold one of them (function-level authorisation).
    on_behalf: whether a delegate may sign it for a legal entity (`on_behalf_of`).
    validate_payload: pure; raises signatures.errors.EnvelopeError naming /payload/... fields.
    possession_key: for a registration, the key the JWS must verify with (proof of possession)
    instead of a registered one; None for every other type.
    after_commit: work that must follow the commit but may not run under the ledger lock (a
    payment's charge at its provider): called with the transaction id and envelope once the
    transaction is recorded, and again on every idempotent retry of it, so it must be
    idempotent. Its failure does not undo the transaction; it is logged.
    """

    name: str
    version: int
    roles: frozenset[Role]
    on_behalf: bool
    validate_payload: Callable[[Envelope], object]
    handler: Handler
    possession_key: Callable[[Envelope], PublicJwk] | None = None
    changes_keys: bool = False
    after_commit: Callable[[str, Envelope], None] | None = None
    # The largest canonical envelope of this type (413 envelope-too-large beyond): 64 KiB but for
    # the types that carry a batch, up to signatures.jws.MAX_PAYLOAD_BYTES.
    max_envelope_bytes: int = MAX_JSON_BYTES


class TypeRegistry:
    """Transaction types by name. Registering a name twice is a programming error."""

    def __init__(self, types: Iterable[TransactionType] = ()) -> None:
        self._types: dict[str, TransactionType] = {}
        for t in types:
            self.register(t)

    def register(self, transaction_type: TransactionType) -> None:
        if transaction_type.name in self._types:
            raise ValueError(f"transaction type {transaction_type.name} is already registered")
        self._types[transaction_type.name] = transaction_type

    def get(self, name: str) -> TransactionType | None:
        return self._types.get(name)

    def names(self) -> list[str]:
        return sorted(self._types)


_HOLDERS = frozenset({Role.CITIZEN, Role.BUSINESS, Role.AGENCY})
_ENTITIES = frozenset({Role.BUSINESS})


def _key_types(handlers: Mapping[str, Handler]) -> list[TransactionType]:
    parsers = registry_payloads.PAYLOAD_PARSERS
    return [
        TransactionType(
            name="key.register",
            version=1,
            roles=_HOLDERS,
            on_behalf=False,
            validate_payload=parsers["key.register"],
            handler=handlers["key.register"],
            possession_key=registry_payloads.registration_jwk,
            changes_keys=True,
        ),
        *(
            TransactionType(
                name=name,
                version=1,
                roles=_HOLDERS,
                on_behalf=True,
                validate_payload=parsers[name],
                handler=handlers[name],
                changes_keys=True,
            )
            for name in ("key.revoke", "key.suspend", "key.reinstate")
        ),
        *(
            TransactionType(
                name=name,
                version=1,
                roles=_ENTITIES,
                on_behalf=False,
                validate_payload=parsers[name],
                handler=handlers[name],
            )
            for name in ("delegation.grant", "delegation.revoke")
        ),
    ]


_AGENCIES = frozenset({Role.AGENCY})
_PAYERS = frozenset({Role.CITIZEN, Role.BUSINESS})


def payment_types(runtime: PaymentsRuntime) -> list[TransactionType]:
    """bill.issue, fee.issue and refund.create (agencies) and payment.create (payers; a business
    representative pays for the entity with on_behalf_of). A payment's charge and a refund's
    provider call follow the commit (runtime.charge, runtime.refund)."""
    config = runtime.config
    h = payment_handlers

    def bill(conn: Connection, envelope: Envelope, **at: Any) -> dict[str, JsonValue]:
        return h.handle_bill_issue(conn, envelope, config=config, **at)

    def fee(conn: Connection, envelope: Envelope, **at: Any) -> dict[str, JsonValue]:
        return h.handle_fee_issue(conn, envelope, config=config, **at)

    def pay(conn: Connection, envelope: Envelope, **at: Any) -> dict[str, JsonValue]:
        return h.handle_payment_create(conn, envelope, config=config, **at)

    def agency_type(
        name: str, validate: Callable[[Envelope], object], handler: Any
    ) -> TransactionType:
        return TransactionType(name, 1, _AGENCIES, False, validate, handler)

    return [
        agency_type("bill.issue", lambda e: h.parse_bill_issue(e, config=config), bill),
        agency_type("fee.issue", h.parse_fee_issue, fee),
        TransactionType(
            "payment.create",
            1,
            _PAYERS,
            True,
            lambda e: h.parse_payment_create(e, config=config),
            pay,
            after_commit=runtime.charge,
        ),
        TransactionType(
            "refund.create",
            1,
            _AGENCIES,
            False,
            h.parse_refund_create,
            h.handle_refund_create,
            after_commit=runtime.refund,
        ),
    ]


def tax_types() -> list[TransactionType]:
    """tax.return.personal (a person files its own), tax.return.corporate and tax.return.vat (a
    legal entity, or a representative it delegated the type to, with on_behalf_of)."""

    def kind_type(name: str, roles: frozenset[Role], on_behalf: bool) -> TransactionType:
        kind = tax_handlers.RETURN_TYPES[name]

        def handler(conn: Connection, envelope: Envelope, **at: Any) -> dict[str, JsonValue]:
            return tax_handlers.handle_return(conn, envelope, kind=kind, **at)

        return TransactionType(
            name,
            1,
            roles,
            on_behalf,
            lambda e: tax_handlers.parse_return_envelope(e, kind=kind),
            handler,
        )

    def vat(conn: Connection, envelope: Envelope, **at: Any) -> dict[str, JsonValue]:
        return vat_handlers.handle_vat_return(conn, envelope, **at)

    return [
        kind_type("tax.return.personal", frozenset({Role.CITIZEN}), False),
        kind_type("tax.return.corporate", _ENTITIES, True),
        TransactionType("tax.return.vat", 1, _ENTITIES, True, vat_handlers.parse_vat_envelope, vat),
    ]


def default_registry(
    *,
    certificate_trust: registry_handlers.CertificateTrust | None = None,
    payments: PaymentsRuntime | None = None,
    licences: LicenceTypeBook | None = None,
) -> TypeRegistry:
    """Every transaction type the service accepts. Without certificate_trust, a key
    registration presenting an X.509 chain is refused; without payments, no payment type is
    registered (licence renewals still price their fees from the packaged fee schedules).
    `licences` defaults to the packaged licence types."""
    handlers = registry_handlers.make_handlers(certificate_trust=certificate_trust)
    # Imported here: these modules build TransactionType values of this one.
    from api.transactions.licence_types import licence_types
    from api.transactions.tax_types import invoice_types

    types = _key_types(handlers) + tax_types() + invoice_types()
    fee_book = load_default_fee_schedules()
    if payments is not None:
        types += payment_types(payments)
        fee_book = payments.config.fee_book
    types += licence_types(book=licences or default_licence_types(), fee_book=fee_book)
    return TypeRegistry(types)
