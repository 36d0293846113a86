"""The key registry's pure model: key records with dated events, and delegations.

A key record binds one public JWK (its ``kid`` is the RFC 7638 thumbprint) to one subject and
carries the key's whole history as events, each with the time it takes effect and the ledger
index of the signed transaction that made it. Status is a pure function of that history and an
instant, so the same record answers "was this key usable at t?" for any t, years later.

Key states and the events that move between them (docs/SIGNATURES.md has the full table)::

    active ──suspended──► suspended ──reinstated──► active
    active or suspended ──revoked──► revoked   (terminal: never reinstated)
    any state, at not_after          ──► expired   (terminal: takes no more events)

``not_yet_valid`` covers instants before ``not_before``: a state of the clock, not an event.

A delegation lets a natural person (``ir-nid:`` or ``ee-ik:``) sign given transaction types for
a legal entity (``ir-lid:`` or ``ee-rg:``) from ``granted_at`` until ``not_after`` or an earlier
revocation.

Storage comes with the transaction API; this module is pure: no I/O, no clock. Every ``at`` is
an explicit aware datetime; naive ones raise NaiveDatetimeError.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from signatures.envelope import MAX_TYPE_CHARS, SubjectKind, parse_subject
from signatures.errors import (
    DelegationError,
    DelegationLimitError,
    KeyRecordError,
    KeyStateError,
    NaiveDatetimeError,
    SubjectError,
)
from signatures.jwk import PublicJwk

# Every change to a key is a ledger transaction; a key with more events than this is abuse.
MAX_KEY_EVENTS = 1024
# A delegation names at most this many transaction types (or namespace wildcards).
MAX_DELEGATION_TYPES = 64
# A delegation lasts at most three years (1096 days: three years with a leap day), after which
# the legal entity grants it again: stale powers of representation are a known fraud vector.
MAX_DELEGATION_DAYS = 1096

# Transaction types as the envelope's ``type``: dotted lower-case names of two or more segments
# ("tax.return.corporate"), ASCII only. A delegation may also name a whole namespace with a
# trailing ".*" ("tax.*", "tax.return.*"); a bare "*" is refused.
_TYPE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
_NAMESPACE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_WILDCARD = ".*"


class KeyStatus(StrEnum):
    """A key's state at an instant."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


class RevocationReason(StrEnum):
    """Why a key was revoked (RFC 5280 section 5.3.1 names, in snake case)."""

    KEY_COMPROMISE = "key_compromise"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"


class AssuranceLevel(StrEnum):
    """``certified``: registered with an X.509 chain validated against a trust anchor."""

    REGISTERED = "registered"
    CERTIFIED = "certified"


class KeyEventKind(StrEnum):
    REGISTERED = "registered"
    SUSPENDED = "suspended"
    REINSTATED = "reinstated"
    REVOKED = "revoked"


