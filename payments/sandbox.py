"""The embedded sandbox payment provider: offline, deterministic, driven by magic payment methods.

The payment method decides what happens (MAGIC_METHODS; docs/PAYMENTS.md has the table). The
charge reference is derived from our idempotency key, so the same key always names the same
charge: a retry after a timeout finds the charge that WAS made instead of making another one.
The sandbox signs its webhooks with the `t=,v1=` HMAC scheme of payments.webhook_signing under
the header SANDBOX_SIGNATURE_HEADER, and settles every charge and refund on the UTC day it
succeeded.

No I/O and no clock of its own: state lives in a SandboxRecords (payments.sandbox_records; in
memory there, SQL elsewhere) and time comes from the injected `now`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from payments.errors import ProviderError, ProviderTimeoutError
from payments.providers import (
    ChargeRequest,
    ChargeResult,
    ProviderEvent,
    ProviderStatus,
    RefundResult,
    Settlement,
    SettlementKind,
)
from payments.sandbox_events import event_body, parse_sandbox_event
from payments.sandbox_records import (
    PROVIDER_NAME,
    Behaviour,
    SandboxCharge,
    SandboxRecords,
    SandboxRefund,
    hex_ref,
)
from payments.webhook_signing import find_header, sign_hmac, verify_hmac
from signatures.envelope import ISO_4217_CURRENCIES

SANDBOX_SIGNATURE_HEADER = "Pishkhan-Sandbox-Signature"
ACTION_URL_PREFIX = "https://sandbox.pishkhan.invalid/3ds/"  # .invalid: never resolvable
CHARGE_REF_PREFIX = "sbx_ch_"
REFUND_REF_PREFIX = "sbx_re_"

MAX_IDEMPOTENCY_KEY_CHARS = 255  # Stripe's limit
MAX_INTENT_ID_CHARS = 128
MAX_PAYMENT_METHOD_CHARS = 64
MAX_AMOUNT_MINOR = 10**15  # far above any bill; keeps every amount an exact JSON integer

WEBHOOK_LATE_DELAY_S = 600
WEBHOOK_DUPLICATE_DELAY_S = 60
WEBHOOK_OUT_OF_ORDER_DELAY_S = 5  # the earlier event arrives this long after the later one
OUT_OF_ORDER_LEAD_S = 1  # how much earlier the "processing" event occurred
SETTLEMENT_SHORT_MINOR = 1

MAGIC_METHODS: Mapping[str, Behaviour] = {
    "4242424242424242": Behaviour.SUCCESS,
    "4000000000000002": Behaviour.DECLINE,
    "4000000000009995": Behaviour.INSUFFICIENT_FUNDS,
    "4000000000003220": Behaviour.THREE_DS,
    **{f"pm_sandbox_{b.value}": b for b in Behaviour if b is not Behaviour.UNKNOWN},
}

_FAILURE_CODES: Mapping[Behaviour, str] = {
    Behaviour.DECLINE: "card_declined",
    Behaviour.INSUFFICIENT_FUNDS: "insufficient_funds",
    Behaviour.UNKNOWN: "unknown_sandbox_method",
}
_CANCELLABLE = frozenset({ProviderStatus.REQUIRES_ACTION, ProviderStatus.PROCESSING})


def charge_ref_for(idempotency_key: str) -> str:
    """The sandbox charge reference of a key: "sbx_ch_" + 24 hex of SHA-256(key)."""
    return hex_ref(CHARGE_REF_PREFIX, idempotency_key)


def refund_ref_for(idempotency_key: str) -> str:
    """The sandbox refund reference of a key: "sbx_re_" + 24 hex of SHA-256(key)."""
    return hex_ref(REFUND_REF_PREFIX, idempotency_key)


@dataclass(frozen=True)
class SandboxDelivery:
    """One webhook the sandbox would send: deliver_after_s after the charge reached its current
    status; headers carry the signature, timestamped at that sending time."""

    deliver_after_s: int
    body: bytes
    headers: dict[str, str]


def _error(message: str, code: str, *, retryable: bool = False) -> ProviderError:
    return ProviderError(
        f"sandbox: {message}", provider=PROVIDER_NAME, retryable=retryable, code=code
    )


class SandboxProvider:
    """payments.providers.PaymentProvider, offline. Every method raises ProviderError with a
    `code` (invalid_request, idempotency_key_reused, no_such_charge, …; docs/PAYMENTS.md) for a
    request the sandbox refuses; see MAGIC_METHODS for the rest."""

    name = PROVIDER_NAME

    def __init__(
        self,
        *,
        records: SandboxRecords,
        now: Callable[[], datetime],
        webhook_secrets: Sequence[bytes],
    ) -> None:
        """webhook_secrets[0] signs; all of them verify (rotation). Raises ValueError for bad
        secrets (see webhook_signing.sign_hmac)."""
        sign_hmac(b"", secrets=webhook_secrets, timestamp_s=0)  # validates the secrets now
        self._records = records
        self._now = now
        self._secrets = tuple(webhook_secrets)
        self._lock = threading.Lock()  # one check-then-put at a time

    def create_charge(self, request: ChargeRequest) -> ChargeResult:
        _check_request(request)
        ref = charge_ref_for(request.idempotency_key)
        with self._lock:
            charge = self._records.get_charge(ref)
            if charge is not None:
                if not charge.is_same_request(request):
                    raise _error("the idempotency key was used for another request", _KEY_REUSED)
                return _result(charge)
            behaviour = MAGIC_METHODS.get(request.payment_method, Behaviour.UNKNOWN)
            if behaviour is Behaviour.PROVIDER_ERROR:
                raise _error("simulated provider error", "sandbox_provider_error", retryable=True)
            charge = _new_charge(request, ref=ref, behaviour=behaviour, at=_aware(self._now()))
            self._records.put_charge(charge)
        if behaviour is Behaviour.TIMEOUT:
            message = "sandbox: simulated timeout (the charge was made)"
            raise ProviderTimeoutError(
                message, provider=PROVIDER_NAME, retryable=True, code="sandbox_timeout"
            )
        return _result(charge)

    def confirm_action(self, charge_ref: str, *, idempotency_key: str) -> ChargeResult:
        """The payer passed the challenge: REQUIRES_ACTION → SUCCEEDED (a repeat is a no-op)."""
        return self._move(charge_ref, idempotency_key, ProviderStatus.SUCCEEDED)

    def retrieve_charge(self, charge_ref: str) -> ChargeResult:
        return _result(self._charge(charge_ref))

    def cancel_charge(self, charge_ref: str, *, idempotency_key: str) -> ChargeResult:
        """REQUIRES_ACTION or PROCESSING → CANCELLED (a repeat is a no-op)."""
        return self._move(charge_ref, idempotency_key, ProviderStatus.CANCELLED)

    def _move(self, charge_ref: str, idempotency_key: str, to: ProviderStatus) -> ChargeResult:
        _check_key(idempotency_key)
        with self._lock:
            charge = self._charge(charge_ref)
            if charge.status is to:
                return _result(charge)
            if charge.status not in _MOVES[to]:
                raise _error(f"the charge cannot become {to.value}", _MOVE_REFUSALS[to])
            at = _aware(self._now())
            settled_on = at.date() if to is ProviderStatus.SUCCEEDED else None
            charge = replace(charge, status=to, updated_at=at, settled_on=settled_on)
            self._records.put_charge(charge)
        return _result(charge)

    def refund(
        self, charge_ref: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> RefundResult:
        """Refund part or all of a succeeded charge, at most what is left unrefunded."""
        _check_key(idempotency_key)
        _check_amount(amount_minor)
        ref = refund_ref_for(idempotency_key)
        with self._lock:
            refund = self._records.get_refund(ref)
            if refund is not None:
                if (refund.charge_ref, refund.amount_minor, refund.currency) != (
                    charge_ref,
                    amount_minor,
                    currency,
                ):
                    raise _error("the idempotency key was used for another refund", _KEY_REUSED)
                return _refund_result(refund)
            charge = self._charge(charge_ref)
            if charge.status is not ProviderStatus.SUCCEEDED:
                raise _error("only a succeeded charge can be refunded", "charge_not_refundable")
            if currency != charge.currency:
                raise _error("the refund currency is not the charge's", "currency_mismatch")
            left = charge.amount_minor - sum(
                r.amount_minor for r in self._records.refunds_of(charge_ref)
            )
            if left == 0:
                raise _error("the charge is already fully refunded", "charge_already_refunded")
            if amount_minor > left:
                raise _error("the refund exceeds the unrefunded amount", "amount_too_large")
            at = _aware(self._now())
            refund = SandboxRefund(
                ref, idempotency_key, charge_ref, amount_minor, currency, at, at.date()
            )
            self._records.put_refund(refund)
        return _refund_result(refund)

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now: datetime
    ) -> ProviderEvent:
        """Verify the sandbox signature over the raw body and parse the event.

        Raises WebhookSignatureError (see webhook_signing.verify_hmac), then PaymentFieldError
        for a body that is not a sandbox event; ValueError for a naive `now`.
        """
        header = find_header(headers, SANDBOX_SIGNATURE_HEADER)
        verify_hmac(body, header, secrets=self._secrets, now_s=_unix_s(_aware(now)))
        return parse_sandbox_event(body)

    def settlements(self, day: date) -> list[Settlement]:
        """What succeeded on `day` (UTC): charges (SETTLEMENT_SHORT ones 1 minor unit short) and
        refunds, sorted by kind then reference."""
        charge, refund = SettlementKind.CHARGE, SettlementKind.REFUND
        lines = [
            Settlement(PROVIDER_NAME, c.provider_ref, charge, _settled_amount(c), c.currency, day)
            for c in self._records.charges_settled_on(day)
            if c.status is ProviderStatus.SUCCEEDED
        ] + [
            Settlement(PROVIDER_NAME, r.provider_ref, refund, r.amount_minor, r.currency, day)
            for r in self._records.refunds_settled_on(day)
        ]
        return sorted(lines, key=lambda line: (line.kind.value, line.provider_ref))

    def webhook_deliveries(self, charge_ref: str) -> list[SandboxDelivery]:
        """The signed webhooks the sandbox sends for the charge's current status, in sending order.

        Normally one at 0 s; WEBHOOK_LATE at WEBHOOK_LATE_DELAY_S; WEBHOOK_TWICE the same event
        again WEBHOOK_DUPLICATE_DELAY_S later; WEBHOOK_OUT_OF_ORDER (when succeeded) the succeeded
        event first and an earlier-occurred "processing" event WEBHOOK_OUT_OF_ORDER_DELAY_S later.
        Raises ProviderError(code="no_such_charge").
        """
        charge = self._charge(charge_ref)
        current = event_body(charge, charge.status, charge.updated_at)
        plan: list[tuple[int, bytes]] = [(0, current)]
        if charge.behaviour is Behaviour.WEBHOOK_LATE:
            plan = [(WEBHOOK_LATE_DELAY_S, current)]
        elif charge.behaviour is Behaviour.WEBHOOK_TWICE:
            plan.append((WEBHOOK_DUPLICATE_DELAY_S, current))
        elif (
            charge.behaviour is Behaviour.WEBHOOK_OUT_OF_ORDER
            and charge.status is ProviderStatus.SUCCEEDED
        ):
            earlier = charge.updated_at - timedelta(seconds=OUT_OF_ORDER_LEAD_S)
            plan.append(
                (
                    WEBHOOK_OUT_OF_ORDER_DELAY_S,
                    event_body(charge, ProviderStatus.PROCESSING, earlier),
                )
            )
        base_s = _unix_s(charge.updated_at)
        return [
            SandboxDelivery(
                after_s, body, {SANDBOX_SIGNATURE_HEADER: self._sign(body, base_s + after_s)}
            )
            for after_s, body in plan
        ]

    def _sign(self, body: bytes, timestamp_s: int) -> str:
        return sign_hmac(body, secrets=self._secrets[:1], timestamp_s=timestamp_s)

    def _charge(self, charge_ref: str) -> SandboxCharge:
        charge = self._records.get_charge(charge_ref)
        if charge is None:
            raise _error("no charge has this reference", "no_such_charge")
        return charge


_KEY_REUSED = "idempotency_key_reused"
_INVALID = "invalid_request"
_MOVES: Mapping[ProviderStatus, frozenset[ProviderStatus]] = {
    ProviderStatus.SUCCEEDED: frozenset({ProviderStatus.REQUIRES_ACTION}),
    ProviderStatus.CANCELLED: frozenset(
        {ProviderStatus.REQUIRES_ACTION, ProviderStatus.PROCESSING}
    ),
}
_MOVE_REFUSALS: Mapping[ProviderStatus, str] = {
    ProviderStatus.SUCCEEDED: "charge_not_requiring_action",
    ProviderStatus.CANCELLED: "charge_not_cancellable",
}


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("times given to the sandbox must be timezone-aware")
    return at.astimezone(UTC)


def _check_key(idempotency_key: str) -> None:
    if not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_CHARS or not idempotency_key.isascii():
        raise _error(
            f"the idempotency key is 1 to {MAX_IDEMPOTENCY_KEY_CHARS} ASCII characters", _INVALID
        )


def _check_amount(amount_minor: int) -> None:
    if not 1 <= amount_minor <= MAX_AMOUNT_MINOR:
        raise _error(
            f"the amount is 1 to MAX_AMOUNT_MINOR={MAX_AMOUNT_MINOR} minor units", _INVALID
        )


def _check_request(request: ChargeRequest) -> None:
    _check_key(request.idempotency_key)
    _check_amount(request.amount_minor)
    if request.currency not in ISO_4217_CURRENCIES:
        raise _error("the currency is not an ISO 4217 code", _INVALID)
    if not 1 <= len(request.intent_id) <= MAX_INTENT_ID_CHARS:
        raise _error(f"the intent id is 1 to {MAX_INTENT_ID_CHARS} characters", _INVALID)
    if not 1 <= len(request.payment_method) <= MAX_PAYMENT_METHOD_CHARS:
        raise _error(f"the payment method is 1 to {MAX_PAYMENT_METHOD_CHARS} characters", _INVALID)


def _new_charge(
    request: ChargeRequest, *, ref: str, behaviour: Behaviour, at: datetime
) -> SandboxCharge:
    failure_code = _FAILURE_CODES.get(behaviour)
    if failure_code is not None:
        status = ProviderStatus.FAILED
    elif behaviour is Behaviour.THREE_DS:
        status = ProviderStatus.REQUIRES_ACTION
    else:
        status = ProviderStatus.SUCCEEDED
    settled_on = at.date() if status is ProviderStatus.SUCCEEDED else None
    return SandboxCharge(
        provider_ref=ref,
        idempotency_key=request.idempotency_key,
        intent_id=request.intent_id,
        payment_method=request.payment_method,
        behaviour=behaviour,
        amount_minor=request.amount_minor,
        currency=request.currency,
        status=status,
        failure_code=failure_code,
        created_at=at,
        updated_at=at,
        settled_on=settled_on,
    )


def _result(charge: SandboxCharge) -> ChargeResult:
    action = charge.status is ProviderStatus.REQUIRES_ACTION
    return ChargeResult(
        provider=PROVIDER_NAME,
        provider_ref=charge.provider_ref,
        status=charge.status,
        amount_minor=charge.amount_minor,
        currency=charge.currency,
        failure_code=charge.failure_code if charge.status is ProviderStatus.FAILED else None,
        action_url=ACTION_URL_PREFIX + charge.provider_ref if action else None,
    )


def _refund_result(refund: SandboxRefund) -> RefundResult:
    return RefundResult(
        provider=PROVIDER_NAME,
        provider_ref=refund.provider_ref,
        charge_ref=refund.charge_ref,
        amount_minor=refund.amount_minor,
        currency=refund.currency,
        succeeded=True,  # sandbox refunds of a succeeded charge never fail
    )


def _settled_amount(charge: SandboxCharge) -> int:
    if charge.behaviour is Behaviour.SETTLEMENT_SHORT:
        return max(charge.amount_minor - SETTLEMENT_SHORT_MINOR, 0)
    return charge.amount_minor


def _unix_s(at: datetime) -> int:
    return int(at.timestamp())
