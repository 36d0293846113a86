"""The Stripe adapter: payments.providers.PaymentProvider over the official `stripe` SDK.

Charges are PaymentIntents created and confirmed in one call, refunds are Refunds on the
PaymentIntent, the settlement report is the day's balance transactions, and inbound webhooks are
checked with stripe.WebhookSignature over the raw body. Every mutating call carries OUR
idempotency key, so a retry after a timeout replays Stripe's first answer instead of charging
twice (Stripe keeps keys for 24 hours: after that, retrieve the charge instead of retrying).

Each instance has its own StripeClient (no SDK module globals), its own HTTP session that never
reads proxy or netrc settings from the environment, and no SDK-level retries (the caller retries
with the same key). The pure mapping of Stripe's JSON is in payments.stripe_mapping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from urllib.parse import urlsplit

import requests
import stripe

from payments.errors import (
    PaymentFieldError,
    ProviderError,
    ProviderTimeoutError,
    WebhookSignatureError,
)
from payments.providers import (
    ChargeRequest,
    ChargeResult,
    ProviderEvent,
    ProviderStatus,
    RefundResult,
    Settlement,
)
from payments.stripe_mapping import (
    FAILURE_CODE_DEFAULT,
    MAX_IDEMPOTENCY_KEY_CHARS,
    PROVIDER_NAME,
    JsonObject,
    charge_result_from_payment_intent,
    malformed,
    provider_event_from_stripe_event,
    refund_result_from_refund,
    settlement_from_balance_transaction,
    signature_timestamp_s,
)
from payments.webhook_signing import (
    RULE_NO_MATCHING_SIGNATURE,
    RULE_TIMESTAMP_OUT_OF_WINDOW,
    find_header,
)

DEFAULT_API_BASE = "https://api.stripe.com"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})  # plain http allowed only here
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 120.0
SIGNATURE_HEADER = "Stripe-Signature"
WEBHOOK_TOLERANCE_S = 300  # both directions: a replay window, and clock skew either way
MAX_WEBHOOK_SECRETS = 8  # rotation needs two at once
MAX_WEBHOOK_BODY_BYTES = 1_048_576
MAX_AMOUNT_MINOR = 99_999_999  # Stripe's limit: eight digits
MAX_METADATA_VALUE_CHARS = 500  # Stripe's limit
SETTLEMENT_PAGE_SIZE = 100  # Stripe's largest list page
MAX_SETTLEMENT_PAGES = 100
RULE_BODY_TOO_LARGE = "body_too_large"
RULE_MALFORMED_BODY = "malformed_body"

# Currencies whose minor unit in Stripe's API is the ISO 4217 one, with no divisibility rule.
# Left out on purpose: IRR (not a Stripe currency), ISK/HUF/TWD/UGX (Stripe's "special cases"),
# MGA (zero-decimal at Stripe, two in ISO 4217), three-decimal ones (last digit must be 0).
STRIPE_CURRENCIES = frozenset(
    {"AED", "AUD", "CAD", "CHF", "CNY", "DKK", "EUR", "GBP", "HKD", "JPY", "KRW", "NOK"}
    | {"NZD", "PLN", "SEK", "SGD", "TRY", "USD"}
)

_PAYMENT_INTENT_REF = re.compile(r"pi_[A-Za-z0-9_]{1,250}")
_PAYMENT_METHOD = re.compile(r"[A-Za-z0-9_]{1,255}")
_IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_CHARS}}}")
_T = TypeVar("_T")


def _provider_error(error: stripe.StripeError) -> ProviderError:
    """Connection failures and timeouts leave the outcome unknown; 5xx, 409 (a concurrent request
    with the same key) and 429 may be retried with the same key; the rest may not."""
    if isinstance(error, stripe.APIConnectionError):
        return ProviderTimeoutError(
            "stripe: no answer (the outcome is unknown)",
            provider=PROVIDER_NAME,
            retryable=True,
            code="connection_error",
        )
    if isinstance(error, stripe.IdempotencyError):
        return ProviderError(
            "stripe: the idempotency key was used for another request",
            provider=PROVIDER_NAME,
            retryable=False,
            code="idempotency_key_reused",
        )
    status = error.http_status
    retryable = status is not None and (status >= 500 or status in (409, 429))
    code = error.code or ("rate_limit" if status == 429 else None)
    message = f"stripe: HTTP {status}: {error.user_message or type(error).__name__}"
    return ProviderError(message, provider=PROVIDER_NAME, retryable=retryable, code=code)


def _refused(message: str, code: str) -> ProviderError:
    return ProviderError(f"stripe: {message}", provider=PROVIDER_NAME, retryable=False, code=code)


def _from_response(mapping: Callable[[JsonObject], _T], obj: stripe.StripeObject) -> _T:
    try:
        return mapping(obj.to_dict())
    except PaymentFieldError as error:
        raise _refused(f"unexpected response: {error}", "malformed_response") from error


def _call(action: Callable[[], _T]) -> _T:
    try:
        return action()
    except stripe.StripeError as error:
        raise _provider_error(error) from error


def _declined(error: stripe.CardError) -> ChargeResult:
    """A card error carries the PaymentIntent it happened on (Stripe's error object does)."""
    payment_intent = error.error.payment_intent if error.error is not None else None
    if payment_intent is None:
        raise _refused("a card error named no PaymentIntent", "card_error_without_payment_intent")
    result = _from_response(charge_result_from_payment_intent, payment_intent)
    failure_code = result.failure_code or error.code or FAILURE_CODE_DEFAULT
    return replace(result, status=ProviderStatus.FAILED, failure_code=failure_code, action_url=None)


def _check_key(idempotency_key: str) -> None:
    if _IDEMPOTENCY_KEY.fullmatch(idempotency_key) is None:
        raise _refused("the idempotency key is not 1..255 visible ASCII", "invalid_idempotency_key")


def _check_ref(charge_ref: str) -> None:
    if _PAYMENT_INTENT_REF.fullmatch(charge_ref) is None:
        raise _refused("the charge reference is not a PaymentIntent id", "invalid_reference")


def _check_money(amount_minor: int, currency: str) -> None:
    if currency not in STRIPE_CURRENCIES:
        raise _refused("the currency is not supported through Stripe", "currency_not_supported")
    if not 0 < amount_minor <= MAX_AMOUNT_MINOR:
        raise _refused(f"the amount is not in 1..{MAX_AMOUNT_MINOR}", "amount_out_of_range")


def _check_api_base(api_base: str) -> None:
    parts = urlsplit(api_base)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    )
    if not secure or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError("api_base must be an https origin (plain http only on loopback)")