def require_aware(value: datetime, *, field: str) -> datetime:
    """value itself, when it is an aware datetime.

    Raises NaiveDatetimeError for a naive datetime, TypeError for anything else.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{field} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(f"{field} must be an aware datetime (UTC)", field=field)
    return value


def _is_ledger_index(value: object) -> bool:
    return value is None or (type(value) is int and value >= 0)


@dataclass(frozen=True)
class KeyEvent:
    """One change to a key, effective at ``at``; ``reason`` is set for revocations only.

    Raises NaiveDatetimeError for a naive ``at``, KeyRecordError for a missing or superfluous
    reason or a negative ledger index.
    """

    kind: KeyEventKind
    at: datetime
    reason: RevocationReason | None = None
    ledger_index: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, KeyEventKind):
            raise KeyRecordError(f"unknown key event kind {self.kind!r}", field="kind")
        require_aware(self.at, field="at")
        if self.kind is KeyEventKind.REVOKED:
            if not isinstance(self.reason, RevocationReason):
                raise KeyRecordError("a revocation needs a RevocationReason", field="reason")
        elif self.reason is not None:
            raise KeyRecordError(f"a {self.kind} event has no reason", field="reason")
        if not _is_ledger_index(self.ledger_index):
            raise KeyRecordError("ledger_index must be a non-negative int", field="ledger_index")


def subject_kind(value: str) -> SubjectKind | None:
    """The kind of subject value is (signatures.envelope.parse_subject, check digits included),
    or None when it is not a valid subject."""
    if not isinstance(value, str):
        return None
    try:
        return parse_subject(value).kind
    except SubjectError:
        return None


# The state each event kind leaves a key in, the clock (validity period) aside.
_STATE_AFTER: dict[KeyEventKind, KeyStatus] = {
    KeyEventKind.REGISTERED: KeyStatus.ACTIVE,
    KeyEventKind.SUSPENDED: KeyStatus.SUSPENDED,
    KeyEventKind.REINSTATED: KeyStatus.ACTIVE,
    KeyEventKind.REVOKED: KeyStatus.REVOKED,
}


# The state machine: which event kinds each state (before the event) accepts.
_ALLOWED: dict[KeyStatus, frozenset[KeyEventKind]] = {
    KeyStatus.ACTIVE: frozenset({KeyEventKind.SUSPENDED, KeyEventKind.REVOKED}),
    KeyStatus.SUSPENDED: frozenset({KeyEventKind.REINSTATED, KeyEventKind.REVOKED}),
    KeyStatus.REVOKED: frozenset(),
    KeyStatus.EXPIRED: frozenset(),
}


def _check_transition(
    *, kid: str, state: KeyStatus, last: KeyEvent, not_after: datetime | None, event: KeyEvent
) -> None:
    """Raise KeyStateError, with the key's state and the refused kind, unless event may follow
    last (which left the key in state): in time order, and allowed in the state at event.at."""
    if not_after is not None and event.at >= not_after and state is not KeyStatus.REVOKED:
        state = KeyStatus.EXPIRED
    if event.at < last.at:
        reason = f"is dated before the key's last event ({last.at.isoformat()})"
    elif event.kind not in _ALLOWED[state]:
        reason = f"is not allowed when the key is {state}"
    else:
        return
    raise KeyStateError(
        f"key {kid}: a {event.kind} event at {event.at.isoformat()} {reason}",
        kid=kid,
        state=str(state),
        transition=str(event.kind),
        at=event.at.isoformat(),
    )


@dataclass(frozen=True, kw_only=True)
class KeyRecord:
    """A registered public key, its subject, validity period and history.

    ``events`` start with exactly one ``registered`` event, dated no later than ``not_before``,
    and follow the state machine in time order (equal times keep their given order).

    Raises on construction: KeyRecordError when ``kid`` is not the JWK's thumbprint, the subject
    is malformed, ``not_after`` is not after ``not_before``, or the events are empty, too many or
    do not start with the registration; KeyStateError when an event breaks the state machine;
    NaiveDatetimeError for a naive datetime.
    """

    kid: str
    subject: str
    jwk: PublicJwk
    assurance: AssuranceLevel
    not_before: datetime
    not_after: datetime | None
    events: tuple[KeyEvent, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.jwk, PublicJwk) or self.kid != self.jwk.kid:
            raise KeyRecordError("kid must be the RFC 7638 thumbprint of jwk", field="kid")
        if subject_kind(self.subject) is None:
            message = "subject is not a valid ir-nid:, ir-lid:, ee-ik:, ee-rg: or agency:"
            raise KeyRecordError(message, field="subject")
        if not isinstance(self.assurance, AssuranceLevel):
            raise KeyRecordError(f"unknown assurance {self.assurance!r}", field="assurance")
        require_aware(self.not_before, field="not_before")
        end = self.not_after
        if end is not None and require_aware(end, field="not_after") <= self.not_before:
            raise KeyRecordError("not_after must be after not_before", field="not_after")
        self._check_events()

    def _check_events(self) -> None:
        events = self.events
        if not isinstance(events, tuple) or not events:
            raise KeyRecordError("events must be a non-empty tuple", field="events")
        _check_event_count(len(events))
        first = events[0]
        if first.kind is not KeyEventKind.REGISTERED or first.at > self.not_before:
            raise KeyRecordError(
                "the first event must be the registration, no later than not_before",
                field="events",
            )
        for last, event in itertools.pairwise(events):
            state = _STATE_AFTER[last.kind]
            _check_transition(
                kid=self.kid, state=state, last=last, not_after=self.not_after, event=event
            )

    @classmethod
    def register(
        cls,
        *,
        jwk: PublicJwk,
        subject: str,
        assurance: AssuranceLevel,
        at: datetime,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        ledger_index: int | None = None,
    ) -> KeyRecord:
        """A new record for jwk, registered at ``at`` and valid from not_before (default: at).

        Raises as the constructor does.
        """
        event = KeyEvent(KeyEventKind.REGISTERED, at, ledger_index=ledger_index)
        start = at if not_before is None else not_before
        return cls(
            kid=jwk.kid,
            subject=subject,
            jwk=jwk,
            assurance=assurance,
            not_before=start,
            not_after=not_after,
            events=(event,),
        )

    @property
    def revoked_at(self) -> datetime | None:
        """When the revocation takes effect, or None for a key never revoked."""
        last = self.events[-1]
        return last.at if last.kind is KeyEventKind.REVOKED else None

    @property
    def revocation_reason(self) -> RevocationReason | None:
        return self.events[-1].reason

    def status_at(self, at: datetime) -> KeyStatus:
        """The key's state at instant ``at``.

        Revoked from the revocation's effective time on (inclusive), for ever; else not yet
        valid before not_before; else expired from not_after on (inclusive); else suspended
        between a suspension and the next reinstatement (each effective at its own instant);
        else active. Raises NaiveDatetimeError for a naive ``at``.
        """
        require_aware(at, field="at")
        # Events are in time order: the last one in effect at ``at`` decides.
        in_effect = None
        for event in self.events:
            if event.at > at:
                break
            in_effect = event.kind
        return _status(
            at=at,
            revoked_at=self.revoked_at,
            not_before=self.not_before,
            not_after=self.not_after,
            in_effect=in_effect,
        )

    def is_active_at(self, at: datetime) -> bool:
        """Whether the key may sign at ``at``. Raises NaiveDatetimeError for a naive ``at``."""
        return self.status_at(at) is KeyStatus.ACTIVE

    def with_event(self, event: KeyEvent) -> KeyRecord:
        """A copy of the record with event appended.

        Raises KeyStateError, carrying the current state and the refused transition, when the
        event is dated before the last one, is a second registration, follows a revocation or
        expiry, or reinstates a key that is not suspended; KeyRecordError past MAX_KEY_EVENTS.
        """
        check_next_event(
            kid=self.kid,
            not_after=self.not_after,
            last=self.events[-1],
            count=len(self.events),
            event=event,
        )
        return dataclasses.replace(self, events=(*self.events, event))


def _status(
    *,
    at: datetime,
    revoked_at: datetime | None,
    not_before: datetime,
    not_after: datetime | None,
    in_effect: KeyEventKind | None,
) -> KeyStatus:
    """KeyRecord.status_at's rule, given the kind of the last event in effect at ``at``."""
    if revoked_at is not None and at >= revoked_at:
        return KeyStatus.REVOKED
    if at < not_before:
        return KeyStatus.NOT_YET_VALID
    if not_after is not None and at >= not_after:
        return KeyStatus.EXPIRED
    return KeyStatus.ACTIVE if in_effect is None else _STATE_AFTER[in_effect]


