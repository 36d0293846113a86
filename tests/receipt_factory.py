"""Complete, valid receipts built without a server, for receipt tests (unit and e2e).

``FakeLedger`` plays the service: it records signed transactions as ledger leaves
(ledger.leaf), dates leaf ``i`` at ``T0 + i`` minutes (strictly increasing, as the service
guarantees), signs C2SP checkpoints with a NoteSigner and serves RFC 9162 inclusion proofs from
an in-memory tree (ledger.merkle). ``Signer`` is a client key (signatures.client) that registers
itself (proof of possession), signs transactions and changes its own state.

    ledger = FakeLedger()
    alice = Signer("EdDSA")
    registration = alice.register(ledger)
    tx = alice.pay(ledger)
    receipt = receipt_for(ledger, tx, alice, registration)      # a dict, as the server sends
    check_receipt(encode_receipt(receipt), trusted_vkeys=[ledger.vkey], at=AT)

``scenario()`` does all of that in one call, with optional key events before and after.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from audit.receipt_check import ReceiptReport, check_receipt
from ledger import merkle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.leaf import TransactionLeaf, encode_leaf, sha256_of_json
from ledger.note import NoteSigner
from ledger.receipt import ProvenEntry, SignerKeyEvidence, build_receipt, encode_receipt
from signatures.canonical import JsonValue
from signatures.client import (
    SignedTransaction,
    build_envelope,
    export_jwk,
    generate_private_key,
    public_jwk,
    sign_envelope,
)
from signatures.client import format_timestamp as client_timestamp
from signatures.jwk import Alg, PublicJwk
from signatures.jws import PrivateKey
from signatures.keys import AssuranceLevel

ORIGIN = "pishkhan.test/ledger"
SUBJECT = "ir-nid:0499370899"
OTHER_SUBJECT = "ir-nid:0123456789"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LEAF_INTERVAL = timedelta(minutes=1)
# Signed a second before it is recorded: within any clock skew the validation allows.
SIGNING_LEAD = timedelta(seconds=1)
AT = T0 + timedelta(days=365)  # validation time, well after every leaf
ALGS: tuple[Alg, ...] = ("EdDSA", "ES256", "PS256")
BILL: dict[str, JsonValue] = {
    "bill_id": "1234567890123",
    "payment_id": "12345678",
    "amount": {"amount_minor": 125000, "currency": "IRR"},
}
FILLER_SUBJECT = "ir-nid:9876543210"
# As the service issues it: 32 bytes, base64url (signatures.registry_fields.CHALLENGE_CHARS).
CHALLENGE = "c2VydmVyLWNoYWxsZW5nZS0zMi1ieXRlcy1sb25nISE"


@cache
def cached_key(alg: Alg, slot: int = 0) -> PrivateKey:
    """A private key per (alg, slot), made once per test session (RSA keys are slow)."""
    return generate_private_key(alg, rsa_bits=2048)


@dataclass(frozen=True)
class Recorded:
    """A transaction as the fake ledger recorded it."""

    index: int
    leaf: bytes
    envelope: dict[str, JsonValue]
    jws: str
    result: dict[str, JsonValue]
    tx_id: str
    accepted_at: datetime


@dataclass
class FakeLedger:
    """An in-memory ledger: leaves, their times, and signed checkpoints on demand."""

    origin: str = ORIGIN
    signer: NoteSigner = field(default_factory=lambda: NoteSigner.generate(ORIGIN))
    start: datetime = T0
    entries: list[Recorded] = field(default_factory=list)

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey

    @property
    def size(self) -> int:
        return len(self.entries)

    def time_of(self, index: int) -> datetime:
        return self.start + index * LEAF_INTERVAL

    @property
    def next_time(self) -> datetime:
        return self.time_of(self.size)

    def record(
        self,
        signed: SignedTransaction,
        *,
        result: dict[str, JsonValue] | None = None,
        accepted_at: datetime | None = None,
    ) -> Recorded:
        """Append the transaction's leaf; accepted_at defaults to the next leaf time."""
        result = {"status": "accepted"} if result is None else result
        tx_id = str(uuid.uuid4())
        when = self.next_time if accepted_at is None else accepted_at
        leaf = TransactionLeaf(
            tx_id=tx_id,
            type=str(signed.envelope["type"]),
            accepted_at=when,
            envelope_sha256=hashlib.sha256(signed.canonical).digest(),
            jws=signed.jws,
            kid=signed.kid,
            result_sha256=sha256_of_json(result),
        )
        entry = Recorded(
            self.size, encode_leaf(leaf), signed.envelope, signed.jws, result, tx_id, when
        )
        self.entries.append(entry)
        return entry

    def leaf_hashes(self, tree_size: int | None = None) -> list[bytes]:
        size = self.size if tree_size is None else tree_size
        return [merkle.leaf_hash(e.leaf) for e in self.entries[:size]]

    def checkpoint(
        self, tree_size: int | None = None, *, signers: Sequence[NoteSigner] | None = None
    ) -> str:
        """The signed checkpoint of the first tree_size leaves (default: all)."""
        hashes = self.leaf_hashes(tree_size)
        body = Checkpoint(self.origin, len(hashes), merkle.root(hashes))
        return sign_checkpoint(body, [self.signer] if signers is None else signers)

    def proof(self, index: int, tree_size: int | None = None) -> tuple[bytes, ...]:
        return tuple(merkle.inclusion_proof(index, self.leaf_hashes(tree_size)))

    def proven(self, entry: Recorded, tree_size: int | None = None) -> ProvenEntry:
        return ProvenEntry(
            leaf_index=entry.index,
            leaf=entry.leaf,
            inclusion_proof=self.proof(entry.index, tree_size),
            envelope=entry.envelope,
            jws=entry.jws,
        )

    def filler(self, count: int) -> None:
        """Record count unrelated transactions, so that proofs are not trivial."""
        other = Signer("EdDSA", subject=FILLER_SUBJECT, slot=9)
        for _ in range(count):
            self.record(other.sign(self, "bill.pay", BILL))


