"""Pure mapping of Stripe's JSON (plain dicts) to payments.providers value types.

PaymentIntents become ChargeResults, Refunds RefundResults, balance transactions Settlements and
(verified) events ProviderEvents; signature_timestamp_s checks the shape of a Stripe-Signature
header. No I/O, no clock, no SDK: payments.stripe_provider calls Stripe and hands the JSON here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from payments.errors import PaymentFieldError, UnsupportedWebhookEventError, WebhookSignatureError
from payments.providers import (
    ChargeResult,
    ProviderEvent,
    ProviderStatus,
    RefundResult,
    Settlement,
    SettlementKind,
)
from payments.webhook_signing import (
    RULE_DUPLICATE_TIMESTAMP,
    RULE_HEADER_TOO_LONG,
    RULE_MALFORMED_HEADER,
    RULE_MISSING_HEADER,
    RULE_MISSING_TIMESTAMP,
    RULE_NO_V1_SIGNATURE,
)
from signatures.envelope import ISO_4217_CURRENCIES
from signatures.errors import FieldError

PROVIDER_NAME = "stripe"
MAX_SIGNATURE_HEADER_CHARS = 1024
MAX_IDEMPOTENCY_KEY_CHARS = 255  # Stripe's limit
MAX_EVENT_TYPE_CHARS = 100
FAILURE_CODE_DEFAULT = "payment_failed"
RULE_MALFORMED_OBJECT = "malformed_stripe_object"

_PI_STATUSES: Mapping[str, ProviderStatus] = {
    "requires_action": ProviderStatus.REQUIRES_ACTION,
    # after a challenge on a manually confirmed intent: we still have to confirm it
    "requires_confirmation": ProviderStatus.REQUIRES_ACTION,
    "processing": ProviderStatus.PROCESSING,
    "requires_capture": ProviderStatus.PROCESSING,  # authorised, not captured: not yet money
    "succeeded": ProviderStatus.SUCCEEDED,
    "canceled": ProviderStatus.CANCELLED,
}
# A refund is a charge event that leaves the PaymentIntent succeeded; see docs/PAYMENTS.md.
EVENT_STATUSES: Mapping[str, ProviderStatus] = {
    "payment_intent.succeeded": ProviderStatus.SUCCEEDED,
    "payment_intent.payment_failed": ProviderStatus.FAILED,
    "payment_intent.processing": ProviderStatus.PROCESSING,
    "payment_intent.requires_action": ProviderStatus.REQUIRES_ACTION,
    "payment_intent.canceled": ProviderStatus.CANCELLED,
    "charge.refunded": ProviderStatus.SUCCEEDED,
}
_SETTLEMENT_KINDS: Mapping[str, SettlementKind] = {
    "charge": SettlementKind.CHARGE,
    "payment": SettlementKind.CHARGE,
    "refund": SettlementKind.REFUND,
    "payment_refund": SettlementKind.REFUND,
}
_REFUND_ACCEPTED = frozenset({"succeeded", "pending"})  # pending: already off the refundable sum
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
JsonObject = Mapping[str, object]


def malformed(pointer: str, message: str) -> PaymentFieldError:
    """The PaymentFieldError (rule malformed_stripe_object) for Stripe JSON we cannot map."""
    return PaymentFieldError((FieldError(pointer, RULE_MALFORMED_OBJECT, message),))


def _str(obj: JsonObject, key: str, pointer: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise malformed(f"{pointer}/{key}", f"{key} is not a non-empty string")
    return value


def _amount(obj: JsonObject, key: str, pointer: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise malformed(f"{pointer}/{key}", f"{key} is not an integer")
    return value


def _object(obj: JsonObject, key: str, pointer: str) -> JsonObject:
    value = obj.get(key)
    if not isinstance(value, Mapping):
        raise malformed(f"{pointer}/{key}", f"{key} is not an object")
    return value


def _currency(obj: JsonObject, pointer: str) -> str:
    code = _str(obj, "currency", pointer).upper()
    if code not in ISO_4217_CURRENCIES:
        raise malformed(f"{pointer}/currency", "currency is not an ISO 4217 code")
    return code


def _failure_code(payment_intent: JsonObject) -> str:
    error = payment_intent.get("last_payment_error")
    if isinstance(error, Mapping):
        for key in ("decline_code", "code"):  # the issuer's reason is the more specific
            value = error.get(key)
            if isinstance(value, str) and value:
                return value
    return FAILURE_CODE_DEFAULT


def _action_url(payment_intent: JsonObject) -> str | None:
    action = payment_intent.get("next_action")
    redirect = action.get("redirect_to_url") if isinstance(action, Mapping) else None
    url = redirect.get("url") if isinstance(redirect, Mapping) else None
    return url if isinstance(url, str) and url else None


def charge_result_from_payment_intent(
    payment_intent: JsonObject, pointer: str = ""
) -> ChargeResult:
    """Map a PaymentIntent (JSON) to a ChargeResult.

    requires_payment_method means the last attempt failed: FAILED with the decline code, else
    the error code, else FAILURE_CODE_DEFAULT. Raises PaymentFieldError (rule
    malformed_stripe_object) for a missing or mistyped field or an unknown status.
    """
    text = _str(payment_intent, "status", pointer)
    failure_code = None
    if text == "requires_payment_method":
        status, failure_code = ProviderStatus.FAILED, _failure_code(payment_intent)
    elif text in _PI_STATUSES:
        status = _PI_STATUSES[text]
    else:
        raise malformed(f"{pointer}/status", "unknown PaymentIntent status")
    return ChargeResult(
        provider=PROVIDER_NAME,
        provider_ref=_str(payment_intent, "id", pointer),
        status=status,
        amount_minor=_amount(payment_intent, "amount", pointer),
        currency=_currency(payment_intent, pointer),
        failure_code=failure_code,
        action_url=_action_url(payment_intent)
        if status is ProviderStatus.REQUIRES_ACTION
        else None,
    )


def refund_result_from_refund(refund: JsonObject, *, charge_ref: str) -> RefundResult:
    """Map a Refund (JSON) to a RefundResult: succeeded and pending are accepted (Stripe has
    taken the amount off what is refundable); otherwise failure_code is Stripe's failure_reason
    or the status. Raises PaymentFieldError (rule malformed_stripe_object)."""
    status = _str(refund, "status", "")
    accepted = status in _REFUND_ACCEPTED
    reason = refund.get("failure_reason")
    payment_intent = refund.get("payment_intent")
    return RefundResult(
        provider=PROVIDER_NAME,
        provider_ref=_str(refund, "id", ""),
        charge_ref=payment_intent if isinstance(payment_intent, str) else charge_ref,
        amount_minor=_amount(refund, "amount", ""),
        currency=_currency(refund, ""),
        succeeded=accepted,
        failure_code=None if accepted else (reason if isinstance(reason, str) else status),
    )


def settlement_from_balance_transaction(txn: JsonObject) -> Settlement | None:
    """Map a balance transaction (JSON, `source` expanded or not) to a Settlement, or None for
    types that are not charges or refunds (payouts, fees, adjustments …).

    provider_ref is the PaymentIntent id for a charge (the source charge's id when it has none)
    and the refund id for a refund. Amounts are what the payer was charged or refunded, in the
    charge's currency (taken from the expanded source; without it, the transaction's own gross
    amount, made positive). Stripe's fee is not part of it. settled_on is the UTC day of
    `created`. Raises PaymentFieldError (rule malformed_stripe_object).
    """
    kind = _SETTLEMENT_KINDS.get(_str(txn, "type", ""))
    if kind is None:
        return None
    created_s = _amount(txn, "created", "")
    source = txn.get("source")
    if isinstance(source, str) and source:
        ref, priced = source, txn
    elif isinstance(source, Mapping):
        ref, priced = _str(source, "id", "/source"), source
        payment_intent = source.get("payment_intent")
        if kind is SettlementKind.CHARGE and isinstance(payment_intent, str) and payment_intent:
            ref = payment_intent
    else:
        raise malformed("/source", "source is neither an id nor an object")
    amount_key = "amount_captured" if "amount_captured" in priced else "amount"
    pointer = "" if priced is txn else "/source"
    return Settlement(
        provider=PROVIDER_NAME,
        provider_ref=ref,
        kind=kind,
        amount_minor=abs(_amount(priced, amount_key, pointer)),
        currency=_currency(priced, pointer),
        settled_on=datetime.fromtimestamp(created_s, UTC).date(),
    )


def provider_event_from_stripe_event(event: JsonObject) -> ProviderEvent:
    """Map a (verified) Stripe event to a ProviderEvent; charge_ref is the PaymentIntent id.

    Raises UnsupportedWebhookEventError for a type not in EVENT_STATUSES, PaymentFieldError
    (rule malformed_stripe_object) for a missing or mistyped field.
    """
    event_id = _str(event, "id", "")
    event_type = _str(event, "type", "")
    if len(event_id) > MAX_IDEMPOTENCY_KEY_CHARS or len(event_type) > MAX_EVENT_TYPE_CHARS:
        raise malformed("", "the event id or type is too long")
    status = EVENT_STATUSES.get(event_type)
    if status is None:
        raise UnsupportedWebhookEventError(
            provider=PROVIDER_NAME, event_type=event_type, event_id=event_id
        )
    obj = _object(_object(event, "data", ""), "object", "/data")
    pointer = "/data/object"
    expected = "charge" if event_type == "charge.refunded" else "payment_intent"
    if obj.get("object") != expected:
        raise malformed(f"{pointer}/object", f"the event does not carry a {expected}")
    ref_key = "payment_intent" if expected == "charge" else "id"
    return ProviderEvent(
        provider=PROVIDER_NAME,
        event_id=event_id,
        charge_ref=_str(obj, ref_key, pointer),
        status=status,
        amount_minor=_amount(obj, "amount", pointer),
        currency=_currency(obj, pointer),
        occurred_at=datetime.fromtimestamp(_amount(event, "created", ""), UTC),
        failure_code=_failure_code(obj) if status is ProviderStatus.FAILED else None,
        intent_id=_metadata_intent_id(obj),
    )


def _metadata_intent_id(obj: JsonObject) -> str | None:
    """metadata.intent_id as the adapter set it on the PaymentIntent, when present."""
    metadata = obj.get("metadata")
    value = metadata.get("intent_id") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= MAX_IDEMPOTENCY_KEY_CHARS else None


def signature_timestamp_s(header: str | None) -> int:
    """The `t` of a Stripe-Signature header after checking its shape (exactly one t, at least one
    v1). Raises WebhookSignatureError (missing_header, header_too_long, malformed_header,
    missing_timestamp, duplicate_timestamp, no_v1_signature)."""
    if not header:
        raise WebhookSignatureError("no Stripe-Signature header", rule=RULE_MISSING_HEADER)
    if len(header) > MAX_SIGNATURE_HEADER_CHARS:
        raise WebhookSignatureError("the signature header is too long", rule=RULE_HEADER_TOO_LONG)
    timestamps: list[str] = []
    v1_count = 0
    for element in header.split(","):
        key, sep, value = element.partition("=")
        if not sep or not key or not value:
            raise WebhookSignatureError("an element is not key=value", rule=RULE_MALFORMED_HEADER)
        timestamps += [value] if key == "t" else []
        v1_count += key == "v1"
    if not timestamps:
        raise WebhookSignatureError("the header has no t", rule=RULE_MISSING_TIMESTAMP)
    if len(timestamps) > 1:
        raise WebhookSignatureError("the header has two t", rule=RULE_DUPLICATE_TIMESTAMP)
    if _TIMESTAMP.fullmatch(timestamps[0]) is None:
        raise WebhookSignatureError("t is not unix seconds", rule=RULE_MALFORMED_HEADER)
    if v1_count == 0:
        raise WebhookSignatureError("the header has no v1 signature", rule=RULE_NO_V1_SIGNATURE)
    return int(timestamps[0])
