"""Point-in-time validation: one named case per sub-indication we emit, and the TOTAL_PASSED cases.

Every signature is real (signatures.jws.sign_detached with Ed25519, P-256 and RSA-2048 keys made
once for the module); forged headers are built by hand only where the test is about the header.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signatures.errors import NaiveDatetimeError, ValidationInputError
from signatures.jwk import PublicJwk
from signatures.jws import PrivateKey, sign_detached
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
    MAX_DETAIL_CHARS,
    Indication,
    PoeSource,
    ProofOfExistence,
    SubIndication,
    TimeSource,
    ValidationPolicy,
    ValidationReport,
    validate_at,
)

ED25519 = Ed25519PrivateKey.generate()
P256 = ec.generate_private_key(ec.SECP256R1())
RSA2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ALL_KEYS: dict[str, PrivateKey] = {"EdDSA": ED25519, "ES256": P256, "PS256": RSA2048}

T0 = datetime(2025, 3, 21, 8, 30, tzinfo=UTC)  # registration and not_before
DAY = timedelta(days=1)
YEAR = 365 * DAY
NOT_AFTER = T0 + 2 * YEAR
SIGNED = T0 + 30 * DAY  # when the client signs (its claimed iat)
RECORDED = SIGNED + timedelta(seconds=2)  # when the ledger recorded it
REVOKED = T0 + YEAR  # when the key is revoked, in the cases that revoke it
PAYLOAD = b'{"created_at":"2025-04-20T08:30:00Z","nonce":"x","type":"tax.return.corporate"}'
SUBJECT = "ir-nid:0499370899"


def _iat(at: datetime) -> int:
    return int(at.timestamp())


def _sign(private: PrivateKey = ED25519, *, at: datetime = SIGNED, payload: bytes = PAYLOAD) -> str:
    return sign_detached(payload, private, iat=_iat(at))


def _record(
    private: PrivateKey = ED25519,
    *,
    not_before: datetime = T0,
    not_after: datetime | None = NOT_AFTER,
    events: tuple[KeyEvent, ...] = (),
) -> KeyRecord:
    record = KeyRecord.register(
        jwk=PublicJwk.from_public_key(private.public_key()),
        subject=SUBJECT,
        assurance=AssuranceLevel.REGISTERED,
        at=min(T0, not_before),
        not_before=not_before,
        not_after=not_after,
        ledger_index=1,
    )
    for event in events:
        record = record.with_event(event)
    return record


def _revoked(private: PrivateKey = ED25519, at: datetime = REVOKED) -> KeyRecord:
    event = KeyEvent(KeyEventKind.REVOKED, at, reason=RevocationReason.KEY_COMPROMISE)
    return _record(private, events=(event,))


def _poe(at: datetime = RECORDED) -> ProofOfExistence:
    return ProofOfExistence.from_ledger(time=at, ledger_index=41, tree_size=100)


def _validate(
    *,
    jws: str | None = None,
    payload: bytes = PAYLOAD,
    key: KeyRecord | None = None,
    poe: ProofOfExistence | None = None,
    at: datetime = RECORDED,
    policy: ValidationPolicy = DEFAULT_POLICY,
) -> ValidationReport:
    return validate_at(
        jws=_sign() if jws is None else jws,
        payload=payload,
        key=_record() if key is None else key,
        poe=poe,
        at=at,
        policy=policy,
    )


def _expect(report: ValidationReport, sub: SubIndication | None) -> None:
    expected = Indication.TOTAL_PASSED if sub is None else sub.indication
    assert (report.indication, report.sub_indication) == (expected, sub), report.detail


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _forge(header: dict[str, object], signature: bytes = bytes(64)) -> str:
    raw = json.dumps(header, separators=(",", ":")).encode()
    return f"{_b64(raw)}..{_b64(signature)}"


def _header(private: PrivateKey = ED25519, **changes: object) -> dict[str, object]:
    jwk = PublicJwk.from_public_key(private.public_key())
    header: dict[str, object] = {
        "alg": jwk.alg,
        "kid": jwk.kid,
        "typ": "pishkhan-tx+jws",
        "iat": _iat(SIGNED),
    }
    header.update(changes)
    return header


# --- TOTAL_PASSED --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", sorted(ALL_KEYS))
def test_total_passed_without_poe_at_validation_time(alg: str) -> None:
    private = ALL_KEYS[alg]
    report = _validate(jws=_sign(private), key=_record(private), at=SIGNED + timedelta(seconds=1))
    _expect(report, None)
    assert report.passed
    assert report.alg == alg and report.subject == SUBJECT
    assert report.key_status is KeyStatus.ACTIVE
    assert report.decisive_time_source is TimeSource.VALIDATION_TIME
    assert report.decisive_time == report.validation_time == SIGNED + timedelta(seconds=1)
    assert report.claimed_iat == SIGNED


@pytest.mark.parametrize("alg", sorted(ALL_KEYS))
def test_total_passed_with_poe(alg: str) -> None:
    private = ALL_KEYS[alg]
    report = _validate(jws=_sign(private), key=_record(private), poe=_poe(), at=RECORDED + DAY)
    _expect(report, None)
    assert report.decisive_time_source is TimeSource.PROOF_OF_EXISTENCE
    assert report.decisive_time == RECORDED


@pytest.mark.parametrize("alg", sorted(ALL_KEYS))
def test_poe_before_revocation_stays_passed_when_validated_years_later(alg: str) -> None:
    """The core promise: a later revocation never invalidates an earlier, recorded signature."""
    private = ALL_KEYS[alg]
    key = _revoked(private)
    for at in (REVOKED, REVOKED + YEAR, REVOKED + 20 * YEAR):
        report = _validate(jws=_sign(private), key=key, poe=_poe(), at=at)
        _expect(report, None)
        assert report.key_status is KeyStatus.ACTIVE  # at the decisive time, the PoE's
        assert report.key_revoked_at == REVOKED


def test_poe_one_instant_before_revocation_passes() -> None:
    report = _validate(key=_revoked(), poe=_poe(REVOKED - timedelta(microseconds=1)), at=REVOKED)
    _expect(report, None)


def test_poe_inside_validity_passes_after_expiry() -> None:
    _expect(_validate(poe=_poe(), at=NOT_AFTER + 5 * YEAR), None)


def test_poe_after_a_reinstatement_passes() -> None:
    events = (
        KeyEvent(KeyEventKind.SUSPENDED, SIGNED - 2 * DAY),
        KeyEvent(KeyEventKind.REINSTATED, SIGNED - DAY),
    )
    _expect(_validate(key=_record(events=events), poe=_poe(), at=RECORDED + DAY), None)


def test_claimed_iat_within_the_clock_skew_of_the_poe_passes() -> None:
    skew = timedelta(seconds=DEFAULT_POLICY.max_clock_skew_s)
    _expect(_validate(jws=_sign(at=RECORDED + skew), poe=_poe(), at=RECORDED + DAY), None)


# --- TOTAL_FAILED --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "jws",
    [
        "",
        "not a jws",
        "a.b.c",
        _forge(_header(alg="none"), b"x"),
        _forge(_header(alg="HS256"), bytes(32)),
        _forge(_header(alg="RS256"), bytes(256)),
        _forge(_header(typ="JWT")),
        _forge(_header(crit=["exp"], exp=1)),
        _forge(_header(jwk={"kty": "OKP"})),
        _forge(_header(iat="yesterday")),
    ],
    ids=["empty", "garbage", "three-junk-segments", "alg-none", "alg-HS256", "alg-RS256",
         "wrong-typ", "unknown-crit", "embedded-jwk", "iat-not-a-number"],
)  # fmt: skip
def test_format_failure_for_a_header_outside_the_profile(jws: str) -> None:
    report = _validate(jws=jws)
    _expect(report, SubIndication.FORMAT_FAILURE)
    assert report.kid is None and report.key_status is None


def test_format_failure_detail_quotes_at_most_max_detail_chars() -> None:
    report = _validate(jws=_forge(_header(alg="X" * 5000)))
    _expect(report, SubIndication.FORMAT_FAILURE)
    assert len(report.detail) <= len("not a profile JWS: ") + MAX_DETAIL_CHARS


def test_format_failure_when_header_alg_is_not_the_keys() -> None:
    """Algorithm confusion (RFC 8725 section 2.1): the header claims ES256 for an Ed25519 kid."""
    report = _validate(jws=_forge(_header(alg="ES256")))
    _expect(report, SubIndication.FORMAT_FAILURE)
    assert report.kid == _record().kid and report.alg == "ES256"


def test_format_failure_for_a_signature_of_the_wrong_length() -> None:
    _expect(_validate(jws=_forge(_header(), bytes(63))), SubIndication.FORMAT_FAILURE)


def test_sig_crypto_failure_for_a_changed_payload() -> None:
    report = _validate(payload=PAYLOAD.replace(b"corporate", b"personal!"))
    _expect(report, SubIndication.SIG_CRYPTO_FAILURE)
    assert report.key_status is KeyStatus.ACTIVE


@pytest.mark.parametrize("alg", sorted(ALL_KEYS))
def test_sig_crypto_failure_for_a_changed_signature(alg: str) -> None:
    private = ALL_KEYS[alg]
    header, _, signature = _sign(private).partition("..")
    flipped = bytearray(base64.urlsafe_b64decode(signature + "=="))
    flipped[len(flipped) // 2] ^= 0x01
    jws = f"{header}..{_b64(bytes(flipped))}"
    _expect(_validate(jws=jws, key=_record(private)), SubIndication.SIG_CRYPTO_FAILURE)


def test_sig_crypto_failure_for_a_signature_by_another_key_under_this_kid() -> None:
    impostor = Ed25519PrivateKey.generate()
    _, _, signature = _sign(impostor).partition("..")
    forged = _forge(_header(), base64.urlsafe_b64decode(signature + "=="))
    _expect(_validate(jws=forged), SubIndication.SIG_CRYPTO_FAILURE)


def test_revoked_when_recorded_after_the_revocation() -> None:
    report = _validate(key=_revoked(), poe=_poe(REVOKED), at=REVOKED + DAY)
    _expect(report, SubIndication.REVOKED)
    assert report.key_status is KeyStatus.REVOKED
    assert report.decisive_time == REVOKED


def test_expired_when_recorded_after_not_after() -> None:
    poe = _poe(NOT_AFTER)
    report = _validate(jws=_sign(at=NOT_AFTER), poe=poe, at=NOT_AFTER + DAY)
    _expect(report, SubIndication.EXPIRED)
    assert report.key_status is KeyStatus.EXPIRED


def test_not_yet_valid_when_recorded_before_not_before() -> None:
    key = _record(not_before=RECORDED + DAY)
    report = _validate(key=key, poe=_poe(), at=RECORDED + 2 * DAY)
    _expect(report, SubIndication.NOT_YET_VALID)
    assert report.key_status is KeyStatus.NOT_YET_VALID


def test_not_yet_valid_when_validated_before_not_before() -> None:
    """Holding the signature at `at` proves it existed then: before not_before."""
    _expect(_validate(key=_record(not_before=RECORDED + DAY)), SubIndication.NOT_YET_VALID)


def test_revoked_outranks_an_impossible_iat() -> None:
    report = _validate(jws=_sign(at=REVOKED + DAY), key=_revoked(), poe=_poe(REVOKED), at=REVOKED)
    _expect(report, SubIndication.REVOKED)


# --- INDETERMINATE -------------------------------------------------------------------------------


def test_no_signing_certificate_found_for_an_unknown_kid() -> None:
    report = validate_at(jws=_sign(), payload=PAYLOAD, key=None, poe=None, at=RECORDED)
    _expect(report, SubIndication.NO_SIGNING_CERTIFICATE_FOUND)
    assert report.kid == _record().kid and report.subject is None


def test_no_signing_certificate_found_when_the_key_supplied_is_another() -> None:
    report = _validate(key=_record(P256))
    _expect(report, SubIndication.NO_SIGNING_CERTIFICATE_FOUND)
    assert report.key_status is None and report.subject is None


def test_crypto_constraints_failure_for_an_algorithm_the_policy_disallows() -> None:
    policy = ValidationPolicy(allowed_algs=frozenset({"EdDSA", "ES256"}))
    report = _validate(jws=_sign(RSA2048), key=_record(RSA2048), policy=policy)
    _expect(report, SubIndication.CRYPTO_CONSTRAINTS_FAILURE)


def test_crypto_constraints_failure_for_an_rsa_key_below_the_policy() -> None:
    policy = ValidationPolicy(min_rsa_bits=3072)
    report = _validate(jws=_sign(RSA2048), key=_record(RSA2048), policy=policy)
    _expect(report, SubIndication.CRYPTO_CONSTRAINTS_FAILURE)
    assert "2048" in report.detail


def test_crypto_constraints_are_checked_before_the_signature() -> None:
    policy = ValidationPolicy(allowed_algs=frozenset({"ES256"}))
    report = _validate(payload=b"changed", policy=policy)
    _expect(report, SubIndication.CRYPTO_CONSTRAINTS_FAILURE)


def test_revoked_no_poe_even_when_the_claimed_iat_is_before_the_revocation() -> None:
    report = _validate(key=_revoked(), at=REVOKED + DAY)
    _expect(report, SubIndication.REVOKED_NO_POE)
    assert report.claimed_iat is not None and report.claimed_iat < REVOKED
    assert report.key_status is KeyStatus.REVOKED


def test_out_of_bounds_no_poe_when_expired_now_without_proof() -> None:
    report = _validate(at=NOT_AFTER)
    _expect(report, SubIndication.OUT_OF_BOUNDS_NO_POE)
    assert report.key_status is KeyStatus.EXPIRED


def test_sig_constraints_failure_when_iat_is_after_the_poe() -> None:
    skew = timedelta(seconds=DEFAULT_POLICY.max_clock_skew_s + 1)
    report = _validate(jws=_sign(at=RECORDED + skew), poe=_poe(), at=RECORDED + DAY)
    _expect(report, SubIndication.SIG_CONSTRAINTS_FAILURE)
    assert "iat" in report.detail


def test_sig_constraints_failure_when_iat_is_in_the_future_of_the_validation() -> None:
    skew = timedelta(seconds=DEFAULT_POLICY.max_clock_skew_s + 1)
    report = _validate(jws=_sign(at=RECORDED + skew), at=RECORDED)
    _expect(report, SubIndication.SIG_CONSTRAINTS_FAILURE)


def test_try_later_when_suspended_now_without_poe() -> None:
    key = _record(events=(KeyEvent(KeyEventKind.SUSPENDED, RECORDED - DAY),))
    report = _validate(key=key)
    _expect(report, SubIndication.TRY_LATER)
    assert report.key_status is KeyStatus.SUSPENDED


def test_try_later_when_recorded_during_a_suspension_still_in_effect() -> None:
    key = _record(events=(KeyEvent(KeyEventKind.SUSPENDED, RECORDED - DAY),))
    _expect(_validate(key=key, poe=_poe(), at=RECORDED + YEAR), SubIndication.TRY_LATER)


@pytest.mark.parametrize("ending", ["reinstated", "revoked", "expired"])
def test_sig_constraints_failure_when_recorded_during_a_suspension_that_has_ended(
    ending: str,
) -> None:
    events = [KeyEvent(KeyEventKind.SUSPENDED, RECORDED - DAY)]
    if ending == "reinstated":
        events.append(KeyEvent(KeyEventKind.REINSTATED, RECORDED + DAY))
    elif ending == "revoked":
        reason = RevocationReason.KEY_COMPROMISE
        events.append(KeyEvent(KeyEventKind.REVOKED, RECORDED + DAY, reason=reason))
    key = _record(events=tuple(events))
    report = _validate(key=key, poe=_poe(), at=NOT_AFTER + DAY)
    _expect(report, SubIndication.SIG_CONSTRAINTS_FAILURE)
    assert report.key_status is KeyStatus.SUSPENDED


def test_no_poe_when_the_policy_requires_one() -> None:
    policy = ValidationPolicy(require_poe=True)
    _expect(_validate(policy=policy), SubIndication.NO_POE)
    _expect(_validate(policy=policy, poe=_poe()), None)


# --- the report ----------------------------------------------------------------------------------


def test_report_as_dict_is_json_with_utc_times_and_etsi_uris() -> None:
    report = _validate(key=_revoked(), poe=_poe(REVOKED), at=REVOKED + DAY)
    data = report.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "indication": "TOTAL_FAILED",
        "indication_uri": "urn:etsi:019102:mainindication:total-failed",
        "sub_indication": "REVOKED",
        "sub_indication_uri": "urn:etsi:019102:subindication:REVOKED",
        "detail": report.detail,
        "kid": _record().kid,
        "subject": SUBJECT,
        "alg": "EdDSA",
        "key_status": "revoked",
        "key_revoked_at": "2026-03-21T08:30:00Z",
        "decisive_time": "2026-03-21T08:30:00Z",
        "decisive_time_source": "proof_of_existence",
        "proof_of_existence": {
            "time": "2026-03-21T08:30:00Z",
            "source": "ledger",
            "ledger_index": 41,
            "tree_size": 100,
        },
        "claimed_iat": "2025-04-20T08:30:00Z",
        "validation_time": "2026-03-22T08:30:00Z",
    }


def test_passed_report_has_no_sub_indication() -> None:
    data = _validate().as_dict()
    assert data["indication_uri"] == "urn:etsi:019102:mainindication:total-passed"
    assert data["sub_indication"] is None and data["sub_indication_uri"] is None
    assert data["proof_of_existence"] is None


def test_sub_indications_sit_under_their_etsi_main_indication() -> None:
    """ETSI EN 319 102-1 Table 6."""
    failed = {"FORMAT_FAILURE", "HASH_FAILURE", "SIG_CRYPTO_FAILURE", "REVOKED", "EXPIRED"}
    failed.add("NOT_YET_VALID")
    for sub in SubIndication:
        expected = Indication.TOTAL_FAILED if sub.value in failed else Indication.INDETERMINATE
        assert sub.indication is expected, sub
    assert SubIndication.SIG_CONSTRAINTS_FAILURE.indication is Indication.INDETERMINATE


@pytest.mark.parametrize(
    ("indication", "sub"),
    [
        (Indication.TOTAL_FAILED, SubIndication.TRY_LATER),
        (Indication.INDETERMINATE, SubIndication.REVOKED),
        (Indication.TOTAL_PASSED, SubIndication.NO_POE),
        (Indication.INDETERMINATE, None),
    ],
)
def test_a_report_refuses_a_sub_indication_under_the_wrong_indication(
    indication: Indication, sub: SubIndication | None
) -> None:
    with pytest.raises(ValidationInputError) as info:
        ValidationReport(
            indication=indication,
            sub_indication=sub,
            detail="x",
            validation_time=T0,
            decisive_time=T0,
            decisive_time_source=TimeSource.VALIDATION_TIME,
        )
    assert info.value.field == "sub_indication"


# --- programmer errors ---------------------------------------------------------------------------


def test_naive_validation_time_raises() -> None:
    with pytest.raises(NaiveDatetimeError) as info:
        _validate(at=datetime(2025, 4, 20, 8, 30))
    assert info.value.field == "at"


def test_a_poe_from_the_future_of_the_validation_time_raises() -> None:
    with pytest.raises(ValidationInputError) as info:
        _validate(poe=_poe(RECORDED + DAY), at=RECORDED)
    assert info.value.field == "poe"


@pytest.mark.parametrize(("index", "size"), [(-1, 10), (10, 10), (0, 0), (True, 10), (0, 2**64)])
def test_malformed_poe_raises(index: int, size: int) -> None:
    with pytest.raises(ValidationInputError):
        ProofOfExistence(time=RECORDED, source=PoeSource.LEDGER, ledger_index=index, tree_size=size)


def test_naive_poe_raises() -> None:
    with pytest.raises(NaiveDatetimeError):
        ProofOfExistence.from_ledger(time=datetime(2025, 1, 1), ledger_index=0, tree_size=1)


@pytest.mark.parametrize(
    "changes",
    [
        {"allowed_algs": frozenset({"RS256"})},
        {"allowed_algs": {"EdDSA"}},
        {"min_rsa_bits": 1024},
        {"min_rsa_bits": 16384},
        {"max_clock_skew_s": -1},
        {"max_clock_skew_s": 86400},
        {"require_poe": 1},
    ],
)
def test_malformed_policy_raises(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationInputError):
        ValidationPolicy(**changes)  # type: ignore[arg-type]