@dataclass
class Signer:
    """A client key bound to a subject."""

    alg: Alg = "EdDSA"
    subject: str = SUBJECT
    slot: int = 0
    private_key: PrivateKey = field(init=False)

    def __post_init__(self) -> None:
        self.private_key = cached_key(self.alg, self.slot)

    @property
    def jwk(self) -> PublicJwk:
        return public_jwk(self.private_key)

    @property
    def kid(self) -> str:
        return self.jwk.kid

    def sign(
        self,
        ledger: FakeLedger,
        type: str,
        payload: dict[str, JsonValue],
        *,
        key: PrivateKey | None = None,
    ) -> SignedTransaction:
        """Sign an envelope made a moment before the ledger's next leaf time."""
        created = ledger.next_time - SIGNING_LEAD
        envelope = build_envelope(
            type=type, version=1, signer=self.subject, payload=payload, created_at=created
        )
        signing_key = self.private_key if key is None else key
        return sign_envelope(envelope, signing_key, iat=int(created.timestamp()))

    def register(
        self,
        ledger: FakeLedger,
        *,
        not_after: datetime | None = None,
        x5c: list[JsonValue] | None = None,
        jwk: PublicJwk | None = None,
        key: PrivateKey | None = None,
    ) -> Recorded:
        """Record a key.register signed by this key (or by ``key``: a bad proof of possession)."""
        payload: dict[str, JsonValue] = {
            "jwk": dict(export_jwk(self.jwk if jwk is None else jwk)),
            "challenge": CHALLENGE,
        }
        if not_after is not None:
            payload["not_after"] = client_timestamp(not_after)
        if x5c is not None:
            payload["x5c"] = x5c
        return ledger.record(self.sign(ledger, "key.register", payload, key=key))

    def revoke(self, ledger: FakeLedger, reason: str = "key_compromise") -> Recorded:
        return ledger.record(self.sign(ledger, "key.revoke", {"kid": self.kid, "reason": reason}))

    def suspend(self, ledger: FakeLedger) -> Recorded:
        return ledger.record(self.sign(ledger, "key.suspend", {"kid": self.kid}))

    def reinstate(self, ledger: FakeLedger) -> Recorded:
        return ledger.record(self.sign(ledger, "key.reinstate", {"kid": self.kid}))

    def pay(self, ledger: FakeLedger) -> Recorded:
        result: dict[str, JsonValue] = {"status": "paid", "amount_minor": 125000}
        return ledger.record(self.sign(ledger, "bill.pay", BILL), result=result)

    def event(self, ledger: FakeLedger, name: str) -> Recorded:
        """Record a key event by name: revoke, suspend or reinstate."""
        actions = {"revoke": self.revoke, "suspend": self.suspend, "reinstate": self.reinstate}
        return actions[name](ledger)


