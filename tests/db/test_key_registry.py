"""The key registry's storage and transaction handlers, on SQLite and PostgreSQL.

Handlers are called the way the transaction pipeline calls them: inside one write transaction,
each in a SAVEPOINT. Every test runs on both databases (the ``engine`` fixture).
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from itertools import count
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, Engine, Table, event, func, select, text

from signatures import registry_store
from signatures.canonical import JsonValue
from signatures.certificates import CertificatePolicy
from signatures.client import build_envelope, export_jwk
from signatures.envelope import Envelope, parse_envelope
from signatures.errors import (
    CertificateKeyMismatchError,
    ChallengeError,
    DelegationError,
    DelegationLimitError,
    DelegationNotFoundError,
    EnvelopeError,
    KeyNotFoundError,
    KeyRecordError,
    KeyStateError,
    RegistryConflictError,
    RegistryLimitError,
)
from signatures.jwk import PublicJwk
from signatures.keys import MAX_KEY_EVENTS, AssuranceLevel, KeyStatus, RevocationReason
from signatures.registry_handlers import HANDLERS, CertificateTrust, Handler, make_handlers
from signatures.registry_payloads import (
    RULE_AFTER_CERTIFICATE_EXPIRY,
    RULE_NOT_CONFIGURED,
    RULE_NOT_IN_FUTURE,
)
from signatures.registry_schema import delegations, key_challenges, key_events, signer_keys
from signatures.registry_store import (
    CHALLENGE_TTL_S,
    MAX_OPEN_CHALLENGES_PER_SUBJECT,
    consume_challenge,
    delegations_between,
    delegations_of,
    find_valid_delegation,
    issue_challenge,
    keys_of_subject,
    load_delegation,
    load_key,
    load_key_certificates,
    load_keys,
    registration_index,
)

T = TypeVar("T")
T0 = datetime(2025, 3, 21, 8, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
TEHRAN = timezone(timedelta(hours=3, minutes=30))
PERSON = "ir-nid:0499370899"
OTHER_PERSON = "ir-nid:1234567008"
COMPANY = "ir-lid:10380284790"
OTHER_COMPANY = "ir-lid:10380284714"
LOCK_WAIT_DEADLINE_S = 30.0


def in_tx(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return work(conn)


def new_jwk() -> PublicJwk:
    return PublicJwk.from_public_key(Ed25519PrivateKey.generate().public_key())


def envelope(
    type_name: str,
    payload: dict[str, JsonValue],
    *,
    signer: str,
    on_behalf_of: str | None = None,
) -> Envelope:
    value = build_envelope(
        type=type_name,
        version=1,
        signer=signer,
        payload=payload,
        on_behalf_of=on_behalf_of,
        created_at=T0,
    )
    return parse_envelope(value)


class Registry:
    """Runs handlers as the pipeline does: one transaction, the handler in a SAVEPOINT."""

    def __init__(self, engine: Engine, handlers: Mapping[str, Handler] = HANDLERS) -> None:
        self.engine = engine
        self.handlers = handlers
        self.indices = count(1)
        self.now = T0

    def run(
        self,
        type_name: str,
        payload: dict[str, JsonValue],
        *,
        signer: str,
        on_behalf_of: str | None = None,
    ) -> dict[str, JsonValue]:
        env = envelope(type_name, payload, signer=signer, on_behalf_of=on_behalf_of)
        self.now += SECOND
        handler = self.handlers[type_name]
        with self.engine.begin() as conn, conn.begin_nested():
            return handler(
                conn,
                env,
                tx_id=str(uuid.uuid4()),
                accepted_at=self.now,
                ledger_index=next(self.indices),
            )

    def challenge(self, subject: str) -> str:
        return in_tx(self.engine, lambda c: issue_challenge(c, subject=subject, now=self.now)).value

    def register(
        self, subject: str = PERSON, jwk: PublicJwk | None = None, **extra: JsonValue
    ) -> dict[str, JsonValue]:
        jwk = jwk or new_jwk()
        payload: dict[str, JsonValue] = {
            "jwk": dict(export_jwk(jwk)),
            "challenge": self.challenge(subject),
            **extra,
        }
        return self.run("key.register", payload, signer=subject)


@pytest.fixture
def registry(engine: Engine) -> Registry:
    return Registry(engine)


def rows(engine: Engine, table: Table) -> int:
    query = select(func.count()).select_from(table)
    return in_tx(engine, lambda c: int(c.scalar(query) or 0))


# --- schema --------------------------------------------------------------------------------------


def test_aware_datetimes_round_trip_as_utc(engine: Engine) -> None:
    now = datetime(2025, 3, 21, 12, 0, 0, 123456, tzinfo=TEHRAN)  # 08:30:00.123456 UTC
    challenge = in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=now))
    stored = in_tx(
        engine,
        lambda c: c.scalar(
            select(key_challenges.c.expires_at).where(key_challenges.c.challenge == challenge.value)
        ),
    )
    assert stored == T0 + timedelta(microseconds=123456, seconds=CHALLENGE_TTL_S)
    assert stored.tzinfo is UTC
    assert challenge.expires_at == stored


def test_naive_datetime_refused_before_storage(engine: Engine) -> None:
    with pytest.raises(ValueError, match="aware"):
        in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0.replace(tzinfo=None)))


# --- challenges ----------------------------------------------------------------------------------


def test_challenge_is_single_use(engine: Engine) -> None:
    value = in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0)).value
    in_tx(engine, lambda c: consume_challenge(c, value=value, subject=PERSON, now=T0 + SECOND))
    with pytest.raises(ChallengeError) as exc:
        in_tx(engine, lambda c: consume_challenge(c, value=value, subject=PERSON, now=T0))
    assert exc.value.reason == "consumed"


def test_challenge_expires_at_its_ttl(engine: Engine) -> None:
    value = in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0)).value
    expiry = T0 + timedelta(seconds=CHALLENGE_TTL_S)
    with pytest.raises(ChallengeError) as exc:
        in_tx(engine, lambda c: consume_challenge(c, value=value, subject=PERSON, now=expiry))
    assert exc.value.reason == "expired"
    last_moment = expiry - timedelta(microseconds=1)
    in_tx(engine, lambda c: consume_challenge(c, value=value, subject=PERSON, now=last_moment))


def test_challenge_of_other_subject_looks_unknown(engine: Engine) -> None:
    value = in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0)).value
    with pytest.raises(ChallengeError) as other:
        in_tx(engine, lambda c: consume_challenge(c, value=value, subject=OTHER_PERSON, now=T0))
    with pytest.raises(ChallengeError) as unknown:
        in_tx(engine, lambda c: consume_challenge(c, value="x" * 43, subject=PERSON, now=T0))
    assert (other.value.reason, unknown.value.reason) == ("other_subject", "unknown")
    assert str(other.value) == str(unknown.value)
    # Still usable by its own subject: the failed attempt changed nothing.
    in_tx(engine, lambda c: consume_challenge(c, value=value, subject=PERSON, now=T0))


def test_open_challenges_limited_per_subject(engine: Engine) -> None:
    for _ in range(MAX_OPEN_CHALLENGES_PER_SUBJECT):
        in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0))
    with pytest.raises(RegistryLimitError) as exc:
        in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0))
    assert (exc.value.limit_name, exc.value.actual) == ("MAX_OPEN_CHALLENGES_PER_SUBJECT", 16)
    in_tx(engine, lambda c: issue_challenge(c, subject=OTHER_PERSON, now=T0))  # others unaffected


def test_consumed_challenges_do_not_count_toward_the_limit(engine: Engine) -> None:
    for _ in range(MAX_OPEN_CHALLENGES_PER_SUBJECT):
        with engine.begin() as conn:
            value = issue_challenge(conn, subject=PERSON, now=T0).value
            consume_challenge(conn, value=value, subject=PERSON, now=T0)
    in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0))


def test_expired_challenges_are_deleted_and_free_the_limit(engine: Engine) -> None:
    for _ in range(MAX_OPEN_CHALLENGES_PER_SUBJECT):
        in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0))
    in_tx(engine, lambda c: issue_challenge(c, subject=OTHER_PERSON, now=T0))
    later = T0 + timedelta(seconds=CHALLENGE_TTL_S)
    in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=later))
    # The subject's 16 expired ones are gone; the other subject's is not this call's business.
    assert rows(engine, key_challenges) == 2


def _consume_in_thread(
    engine: Engine, value: str, outcomes: list[str], barrier: threading.Barrier
) -> None:
    barrier.wait()
    try:
        in_tx(engine, lambda c: consume_challenge(c, value=value, subject=PERSON, now=T0))
        outcomes.append("ok")
    except ChallengeError as exc:
        outcomes.append(exc.reason)


def test_concurrent_consumers_exactly_one_wins(engine: Engine) -> None:
    value = in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0)).value
    outcomes: list[str] = []
    barrier = threading.Barrier(6)
    threads = [
        threading.Thread(target=_consume_in_thread, args=(engine, value, outcomes, barrier))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["consumed"] * 5 + ["ok"]


def _issue_in_thread(engine: Engine, outcomes: list[str], barrier: threading.Barrier) -> None:
    barrier.wait()
    try:
        in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0))
        outcomes.append("ok")
    except RegistryLimitError:
        outcomes.append("limit")


def test_concurrent_issuers_respect_the_limit(engine: Engine) -> None:
    """Count-then-insert is serialised per subject (an advisory lock on PostgreSQL), so racing
    issuers cannot all find room."""
    for _ in range(MAX_OPEN_CHALLENGES_PER_SUBJECT - 2):
        in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0))
    outcomes: list[str] = []
    barrier = threading.Barrier(6)
    threads = [
        threading.Thread(target=_issue_in_thread, args=(engine, outcomes, barrier))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["limit"] * 4 + ["ok"] * 2
    assert rows(engine, key_challenges) == MAX_OPEN_CHALLENGES_PER_SUBJECT


def _wait_for_lock_waiter(engine: Engine) -> None:
    """Return once another session of this database waits on a row lock (PostgreSQL)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + LOCK_WAIT_DEADLINE_S
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.scalar(query):
                return
        time.sleep(0.01)
    pytest.fail("the second consumer never waited on the first one's row lock")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("first_commits", [True, False], ids=["commit", "rollback"])
