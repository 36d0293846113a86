"""The agencies' licence transaction types: licence.issue, licence.suspend, licence.reinstate and
licence.revoke (docs/LICENCES.md, "Transaction types", has the payloads and results).

`parse_*` is pure and raises signatures.errors.EnvelopeError naming /payload/… fields (the
pipeline runs it before the write). `handle_*` runs inside the batch's write transaction, under
the ledger lock. Only the agency a licence type names issues licences of that type, and only a
licence's issuer changes its status: another agency asking about a licence it did not issue gets
LicenceNotFoundError, exactly as for a missing one.

Lock order, everywhere in licences: a renewal's fee payable before the licence row (payments
locks the payable first when a payment completes a renewal; the same order here means no
deadlock on PostgreSQL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import Connection

from licences import renewal_store, store
from licences.errors import LicenceNotFoundError, NotIssuingAgencyError
from licences.status import AgencyAction, LicenceStatus, apply_action
from licences.terms import first_term, local_date
from licences.types import LicenceType, LicenceTypeBook
from payments import payable_store, payment_flow
from payments.payables import read_date, read_subject
from signatures.canonical import JsonValue
from signatures.envelope import (
    Envelope,
    add_field_error,
    check_members,
    parse_subject,
    payload_object,
    read_payload_text,
)
from signatures.errors import EnvelopeError, FieldError

MAX_REASON_CHARS = 32
RULE_UNKNOWN_LICENCE_TYPE = "unknown_licence_type"
RULE_HOLDER_KIND = "holder_kind_not_allowed"
RULE_IN_FUTURE = "in_future"

ISSUE_MEMBERS = ("licence_type", "holder", "number", "valid_from")
ACTION_MEMBERS = ("licence_id", "reason")
AGENCY_ACTIONS = {
    "licence.suspend": AgencyAction.SUSPEND,
    "licence.reinstate": AgencyAction.REINSTATE,
    "licence.revoke": AgencyAction.REVOKE,
}
EVENT_OF_ACTION = {
    AgencyAction.SUSPEND: "suspended",
    AgencyAction.REINSTATE: "reinstated",
    AgencyAction.REVOKE: "revoked",
}

# [0-9], never \d: \d also matches Persian and Arabic-Indic digits.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REASON = re.compile(rf"[a-z][a-z_]{{0,{MAX_REASON_CHARS - 1}}}")


def read_licence_id(payload: dict[str, JsonValue], errors: list[FieldError]) -> str | None:
    return read_payload_text(payload, "licence_id", _UUID, "a licence id (lowercase UUID)", errors)


def owner_of(envelope: Envelope) -> str:
    """Whom the transaction is for: the entity a representative signs for, or the signer."""
    return str(envelope.on_behalf_of or envelope.signer)


# --- licence.issue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LicenceIssue:
    licence_type: LicenceType
    holder: str
    number: str
    valid_from: date


def parse_licence_issue(envelope: Envelope, *, book: LicenceTypeBook) -> LicenceIssue:
    """Raises EnvelopeError: an unknown type, a holder of a kind the type does not license, a
    number outside the type's pattern, a malformed date."""
    payload = payload_object(envelope)
    errors: list[FieldError] = []
    check_members(payload, required=ISSUE_MEMBERS, optional=(), pointer="/payload", errors=errors)
    code = payload.get("licence_type")
    licence_type = book.get(code) if isinstance(code, str) else None
    if licence_type is None and "licence_type" in payload:
        add_field_error(
            errors, "/payload/licence_type", RULE_UNKNOWN_LICENCE_TYPE, "not a known licence type"
        )
    holder = read_subject(payload.get("holder"), "/payload/holder", errors)
    valid_from = read_date(payload.get("valid_from"), "/payload/valid_from", errors)
    number: str | None = None
    if licence_type is not None:
        if holder is not None and parse_subject(holder).kind not in licence_type.holder_kinds:
            kinds = ", ".join(sorted(k.value for k in licence_type.holder_kinds))
            message = f"a {licence_type.code} licence is held by a subject of kind {kinds}"
            add_field_error(errors, "/payload/holder", RULE_HOLDER_KIND, message)
        pattern = re.compile(licence_type.number_pattern)
        shape = f"a {licence_type.code} number ({licence_type.number_pattern})"
        number = read_payload_text(payload, "number", pattern, shape, errors)
    if errors:
        raise EnvelopeError(tuple(errors))
    assert licence_type is not None and holder is not None and number is not None
    assert valid_from is not None
    return LicenceIssue(licence_type, holder, number, valid_from)


