"""Hypothesis: point-in-time validation over random key histories, proofs and validation times.

The oracle is the rule the service promises: a report is TOTAL_PASSED iff the signature is
genuine and the key was active at the decisive time (the proof of existence's time, else the
validation time), given that the signer's claimed iat is not later than that time plus the
policy's clock skew, and that a proof exists when the policy requires one. A changed payload or
a changed JWS is never TOTAL_PASSED.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from signatures.errors import KeyStateError
from signatures.jwk import PublicJwk
from signatures.jws import sign_detached
from signatures.keys import (
    AssuranceLevel,
    KeyEvent,
    KeyEventKind,
    KeyRecord,
    KeyStatus,
    RevocationReason,
)
from signatures.validation import (
    DEFAULT_POLICY,
    Indication,
    ProofOfExistence,
    SubIndication,
    ValidationPolicy,
    validate_at,
)

PRIVATE = Ed25519PrivateKey.generate()
JWK = PublicJwk.from_public_key(PRIVATE.public_key())
T0 = datetime(2025, 3, 21, tzinfo=UTC)
HORIZON_S = 4 * 365 * 86_400  # every instant drawn lies within four years of T0
PAYLOAD = b'{"nonce":"AAAAAAAAAAAAAAAAAAAAAA","type":"bill.payment","version":1}'

instants = st.integers(0, HORIZON_S).map(lambda s: T0 + timedelta(seconds=s))
event_kinds = st.sampled_from(
    [KeyEventKind.SUSPENDED, KeyEventKind.REINSTATED, KeyEventKind.REVOKED]
)


@st.composite
def key_records(draw: st.DrawFn) -> KeyRecord:
    """A key with a random validity period and a random history the state machine accepts."""
    # Mostly early in the horizon, so that most instants drawn fall after it.
    not_before = T0 + timedelta(seconds=draw(st.integers(0, 180 * 86_400)))
    not_after = draw(
        st.none() | st.integers(1, HORIZON_S).map(lambda s: not_before + timedelta(seconds=s))
    )
    record = KeyRecord.register(
        jwk=JWK,
        subject="agency:tax-office",
        assurance=AssuranceLevel.REGISTERED,
        at=T0,
        not_before=not_before,
        not_after=not_after,
    )
    for at in sorted(draw(st.lists(instants, max_size=6))):
        kind = draw(event_kinds)
        reason = draw(st.sampled_from(RevocationReason)) if kind is KeyEventKind.REVOKED else None
        try:
            record = record.with_event(KeyEvent(kind, at, reason=reason))
        except KeyStateError:
            continue  # a refused transition leaves the record as it was
    return record


@st.composite
def cases(draw: st.DrawFn) -> tuple[KeyRecord, ProofOfExistence | None, datetime, int]:
    """A key, an optional proof of existence, a validation time not before it, and an iat."""
    key = draw(key_records())
    poe_time = draw(st.none() | instants)
    at = draw(instants if poe_time is None else st.integers(0, HORIZON_S).map(
        lambda s: poe_time + timedelta(seconds=s)))  # fmt: skip
    poe = None if poe_time is None else ProofOfExistence.from_ledger(
        time=poe_time, ledger_index=draw(st.integers(0, 999)), tree_size=1000)  # fmt: skip
    decisive = at if poe is None else poe.time
    # Mostly honest iats (at or shortly before the decisive time), sometimes impossible ones.
    iat_offset = draw(st.integers(-30 * 86_400, 0) | st.integers(1, 3600))
    return key, poe, at, int(decisive.timestamp()) + iat_offset


def _should_pass(key: KeyRecord, poe: ProofOfExistence | None, at: datetime, iat: int, *,
                 policy: ValidationPolicy) -> bool:  # fmt: skip
    decisive = at if poe is None else poe.time
    iat_possible = iat - policy.max_clock_skew_s <= decisive.timestamp()
    return (
        key.status_at(decisive) is KeyStatus.ACTIVE
        and iat_possible
        and (poe is not None or not policy.require_poe)
    )


@given(cases(), st.booleans())
def test_passed_iff_genuine_and_active_at_the_decisive_time(
    case: tuple[KeyRecord, ProofOfExistence | None, datetime, int], require_poe: bool
) -> None:
    key, poe, at, iat = case
    policy = ValidationPolicy(require_poe=require_poe)
    jws = sign_detached(PAYLOAD, PRIVATE, iat=iat)
    report = validate_at(jws=jws, payload=PAYLOAD, key=key, poe=poe, at=at, policy=policy)
    assert report.passed == _should_pass(key, poe, at, iat, policy=policy), report.as_dict()
    assert report.key_status is key.status_at(report.decisive_time)
    if report.indication is Indication.TOTAL_FAILED:
        # A genuine signature fails only on proof that the key was unusable when it existed.
        assert poe is not None or report.sub_indication is SubIndication.NOT_YET_VALID


@given(cases())
def test_a_poe_while_active_passes_at_every_later_time(
    case: tuple[KeyRecord, ProofOfExistence | None, datetime, int],
) -> None:
    key, poe, at, iat = case
    if poe is None or not key.is_active_at(poe.time) or iat > poe.time.timestamp():
        return
    jws = sign_detached(PAYLOAD, PRIVATE, iat=iat)
    for later in (at, at + timedelta(days=3650)):
        assert validate_at(jws=jws, payload=PAYLOAD, key=key, poe=poe, at=later).passed


@given(cases(), st.integers(0, 8 * len(PAYLOAD) - 1))
def test_flipping_a_payload_bit_never_passes(
    case: tuple[KeyRecord, ProofOfExistence | None, datetime, int], bit: int
) -> None:
    key, poe, at, iat = case
    jws = sign_detached(PAYLOAD, PRIVATE, iat=iat)
    changed = bytearray(PAYLOAD)
    changed[bit // 8] ^= 1 << (bit % 8)
    report = validate_at(jws=jws, payload=bytes(changed), key=key, poe=poe, at=at)
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE


@given(cases(), st.data())
def test_flipping_a_jws_bit_never_passes(
    case: tuple[KeyRecord, ProofOfExistence | None, datetime, int], data: st.DataObject
) -> None:
    key, poe, at, iat = case
    jws = sign_detached(PAYLOAD, PRIVATE, iat=iat)
    bit = data.draw(st.integers(0, 8 * len(jws) - 1))
    chars = bytearray(jws.encode("ascii"))
    chars[bit // 8] ^= 1 << (bit % 8)
    mutated = chars.decode("latin-1")
    report = validate_at(
        jws=mutated, payload=PAYLOAD, key=key, poe=poe, at=at, policy=DEFAULT_POLICY
    )
    assert not report.passed
