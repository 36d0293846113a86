"""Errors raised by payments/: they carry data and know nothing of HTTP (api/problems.py)."""

from __future__ import annotations

import datetime as _datetime

from signatures.errors import FieldErrors


class PaymentsError(Exception):
    """Base class of every payments error."""


class PaymentFieldError(PaymentsError, FieldErrors):
    """Input to a payments rule is refused; `errors` lists every field (JSON Pointer, rule, why).

    Messages never repeat the refused value.
    """


class ProviderError(PaymentsError):
    """A payment provider could not be reached or answered with an error we cannot act on.

    `provider` names it ("sandbox", "stripe"); `retryable` says whether the same call (with the
    same idempotency key) may be tried again; `code` is the provider's code when it gave one.
    """

    def __init__(
        self, message: str, *, provider: str, retryable: bool, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.retryable = retryable
        self.code = code


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time: the outcome is unknown until the charge is retrieved."""


class WebhookSignatureError(PaymentsError):
    """An inbound or outbound webhook signature header is missing, malformed, stale or wrong.

    `rule` names what failed, e.g. "missing_header", "malformed_header", "timestamp_out_of_window",
    "no_matching_signature".
    """

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


# --- webhook_schedule ---


class DeliveryStateError(PaymentsError):
    """An outbound webhook delivery cannot take `action` in its `state` (e.g. recording an
    attempt on a delivered or dead delivery: replay it first)."""

    def __init__(self, *, delivery_id: str, state: str, action: str) -> None:
        super().__init__(f"delivery {delivery_id}: cannot {action} in state {state}")
        self.delivery_id = delivery_id
        self.state = state
        self.action = action


class DeliveryReplayLimitError(PaymentsError):
    """An outbound webhook delivery was already replayed `limit` times (MAX_REPLAYS)."""

    def __init__(self, *, delivery_id: str, limit: int) -> None:
        super().__init__(f"delivery {delivery_id}: already replayed {limit} times")
        self.delivery_id = delivery_id
        self.limit = limit


# --- payments.currency, payments.journal, payments.intents, payments.payables (P2) ---


class UnknownCurrencyError(PaymentsError):
    """A currency code is not in the table of accepted currencies (payments.currency)."""

    def __init__(self, currency: str) -> None:
        super().__init__("not an accepted ISO 4217 currency")
        self.currency = currency


class AccountIdError(PaymentsError):
    """A journal account id does not follow the grammar of payments.journal.

    `rule` says how: "unknown_kind", "owner_required", "owner_forbidden", "invalid_owner",
    "too_long".
    """

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


class JournalEntryError(PaymentsError):
    """A journal entry (or a money movement asked of a builder) is refused.

    `rule` names what failed: "unbalanced", "too_few_postings", "too_many_postings",
    "zero_amount", "amount_too_large", "unknown_currency", "invalid_account", "invalid_cause",
    "invalid_reference", "invalid_entry_id", "naive_timestamp", "invalid_amount",
    "exceeds_paid", "no_transfers".
    `currency` is set when the rule concerns one currency.
    """

    def __init__(self, message: str, *, rule: str, currency: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.currency = currency


class IntentTransitionError(PaymentsError):
    """The intent state machine has no transition from `from_state` to `to_state` for `cause`."""

    def __init__(self, from_state: str, to_state: str, cause: str) -> None:
        super().__init__(f"no transition from {from_state} to {to_state} for cause {cause}")
        self.from_state = from_state
        self.to_state = to_state
        self.cause = cause


class IntentEventLimitError(PaymentsError):
    """An intent already has `limit` events; one more is refused (a provider loop, not a payer)."""

    def __init__(self, *, intent_id: str, limit: int) -> None:
        super().__init__(f"the intent already has {limit} events")
        self.intent_id = intent_id
        self.limit = limit


class ProviderEventMismatchError(PaymentsError):
    """A provider event does not belong to the intent it was applied to, or disagrees with it.

    `member` names the disagreement: "provider", "charge_ref", "amount_minor" or "currency".
    """

    def __init__(self, *, intent_id: str, member: str) -> None:
        super().__init__(f"the provider event disagrees with the intent on {member}")
        self.intent_id = intent_id
        self.member = member


class PayableStateError(PaymentsError):
    """The payable's status forbids `action` ("pay", "cancel")."""

    def __init__(self, message: str, *, payable_id: str, status: str, action: str) -> None:
        super().__init__(message)
        self.payable_id = payable_id
        self.status = status
        self.action = action


class PayableAlreadyPaidError(PayableStateError):
    """The payable is paid in full; a second payment is refused (it is never booked twice)."""

    def __init__(self, payable_id: str) -> None:
        super().__init__(
            "the payable is already paid", payable_id=payable_id, status="paid", action="pay"
        )


class PayableAmountError(PaymentsError):
    """A payment or refund amount is refused for this payable.

    `rule`: "not_positive", "instalments_not_allowed" (a part payment of a payable that must be
    paid in full), "exceeds_outstanding", "exceeds_refundable", "too_many_payments".
    `limit_minor` is the amount the rule compared against (outstanding, refundable; for
    too_many_payments the count limit).
    """

    def __init__(
        self, message: str, *, rule: str, payable_id: str, amount_minor: int, limit_minor: int
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.payable_id = payable_id
        self.amount_minor = amount_minor
        self.limit_minor = limit_minor


class StaleRefundableAmountError(PaymentsError):
    """Compare-and-set failed: the caller expected `expected` minor units refundable, but `actual`
    are (another refund or payment came first). Re-read the payable and decide again."""

    def __init__(self, expected: int, actual: int, *, payable_id: str) -> None:
        super().__init__(f"expected {expected} refundable, but {actual} are")
        self.expected = expected
        self.actual = actual
        self.payable_id = payable_id


# --- stripe_provider ---


class UnsupportedWebhookEventError(PaymentsError):
    """A provider webhook is authentic but of a type we do not act on (e.g. "customer.created").

    The endpoint answers 2xx and ignores it, so the provider stops retrying; `event_type` and
    `event_id` are kept for the log.
    """

    def __init__(self, *, provider: str, event_type: str, event_id: str) -> None:
        super().__init__(f"{provider}: webhook event type {event_type!r} is not handled")
        self.provider = provider
        self.event_type = event_type
        self.event_id = event_id


# --- fees, reconciliation (P1) ---


class FeeNotFoundError(PaymentsError):
    """No fee can be charged for `service_code` on the date `on`.

    `reason`: "unknown_service" (no schedule), "not_in_force" (before the first period or after
    a closed last one), "suspended" (a documented suspension is in force).
    """

    def __init__(self, service_code: str, on: _datetime.date, *, reason: str) -> None:
        super().__init__(f"no fee for {service_code} on {on.isoformat()}: {reason}")
        self.service_code = service_code
        self.on = on
        self.reason = reason


class ReconciliationInputError(PaymentsError):
    """reconcile() was handed a record it cannot judge.

    `side` is "provider" (a Settlement) or "book" (a BookedMovement), `index` the record's
    position in its input (-1 for the input as a whole), `rule` names what failed:
    "other_provider", "other_day", "negative_amount", "too_many_records".
    """

    def __init__(self, message: str, *, side: str, index: int, rule: str) -> None:
        super().__init__(message)
        self.side = side
        self.index = index
        self.rule = rule


# --- handlers and payment_flow (the transaction types) ---


class PayableNotFoundError(PaymentsError):
    """No payable by that id or bill ID that the caller may act on (another subject's payable is
    answered exactly as a missing one)."""

    def __init__(self) -> None:
        super().__init__("no such payable")


class PaymentNotFoundError(PaymentsError):
    """No payment (intent) by that id that the caller may act on."""

    def __init__(self) -> None:
        super().__init__("no such payment")


class BillAlreadyIssuedError(PaymentsError):
    """A payable with this bill ID and payment ID exists already (a bill is issued once)."""

    def __init__(self) -> None:
        super().__init__("a bill with this bill ID and payment ID is already issued")


class PaymentInProgressError(PaymentsError):
    """Another payment of the payable is under way; it must end (succeed, fail, be cancelled or
    expire) before a new one may start, so one bill is never charged twice."""

    def __init__(self, *, payable_id: str, intent_id: str) -> None:
        super().__init__("another payment of this payable is in progress")
        self.payable_id = payable_id
        self.intent_id = intent_id


class PaymentStateError(PaymentsError):
    """The payment's state does not allow `action` (refund a payment that did not succeed,
    confirm one that needs no action, …)."""

    def __init__(self, *, intent_id: str, state: str, action: str) -> None:
        super().__init__(f"the payment is {state}: it cannot be {action}")
        self.intent_id = intent_id
        self.state = state
        self.action = action


class UnknownChargeError(PaymentsError):
    """A verified provider event names a charge no payment of ours has (yet). Answered so that
    the provider delivers it again later: the charge may not be attached yet."""

    def __init__(self, *, provider: str) -> None:
        super().__init__(f"{provider}: the event's charge belongs to no payment here")
        self.provider = provider


# --- refund_store (S1) ---


class RefundLimitError(PaymentsError):
    """The payment `intent_id` already has `limit` refunds (failed ones included); one more is
    refused. Partial refunds are few: more is a loop or abuse, and it bounds every list of them.
    """

    def __init__(self, *, intent_id: str, limit: int) -> None:
        super().__init__(f"the payment already has {limit} refunds")
        self.intent_id = intent_id
        self.limit = limit


# --- outbound_store, webhook_sender (S2) ---


class WebhookEndpointLimitError(PaymentsError):
    """The agency already has `limit` active webhook endpoints (MAX_ENDPOINTS_PER_AGENCY):
    deactivate one before adding another."""

    def __init__(self, *, agency: str, limit: int) -> None:
        super().__init__(f"the agency already has {limit} active webhook endpoints")
        self.agency = agency
        self.limit = limit


class WebhookEndpointNotFoundError(PaymentsError):
    """No webhook endpoint has this id."""

    def __init__(self, *, endpoint_id: str) -> None:
        super().__init__("no such webhook endpoint")
        self.endpoint_id = endpoint_id


class WebhookEndpointExistsError(PaymentsError):
    """A webhook endpoint with this id is stored already (ids are never reused)."""

    def __init__(self, *, endpoint_id: str) -> None:
        super().__init__("a webhook endpoint with this id exists already")
        self.endpoint_id = endpoint_id


class DeliveryNotFoundError(PaymentsError):
    """No outbound webhook delivery has this id."""

    def __init__(self, *, delivery_id: str) -> None:
        super().__init__("no such webhook delivery")
        self.delivery_id = delivery_id
