"""The payments transaction types' payloads and handlers: bill.issue, fee.issue, payment.create
and refund.create (docs/PAYMENTS.md, "Transaction types", has the payloads).

Each `parse_*` is pure and raises signatures.errors.EnvelopeError naming /payload/… fields (the
pipeline runs it before the write). Each `handle_*` runs inside the batch's write transaction,
under the ledger lock, so what it reads cannot change before it writes: the check that a payable
has no payment in progress and the write that starts one are atomic, which is why two payments
of one bill never both reach a provider. A handler refuses by raising a payments error; nothing
it wrote survives a refusal.

A payment.create only records the payer's signed instruction and reserves the payable; the
charge is made after the transaction commits (api.payments), never under the ledger lock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection

from payments import intent_store, payable_store, payment_flow
from payments.bill_ids import BillPayment, BillServiceTypes, verify_bill_payment
from payments.errors import (
    BillAlreadyIssuedError,
    PayableAmountError,
    PayableNotFoundError,
    PaymentFieldError,
    PaymentNotFoundError,
    PaymentStateError,
)
from payments.fees import FeeBook
from payments.intents import IntentState, create_intent
from payments.payables import (
    PayableDraft,
    PayableKind,
    apply_payment,
    apply_refund,
    issue_payable,
    parse_payable_payload,
    read_date,
    read_subject,
)
from payments.refund_store import RefundState, StoredRefund, insert_refund, refunded_minor_of_intent
from signatures.canonical import JsonValue
from signatures.envelope import (
    RULE_INVALID_FORMAT,
    RULE_WRONG_TYPE,
    Envelope,
    Money,
    add_field_error,
    check_members,
    parse_money,
    parse_subject,
    payload_object,
    read_payload_text,
)
from signatures.errors import EnvelopeError, FieldError

MAX_PAYMENT_METHOD_CHARS = 64
MAX_REASON_CHARS = 200
MAX_CASE_REFERENCE_CHARS = 64
FEE_CATEGORY = "fee"

RULE_UNKNOWN_PROVIDER = "unknown_provider"
RULE_ONE_OF = "exactly_one_of"
RULE_NOT_A_BILL = "not_a_bill"
# The kinds bill.issue issues: both carry a bill ID and a payment ID.
BILL_ISSUE_KINDS = frozenset({PayableKind.BILL, PayableKind.FINE})
RULE_CURRENCY_MISMATCH = "currency_mismatch"
RULE_CURRENCY_NOT_SUPPORTED = "currency_not_supported"

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_METHOD = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_PAYMENT_METHOD_CHARS}}}")
_CODE = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_CASE_REFERENCE_CHARS}}}")


@dataclass(frozen=True)
class PaymentsConfig:
    """What the payment types need to know: the bill service types in force, the fee schedules
    and the names of the providers this deployment has."""

    service_types: BillServiceTypes
    fee_book: FeeBook
    providers: frozenset[str]
    # The currencies a provider takes, when it does not take every ISO 4217 one (Stripe has no
    # IRR): a payment it cannot take is refused before it is signed into the ledger.
    currencies: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _refuse(pointer: str, rule: str, message: str) -> EnvelopeError:
    return EnvelopeError((FieldError(pointer, rule, message),))


def _envelope_error(error: PaymentFieldError) -> EnvelopeError:
    return EnvelopeError(error.errors)


def _payer(envelope: Envelope) -> str:
    return str(envelope.on_behalf_of or envelope.signer)


def _money(payload: dict[str, JsonValue], errors: list[FieldError]) -> Money | None:
    if "amount" not in payload:
        return None
    try:
        return parse_money(payload["amount"], pointer="/payload/amount")
    except EnvelopeError as error:
        errors.extend(error.errors)
        return None


# --- bill.issue ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BillIssue:
    draft: PayableDraft
    bill: BillPayment


def parse_bill_issue(envelope: Envelope, *, config: PaymentsConfig) -> BillIssue:
    """The payable payload of kind "bill" or "fine" plus `payment_id`; `reference` is the bill
    ID. The two numbers must carry right check digits and encode the amount (IRR). A fine is
    issued and paid exactly as a bill is (Iran's traffic fines carry a bill ID and a payment
    ID); its kind is what tells it apart, e.g. to a licence renewal that requires no unpaid
    fines."""
    payload = payload_object(envelope)
    try:
        draft = parse_payable_payload(payload, extra_members=("payment_id",))
    except PaymentFieldError as error:
        raise _envelope_error(error) from None
    if draft.kind not in BILL_ISSUE_KINDS:
        raise _refuse("/payload/kind", RULE_NOT_A_BILL, "bill.issue issues bills and fines only")
    payment_id = payload.get("payment_id")
    if not isinstance(payment_id, str):
        raise _refuse("/payload/payment_id", "required", "payment_id is a string of digits")
    try:
        bill = verify_bill_payment(
            draft.reference,
            payment_id,
            service_types=config.service_types,
            expected_amount_minor=draft.amount_minor,
            bill_pointer="/payload/reference",
            payment_pointer="/payload/payment_id",
            amount_pointer="/payload/amount/amount_minor",
        )
    except PaymentFieldError as error:
        raise _envelope_error(error) from None
    if draft.currency != bill.currency:
        raise _refuse("/payload/amount/currency", RULE_CURRENCY_MISMATCH, "bills are in IRR")
    return BillIssue(draft=replace(draft, reference=bill.bill.text), bill=bill)


def handle_bill_issue(
    conn: Connection,
    envelope: Envelope,
    *,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
    config: PaymentsConfig,
) -> dict[str, JsonValue]:
    """Raises BillAlreadyIssuedError when the bill ID and payment ID pair exists."""
    issue = parse_bill_issue(envelope, config=config)
    bill_id, payment_id = issue.bill.bill.text, issue.bill.payment.text
    if payable_store.find_bill(conn, bill_id=bill_id, payment_id=payment_id) is not None:
        raise BillAlreadyIssuedError()
    payable = issue_payable(issue.draft, payable_id=tx_id, issuer=str(envelope.signer))
    stored = payable_store.StoredPayable(
        payable, bill_id, payment_id, None, issued_at=accepted_at, ledger_index=ledger_index
    )
    payable_store.insert_payable(conn, stored)
    return payment_flow.payable_json(stored)


# --- fee.issue -----------------------------------------------------------------------------------

FEE_MEMBERS = ("service_code", "debtor", "due_on", "reference")


def parse_fee_issue(envelope: Envelope) -> dict[str, JsonValue]:
    """{service_code, debtor, due_on, reference}: the amount is not the agency's to choose, it is
    the fee in force on the day the transaction is accepted (payments.fees)."""
    payload = payload_object(envelope)
    errors: list[FieldError] = []
    check_members(payload, required=FEE_MEMBERS, optional=(), pointer="/payload", errors=errors)
    read_payload_text(payload, "service_code", _CODE, "1-64 of [A-Za-z0-9._:-]", errors)
    read_payload_text(payload, "reference", _CODE, "1-64 of [A-Za-z0-9._:-]", errors)
    # The debtor and the due date follow the rules of every payable payload.
    read_subject(payload.get("debtor"), "/payload/debtor", errors)
    read_date(payload.get("due_on"), "/payload/due_on", errors)
    if errors:
        raise EnvelopeError(tuple(errors))
    return payload


def handle_fee_issue(
    conn: Connection,
    envelope: Envelope,
    *,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
    config: PaymentsConfig,
) -> dict[str, JsonValue]:
    """Raises FeeNotFoundError when no fee of the service is in force on the acceptance day."""
    payload = parse_fee_issue(envelope)
    service_code, reference = str(payload["service_code"]), str(payload["reference"])
    fee = config.fee_book.fee_at(service_code, on=accepted_at.date())
    agency = parse_subject(str(envelope.signer)).identifier
    draft = parse_payable_payload(
        {
            "kind": "fee",
            "debtor": payload["debtor"],
            "amount": {"amount_minor": fee.amount_minor, "currency": fee.currency},
            "transfers": [
                {
                    "account": f"agency_revenue:{agency}",
                    "amount_minor": fee.amount_minor,
                    "category": FEE_CATEGORY,
                }
            ],
            "due_on": payload["due_on"],
            "reference": reference,
        }
    )
    payable = issue_payable(draft, payable_id=tx_id, issuer=str(envelope.signer))
    stored = payable_store.StoredPayable(payable, None, None, None, accepted_at, ledger_index)
    payable_store.insert_payable(conn, stored)
    source = fee.legal_source
    legal: dict[str, JsonValue] = {"title": source.title, "reference": source.reference}
    if source.url is not None:
        legal["url"] = source.url
    return {
        **payment_flow.payable_json(stored),
        "fee": {
            "service_code": service_code,
            "valid_from": fee.period.valid_from.isoformat(),
            "legal_source": legal,
        },
    }


# --- payment.create ------------------------------------------------------------------------------

PAYMENT_OPTIONAL = ("payable_id", "bill_id", "payment_id")
PAYMENT_REQUIRED = ("amount", "provider", "payment_method")


@dataclass(frozen=True)
class PaymentRequest:
    payable_id: str | None
    bill: BillPayment | None
    amount: Money
    provider: str
    payment_method: str


def parse_payment_create(envelope: Envelope, *, config: PaymentsConfig) -> PaymentRequest:
    """{payable_id} or {bill_id, payment_id} (exactly one way to name what is paid), amount,
    provider, payment_method. With the two bill numbers, the amount must be the one the payment
    ID encodes (rule amount_mismatch)."""
    payload = payload_object(envelope)
    errors: list[FieldError] = []
    check_members(
        payload,
        required=PAYMENT_REQUIRED,
        optional=PAYMENT_OPTIONAL,
        pointer="/payload",
        errors=errors,
    )
    amount = _money(payload, errors)
    provider = payload.get("provider")
    if "provider" in payload and (
        not isinstance(provider, str) or provider not in config.providers
    ):
        names = ", ".join(sorted(config.providers))
        add_field_error(errors, "/payload/provider", RULE_UNKNOWN_PROVIDER, f"one of: {names}")
    taken = config.currencies.get(provider) if isinstance(provider, str) else None
    if amount is not None and taken is not None and amount.currency not in taken:
        message = "the provider does not take this currency"
        add_field_error(errors, "/payload/amount/currency", RULE_CURRENCY_NOT_SUPPORTED, message)
    method = read_payload_text(
        payload, "payment_method", _METHOD, "1-64 of [A-Za-z0-9_.:-]", errors
    )
    payable_id = read_payload_text(
        payload, "payable_id", _UUID, "a payable id (lowercase UUID)", errors
    )
    by_id, by_bill = "payable_id" in payload, "bill_id" in payload or "payment_id" in payload
    if by_id == by_bill:
        message = "give payable_id, or bill_id and payment_id"
        add_field_error(errors, "/payload", RULE_ONE_OF, message)
    bill = None
    if by_bill and not by_id and not errors:
        bill = _bill_numbers(payload, amount, config=config)
    if errors:
        raise EnvelopeError(tuple(errors))
    assert amount is not None and isinstance(provider, str) and method is not None
    return PaymentRequest(payable_id, bill, amount, provider, method)


def _bill_numbers(
    payload: dict[str, JsonValue], amount: Money | None, *, config: PaymentsConfig
) -> BillPayment:
    bill_id, payment_id = payload.get("bill_id"), payload.get("payment_id")
    if not isinstance(bill_id, str) or not isinstance(payment_id, str):
        message = "bill_id and payment_id are both strings of digits"
        raise _refuse("/payload/bill_id", RULE_WRONG_TYPE, message)
    try:
        bill = verify_bill_payment(
            bill_id,
            payment_id,
            service_types=config.service_types,
            expected_amount_minor=None if amount is None else amount.amount_minor,
            bill_pointer="/payload/bill_id",
            payment_pointer="/payload/payment_id",
            amount_pointer="/payload/amount/amount_minor",
        )
    except PaymentFieldError as error:
        raise _envelope_error(error) from None
    if amount is not None and amount.currency != bill.currency:
        raise _refuse("/payload/amount/currency", RULE_CURRENCY_MISMATCH, "bills are in IRR")
    return bill


def _payable_to_pay(
    conn: Connection, request: PaymentRequest, *, payer: str
) -> payable_store.StoredPayable:
    if request.bill is not None:
        # As at a bank counter: whoever holds both numbers may pay the bill.
        found = payable_store.find_bill(
            conn,
            bill_id=request.bill.bill.text,
            payment_id=request.bill.payment.text,
            for_update=True,
        )
    else:
        assert request.payable_id is not None
        found = payable_store.get_payable(conn, request.payable_id, for_update=True)
        if found is not None and found.payable.debtor != payer:
            found = None  # another subject's payable answers as a missing one
    if found is None:
        raise PayableNotFoundError()
    return found


def handle_payment_create(
    conn: Connection,
    envelope: Envelope,
    *,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
    config: PaymentsConfig,
) -> dict[str, JsonValue]:
    """Reserve the payable for a new intent (state created). Raises PayableNotFoundError,
    PaymentInProgressError (another intent of the payable is still open), the payable rules'
    PayableAlreadyPaidError / PayableStateError / PayableAmountError, and a currency mismatch."""
    request = parse_payment_create(envelope, config=config)
    payer = _payer(envelope)
    stored = _payable_to_pay(conn, request, payer=payer)
    stored = payment_flow.release_if_ended(conn, stored, now=accepted_at)
    payable = stored.payable
    if request.amount.currency != payable.currency:
        raise _refuse("/payload/amount/currency", RULE_CURRENCY_MISMATCH, "pay in its currency")
    apply_payment(payable, amount_minor=request.amount.amount_minor)  # refuses; kept for later
    intent, created = create_intent(
        intent_id=tx_id,
        payable_id=payable.payable_id,
        provider=request.provider,
        amount_minor=request.amount.amount_minor,
        currency=request.amount.currency,
        created_at=accepted_at,
    )
    record = intent_store.StoredIntent(intent, payer, None, None, accepted_at, ledger_index)
    intent_store.insert_intent(conn, record, created=created)
    payable_store.update_payable(conn, replace(stored, active_intent_id=tx_id))
    return payment_flow.intent_json(record)


# --- refund.create -------------------------------------------------------------------------------

REFUND_MEMBERS = ("payment", "amount", "expected_refundable_minor", "reason")


@dataclass(frozen=True)
class RefundRequest:
    intent_id: str
    amount: Money
    expected_refundable_minor: int
    reason: str


def parse_refund_create(envelope: Envelope) -> RefundRequest:
    """{payment, amount, expected_refundable_minor, reason}: expected_refundable_minor is the
    payable's refundable amount the agency saw (compare-and-set)."""
    payload = payload_object(envelope)
    errors: list[FieldError] = []
    check_members(payload, required=REFUND_MEMBERS, optional=(), pointer="/payload", errors=errors)
    intent_id = read_payload_text(
        payload, "payment", _UUID, "a payment id (lowercase UUID)", errors
    )
    amount = _money(payload, errors)
    expected = payload.get("expected_refundable_minor")
    if "expected_refundable_minor" in payload and (
        isinstance(expected, bool) or not isinstance(expected, int) or expected < 0
    ):
        message = "expected_refundable_minor is an integer ≥ 0"
        add_field_error(errors, "/payload/expected_refundable_minor", RULE_WRONG_TYPE, message)
    reason = payload.get("reason")
    if "reason" in payload and (
        not isinstance(reason, str) or not 0 < len(reason) <= MAX_REASON_CHARS
    ):
        message = f"reason is 1-{MAX_REASON_CHARS} characters"
        add_field_error(errors, "/payload/reason", RULE_INVALID_FORMAT, message)
    if errors:
        raise EnvelopeError(tuple(errors))
    assert intent_id is not None and amount is not None and isinstance(reason, str)
    assert isinstance(expected, int)
    return RefundRequest(intent_id, amount, expected, reason)