def handle_licence_issue(
    conn: Connection,
    envelope: Envelope,
    *,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
    book: LicenceTypeBook,
) -> dict[str, JsonValue]:
    """Raises NotIssuingAgencyError (the signer is not the type's agency), EnvelopeError
    (valid_from after today), DuplicateLicenceNumberError (the type's number is taken)."""
    issue = parse_licence_issue(envelope, book=book)
    licence_type = issue.licence_type
    if str(envelope.signer) != licence_type.agency:
        raise NotIssuingAgencyError(agency=str(envelope.signer), licence_type=licence_type.code)
    today = local_date(licence_type, accepted_at)
    if issue.valid_from > today:
        message = "valid_from is at most today, in the issuing jurisdiction's calendar"
        # EnvelopeError, as parse_licence_issue's: the same payload-invalid answer naming
        # /envelope/payload/valid_from as every other field of this payload gets.
        raise EnvelopeError((FieldError("/payload/valid_from", RULE_IN_FUTURE, message),))
    stored = store.StoredLicence(
        licence_id=tx_id,
        licence_type=licence_type.code,
        number=issue.number,
        holder=issue.holder,
        issuer=licence_type.agency,
        term=first_term(issue.valid_from, licence_type),
        status=LicenceStatus.VALID,
        status_reason=None,
        version=1,
        issued_at=accepted_at,
        updated_at=accepted_at,
        ledger_index=ledger_index,
    )
    store.insert_licence(conn, stored)
    store.add_event(conn, tx_id, kind="issued", at=accepted_at, tx_id=tx_id)
    return store.licence_json(stored, licence_type, today=today)


# --- licence.suspend / reinstate / revoke --------------------------------------------------------


@dataclass(frozen=True)
class LicenceAction:
    licence_id: str
    reason: str


def parse_licence_action(envelope: Envelope) -> LicenceAction:
    """Raises EnvelopeError naming /payload/licence_id or /payload/reason."""
    payload = payload_object(envelope)
    errors: list[FieldError] = []
    check_members(payload, required=ACTION_MEMBERS, optional=(), pointer="/payload", errors=errors)
    licence_id = read_licence_id(payload, errors)
    reason = read_payload_text(
        payload, "reason", _REASON, f"a code of 1-{MAX_REASON_CHARS} [a-z_]", errors
    )
    if errors:
        raise EnvelopeError(tuple(errors))
    assert licence_id is not None and reason is not None
    return LicenceAction(licence_id, reason)


def issued_licence(
    conn: Connection, licence_id: str, *, issuer: str, for_update: bool = False
) -> store.StoredLicence:
    """The licence `issuer` issued. Raises LicenceNotFoundError for a missing one or another
    agency's (the same answer: an agency learns nothing of licences it did not issue)."""
    found = store.get_licence(conn, licence_id, for_update=for_update)
    if found is None or found.issuer != issuer:
        raise LicenceNotFoundError(licence_id)
    return found


def handle_licence_action(
    conn: Connection,
    envelope: Envelope,
    *,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
    action: AgencyAction,
    book: LicenceTypeBook,
) -> dict[str, JsonValue]:
    """Raises LicenceNotFoundError, LicenceStateError (the action does not apply to the status).

    A revocation also ends a renewal still waiting for its fee: the fee payable is cancelled
    and the renewal is void. When a payment of that fee is in progress the payable cannot be
    cancelled; the renewal then becomes void when the payment completes (licences.renewals).
    """
    del ledger_index
    request = parse_licence_action(envelope)
    signer = str(envelope.signer)
    issued_licence(conn, request.licence_id, issuer=signer)  # 404 before any lock is taken
    pending = renewal_store.pending_renewal(conn, request.licence_id)
    if pending is not None and pending.payable_id is not None:
        payable_store.get_payable(conn, pending.payable_id, for_update=True)  # payable first
    licence = issued_licence(conn, request.licence_id, issuer=signer, for_update=True)
    status = apply_action(licence.status, action)
    changed = replace(licence, status=status, status_reason=request.reason, updated_at=accepted_at)
    after = store.update_licence(conn, changed, expected_version=licence.version)
    event = EVENT_OF_ACTION[action]
    store.add_event(
        conn, licence.licence_id, kind=event, at=accepted_at, tx_id=tx_id, reason=request.reason
    )
    if action is AgencyAction.REVOKE and pending is not None:
        _void_unpaid(conn, pending, at=accepted_at, tx_id=tx_id)
    licence_type = book.get(licence.licence_type)
    assert licence_type is not None, "a stored licence's type is in the book"
    return store.licence_json(after, licence_type, today=local_date(licence_type, accepted_at))


def _void_unpaid(
    conn: Connection, renewal: renewal_store.StoredRenewal, *, at: datetime, tx_id: str
) -> None:
    if renewal.payable_id is None:
        return
    if payment_flow.cancel_open_payable(conn, renewal.payable_id, now=at):
        renewal_store.set_renewal_status(
            conn, renewal.renewal_id, status=renewal_store.RENEWAL_VOID
        )
        store.add_event(conn, renewal.licence_id, kind="renewal_void", at=at, tx_id=tx_id)
