"""The one interface every payment provider sits behind (the embedded sandbox, Stripe).

A provider charges a payment method for a payment intent, refunds, reports what it settled on a
day, and turns its own signed webhooks into normalised events. Every mutating call carries our
deterministic idempotency key, so a retry after a timeout never charges twice.

The values here are plain data; nothing in this module does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol


class ProviderStatus(StrEnum):
    """What the provider says about one charge (a subset of our intent states)."""

    REQUIRES_ACTION = "requires_action"  # e.g. a 3-D Secure challenge
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ChargeRequest:
    """One charge for one payment intent.

    payment_method: the provider's token for the card or account (sandbox magic values are
    documented in docs/PAYMENTS.md). idempotency_key: ours, derived from the intent id, so the
    same intent never makes two charges.
    """

    intent_id: str
    amount_minor: int
    currency: str
    payment_method: str
    idempotency_key: str


@dataclass(frozen=True)
class ChargeResult:
    """The provider's view of a charge. failure_code is set iff status is FAILED."""

    provider: str
    provider_ref: str
    status: ProviderStatus
    amount_minor: int
    currency: str
    failure_code: str | None = None
    action_url: str | None = None


@dataclass(frozen=True)
class RefundResult:
    provider: str
    provider_ref: str  # the refund's own reference
    charge_ref: str
    amount_minor: int
    currency: str
    succeeded: bool
    failure_code: str | None = None


@dataclass(frozen=True)
class ProviderEvent:
    """A verified, normalised inbound webhook event.

    event_id is the provider's and is what deduplication keys on; occurred_at orders events for
    one charge (out-of-order delivery is resolved by it, not by arrival).
    """

    provider: str
    event_id: str
    charge_ref: str
    status: ProviderStatus
    amount_minor: int
    currency: str
    occurred_at: datetime
    failure_code: str | None = None
    # Our intent id, when the provider echoes it (Stripe metadata, the sandbox's body): how an
    # event finds a charge whose creation answer never reached us.
    intent_id: str | None = None


class SettlementKind(StrEnum):
    CHARGE = "charge"
    REFUND = "refund"


@dataclass(frozen=True)
class Settlement:
    """One line of a provider's settlement report for a day (amount_minor ≥ 0; kind: the sign)."""

    provider: str
    provider_ref: str
    kind: SettlementKind
    amount_minor: int
    currency: str
    settled_on: date


class PaymentProvider(Protocol):
    """Every method raises payments.errors.ProviderError (ProviderTimeoutError when the outcome is
    unknown) when the provider cannot answer; a decline is a ChargeResult with status FAILED."""

    name: str

    def create_charge(self, request: ChargeRequest) -> ChargeResult: ...

    def confirm_action(self, charge_ref: str, *, idempotency_key: str) -> ChargeResult:
        """Complete a REQUIRES_ACTION charge after the payer passed the challenge."""
        ...

    def retrieve_charge(self, charge_ref: str) -> ChargeResult: ...

    def cancel_charge(self, charge_ref: str, *, idempotency_key: str) -> ChargeResult: ...

    def refund(
        self, charge_ref: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> RefundResult: ...

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now: datetime
    ) -> ProviderEvent:
        """Verify the signature over the raw body and normalise; raises WebhookSignatureError."""
        ...

    def settlements(self, day: date) -> list[Settlement]: ...