class StripeProvider:
    """PaymentProvider on Stripe. Construction reads nothing from the environment.

    Raises ValueError for an empty api_key, no webhook secret (or more than
    MAX_WEBHOOK_SECRETS, or an empty one), a timeout outside (0, MAX_TIMEOUT_S], or an api_base
    that is not https (plain http is allowed on loopback only, for tests).
    """

    name = PROVIDER_NAME

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secrets: Sequence[str],
        api_base: str = DEFAULT_API_BASE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        return_url: str | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is empty")
        if not 0 < len(webhook_secrets) <= MAX_WEBHOOK_SECRETS or not all(webhook_secrets):
            raise ValueError(f"give 1..{MAX_WEBHOOK_SECRETS} non-empty webhook secrets")
        if not 0 < timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s must be in (0, {MAX_TIMEOUT_S}]")
        _check_api_base(api_base)
        session = requests.Session()
        session.trust_env = False  # no proxy, netrc or CA-bundle settings from the environment
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")},
            http_client=stripe.RequestsClient(timeout=timeout_s, session=session),
            max_network_retries=0,  # the caller retries, with the same idempotency key
        )
        self._webhook_secrets = tuple(webhook_secrets)
        self._return_url = return_url

    def create_charge(self, request: ChargeRequest) -> ChargeResult:
        """Create and confirm a PaymentIntent; a decline is a FAILED result, not an error.

        Raises ProviderError (codes: currency_not_supported, amount_out_of_range,
        invalid_idempotency_key, invalid_payment_method, idempotency_key_reused, Stripe's own)
        and ProviderTimeoutError when Stripe did not answer.
        """
        _check_money(request.amount_minor, request.currency)
        _check_key(request.idempotency_key)
        if _PAYMENT_METHOD.fullmatch(request.payment_method) is None:
            raise _refused("the payment method is not a Stripe id", "invalid_payment_method")
        if not 0 < len(request.intent_id) <= MAX_METADATA_VALUE_CHARS:
            raise _refused("the intent id does not fit Stripe metadata", "invalid_intent_id")
        params: stripe.params.PaymentIntentCreateParams = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "payment_method": request.payment_method,
            "allowed_payment_method_types": ["card"],  # no redirect-only methods
            "confirm": True,
            "metadata": {"intent_id": request.intent_id},
        }
        if self._return_url is not None:
            params["return_url"] = self._return_url
        try:
            created = self._client.v1.payment_intents.create(
                params, {"idempotency_key": request.idempotency_key}
            )
        except stripe.CardError as error:
            return _declined(error)
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        result = _from_response(charge_result_from_payment_intent, created)
        if (result.amount_minor, result.currency) != (request.amount_minor, request.currency):
            raise _refused("the answer is for another charge", "idempotency_key_reused")
        return result

    def confirm_action(self, charge_ref: str, *, idempotency_key: str) -> ChargeResult:
        """After the payer's challenge: confirm the PaymentIntent if it waits for us
        (requires_confirmation), else report where it stands. Raises ProviderError."""
        _check_ref(charge_ref)
        _check_key(idempotency_key)
        payment_intents = self._client.v1.payment_intents
        found = _call(lambda: payment_intents.retrieve(charge_ref))
        if found.status != "requires_confirmation":
            return _from_response(charge_result_from_payment_intent, found)
        try:
            confirmed = payment_intents.confirm(
                charge_ref, options={"idempotency_key": idempotency_key}
            )
        except stripe.CardError as error:
            return _declined(error)
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return _from_response(charge_result_from_payment_intent, confirmed)

    def retrieve_charge(self, charge_ref: str) -> ChargeResult:
        """The PaymentIntent's current state. Raises ProviderError."""
        _check_ref(charge_ref)
        found = _call(lambda: self._client.v1.payment_intents.retrieve(charge_ref))
        return _from_response(charge_result_from_payment_intent, found)

    def cancel_charge(self, charge_ref: str, *, idempotency_key: str) -> ChargeResult:
        """Cancel an unfinished PaymentIntent; cancelling a cancelled one reports it again.
        Raises ProviderError (Stripe refuses to cancel a succeeded or processing one)."""
        _check_ref(charge_ref)
        _check_key(idempotency_key)
        try:
            cancelled = self._client.v1.payment_intents.cancel(
                charge_ref, options={"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError as error:
            current = self.retrieve_charge(charge_ref)
            if current.status is ProviderStatus.CANCELLED:
                return current
            raise _provider_error(error) from error
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return _from_response(charge_result_from_payment_intent, cancelled)

    def refund(
        self, charge_ref: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> RefundResult:
        """Refund part or all of a succeeded PaymentIntent. Its status and currency are checked
        before any money moves (ProviderError charge_not_refundable, currency_mismatch); Stripe
        refuses more than is left (ProviderError with Stripe's code, e.g.
        charge_already_refunded)."""
        _check_ref(charge_ref)
        _check_money(amount_minor, currency)
        _check_key(idempotency_key)
        charge = self.retrieve_charge(charge_ref)
        if charge.status is not ProviderStatus.SUCCEEDED:
            raise _refused("only a succeeded charge can be refunded", "charge_not_refundable")
        if charge.currency != currency:
            raise _refused("the refund currency is not the charge's", "currency_mismatch")
        created = _call(
            lambda: self._client.v1.refunds.create(
                {"payment_intent": charge_ref, "amount": amount_minor},
                {"idempotency_key": idempotency_key},
            )
        )
        result = _from_response(
            lambda obj: refund_result_from_refund(obj, charge_ref=charge_ref), created
        )
        if (result.charge_ref, result.amount_minor) != (charge_ref, amount_minor):
            raise _refused("the answer is for another refund", "idempotency_key_reused")
        return result

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now: datetime
    ) -> ProviderEvent:
        """Verify Stripe-Signature over the raw body with stripe.WebhookSignature (any configured
        secret, for rotation), check its t within ±WEBHOOK_TOLERANCE_S of `now`, then map.

        Raises WebhookSignatureError (rules of signature_timestamp_s, body_too_large,
        malformed_body, no_matching_signature, timestamp_out_of_window), then
        UnsupportedWebhookEventError or PaymentFieldError; ValueError for a naive `now`.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        if len(body) > MAX_WEBHOOK_BODY_BYTES:
            raise WebhookSignatureError("the body is too large", rule=RULE_BODY_TOO_LARGE)
        header = find_header(headers, SIGNATURE_HEADER)
        timestamp_s = signature_timestamp_s(header)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookSignatureError("the body is not UTF-8", rule=RULE_MALFORMED_BODY) from None
        if not any(_is_signed(body, header, secret) for secret in self._webhook_secrets):
            raise WebhookSignatureError(
                "no v1 signature matches the body under any configured secret",
                rule=RULE_NO_MATCHING_SIGNATURE,
            )
        # The SDK's own tolerance reads time.time(); ours is checked against `now`, both ways.
        if abs(int(now.timestamp()) - timestamp_s) > WEBHOOK_TOLERANCE_S:
            raise WebhookSignatureError(
                "the signature timestamp is outside the tolerance window",
                rule=RULE_TIMESTAMP_OUT_OF_WINDOW,
            )
        try:
            event = json.loads(body)
        except ValueError:
            raise malformed("", "the body is not JSON") from None
        if not isinstance(event, dict):
            raise malformed("", "the body is not a JSON object")
        return provider_event_from_stripe_event(event)

    def settlements(self, day: date) -> list[Settlement]:
        """Charges and refunds among the balance transactions created on `day` (UTC), sorted by
        kind then reference. Raises ProviderError (too_many_settlements past
        MAX_SETTLEMENT_PAGES pages of SETTLEMENT_PAGE_SIZE)."""
        start = datetime.combine(day, time.min, tzinfo=UTC)
        end = start + timedelta(days=1)
        lines: list[Settlement] = []
        starting_after: str | None = None
        for _ in range(MAX_SETTLEMENT_PAGES):
            page = self._balance_page(start=start, end=end, starting_after=starting_after)
            for txn in page.data:
                line = _from_response(settlement_from_balance_transaction, txn)
                lines += [line] if line is not None else []
            if not page.has_more or not page.data:
                return sorted(lines, key=lambda line: (line.kind.value, line.provider_ref))
            starting_after = page.data[-1].id
        raise _refused("too many balance transactions in a day", "too_many_settlements")

    def _balance_page(
        self, *, start: datetime, end: datetime, starting_after: str | None
    ) -> stripe.ListObject[stripe.BalanceTransaction]:
        created: stripe.params.BalanceTransactionListParamsCreated = {
            "gte": int(start.timestamp()),
            "lt": int(end.timestamp()),
        }
        params: stripe.params.BalanceTransactionListParams = {
            "created": created,
            "limit": SETTLEMENT_PAGE_SIZE,
            "expand": ["data.source"],  # the charge's PaymentIntent and presentment amount
        }
        if starting_after is not None:
            params["starting_after"] = starting_after
        return _call(lambda: self._client.v1.balance_transactions.list(params))


def _is_signed(body: bytes, header: str | None, secret: str) -> bool:
    try:
        # tolerance=None: no time.time() inside the SDK; the window is checked against `now`.
        return bool(stripe.WebhookSignature.verify_header(body, header, secret, tolerance=None))
    except stripe.SignatureVerificationError:
        return False