def receipt_for(
    ledger: FakeLedger,
    tx: Recorded,
    signer: Signer,
    registration: Recorded,
    events: Sequence[Recorded] = (),
    *,
    tree_size: int | None = None,
    assurance: AssuranceLevel = AssuranceLevel.REGISTERED,
) -> dict[str, JsonValue]:
    """The receipt the server would send for tx, proven against the checkpoint of tree_size."""
    evidence = SignerKeyEvidence(
        kid=signer.kid,
        subject=signer.subject,
        jwk=dict(signer.jwk.to_dict()),
        assurance=assurance.value,
        registration=ledger.proven(registration, tree_size),
        events=tuple(ledger.proven(e, tree_size) for e in events),
    )
    return build_receipt(
        transaction_id=tx.tx_id,
        envelope=tx.envelope,
        jws=tx.jws,
        result=tx.result,
        leaf=tx.leaf,
        leaf_index=tx.index,
        inclusion_proof=ledger.proof(tx.index, tree_size),
        checkpoint_note=ledger.checkpoint(tree_size),
        signer_key=evidence,
    )


@dataclass
class Scenario:
    """A ledger, a signer, its registration, one transaction, the key's events, the receipt."""

    ledger: FakeLedger
    signer: Signer
    registration: Recorded
    tx: Recorded
    events: list[Recorded]
    receipt: dict[str, JsonValue]

    @property
    def vkeys(self) -> list[str]:
        return [self.ledger.vkey]

    def copy(self) -> dict[str, JsonValue]:
        """A deep copy of the receipt, to mutate."""
        return copy.deepcopy(self.receipt)

    def data(self, receipt: dict[str, JsonValue] | None = None) -> bytes:
        return encode_receipt(self.receipt if receipt is None else receipt)

    def check(
        self,
        receipt: dict[str, JsonValue] | None = None,
        *,
        at: datetime = AT,
        vkeys: Sequence[str] | None = None,
    ) -> ReceiptReport:
        trusted = self.vkeys if vkeys is None else vkeys
        return check_receipt(self.data(receipt), trusted_vkeys=trusted, at=at)


def scenario(
    alg: Alg = "EdDSA",
    *,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
    filler: int = 3,
) -> Scenario:
    """A valid receipt: ``filler`` unrelated leaves, the key's registration, the key events
    named in ``before``, the transaction (bill.pay), the events in ``after``, two more unrelated
    leaves; proven against the checkpoint of the whole tree."""
    ledger = FakeLedger()
    signer = Signer(alg)
    ledger.filler(filler)
    registration = signer.register(ledger)
    events = [signer.event(ledger, name) for name in before]
    tx = signer.pay(ledger)
    events += [signer.event(ledger, name) for name in after]
    ledger.filler(2)
    receipt = receipt_for(ledger, tx, signer, registration, events)
    return Scenario(ledger, signer, registration, tx, events, receipt)
