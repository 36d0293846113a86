"""Handlers of the key registry's six transaction types.

The transaction pipeline calls a handler inside its database write transaction, in a SAVEPOINT,
once the envelope is parsed and its signature verified; a handler that raises leaves nothing
behind. ``accepted_at`` (aware UTC) is the effective time of every change: events are never
backdated (docs/SIGNATURES.md §2), so a key's state can be rebuilt from the ledger leaves alone.
``ledger_index`` is the leaf this transaction gets. The returned dict is the domain result,
hashed into the leaf: small, JSON only, timestamps as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

Object-level access: a key is changed only by its subject (or a delegate acting
``on_behalf_of`` it, the delegation being the pipeline's to check); a delegation is revoked only
by its grantor. Anyone else gets the very error a missing object gives, so these transactions
are no oracle for which keys or delegations exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Protocol

from cryptography import x509
from sqlalchemy import Connection

from signatures.canonical import JsonValue
from signatures.certificates import (
    DEFAULT_CERTIFICATE_POLICY,
    CertificatePolicy,
    verify_certificate_for_jwk,
)
from signatures.envelope import Envelope
from signatures.errors import (
    DelegationNotFoundError,
    EnvelopeError,
    FieldError,
    RegistryConflictError,
)
from signatures.keys import (
    AssuranceLevel,
    Delegation,
    KeyEvent,
    KeyEventKind,
    KeyRecord,
    require_aware,
)
from signatures.registry_payloads import (
    DELEGATION_GRANT,
    DELEGATION_REVOKE,
    KEY_REGISTER,
    KEY_REINSTATE,
    KEY_REVOKE,
    KEY_SUSPEND,
    RULE_AFTER_CERTIFICATE_EXPIRY,
    RULE_NOT_CONFIGURED,
    RULE_NOT_IN_FUTURE,
    KeyRegisterPayload,
    parse_delegation_grant,
    parse_delegation_revoke,
    parse_key_register,
    parse_key_reinstate,
    parse_key_revoke,
    parse_key_suspend,
)
from signatures.registry_store import (
    add_key_event,
    consume_challenge,
    insert_delegation,
    insert_key,
    load_delegation,
    load_key,
    revoke_delegation,
)

# X.509 notAfter is inclusive, the registry's not_after exclusive (docs/SIGNATURES.md §9).
_X509_INCLUSIVE_END = timedelta(seconds=1)


class Handler(Protocol):
    """What the transaction pipeline calls for one transaction type."""

    def __call__(
        self,
        conn: Connection,
        envelope: Envelope,
        *,
        tx_id: str,
        accepted_at: datetime,
        ledger_index: int,
    ) -> dict[str, JsonValue]: ...


@dataclass(frozen=True, kw_only=True)
class CertificateTrust:
    """What an ``x5c`` chain presented at key registration is validated against: the trust
    anchors, the CRLs in hand (nothing is fetched) and the policy (signatures.certificates)."""

    trust_anchors: Sequence[x509.Certificate]
    crls: Sequence[x509.CertificateRevocationList] = ()
    policy: CertificatePolicy = DEFAULT_CERTIFICATE_POLICY


def format_result_time(at: datetime) -> str:
    """``at`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fraction digits).

    Raises NaiveDatetimeError for a naive datetime.
    """
    utc = require_aware(at, field="at").astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}Z"


def _optional_time(at: datetime | None) -> str | None:
    return None if at is None else format_result_time(at)


def _refuse(pointer: str, rule: str, message: str) -> EnvelopeError:
    return EnvelopeError((FieldError(pointer=pointer, rule=rule, message=message),))


def _acting_subject(envelope: Envelope) -> str:
    return str(envelope.on_behalf_of or envelope.signer)


# --- key.register --------------------------------------------------------------------------------


def _verify_certified(
    payload: KeyRegisterPayload, trust: CertificateTrust | None, accepted_at: datetime
) -> None:
    """Validate the payload's x5c chain for its key at accepted_at; the key's not_after must be
    given and within the chain's validity, so that the registry (and an auditor rebuilding the
    record from the ledger) never holds a certified key longer than its certificate."""
    if trust is None:
        message = "this service validates no certificates: register the key without x5c"
        raise _refuse("/payload/x5c", RULE_NOT_CONFIGURED, message)
    certified = verify_certificate_for_jwk(
        payload.x5c,
        jwk=payload.jwk,
        trust_anchors=trust.trust_anchors,
        crls=trust.crls,
        at=accepted_at,
        policy=trust.policy,
    )
    end = certified.not_after + _X509_INCLUSIVE_END
    if payload.not_after is None or payload.not_after > end:
        message = "a certified key needs a not_after no later than its certificates' end"
        raise _refuse("/payload/not_after", RULE_AFTER_CERTIFICATE_EXPIRY, message)


def _register(
    conn: Connection,
    envelope: Envelope,
    *,
    trust: CertificateTrust | None,
    accepted_at: datetime,
    ledger_index: int,
) -> dict[str, JsonValue]:
    require_aware(accepted_at, field="accepted_at")
    payload = parse_key_register(envelope)
    subject = str(envelope.signer)
    if payload.not_after is not None and payload.not_after <= accepted_at:
        raise _refuse("/payload/not_after", RULE_NOT_IN_FUTURE, "not_after has passed")
    consume_challenge(conn, value=payload.challenge, subject=subject, now=accepted_at)
    if load_key(conn, payload.jwk.kid) is not None:
        message = "the key is already registered"
        raise RegistryConflictError(message, kind="key", identifier=payload.jwk.kid)
    assurance = AssuranceLevel.REGISTERED
    if payload.x5c:
        _verify_certified(payload, trust, accepted_at)
        assurance = AssuranceLevel.CERTIFIED
    record = KeyRecord.register(
        jwk=payload.jwk,
        subject=subject,
        assurance=assurance,
        at=accepted_at,
        not_after=payload.not_after,
        ledger_index=ledger_index,
    )
    insert_key(conn, record, registered_index=ledger_index, x5c=payload.x5c)
    return {
        "kid": record.kid,
        "subject": subject,
        "alg": record.jwk.alg,
        "assurance": str(assurance),
        "status": str(record.status_at(accepted_at)),
        "registered_index": ledger_index,
        "not_after": _optional_time(record.not_after),
    }


def _register_handler(trust: CertificateTrust | None) -> Handler:
    def handle_key_register(
        conn: Connection,
        envelope: Envelope,
        *,
        tx_id: str,
        accepted_at: datetime,
        ledger_index: int,
    ) -> dict[str, JsonValue]:
        """key.register: the signer registers a key of its own (proof of possession checked
        by the pipeline), consuming its challenge.

        Raises EnvelopeError (payload; not_after passed; x5c without configured trust or
        beyond the certificate), ChallengeError, RegistryConflictError (kid registered),
        RegistryLimitError, and the CertificateError family for a refused chain.
        """
        return _register(
            conn, envelope, trust=trust, accepted_at=accepted_at, ledger_index=ledger_index
        )

    return handle_key_register


# --- key.revoke, key.suspend, key.reinstate ------------------------------------------------------


def _key_event(
    conn: Connection, envelope: Envelope, *, kid: str, event: KeyEvent
) -> dict[str, JsonValue]:
    """Apply event to key kid when the acting subject owns it; the result names the new state.

    Raises KeyNotFoundError alike for a missing key and another subject's key.
    """
    status = add_key_event(conn, kid, event, owner=_acting_subject(envelope))
    result: dict[str, JsonValue] = {
        "kid": kid,
        "status": str(status),
        "effective_at": format_result_time(event.at),
    }
    if event.reason is not None:
        result["reason"] = str(event.reason)
    return result


def handle_key_revoke(
    conn: Connection, envelope: Envelope, *, tx_id: str, accepted_at: datetime, ledger_index: int
) -> dict[str, JsonValue]:
    """key.revoke, effective at accepted_at, for ever.

    Raises EnvelopeError, KeyNotFoundError (missing or not the acting subject's), KeyStateError.
    """
    payload = parse_key_revoke(envelope)
    event = KeyEvent(KeyEventKind.REVOKED, accepted_at, payload.reason, ledger_index)
    return _key_event(conn, envelope, kid=payload.kid, event=event)


def handle_key_suspend(
    conn: Connection, envelope: Envelope, *, tx_id: str, accepted_at: datetime, ledger_index: int
) -> dict[str, JsonValue]:
    """key.suspend, effective at accepted_at until a reinstatement or revocation.

    Raises EnvelopeError, KeyNotFoundError (missing or not the acting subject's), KeyStateError.
    """
    payload = parse_key_suspend(envelope)
    event = KeyEvent(KeyEventKind.SUSPENDED, accepted_at, ledger_index=ledger_index)
    return _key_event(conn, envelope, kid=payload.kid, event=event)


def handle_key_reinstate(
    conn: Connection, envelope: Envelope, *, tx_id: str, accepted_at: datetime, ledger_index: int
) -> dict[str, JsonValue]:
    """key.reinstate of a suspended key, effective at accepted_at.

    Raises EnvelopeError, KeyNotFoundError (missing or not the acting subject's), KeyStateError.
    """
    payload = parse_key_reinstate(envelope)
    event = KeyEvent(KeyEventKind.REINSTATED, accepted_at, ledger_index=ledger_index)
    return _key_event(conn, envelope, kid=payload.kid, event=event)


# --- delegation.grant, delegation.revoke ---------------------------------------------------------


def handle_delegation_grant(
    conn: Connection, envelope: Envelope, *, tx_id: str, accepted_at: datetime, ledger_index: int
) -> dict[str, JsonValue]:
    """delegation.grant by the signing legal entity, from accepted_at; its ID is tx_id.

    Raises EnvelopeError (payload, a signer that is no legal entity, on_behalf_of, not_after
    passed), DelegationError / DelegationLimitError (period over MAX_DELEGATION_DAYS),
    RegistryConflictError, RegistryLimitError.
    """
    require_aware(accepted_at, field="accepted_at")
    payload = parse_delegation_grant(envelope)
    if payload.not_after <= accepted_at:
        raise _refuse("/payload/not_after", RULE_NOT_IN_FUTURE, "not_after has passed")
    delegation = Delegation(
        grantor=str(envelope.signer),
        delegate=payload.delegate,
        types=payload.types,
        granted_at=accepted_at,
        not_after=payload.not_after,
        ledger_index=ledger_index,
    )
    insert_delegation(conn, delegation, delegation_id=tx_id)
    types: list[JsonValue] = [*sorted(delegation.types)]
    return {
        "delegation_id": tx_id,
        "grantor": delegation.grantor,
        "delegate": delegation.delegate,
        "types": types,
        "not_after": format_result_time(delegation.not_after),
    }


def handle_delegation_revoke(
    conn: Connection, envelope: Envelope, *, tx_id: str, accepted_at: datetime, ledger_index: int
) -> dict[str, JsonValue]:
    """delegation.revoke by its grantor (the signer), effective at accepted_at.

    Raises EnvelopeError, DelegationNotFoundError alike for a missing delegation and another
    grantor's, DelegationError when it is already revoked.
    """
    payload = parse_delegation_revoke(envelope)
    current = load_delegation(conn, payload.delegation_id)
    if current is None or current.grantor != str(envelope.signer):
        raise DelegationNotFoundError(payload.delegation_id)
    revoked = revoke_delegation(
        conn, payload.delegation_id, at=accepted_at, ledger_index=ledger_index
    )
    assert revoked.revoked_at is not None
    return {
        "delegation_id": payload.delegation_id,
        "status": "revoked",
        "effective_at": format_result_time(revoked.revoked_at),
    }


# --- dispatch ------------------------------------------------------------------------------------


def make_handlers(*, certificate_trust: CertificateTrust | None = None) -> Mapping[str, Handler]:
    """The six handlers by transaction type. Without certificate_trust, a key.register that
    presents an x5c chain is refused (EnvelopeError, rule not_configured at /payload/x5c)."""
    return MappingProxyType(
        {
            KEY_REGISTER: _register_handler(certificate_trust),
            KEY_REVOKE: handle_key_revoke,
            KEY_SUSPEND: handle_key_suspend,
            KEY_REINSTATE: handle_key_reinstate,
            DELEGATION_GRANT: handle_delegation_grant,
            DELEGATION_REVOKE: handle_delegation_revoke,
        }
    )


HANDLERS: Mapping[str, Handler] = make_handlers()