def check_next_event(
    *, kid: str, not_after: datetime | None, last: KeyEvent, count: int, event: KeyEvent
) -> None:
    """Raise what KeyRecord.with_event raises unless event may follow last, the newest of the
    key's ``count`` events: only the newest event and the count decide, so a caller that stores
    the history need not read all of it (signatures.registry_store.add_key_event).
    """
    if not isinstance(event, KeyEvent):
        raise TypeError("event must be a KeyEvent")
    _check_transition(
        kid=kid, state=_STATE_AFTER[last.kind], last=last, not_after=not_after, event=event
    )
    _check_event_count(count + 1)


def _check_event_count(count: int) -> None:
    if count > MAX_KEY_EVENTS:
        raise KeyRecordError(f"more than MAX_KEY_EVENTS={MAX_KEY_EVENTS}", field="events")


def status_after_event(
    *,
    kid: str,
    not_before: datetime,
    not_after: datetime | None,
    last: KeyEvent,
    count: int,
    event: KeyEvent,
) -> KeyStatus:
    """The key's status at event.at once event follows last, the newest of its ``count``
    events: what ``record.with_event(event).status_at(event.at)`` gives, raising as it does,
    without the rest of the history."""
    check_next_event(kid=kid, not_after=not_after, last=last, count=count, event=event)
    revoked_at = event.at if event.kind is KeyEventKind.REVOKED else None
    return _status(
        at=event.at,
        revoked_at=revoked_at,
        not_before=not_before,
        not_after=not_after,
        in_effect=event.kind,
    )


# --- delegation ----------------------------------------------------------------------------------