def test_consume_race_on_postgresql(engine: Engine, first_commits: bool) -> None:
    """Two connections interleaved for certain: the second UPDATE waits on the first one's row
    lock, then re-checks its WHERE against what the first one did."""
    value = in_tx(engine, lambda c: issue_challenge(c, subject=PERSON, now=T0)).value
    outcome: list[str] = []
    first = engine.connect()
    transaction = first.begin()
    consume_challenge(first, value=value, subject=PERSON, now=T0)
    second = threading.Thread(
        target=_consume_in_thread, args=(engine, value, outcome, threading.Barrier(1))
    )
    second.start()
    _wait_for_lock_waiter(engine)
    if first_commits:
        transaction.commit()
    else:
        transaction.rollback()
    first.close()
    second.join()
    assert outcome == (["consumed"] if first_commits else ["ok"])


# --- keys ----------------------------------------------------------------------------------------


def test_register_key(registry: Registry, engine: Engine) -> None:
    jwk = new_jwk()
    result = registry.register(PERSON, jwk, not_after="2026-03-21T08:30:00Z")
    assert result == {
        "kid": jwk.kid,
        "subject": PERSON,
        "alg": "EdDSA",
        "assurance": "registered",
        "status": "active",
        "registered_index": 1,
        "not_after": "2026-03-21T08:30:00.000000Z",
    }
    record = in_tx(engine, lambda c: load_key(c, jwk.kid))
    assert record is not None
    assert (record.subject, record.jwk, record.assurance) == (
        PERSON,
        jwk,
        AssuranceLevel.REGISTERED,
    )
    assert record.not_before == T0 + SECOND and record.not_before.tzinfo is UTC
    assert record.not_after == datetime(2026, 3, 21, 8, 30, tzinfo=UTC)
    assert [(e.kind, e.ledger_index) for e in record.events] == [("registered", 1)]
    assert in_tx(engine, lambda c: registration_index(c, jwk.kid)) == 1
    assert in_tx(engine, lambda c: load_key_certificates(c, jwk.kid)) == ()


