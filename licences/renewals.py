"""licence.renew: one signed request by the holder (or a representative for an entity holder),
eligibility checked from the service's own records, and completion when the fee is paid.

The handler runs under the ledger lock, so two renewals of one licence are decided one after
the other: the first leaves a renewal awaiting payment (or completes it), the second finds it and
is refused with RenewalPendingError (a partial unique index is the backstop). What the holder
would otherwise bring as papers the service reads itself: unpaid fines and overdue tax payables
from payments and tax, the fee in force from the fee schedules.

A renewal with a fee waits for it: complete_paid_renewal is registered with payments' paid
hooks and runs in the payment's own database transaction when the fee payable becomes paid, so
the licence's new term and the payment commit together and no second signature is needed. The
renewal's ledger leaf already commits to the new term and the payable it waits for.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlalchemy import Connection

from ledger.leaf import format_timestamp
from licences import renewal_store, store
from licences.eligibility import Debt, RenewalFacts, debt_of, fee_resumes_on, verify_renewal
from licences.errors import LicenceNotFoundError, RenewalPendingError
from licences.handlers import (
    owner_of,
    read_licence_id,
)
from licences.status import LicenceStatus
from licences.terms import Term, dual, licence_term_after, local_date, renewed_term
from licences.types import LicenceType, LicenceTypeBook
from payments import payable_store, payment_flow
from payments.errors import FeeNotFoundError
from payments.fees import Fee, FeeBook
from payments.payables import Payable, PayableKind, issue_payable, parse_payable_payload
from signatures.canonical import JsonValue
from signatures.envelope import Envelope, check_members, payload_object
from signatures.errors import EnvelopeError, FieldError
from tax.clearance import overdue_tax

FEE_CATEGORY = "licence_fee"
FEE_REFERENCE = "licence-renewal"


def parse_licence_renew(envelope: Envelope) -> str:
    """The licence id. Raises EnvelopeError naming /payload/licence_id."""
    payload = payload_object(envelope)
    errors: list[FieldError] = []
    check_members(payload, required=("licence_id",), optional=(), pointer="/payload", errors=errors)
    licence_id = read_licence_id(payload, errors)
    if errors:
        raise EnvelopeError(tuple(errors))
    assert licence_id is not None
    return licence_id


def _facts(
    conn: Connection,
    licence: store.StoredLicence,
    licence_type: LicenceType,
    *,
    today_on: datetime,
    fee_book: FeeBook,
) -> tuple[RenewalFacts, Fee | None]:
    today = local_date(licence_type, today_on)
    fines: tuple[Debt, ...] = ()
    if "no_unpaid_fines" in licence_type.rules:
        found = payable_store.unpaid_payables(
            conn, debtor=licence.holder, kinds=(PayableKind.FINE,)
        )
        fines = tuple(debt_of(s.payable) for s in found)
    taxes: tuple[Debt, ...] = ()
    if "no_overdue_tax" in licence_type.rules:
        taxes = tuple(
            debt_of(s.payable) for s in overdue_tax(conn, taxpayer=licence.holder, on=today)
        )
    fee: Fee | None = None
    fee_problem: FeeNotFoundError | None = None
    resumes_on: date | None = None
    if licence_type.fee_service is not None:
        try:
            fee = fee_book.fee_at(licence_type.fee_service, on=today)
        except FeeNotFoundError as error:
            fee_problem = error
            resumes_on = fee_resumes_on(fee_book, licence_type.fee_service, on=today)
    facts = RenewalFacts(
        licence_type=licence_type,
        status=licence.status,
        term=licence.term,
        today=today,
        unpaid_fines=fines,
        overdue_tax=taxes,
        fee=fee,
        fee_problem=fee_problem,
        fee_resumes_on=resumes_on,
    )
    return facts, fee


def _end_unpaid_or_refuse(
    conn: Connection,
    pending: renewal_store.StoredRenewal,
    payable: payable_store.StoredPayable | None,
    *,
    at: datetime,
    tx_id: str,
    licence_type: LicenceType,
) -> None:
    """A renewal still waiting for its fee: lapsed (its payable cancelled) once the fee's due
    day has passed with no payment in progress; otherwise RenewalPendingError."""
    # Only a renewal with a fee waits: one without completes in its own transaction.
    assert payable is not None, "a renewal awaiting payment has a stored fee payable"
    due = payable.payable
    overdue = due.due_on < local_date(licence_type, at)
    if overdue and payment_flow.cancel_open_payable(conn, due.payable_id, now=at):
        renewal_store.set_renewal_status(
            conn, pending.renewal_id, status=renewal_store.RENEWAL_LAPSED
        )
        store.add_event(conn, pending.licence_id, kind="renewal_lapsed", at=at, tx_id=tx_id)
        return
    raise RenewalPendingError(
        renewal_id=pending.renewal_id,
        payable_id=due.payable_id,
        pay_by=due.due_on,
        pay_by_jalali=_jalali(licence_type, due.due_on),
    )


def _jalali(licence_type: LicenceType, day: date) -> str | None:
    value = dual(licence_type, day).get("jalali")
    return value if isinstance(value, str) else None


def _fee_payable(
    licence: store.StoredLicence, fee: Fee, *, payable_id: str, due_on_iso: str
) -> Payable:
    agency = licence.issuer.removeprefix("agency:")
    draft = parse_payable_payload(
        {
            "kind": PayableKind.FEE.value,
            "debtor": licence.holder,
            "amount": {"amount_minor": fee.amount_minor, "currency": fee.currency},
            "transfers": [
                {
                    "account": f"agency_revenue:{agency}",
                    "amount_minor": fee.amount_minor,
                    "category": FEE_CATEGORY,
                }
            ],
            "due_on": due_on_iso,
            "reference": FEE_REFERENCE,
        }
    )
    return issue_payable(draft, payable_id=payable_id, issuer=licence.issuer)


def handle_licence_renew(
    conn: Connection,
    envelope: Envelope,
    *,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
    book: LicenceTypeBook,
    fee_book: FeeBook,
) -> dict[str, JsonValue]:
    """Raises LicenceNotFoundError (no such licence of this holder), RenewalPendingError,
    RenewalRefusedError (every eligibility rule that failed, with what would satisfy it)."""
    licence_id = parse_licence_renew(envelope)
    holder = owner_of(envelope)
    pending = renewal_store.pending_renewal(conn, licence_id)
    payable = None
    if pending is not None and pending.payable_id is not None:
        payable = payable_store.get_payable(conn, pending.payable_id, for_update=True)
    licence = store.get_licence(conn, licence_id, for_update=True)
    if licence is None or licence.holder != holder:
        raise LicenceNotFoundError(licence_id)
    licence_type = book.get(licence.licence_type)
    assert licence_type is not None, "a stored licence's type is in the book"
    if pending is not None:
        _end_unpaid_or_refuse(
            conn,
            pending,
            payable,
            at=accepted_at,
            tx_id=tx_id,
            licence_type=licence_type,
        )
    facts, fee = _facts(conn, licence, licence_type, today_on=accepted_at, fee_book=fee_book)
    verify_renewal(facts)
    new_term = renewed_term(licence.term, today=facts.today, licence_type=licence_type)
    renewal = renewal_store.StoredRenewal(
        renewal_id=tx_id,
        licence_id=licence_id,
        holder=holder,
        status=renewal_store.RENEWAL_AWAITING_PAYMENT,
        payable_id=None,
        fee_amount_minor=None,
        fee_currency=None,
        new_term=new_term,
        requested_at=accepted_at,
        completed_at=None,
        ledger_index=ledger_index,
    )
    pay_by: date | None = None
    if fee is None:
        completed = replace(
            renewal, status=renewal_store.RENEWAL_COMPLETED, completed_at=accepted_at
        )
        renewal_store.insert_renewal(conn, completed)
        licence = _apply_term(conn, licence, new_term, at=accepted_at)
        store.add_event(conn, licence_id, kind="renewed", at=accepted_at, tx_id=tx_id)
    else:
        pay_by = facts.today + timedelta(days=licence_type.payment_days)
        due = _fee_payable(licence, fee, payable_id=tx_id, due_on_iso=pay_by.isoformat())
        payable_store.insert_payable(
            conn, payable_store.StoredPayable(due, None, None, None, accepted_at, ledger_index)
        )
        renewal = replace(
            renewal,
            payable_id=tx_id,
            fee_amount_minor=fee.amount_minor,
            fee_currency=fee.currency,
        )
        renewal_store.insert_renewal(conn, renewal)
        store.add_event(conn, licence_id, kind="renewal_requested", at=accepted_at, tx_id=tx_id)
    stored = renewal_store.get_renewal(conn, tx_id)
    assert stored is not None
    view = renewal_json(stored, licence_type, licence=licence, fee=fee, today_on=accepted_at)
    if pay_by is not None:
        view["pay_by"] = dual(licence_type, pay_by)
    return view


def _apply_term(
    conn: Connection, licence: store.StoredLicence, term: Term, *, at: datetime
) -> store.StoredLicence:
    """The licence with the renewed term applied (licences.terms.licence_term_after: a term
    that follows on extends the current one, so a licence renewed early stays valid)."""
    changed = replace(licence, term=licence_term_after(licence.term, term), updated_at=at)
    return store.update_licence(conn, changed, expected_version=licence.version)


def complete_paid_renewal(conn: Connection, payable: Payable, at: datetime) -> None:
    """payments' paid hook: the renewal waiting for `payable` completes (the licence takes its
    new term), or becomes void when the licence was revoked meanwhile. Does nothing for any
    other payable, or for a renewal that is no longer waiting (idempotent)."""
    if payable.kind is not PayableKind.FEE or payable.reference != FEE_REFERENCE:
        return
    renewal = renewal_store.renewal_by_payable(conn, payable.payable_id)
    if renewal is None or renewal.status != renewal_store.RENEWAL_AWAITING_PAYMENT:
        return
    licence = store.get_licence(conn, renewal.licence_id, for_update=True)
    assert licence is not None, "a renewal's licence exists"
    if licence.status is LicenceStatus.REVOKED:
        renewal_store.set_renewal_status(
            conn, renewal.renewal_id, status=renewal_store.RENEWAL_VOID, completed_at=at
        )
        store.add_event(
            conn, licence.licence_id, kind="renewal_void", at=at, tx_id=renewal.renewal_id
        )
        return
    _apply_term(conn, licence, renewal.new_term, at=at)
    renewal_store.set_renewal_status(
        conn, renewal.renewal_id, status=renewal_store.RENEWAL_COMPLETED, completed_at=at
    )
    store.add_event(
        conn, licence.licence_id, kind="renewed", at=at, tx_id=renewal.renewal_id, reason="fee_paid"
    )


def renewal_json(
    renewal: renewal_store.StoredRenewal,
    licence_type: LicenceType,
    *,
    licence: store.StoredLicence | None = None,
    fee: Fee | None = None,
    today_on: datetime | None = None,
) -> dict[str, JsonValue]:
    """A renewal as its holder sees it, dates in both calendars where the jurisdiction uses
    Solar Hijri. With `licence`, the licence as it stands after the renewal."""
    view: dict[str, JsonValue] = {
        "renewal_id": renewal.renewal_id,
        "licence_id": renewal.licence_id,
        "status": renewal.status,
        "requested_at": format_timestamp(renewal.requested_at),
        "new_term": {
            "valid_from": dual(licence_type, renewal.new_term.valid_from),
            "expires_on": dual(licence_type, renewal.new_term.expires_on),
        },
        "ledger_index": renewal.ledger_index,
    }
    if renewal.completed_at is not None:
        view["completed_at"] = format_timestamp(renewal.completed_at)
    if renewal.payable_id is not None:
        view["payable_id"] = renewal.payable_id
        view["fee"] = {
            "amount_minor": renewal.fee_amount_minor,
            "currency": renewal.fee_currency,
        }
    if fee is not None:
        source: dict[str, JsonValue] = {
            "title": fee.legal_source.title,
            "reference": fee.legal_source.reference,
        }
        if fee.legal_source.url is not None:
            source["url"] = fee.legal_source.url
        view["fee"] = {
            "amount_minor": fee.amount_minor,
            "currency": fee.currency,
            "service_code": fee.service_code,
            "valid_from": fee.period.valid_from.isoformat(),
            "legal_source": source,
        }
    if licence is not None and today_on is not None:
        view["licence"] = store.licence_json(
            licence, licence_type, today=local_date(licence_type, today_on)
        )
    return view