def is_transaction_type(value: str) -> bool:
    """Whether value is a concrete transaction type such as "tax.return.corporate"."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_TYPE_CHARS
        and _TYPE.fullmatch(value) is not None
    )


def _is_type_pattern(value: str) -> bool:
    """A concrete type, or a namespace followed by ".*" ("tax.*")."""
    if not isinstance(value, str) or len(value) > MAX_TYPE_CHARS:
        return False
    if value.endswith(_WILDCARD):
        return _NAMESPACE.fullmatch(value[: -len(_WILDCARD)]) is not None
    return _TYPE.fullmatch(value) is not None


def _limit_error(field: str, limit_name: str, limit: int, actual: int) -> DelegationLimitError:
    message = f"{field}: {actual} is over {limit_name}={limit}"
    return DelegationLimitError(
        message, field=field, limit_name=limit_name, limit=limit, actual=actual
    )


def _type_matches(pattern: str, transaction_type: str) -> bool:
    if pattern.endswith(_WILDCARD):
        return transaction_type.startswith(pattern[:-1])  # keep the dot: "tax." not "taxi"
    return pattern == transaction_type


@dataclass(frozen=True, kw_only=True)
class Delegation:
    """Legal entity ``grantor`` lets natural person ``delegate`` sign ``types`` for it.

    ``types`` holds concrete transaction types or namespace wildcards ("tax.*" covers every type
    under "tax.", at any depth, but not "tax" itself). Valid from ``granted_at`` (inclusive)
    until ``not_after`` or ``revoked_at`` (exclusive). ``ledger_index`` locates the grant and
    ``revocation_ledger_index`` the revocation in the audit ledger.

    Raises on construction: DelegationError for a malformed subject, type or period, or a
    revocation before the grant; DelegationLimitError past MAX_DELEGATION_TYPES or
    MAX_DELEGATION_DAYS; NaiveDatetimeError for a naive datetime.
    """

    grantor: str
    delegate: str
    types: frozenset[str]
    granted_at: datetime
    not_after: datetime
    revoked_at: datetime | None = None
    ledger_index: int | None = None
    revocation_ledger_index: int | None = None

    def __post_init__(self) -> None:
        grantor_kind = subject_kind(self.grantor)
        if grantor_kind is None or not grantor_kind.is_entity():
            message = "the grantor must be a legal entity (ir-lid: or ee-rg:)"
            raise DelegationError(message, field="grantor")
        delegate_kind = subject_kind(self.delegate)
        if delegate_kind is None or not delegate_kind.is_person():
            message = "the delegate must be a person (ir-nid: or ee-ik:)"
            raise DelegationError(message, field="delegate")
        self._check_types()
        self._check_period()
        for name in ("ledger_index", "revocation_ledger_index"):
            if not _is_ledger_index(getattr(self, name)):
                raise DelegationError(f"{name} must be a non-negative int", field=name)

    def _check_types(self) -> None:
        if not isinstance(self.types, frozenset) or not self.types:
            raise DelegationError("types must be a non-empty frozenset", field="types")
        if len(self.types) > MAX_DELEGATION_TYPES:
            raise _limit_error(
                "types", "MAX_DELEGATION_TYPES", MAX_DELEGATION_TYPES, len(self.types)
            )
        for value in sorted(str(item) for item in self.types):
            if not _is_type_pattern(value):
                raise DelegationError(f"{value!r} is not a transaction type", field="types")

    def _check_period(self) -> None:
        start = require_aware(self.granted_at, field="granted_at")
        end = require_aware(self.not_after, field="not_after")
        if end <= start:
            raise DelegationError("not_after must be after granted_at", field="not_after")
        if end - start > timedelta(days=MAX_DELEGATION_DAYS):
            days = (end - start).days
            raise _limit_error("not_after", "MAX_DELEGATION_DAYS", MAX_DELEGATION_DAYS, days)
        revoked = self.revoked_at
        if revoked is not None and require_aware(revoked, field="revoked_at") < start:
            raise DelegationError("revoked_at is before granted_at", field="revoked_at")

    def is_valid_at(self, *, at: datetime, transaction_type: str) -> bool:
        """Whether the delegate may sign transaction_type for the grantor at ``at``.

        False for a malformed or wildcard transaction_type. Raises NaiveDatetimeError for a
        naive ``at``.
        """
        require_aware(at, field="at")
        if not self.granted_at <= at < self.not_after:
            return False
        if self.revoked_at is not None and at >= self.revoked_at:
            return False
        if not is_transaction_type(transaction_type):
            return False
        return any(_type_matches(pattern, transaction_type) for pattern in self.types)

    def revoke(self, at: datetime, *, ledger_index: int | None = None) -> Delegation:
        """A copy revoked from ``at`` on, the revocation recorded at ledger_index.

        Raises DelegationError when already revoked or ``at`` is before granted_at,
        NaiveDatetimeError for a naive ``at``.
        """
        require_aware(at, field="at")
        if self.revoked_at is not None:
            raise DelegationError(
                f"the delegation was already revoked at {self.revoked_at.isoformat()}",
                field="revoked_at",
            )
        if at < self.granted_at:
            raise DelegationError("a delegation cannot be revoked before its grant", field="at")
        return dataclasses.replace(self, revoked_at=at, revocation_ledger_index=ledger_index)


def find_delegation(
    delegations: Iterable[Delegation],
    *,
    grantor: str,
    delegate: str,
    transaction_type: str,
    at: datetime,
) -> Delegation | None:
    """The delegation that lets delegate sign transaction_type for grantor at ``at``, if any.

    When several do, the most recent grant wins (the latest granted_at; the first given among
    equals), so the answer does not depend on storage order for distinct grants. Raises
    NaiveDatetimeError for a naive ``at``.
    """
    require_aware(at, field="at")
    found: Delegation | None = None
    for delegation in delegations:
        if delegation.grantor != grantor or delegation.delegate != delegate:
            continue
        if not delegation.is_valid_at(at=at, transaction_type=transaction_type):
            continue
        if found is None or delegation.granted_at > found.granted_at:
            found = delegation
    return found