def test_register_consumes_the_challenge(registry: Registry) -> None:
    value = registry.challenge(PERSON)
    payload: dict[str, JsonValue] = {"jwk": dict(export_jwk(new_jwk())), "challenge": value}
    registry.run("key.register", payload, signer=PERSON)
    payload["jwk"] = dict(export_jwk(new_jwk()))
    with pytest.raises(ChallengeError) as exc:
        registry.run("key.register", payload, signer=PERSON)
    assert exc.value.reason == "consumed"


def test_register_with_challenge_of_other_subject_refused(registry: Registry) -> None:
    value = registry.challenge(OTHER_PERSON)
    payload: dict[str, JsonValue] = {"jwk": dict(export_jwk(new_jwk())), "challenge": value}
    with pytest.raises(ChallengeError) as exc:
        registry.run("key.register", payload, signer=PERSON)
    assert exc.value.reason == "other_subject"


def test_register_twice_conflicts(registry: Registry) -> None:
    jwk = new_jwk()
    registry.register(PERSON, jwk)
    with pytest.raises(RegistryConflictError) as exc:
        registry.register(PERSON, jwk)
    assert (exc.value.kind, exc.value.identifier) == ("key", jwk.kid)


def test_register_not_after_passed_refused(registry: Registry) -> None:
    with pytest.raises(EnvelopeError) as exc:
        registry.register(PERSON, not_after="2025-03-21T08:30:01Z")  # == accepted_at
    assert [(e.pointer, e.rule) for e in exc.value.errors] == [
        ("/payload/not_after", RULE_NOT_IN_FUTURE)
    ]