def handle_refund_create(
    conn: Connection,
    envelope: Envelope,
    *,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
) -> dict[str, JsonValue]:
    """Reserve a refund of a succeeded payment of a payable the signing agency issued. Raises
    PaymentNotFoundError, PaymentStateError (not succeeded), StaleRefundableAmountError (the
    compare-and-set), PayableAmountError (exceeds what this payment may still return)."""
    request = parse_refund_create(envelope)
    issuer = _payer(envelope)
    found = payment_flow.lock_intent(conn, request.intent_id)
    stored = None if found is None else payable_store.get_payable(conn, found.intent.payable_id)
    if found is None or stored is None or stored.payable.issuer != issuer:
        raise PaymentNotFoundError()
    intent = found.intent
    if intent.state is not IntentState.SUCCEEDED:
        raise PaymentStateError(intent_id=intent.intent_id, state=intent.state, action="refunded")
    if request.amount.currency != intent.currency:
        raise _refuse("/payload/amount/currency", RULE_CURRENCY_MISMATCH, "the payment's currency")
    amount = request.amount.amount_minor
    reserved = refunded_minor_of_intent(
        conn, intent.intent_id, states=(RefundState.PENDING, RefundState.SUCCEEDED)
    )
    if amount > intent.amount_minor - reserved:
        raise PayableAmountError(
            "more than this payment can still return",
            rule="exceeds_refundable",
            payable_id=stored.payable.payable_id,
            amount_minor=amount,
            limit_minor=intent.amount_minor - reserved,
        )
    after = apply_refund(
        stored.payable,
        amount_minor=amount,
        expected_refundable_minor=request.expected_refundable_minor,
    )
    payable_store.update_payable(conn, replace(stored, payable=after))
    refund = StoredRefund(
        refund_id=tx_id,
        intent_id=intent.intent_id,
        payable_id=stored.payable.payable_id,
        requested_by=issuer,
        amount_minor=amount,
        currency=intent.currency,
        reason=request.reason,
        state=RefundState.PENDING,
        provider_ref=None,
        failure_code=None,
        created_at=accepted_at,
        updated_at=accepted_at,
        ledger_index=ledger_index,
    )
    insert_refund(conn, refund)
    return payment_flow.refund_json(refund)
