"""What the sandbox provider remembers: its charges and refunds, and where they are kept.

SandboxRecords is the storage interface of payments.sandbox.SandboxProvider; InMemorySandboxRecords
keeps them in dictionaries (a SQL implementation lives elsewhere). Behaviour is what a magic
payment method makes the sandbox do, recorded on each charge. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from payments.providers import ChargeRequest, ProviderStatus

PROVIDER_NAME = "sandbox"
REF_HEX_CHARS = 24


class Behaviour(StrEnum):
    SUCCESS = "success"
    DECLINE = "decline"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    THREE_DS = "3ds"
    PROVIDER_ERROR = "provider_error"
    TIMEOUT = "timeout"
    WEBHOOK_LATE = "webhook_late"
    WEBHOOK_TWICE = "webhook_twice"
    WEBHOOK_OUT_OF_ORDER = "webhook_out_of_order"
    SETTLEMENT_SHORT = "settlement_short"
    UNKNOWN = "unknown"


def hex_ref(prefix: str, text: str) -> str:
    """A sandbox reference: prefix + REF_HEX_CHARS hex digits of SHA-256(text)."""
    return prefix + hashlib.sha256(text.encode("utf-8")).hexdigest()[:REF_HEX_CHARS]


@dataclass(frozen=True)
class SandboxCharge:
    provider_ref: str
    idempotency_key: str
    intent_id: str
    payment_method: str
    behaviour: Behaviour
    amount_minor: int
    currency: str
    status: ProviderStatus
    failure_code: str | None
    created_at: datetime
    updated_at: datetime  # when the current status was reached
    settled_on: date | None  # the UTC day it succeeded

    def is_same_request(self, request: ChargeRequest) -> bool:
        """True when request is the one this charge was made for (idempotent replay)."""
        mine = (self.intent_id, self.amount_minor, self.currency, self.payment_method)
        theirs = (request.intent_id, request.amount_minor, request.currency, request.payment_method)
        return mine == theirs


@dataclass(frozen=True)
class SandboxRefund:
    provider_ref: str
    idempotency_key: str
    charge_ref: str
    amount_minor: int
    currency: str
    created_at: datetime
    settled_on: date


class SandboxRecords(Protocol):
    """What the sandbox remembers. put_* insert or replace by provider_ref. A shared (SQL)
    implementation must make the refundable check and put_refund one transaction."""

    def get_charge(self, provider_ref: str) -> SandboxCharge | None: ...
    def put_charge(self, charge: SandboxCharge) -> None: ...
    def get_refund(self, provider_ref: str) -> SandboxRefund | None: ...
    def put_refund(self, refund: SandboxRefund) -> None: ...
    def refunds_of(self, charge_ref: str) -> list[SandboxRefund]: ...
    def charges_settled_on(self, day: date) -> list[SandboxCharge]: ...
    def refunds_settled_on(self, day: date) -> list[SandboxRefund]: ...


class InMemorySandboxRecords:
    """SandboxRecords in dictionaries, for tests and the embedded sandbox."""

    def __init__(self) -> None:
        self._charges: dict[str, SandboxCharge] = {}
        self._refunds: dict[str, SandboxRefund] = {}

    def get_charge(self, provider_ref: str) -> SandboxCharge | None:
        return self._charges.get(provider_ref)

    def put_charge(self, charge: SandboxCharge) -> None:
        self._charges[charge.provider_ref] = charge

    def get_refund(self, provider_ref: str) -> SandboxRefund | None:
        return self._refunds.get(provider_ref)

    def put_refund(self, refund: SandboxRefund) -> None:
        self._refunds[refund.provider_ref] = refund

    def refunds_of(self, charge_ref: str) -> list[SandboxRefund]:
        return [r for r in self._refunds.values() if r.charge_ref == charge_ref]

    def charges_settled_on(self, day: date) -> list[SandboxCharge]:
        return [c for c in self._charges.values() if c.settled_on == day]

    def refunds_settled_on(self, day: date) -> list[SandboxRefund]:
        return [r for r in self._refunds.values() if r.settled_on == day]