def test_failed_handler_in_savepoint_leaves_nothing(registry: Registry, engine: Engine) -> None:
    """x5c without configured trust is refused after the challenge was consumed: the SAVEPOINT
    rollback must undo that consumption, and no key row may remain."""
    value = registry.challenge(PERSON)
    payload: dict[str, JsonValue] = {
        "jwk": dict(export_jwk(new_jwk())),
        "challenge": value,
        "x5c": ["MAA="],
    }
    with pytest.raises(EnvelopeError) as exc:
        registry.run("key.register", payload, signer=PERSON)
    assert exc.value.errors[0].rule == RULE_NOT_CONFIGURED
    assert rows(engine, signer_keys) == rows(engine, key_events) == 0
    in_tx(engine, lambda c: consume_challenge(c, value=value, subject=PERSON, now=registry.now))


def test_outer_transaction_survives_a_failed_handler(registry: Registry, engine: Engine) -> None:
    """What the pipeline relies on: a handler error rolls back its SAVEPOINT only."""
    jwk = new_jwk()
    registry.register(PERSON, jwk)
    env = envelope("key.suspend", {"kid": new_jwk().kid}, signer=PERSON)
    with engine.begin() as conn:
        with pytest.raises(KeyNotFoundError), conn.begin_nested():
            HANDLERS["key.suspend"](conn, env, tx_id="t", accepted_at=T0 + DAY, ledger_index=9)
        env = envelope("key.suspend", {"kid": jwk.kid}, signer=PERSON)
        HANDLERS["key.suspend"](conn, env, tx_id="u", accepted_at=T0 + DAY, ledger_index=9)
    record = in_tx(engine, lambda c: load_key(c, jwk.kid))
    assert record is not None and record.status_at(T0 + DAY) is KeyStatus.SUSPENDED


def test_key_state_machine_through_handlers(registry: Registry, engine: Engine) -> None:
    kid = str(registry.register(PERSON)["kid"])
    suspended = registry.run("key.suspend", {"kid": kid}, signer=PERSON)
    assert suspended == {
        "kid": kid,
        "status": "suspended",
        "effective_at": "2025-03-21T08:30:02.000000Z",
    }
    with pytest.raises(KeyStateError) as exc:
        registry.run("key.suspend", {"kid": kid}, signer=PERSON)
    assert (exc.value.state, exc.value.transition) == ("suspended", "suspended")
    assert registry.run("key.reinstate", {"kid": kid}, signer=PERSON)["status"] == "active"
    with pytest.raises(KeyStateError):
        registry.run("key.reinstate", {"kid": kid}, signer=PERSON)
    revoked = registry.run("key.revoke", {"kid": kid, "reason": "superseded"}, signer=PERSON)
    assert revoked == {
        "kid": kid,
        "status": "revoked",
        "effective_at": "2025-03-21T08:30:06.000000Z",
        "reason": "superseded",
    }
    for type_name in ("key.suspend", "key.reinstate"):
        with pytest.raises(KeyStateError) as exc:
            registry.run(type_name, {"kid": kid}, signer=PERSON)
        assert exc.value.state == "revoked"
    record = in_tx(engine, lambda c: load_key(c, kid))
    assert record is not None
    assert [(str(e.kind), e.ledger_index) for e in record.events] == [
        ("registered", 1),
        ("suspended", 2),
        ("reinstated", 4),
        ("revoked", 6),
    ]
    assert record.revocation_reason is RevocationReason.SUPERSEDED
    assert record.status_at(T0 + 3 * SECOND) is KeyStatus.SUSPENDED  # history is kept
    assert record.status_at(T0 + 5 * SECOND) is KeyStatus.ACTIVE


