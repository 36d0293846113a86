"""Key registry model: every key state transition, status at edge instants, delegations, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signatures.errors import (
    DelegationError,
    DelegationLimitError,
    KeyRecordError,
    KeyStateError,
    NaiveDatetimeError,
)
from signatures.jwk import PublicJwk
from signatures.keys import (
    MAX_DELEGATION_DAYS,
    MAX_DELEGATION_TYPES,
    MAX_KEY_EVENTS,
    AssuranceLevel,
    Delegation,
    KeyEvent,
    KeyEventKind,
    KeyRecord,
    KeyStatus,
    RevocationReason,
    find_delegation,
    is_transaction_type,
)

T0 = datetime(2025, 3, 21, 8, 30, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
PERSON = "ir-nid:0499370899"
OTHER_PERSON = "ir-nid:1234567008"
COMPANY = "ir-lid:10380284790"
OTHER_COMPANY = "ir-lid:10380284714"
JWK = PublicJwk.from_public_key(Ed25519PrivateKey.generate().public_key())


def _record(*, not_before: datetime = T0, not_after: datetime | None = T0 + 365 * DAY) -> KeyRecord:
    return KeyRecord.register(
        jwk=JWK,
        subject=PERSON,
        assurance=AssuranceLevel.REGISTERED,
        at=T0,
        not_before=not_before,
        not_after=not_after,
        ledger_index=7,
    )


def _raw(events: tuple[KeyEvent, ...], *, kid: str = JWK.kid) -> KeyRecord:
    """A record built from a whole history at once (the constructor replays it)."""
    return KeyRecord(
        kid=kid,
        subject=PERSON,
        jwk=JWK,
        assurance=AssuranceLevel.CERTIFIED,
        not_before=T0,
        not_after=None,
        events=events,
    )


def _suspend(at: datetime) -> KeyEvent:
    return KeyEvent(KeyEventKind.SUSPENDED, at)


def _reinstate(at: datetime) -> KeyEvent:
    return KeyEvent(KeyEventKind.REINSTATED, at)


def _revoke(at: datetime, reason: RevocationReason = RevocationReason.KEY_COMPROMISE) -> KeyEvent:
    return KeyEvent(KeyEventKind.REVOKED, at, reason=reason, ledger_index=42)


# --- registration and validity period ------------------------------------------------------------


def test_registered_key_is_active_from_not_before_inclusive() -> None:
    record = _record()
    assert record.kid == JWK.kid
    assert record.events == (KeyEvent(KeyEventKind.REGISTERED, T0, ledger_index=7),)
    assert record.status_at(T0) is KeyStatus.ACTIVE
    assert record.status_at(T0 - TICK) is KeyStatus.NOT_YET_VALID
    assert record.is_active_at(T0)
    assert record.revoked_at is None and record.revocation_reason is None


def test_key_registered_ahead_of_its_validity_is_not_yet_valid_until_not_before() -> None:
    record = _record(not_before=T0 + 10 * DAY)
    assert record.status_at(T0) is KeyStatus.NOT_YET_VALID
    assert record.status_at(T0 + 10 * DAY - TICK) is KeyStatus.NOT_YET_VALID
    assert record.status_at(T0 + 10 * DAY) is KeyStatus.ACTIVE


def test_expired_exactly_at_not_after() -> None:
    record = _record()
    assert record.status_at(T0 + 365 * DAY - TICK) is KeyStatus.ACTIVE
    assert record.status_at(T0 + 365 * DAY) is KeyStatus.EXPIRED
    assert record.status_at(T0 + 3650 * DAY) is KeyStatus.EXPIRED


def test_key_without_not_after_never_expires() -> None:
    record = _record(not_after=None)
    assert record.status_at(datetime(9999, 1, 1, tzinfo=UTC)) is KeyStatus.ACTIVE


# --- allowed transitions -------------------------------------------------------------------------


def test_suspension_takes_effect_exactly_at_its_time() -> None:
    record = _record().with_event(_suspend(T0 + DAY))
    assert record.status_at(T0 + DAY - TICK) is KeyStatus.ACTIVE
    assert record.status_at(T0 + DAY) is KeyStatus.SUSPENDED


def test_reinstatement_ends_the_suspension_exactly_at_its_time() -> None:
    record = _record().with_event(_suspend(T0 + DAY)).with_event(_reinstate(T0 + 2 * DAY))
    assert record.status_at(T0 + 2 * DAY - TICK) is KeyStatus.SUSPENDED
    assert record.status_at(T0 + 2 * DAY) is KeyStatus.ACTIVE
    # History is kept: the key was suspended in between, whenever we ask.
    assert record.status_at(T0 + DAY) is KeyStatus.SUSPENDED


def test_revocation_from_active_takes_effect_exactly_at_its_time_for_ever() -> None:
    record = _record().with_event(_revoke(T0 + DAY))
    assert record.status_at(T0 + DAY - TICK) is KeyStatus.ACTIVE
    assert record.status_at(T0 + DAY) is KeyStatus.REVOKED
    # Revocation outranks expiry: still "revoked" after not_after.
    assert record.status_at(T0 + 1000 * DAY) is KeyStatus.REVOKED
    assert record.revoked_at == T0 + DAY
    assert record.revocation_reason is RevocationReason.KEY_COMPROMISE


def test_revocation_from_suspended() -> None:
    record = _record().with_event(_suspend(T0 + DAY))
    record = record.with_event(_revoke(T0 + 2 * DAY, RevocationReason.SUPERSEDED))
    assert record.status_at(T0 + DAY) is KeyStatus.SUSPENDED
    assert record.status_at(T0 + 2 * DAY) is KeyStatus.REVOKED
    assert record.revocation_reason is RevocationReason.SUPERSEDED


def test_revocation_before_not_before_covers_the_whole_period() -> None:
    record = _record(not_before=T0 + 10 * DAY).with_event(
        _revoke(T0 + DAY, RevocationReason.CESSATION_OF_OPERATION)
    )
    assert record.status_at(T0 + 10 * DAY) is KeyStatus.REVOKED


def test_events_at_the_same_instant_apply_in_order() -> None:
    record = _record().with_event(_suspend(T0 + DAY)).with_event(_revoke(T0 + DAY))
    assert record.status_at(T0 + DAY) is KeyStatus.REVOKED


def test_several_suspensions() -> None:
    record = _record()
    for day in range(1, 7, 2):
        record = record.with_event(_suspend(T0 + day * DAY))
        record = record.with_event(_reinstate(T0 + (day + 1) * DAY))
    assert [record.status_at(T0 + d * DAY) for d in range(8)] == [
        KeyStatus.ACTIVE,
        KeyStatus.SUSPENDED,
        KeyStatus.ACTIVE,
        KeyStatus.SUSPENDED,
        KeyStatus.ACTIVE,
        KeyStatus.SUSPENDED,
        KeyStatus.ACTIVE,
        KeyStatus.ACTIVE,
    ]


def test_with_event_leaves_the_original_unchanged() -> None:
    record = _record()
    record.with_event(_suspend(T0 + DAY))
    assert len(record.events) == 1


# --- refused transitions -------------------------------------------------------------------------


def _refused(record: KeyRecord, event: KeyEvent) -> KeyStateError:
    with pytest.raises(KeyStateError) as info:
        record.with_event(event)
    assert info.value.kid == record.kid
    assert info.value.transition == event.kind.value
    assert info.value.at == event.at.isoformat()
    return info.value


def test_reinstating_an_active_key_is_refused() -> None:
    assert _refused(_record(), _reinstate(T0 + DAY)).state == "active"


def test_suspending_a_suspended_key_is_refused() -> None:
    record = _record().with_event(_suspend(T0 + DAY))
    assert _refused(record, _suspend(T0 + 2 * DAY)).state == "suspended"


@pytest.mark.parametrize(
    "event",
    [_suspend(T0 + 2 * DAY), _reinstate(T0 + 2 * DAY), _revoke(T0 + 2 * DAY)],
    ids=["suspend", "reinstate", "revoke-again"],
)
def test_no_event_after_revocation(event: KeyEvent) -> None:
    record = _record().with_event(_revoke(T0 + DAY))
    assert _refused(record, event).state == "revoked"


def test_a_second_registration_is_refused() -> None:
    assert _refused(_record(), KeyEvent(KeyEventKind.REGISTERED, T0 + DAY)).state == "active"


def test_an_event_dated_before_the_last_one_is_refused() -> None:
    record = _record().with_event(_suspend(T0 + 2 * DAY))
    error = _refused(record, _reinstate(T0 + DAY))
    assert error.state == "suspended"
    assert "before" in str(error)


@pytest.mark.parametrize("kind", ["suspend", "revoke"])
def test_no_event_at_or_after_expiry(kind: str) -> None:
    at = T0 + 365 * DAY
    event = _suspend(at) if kind == "suspend" else _revoke(at)
    assert _refused(_record(), event).state == "expired"


def test_construction_replays_the_state_machine() -> None:
    registered = KeyEvent(KeyEventKind.REGISTERED, T0)
    with pytest.raises(KeyStateError) as info:
        _raw((registered, _revoke(T0 + DAY), _reinstate(T0 + 2 * DAY)))
    assert (info.value.state, info.value.transition) == ("revoked", "reinstated")


# --- malformed records and events ----------------------------------------------------------------


def test_revocation_needs_a_reason_and_others_have_none() -> None:
    with pytest.raises(KeyRecordError) as info:
        KeyEvent(KeyEventKind.REVOKED, T0)
    assert info.value.field == "reason"
    with pytest.raises(KeyRecordError):
        KeyEvent(KeyEventKind.SUSPENDED, T0, reason=RevocationReason.SUPERSEDED)


@pytest.mark.parametrize("index", [-1, True, 1.5])
def test_ledger_index_must_be_a_non_negative_int(index: object) -> None:
    with pytest.raises(KeyRecordError):
        KeyEvent(KeyEventKind.SUSPENDED, T0, ledger_index=index)  # type: ignore[arg-type]


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2025, 3, 21, 8, 30)
    with pytest.raises(NaiveDatetimeError) as info:
        _record().status_at(naive)
    assert info.value.field == "at"
    with pytest.raises(NaiveDatetimeError):
        KeyEvent(KeyEventKind.SUSPENDED, naive)
    with pytest.raises(NaiveDatetimeError):
        _record(not_after=naive)


def test_non_utc_aware_times_compare_as_instants() -> None:
    tehran = timezone(timedelta(hours=3, minutes=30))
    suspended = _record().with_event(_suspend(T0 + DAY))
    # 12:00 in Tehran is 08:30 UTC: exactly the suspension instant.
    assert suspended.status_at(datetime(2025, 3, 22, 12, 0, tzinfo=tehran)) is KeyStatus.SUSPENDED
    assert suspended.status_at(datetime(2025, 3, 22, 11, 59, tzinfo=tehran)) is KeyStatus.ACTIVE


def test_kid_must_be_the_jwk_thumbprint() -> None:
    other = PublicJwk.from_public_key(Ed25519PrivateKey.generate().public_key())
    registered = (KeyEvent(KeyEventKind.REGISTERED, T0),)
    with pytest.raises(KeyRecordError) as info:
        _raw(registered, kid=other.kid)
    assert info.value.field == "kid"


@pytest.mark.parametrize(
    "subject", ["ir-nid:0499370898", "ir-nid:049937089", "nid:0499370899", "ir-lid:10380284791"]
)
def test_subject_must_be_valid_with_check_digit(subject: str) -> None:
    with pytest.raises(KeyRecordError) as info:
        KeyRecord.register(jwk=JWK, subject=subject, assurance=AssuranceLevel.REGISTERED, at=T0)
    assert info.value.field == "subject"


@pytest.mark.parametrize("subject", [PERSON, COMPANY, "agency:tax-office"])
def test_every_subject_kind_may_hold_keys(subject: str) -> None:
    record = KeyRecord.register(jwk=JWK, subject=subject, assurance=AssuranceLevel.CERTIFIED, at=T0)
    assert record.subject == subject


def test_not_after_must_follow_not_before() -> None:
    with pytest.raises(KeyRecordError) as info:
        _record(not_after=T0)
    assert info.value.field == "not_after"


def test_history_must_start_with_the_registration_no_later_than_not_before() -> None:
    with pytest.raises(KeyRecordError):
        _raw(())
    with pytest.raises(KeyRecordError):
        _raw((_suspend(T0),))
    late = (KeyEvent(KeyEventKind.REGISTERED, T0 + DAY),)
    with pytest.raises(KeyRecordError):
        _raw(late)


def test_max_key_events_is_enforced() -> None:
    events = [KeyEvent(KeyEventKind.REGISTERED, T0)]
    for i in range(MAX_KEY_EVENTS - 1):
        events.append(_suspend(T0) if i % 2 == 0 else _reinstate(T0))
    record = _raw(tuple(events))
    assert len(record.events) == MAX_KEY_EVENTS
    with pytest.raises(KeyRecordError) as info:
        record.with_event(_revoke(T0 + DAY))
    assert info.value.field == "events"


# --- delegation ----------------------------------------------------------------------------------

TYPES = frozenset({"tax.return.corporate", "vat.*"})


def _delegation(**changes: object) -> Delegation:
    fields: dict[str, object] = {
        "grantor": COMPANY,
        "delegate": PERSON,
        "types": TYPES,
        "granted_at": T0,
        "not_after": T0 + 365 * DAY,
        "ledger_index": 11,
    }
    fields.update(changes)
    return Delegation(**fields)  # type: ignore[arg-type]


def test_delegation_is_valid_from_grant_inclusive_to_not_after_exclusive() -> None:
    delegation = _delegation()
    tx = "tax.return.corporate"
    assert not delegation.is_valid_at(at=T0 - TICK, transaction_type=tx)
    assert delegation.is_valid_at(at=T0, transaction_type=tx)
    assert delegation.is_valid_at(at=T0 + 365 * DAY - TICK, transaction_type=tx)
    assert not delegation.is_valid_at(at=T0 + 365 * DAY, transaction_type=tx)


def test_revoked_delegation_is_invalid_from_the_revocation_inclusive() -> None:
    revoked = _delegation().revoke(T0 + DAY, ledger_index=12)
    tx = "tax.return.corporate"
    assert revoked.revoked_at == T0 + DAY and revoked.revocation_ledger_index == 12
    assert revoked.is_valid_at(at=T0 + DAY - TICK, transaction_type=tx)
    assert not revoked.is_valid_at(at=T0 + DAY, transaction_type=tx)


def test_delegation_covers_only_its_types() -> None:
    delegation = _delegation()
    assert not delegation.is_valid_at(at=T0, transaction_type="tax.return.personal")
    assert not delegation.is_valid_at(at=T0, transaction_type="licence.renewal")


def test_namespace_wildcard_covers_the_namespace_at_any_depth_and_nothing_else() -> None:
    delegation = _delegation()
    assert delegation.is_valid_at(at=T0, transaction_type="vat.return")
    assert delegation.is_valid_at(at=T0, transaction_type="vat.return.amendment")
    assert not delegation.is_valid_at(at=T0, transaction_type="vatx.return")
    # Neither the namespace itself nor a wildcard query is a transaction type.
    assert not delegation.is_valid_at(at=T0, transaction_type="vat")
    assert not delegation.is_valid_at(at=T0, transaction_type="vat.*")


@pytest.mark.parametrize("bad", ["*", ".*", "tax", "Tax.return", "tax..return", "tax.*.return"])
def test_malformed_types_are_refused(bad: str) -> None:
    with pytest.raises(DelegationError) as info:
        _delegation(types=frozenset({bad}))
    assert info.value.field == "types"


def test_is_transaction_type() -> None:
    assert is_transaction_type("tax.return.corporate")
    assert not is_transaction_type("tax")
    assert not is_transaction_type("tax.*")
    assert not is_transaction_type("tax.retürn")


def test_grantor_must_be_a_legal_entity_and_delegate_a_person() -> None:
    with pytest.raises(DelegationError) as info:
        _delegation(grantor=PERSON)
    assert info.value.field == "grantor"
    with pytest.raises(DelegationError) as info:
        _delegation(delegate=COMPANY)
    assert info.value.field == "delegate"


def test_revoking_twice_or_before_the_grant_is_refused() -> None:
    delegation = _delegation()
    with pytest.raises(DelegationError):
        delegation.revoke(T0 - TICK)
    revoked = delegation.revoke(T0)
    with pytest.raises(DelegationError) as info:
        revoked.revoke(T0 + DAY)
    assert info.value.field == "revoked_at"
    with pytest.raises(DelegationError):
        _delegation(revoked_at=T0 - TICK)


def test_delegation_limits() -> None:
    many = frozenset(f"tax.form{i}" for i in range(MAX_DELEGATION_TYPES))
    assert len(_delegation(types=many).types) == MAX_DELEGATION_TYPES
    with pytest.raises(DelegationLimitError) as info:
        _delegation(types=many | {"tax.one_too_many"})
    assert (info.value.limit_name, info.value.actual) == ("MAX_DELEGATION_TYPES", 65)
    longest = T0 + timedelta(days=MAX_DELEGATION_DAYS)
    assert _delegation(not_after=longest).not_after == longest
    with pytest.raises(DelegationLimitError) as info:
        _delegation(not_after=longest + TICK)
    assert info.value.limit_name == "MAX_DELEGATION_DAYS"


def test_delegation_period_must_be_positive_and_aware() -> None:
    with pytest.raises(DelegationError):
        _delegation(not_after=T0)
    with pytest.raises(NaiveDatetimeError):
        _delegation(granted_at=datetime(2025, 1, 1))
    with pytest.raises(NaiveDatetimeError):
        _delegation().is_valid_at(at=datetime(2025, 4, 1), transaction_type="vat.return")


def test_find_delegation() -> None:
    tx = "tax.return.corporate"
    old = _delegation()
    newer = _delegation(granted_at=T0 + DAY, ledger_index=20)
    revoked = _delegation(granted_at=T0 + 2 * DAY).revoke(T0 + 3 * DAY)
    other = _delegation(grantor=OTHER_COMPANY, granted_at=T0 + 4 * DAY)
    all_ = [old, revoked, newer, other]

    def find(**kw: object) -> Delegation | None:
        query: dict[str, object] = {
            "grantor": COMPANY,
            "delegate": PERSON,
            "transaction_type": tx,
            "at": T0 + 5 * DAY,
        }
        query.update(kw)
        return find_delegation(all_, **query)  # type: ignore[arg-type]

    assert find() is newer  # the latest valid grant wins; the revoked one is skipped
    assert find(at=T0 + 2 * DAY) is revoked
    assert find(at=T0) is old
    assert find(grantor=OTHER_COMPANY) is other
    assert find(grantor="ir-lid:10380284729") is None  # wrong grantor
    assert find(delegate=OTHER_PERSON) is None  # wrong delegate
    assert find(transaction_type="licence.renewal") is None  # wrong type
    assert find(at=T0 + 400 * DAY) is None  # expired
    assert find_delegation([], grantor=COMPANY, delegate=PERSON, transaction_type=tx, at=T0) is None