def test_a_key_history_stops_at_max_key_events(registry: Registry, engine: Engine) -> None:
    """A state change reads only the key's newest event, yet still counts its whole history."""
    kid = str(registry.register(PERSON)["kid"])
    start = registry.now
    kinds = ("suspended", "reinstated")
    history = [
        {
            "kid": kid,
            "seq": seq,
            "kind": kinds[(seq - 1) % 2],
            "at": start + timedelta(microseconds=seq),
            "reason": None,
            "ledger_index": 1000 + seq,
        }
        for seq in range(1, MAX_KEY_EVENTS - 1)  # the registration and these: MAX - 1 events
    ]
    in_tx(engine, lambda c: c.execute(key_events.insert(), history))
    assert registry.run("key.suspend", {"kid": kid}, signer=PERSON)["status"] == "suspended"
    with pytest.raises(KeyRecordError, match=f"MAX_KEY_EVENTS={MAX_KEY_EVENTS}"):
        registry.run("key.reinstate", {"kid": kid}, signer=PERSON)
    record = in_tx(engine, lambda c: load_key(c, kid))
    assert record is not None and len(record.events) == MAX_KEY_EVENTS
    assert record.status_at(registry.now) is KeyStatus.SUSPENDED


def test_key_of_another_subject_is_refused_like_a_missing_one(registry: Registry) -> None:
    kid = str(registry.register(PERSON)["kid"])
    missing = new_jwk().kid
    errors = []
    for target, signer in ((kid, OTHER_PERSON), (missing, PERSON)):
        attempts: list[tuple[str, dict[str, JsonValue]]] = [
            ("key.suspend", {"kid": target}),
            ("key.revoke", {"kid": target, "reason": "key_compromise"}),
        ]
        for type_name, payload in attempts:
            with pytest.raises(KeyNotFoundError) as exc:
                registry.run(type_name, payload, signer=signer)
            errors.append((type(exc.value), str(exc.value)))
    assert len(set(errors)) == 1


def test_delegate_manages_the_entitys_key_not_its_own_by_mistake(registry: Registry) -> None:
    company_kid = str(registry.register(COMPANY)["kid"])
    person_kid = str(registry.register(PERSON)["kid"])
    result = registry.run("key.suspend", {"kid": company_kid}, signer=PERSON, on_behalf_of=COMPANY)
    assert result["status"] == "suspended"
    # Acting for the company, the person's own key is not the acting subject's.
    with pytest.raises(KeyNotFoundError):
        registry.run("key.suspend", {"kid": person_kid}, signer=PERSON, on_behalf_of=COMPANY)


def test_load_keys_and_keys_of_subject(registry: Registry, engine: Engine) -> None:
    kids = [str(registry.register(PERSON)["kid"]) for _ in range(3)]
    other = str(registry.register(OTHER_PERSON)["kid"])
    registry.run("key.suspend", {"kid": kids[0]}, signer=PERSON)
    statements: list[str] = []

    def record_statement(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record_statement)
    try:
        found = in_tx(engine, lambda c: load_keys(c, [*kids, other, new_jwk().kid, kids[0]]))
    finally:
        event.remove(engine, "before_cursor_execute", record_statement)
    assert sorted(found) == sorted([*kids, other])
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 2
    assert len(found[kids[0]].events) == 2
    newest_first = in_tx(engine, lambda c: keys_of_subject(c, PERSON))
    assert [record.kid for record in newest_first] == kids[::-1]
    assert in_tx(engine, lambda c: load_keys(c, [])) == {}


def test_keys_per_subject_limited(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_store, "MAX_KEYS_PER_SUBJECT", 2)
    registry.register(PERSON)
    registry.register(PERSON)
    with pytest.raises(RegistryLimitError) as exc:
        registry.register(PERSON)
    assert exc.value.limit_name == "MAX_KEYS_PER_SUBJECT"
    registry.register(OTHER_PERSON)


# --- certified keys ------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    public_key: ec.EllipticCurvePublicKey | Ed25519PublicKey,
    *,
    subject: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    ca: bool,
    not_after: datetime,
) -> x509.Certificate:
    usage = x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
    issuer_public = issuer_key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name("Root CA"))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 - DAY)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
        .sign(issuer_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class Certified:
    registry: Registry
    jwk: PublicJwk
    x5c: str  # the leaf certificate, standard base64 DER


@pytest.fixture
def certified(engine: Engine) -> Certified:
    root_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = Ed25519PrivateKey.generate()
    root = _certificate(
        root_key.public_key(),
        subject="Root CA",
        issuer_key=root_key,
        ca=True,
        not_after=T0 + 3650 * DAY,
    )
    leaf = _certificate(
        leaf_key.public_key(),
        subject="signer",
        issuer_key=root_key,
        ca=False,
        not_after=T0 + 365 * DAY,
    )
    trust = CertificateTrust(
        trust_anchors=[root], policy=CertificatePolicy(require_revocation_data=False)
    )
    return Certified(
        registry=Registry(engine, make_handlers(certificate_trust=trust)),
        jwk=PublicJwk.from_public_key(leaf_key.public_key()),
        x5c=base64.b64encode(leaf.public_bytes(Encoding.DER)).decode("ascii"),
    )


def test_register_certified_key(engine: Engine, certified: Certified) -> None:
    jwk = certified.jwk
    result = certified.registry.register(
        PERSON, jwk, x5c=[certified.x5c], not_after="2026-03-21T08:30:00Z"
    )
    assert result["assurance"] == "certified"
    record = in_tx(engine, lambda c: load_key(c, jwk.kid))
    assert record is not None and record.assurance is AssuranceLevel.CERTIFIED
    chain = in_tx(engine, lambda c: load_key_certificates(c, jwk.kid))
    assert chain == (base64.b64decode(certified.x5c),)


def test_certificate_of_another_key_refused(engine: Engine, certified: Certified) -> None:
    with pytest.raises(CertificateKeyMismatchError):
        certified.registry.register(
            PERSON, new_jwk(), x5c=[certified.x5c], not_after="2026-01-01T00:00:00Z"
        )
    assert rows(engine, signer_keys) == 0


@pytest.mark.parametrize(
    "not_after", [None, "2026-03-21T08:30:01.000001Z"], ids=["absent", "after_certificate"]
)
def test_certified_key_must_end_with_its_certificate(
    engine: Engine, certified: Certified, not_after: str | None
) -> None:
    extra: dict[str, JsonValue] = {"x5c": [certified.x5c]}
    if not_after is not None:
        extra["not_after"] = not_after
    with pytest.raises(EnvelopeError) as exc:
        certified.registry.register(PERSON, certified.jwk, **extra)
    assert exc.value.errors[0].rule == RULE_AFTER_CERTIFICATE_EXPIRY
    assert rows(engine, signer_keys) == 0


# --- delegations ---------------------------------------------------------------------------------


def grant(registry: Registry, **changes: JsonValue) -> dict[str, JsonValue]:
    payload: dict[str, JsonValue] = {
        "delegate": PERSON,
        "types": ["tax.*", "payments.bill.pay"],
        "not_after": "2026-03-21T08:30:00Z",
    }
    payload.update(changes)
    return registry.run("delegation.grant", payload, signer=COMPANY)


def test_grant_find_and_revoke_delegation(registry: Registry, engine: Engine) -> None:
    result = grant(registry)
    delegation_id = str(result["delegation_id"])
    assert result == {
        "delegation_id": delegation_id,
        "grantor": COMPANY,
        "delegate": PERSON,
        "types": ["payments.bill.pay", "tax.*"],
        "not_after": "2026-03-21T08:30:00.000000Z",
    }
    uuid.UUID(delegation_id)
    granted_at = T0 + SECOND

    def find(type_name: str, at: datetime) -> object:
        return in_tx(
            engine,
            lambda c: find_valid_delegation(
                c, grantor=COMPANY, delegate=PERSON, transaction_type=type_name, at=at
            ),
        )

    found = find("tax.return.corporate", granted_at)
    assert found is not None and found == in_tx(engine, lambda c: load_delegation(c, delegation_id))
    assert find("tax.return.corporate", granted_at - timedelta(microseconds=1)) is None
    assert find("licences.renew", granted_at) is None
    revoked = registry.run("delegation.revoke", {"delegation_id": delegation_id}, signer=COMPANY)
    assert revoked == {
        "delegation_id": delegation_id,
        "status": "revoked",
        "effective_at": "2025-03-21T08:30:02.000000Z",
    }
    assert find("tax.return.corporate", T0 + 2 * SECOND) is None
    assert find("tax.return.corporate", granted_at) is not None  # valid before its revocation
    stored = in_tx(engine, lambda c: load_delegation(c, delegation_id))
    assert stored is not None
    assert (stored.revoked_at, stored.revocation_ledger_index) == (T0 + 2 * SECOND, 2)
    with pytest.raises(DelegationError, match="already revoked"):
        registry.run("delegation.revoke", {"delegation_id": delegation_id}, signer=COMPANY)


def test_delegation_of_other_grantor_refused_like_a_missing_one(
    registry: Registry, engine: Engine
) -> None:
    delegation_id = str(grant(registry)["delegation_id"])
    errors = []
    for target, signer in ((delegation_id, OTHER_COMPANY), (str(uuid.uuid4()), COMPANY)):
        with pytest.raises(DelegationNotFoundError) as exc:
            registry.run("delegation.revoke", {"delegation_id": target}, signer=signer)
        errors.append((type(exc.value), str(exc.value)))
    # Even the delegate acting for the grantor may not revoke: only the grantor itself.
    with pytest.raises(DelegationNotFoundError) as exc:
        registry.run(
            "delegation.revoke",
            {"delegation_id": delegation_id},
            signer=PERSON,
            on_behalf_of=COMPANY,
        )
    errors.append((type(exc.value), str(exc.value)))
    assert len(set(errors)) == 1
    stored = in_tx(engine, lambda c: load_delegation(c, delegation_id))
    assert stored is not None and stored.revoked_at is None


def test_grant_by_delegate_on_behalf_refused(registry: Registry, engine: Engine) -> None:
    with pytest.raises(EnvelopeError):
        registry.run(
            "delegation.grant",
            {"delegate": OTHER_PERSON, "types": ["tax.*"], "not_after": "2026-01-01T00:00:00Z"},
            signer=PERSON,
            on_behalf_of=COMPANY,
        )
    assert rows(engine, delegations) == 0


def test_grant_longer_than_the_maximum_refused(registry: Registry) -> None:
    with pytest.raises(DelegationLimitError) as exc:
        grant(registry, not_after="2030-01-01T00:00:00Z")
    assert exc.value.limit_name == "MAX_DELEGATION_DAYS"


def test_grant_not_after_passed_refused(registry: Registry) -> None:
    with pytest.raises(EnvelopeError) as exc:
        grant(registry, not_after="2025-03-21T08:30:00Z")
    assert exc.value.errors[0].rule == RULE_NOT_IN_FUTURE


def test_live_delegations_per_grantor_limited(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_store, "MAX_LIVE_DELEGATIONS_PER_GRANTOR", 2)
    first = str(grant(registry)["delegation_id"])
    grant(registry, delegate=OTHER_PERSON)
    with pytest.raises(RegistryLimitError):
        grant(registry)
    registry.run("delegation.revoke", {"delegation_id": first}, signer=COMPANY)
    grant(registry)  # a revoked delegation no longer counts


def test_delegation_listings(registry: Registry, engine: Engine) -> None:
    first = str(grant(registry)["delegation_id"])
    second = str(grant(registry, types=["licences.*"])["delegation_id"])
    third = str(grant(registry, delegate=OTHER_PERSON)["delegation_id"])
    between = in_tx(engine, lambda c: delegations_between(c, grantor=COMPANY, delegate=PERSON))
    assert [sorted(d.types) for d in between] == [["licences.*"], ["payments.bill.pay", "tax.*"]]
    of_company = in_tx(engine, lambda c: delegations_of(c, COMPANY))
    assert [ident for ident, _ in of_company] == [third, second, first]
    of_person = in_tx(engine, lambda c: delegations_of(c, PERSON))
    assert [ident for ident, _ in of_person] == [second, first]
    assert all(d.granted_at.tzinfo is UTC for _, d in of_person)
