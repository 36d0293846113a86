"""What a receipt's ledger entries prove: the transaction's leaf, the signing key's registration
and its later events (steps 3 to 6 of audit.receipt_check; docs/FORMATS.md section 4).

Each function raises EvidenceError carrying the ETSI sub-indication its failure gives:

* FORMAT_FAILURE: a leaf or proof is malformed, or entries contradict the format's rules
  (wrong types, indices or times out of order, events breaking the key state machine);
* HASH_FAILURE: a value the receipt states differs from what the checkpoint commits to (an
  inclusion proof leading to another root, a hash or JWS that is not the leaf's);
* NO_SIGNING_CERTIFICATE_FOUND: the registration does not establish the signing key (another
  key, another subject, no proof of possession);
* NOT_YET_VALID: the key was registered after the transaction was recorded.

Pure code: no I/O, no clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from audit.errors import EvidenceError
from ledger import merkle
from ledger.checkpoint import Checkpoint
from ledger.errors import LeafFormatError, ProofLengthError, RootMismatchError, TreeSizeError
from ledger.leaf import TransactionLeaf, parse_leaf, sha256_of_json
from ledger.receipt import ProvenEntry, Receipt
from signatures.canonical import JsonValue, canonicalize
from signatures.envelope import parse_envelope
from signatures.errors import EnvelopeError, JwsError, KeyRegistryError
from signatures.jwk import PublicJwk
from signatures.jws import verify_detached
from signatures.keys import AssuranceLevel, KeyEvent, KeyEventKind, KeyRecord
from signatures.registry_payloads import (
    KEY_REGISTER,
    KEY_REINSTATE,
    KEY_REVOKE,
    KEY_SUSPEND,
    PAYLOAD_PARSERS,
    KeyRegisterPayload,
    KeyReinstatePayload,
    KeyRevokePayload,
    KeySuspendPayload,
    parse_key_register,
)
from signatures.validation import SubIndication

EVENT_KINDS: Mapping[str, KeyEventKind] = {
    KEY_REVOKE: KeyEventKind.REVOKED,
    KEY_SUSPEND: KeyEventKind.SUSPENDED,
    KEY_REINSTATE: KeyEventKind.REINSTATED,
}

_FORMAT = SubIndication.FORMAT_FAILURE
_HASH = SubIndication.HASH_FAILURE
_NO_KEY = SubIndication.NO_SIGNING_CERTIFICATE_FOUND


def _fail(sub: SubIndication, detail: str) -> NoReturn:
    raise EvidenceError(sub, detail)


def verify_included(
    *, leaf: bytes, leaf_index: int, proof: Sequence[bytes], checkpoint: Checkpoint, what: str
) -> None:
    """Check that leaf is at leaf_index in the checkpoint's tree (RFC 9162 section 2.1.3.2).

    Raises EvidenceError: FORMAT_FAILURE for an index outside the tree or a proof of the wrong
    length, HASH_FAILURE when the proof leads to another root.
    """
    try:
        merkle.verify_inclusion(
            leaf_hash=merkle.leaf_hash(leaf),
            leaf_index=leaf_index,
            tree_size=checkpoint.tree_size,
            proof=proof,
            root=checkpoint.root_hash,
        )
    except RootMismatchError:
        _fail(_HASH, f"{what}: the inclusion proof does not lead to the checkpoint's root")
    except (TreeSizeError, ProofLengthError) as exc:
        _fail(_FORMAT, f"{what}: {exc}")


def bind_leaf(
    data: bytes, *, envelope: dict[str, JsonValue], jws: str, what: str
) -> TransactionLeaf:
    """Parse leaf bytes and check they record this envelope (by hash), this JWS and its type.

    Raises EvidenceError: FORMAT_FAILURE for a malformed leaf or a type other than the
    envelope's, HASH_FAILURE for another envelope hash or another JWS.
    """
    try:
        leaf = parse_leaf(data)
    except LeafFormatError as exc:
        _fail(_FORMAT, f"{what}: {exc} ({exc.rule})")
    if leaf.envelope_sha256 != sha256_of_json(envelope):
        _fail(_HASH, f"{what}: SHA-256 of the canonical envelope is not the leaf's envelope_sha256")
    if leaf.jws != jws:
        _fail(_HASH, f"{what}: the JWS is not the one the leaf records")
    if leaf.type != envelope["type"]:
        _fail(_FORMAT, f"{what}: the leaf's type is not the envelope's")
    return leaf


def proven_leaf(entry: ProvenEntry, *, checkpoint: Checkpoint, what: str) -> TransactionLeaf:
    """verify_included then bind_leaf for one proven entry. Raises EvidenceError as they do."""
    verify_included(
        leaf=entry.leaf,
        leaf_index=entry.leaf_index,
        proof=entry.inclusion_proof,
        checkpoint=checkpoint,
        what=what,
    )
    return bind_leaf(entry.leaf, envelope=entry.envelope, jws=entry.jws, what=what)


def _registration(entry: ProvenEntry) -> KeyRegisterPayload:
    """The registration's payload, parsed by the rules the service applied to it."""
    if entry.envelope["type"] != KEY_REGISTER:
        _fail(_NO_KEY, f"registration: the entry's type is not {KEY_REGISTER}")
    try:
        return parse_key_register(parse_envelope(entry.envelope))
    except EnvelopeError as exc:
        _fail(_NO_KEY, f"registration: {exc}")


def _check_binding(receipt: Receipt, registration: KeyRegisterPayload, entry: ProvenEntry) -> None:
    key = receipt.signer_key
    if registration.jwk.kid != key.kid:
        _fail(_NO_KEY, "registration: the registered key's thumbprint is not the signer key's kid")
    if registration.jwk != PublicJwk.from_dict(key.jwk):  # parse_receipt checked it parses
        _fail(_NO_KEY, "registration: the registered JWK is not signer_key.jwk")
    subjects = {entry.envelope["signer"], key.subject, receipt.envelope["signer"]}
    if len(subjects) != 1:
        _fail(_NO_KEY, "registration: its signer, signer_key.subject and the signer differ")
    if key.assurance == AssuranceLevel.CERTIFIED and not registration.x5c:
        _fail(_NO_KEY, "registration: assurance is certified but the registration has no x5c")
    try:  # proof of possession: the registered key signed its own registration
        verify_detached(entry.jws, canonicalize(entry.envelope), registration.jwk)
    except JwsError as exc:
        _fail(_NO_KEY, f"registration: no proof of possession: {exc}")


def check_registration(
    receipt: Receipt, *, checkpoint: Checkpoint
) -> tuple[KeyRecord, TransactionLeaf]:
    """Check the signer key's registration entry and return the key record it starts, and its leaf.

    The entry must be included in the checkpoint, bound to its leaf, of type key.register, for
    the key signer_key describes (thumbprint and JWK), by the receipt's signer, signed by that
    key (proof of possession), and recorded before the transaction (or be the transaction).
    Raises EvidenceError (see the module docstring for the sub-indications).
    """
    entry = receipt.signer_key.registration
    leaf = proven_leaf(entry, checkpoint=checkpoint, what="registration")
    registration = _registration(entry)
    _check_binding(receipt, registration, entry)
    if leaf.kid != registration.jwk.kid:
        _fail(_FORMAT, "registration: the leaf's kid is not the registered key's")
    if entry.leaf_index > receipt.leaf_index:
        _fail(
            SubIndication.NOT_YET_VALID,
            f"the key was registered at index {entry.leaf_index}, after the transaction "
            f"(index {receipt.leaf_index})",
        )
    try:
        record = KeyRecord.register(
            jwk=registration.jwk,
            subject=receipt.signer_key.subject,
            assurance=AssuranceLevel(receipt.signer_key.assurance),
            at=leaf.accepted_at,
            not_after=registration.not_after,
            ledger_index=entry.leaf_index,
        )
    except KeyRegistryError as exc:
        _fail(_NO_KEY, f"registration: {exc}")
    return record, leaf


def _key_event(entry: ProvenEntry, leaf: TransactionLeaf, *, kid: str, what: str) -> KeyEvent:
    kind = EVENT_KINDS.get(leaf.type)
    if kind is None:
        _fail(_FORMAT, f"{what}: type {leaf.type!r} is not one of {sorted(EVENT_KINDS)}")
    try:
        payload = PAYLOAD_PARSERS[leaf.type](parse_envelope(entry.envelope))
    except EnvelopeError as exc:
        _fail(_FORMAT, f"{what}: {exc}")
    assert isinstance(payload, KeyRevokePayload | KeySuspendPayload | KeyReinstatePayload)
    if payload.kid != kid:
        _fail(_FORMAT, f"{what}: the event is about another key")
    reason = payload.reason if isinstance(payload, KeyRevokePayload) else None
    return KeyEvent(kind, leaf.accepted_at, reason, ledger_index=entry.leaf_index)


@dataclass(frozen=True)
class KeyHistory:
    """The key as the evidence shows it: ``record`` with every event, ``for_transaction`` the
    record the transaction's own signature is judged against, ``times`` each proven entry's
    (leaf index, accepted_at)."""

    record: KeyRecord
    for_transaction: KeyRecord
    times: tuple[tuple[int, datetime], ...]


def apply_events(
    receipt: Receipt, record: KeyRecord, *, registration: TransactionLeaf, checkpoint: Checkpoint
) -> KeyHistory:
    """Check each event entry and apply it to record, in index order.

    Each must be included, bound to its leaf, a key.revoke / key.suspend / key.reinstate of this
    kid, after the registration and the previous event, and allowed by the key state machine.
    When the transaction is itself one of the events (a key revoking itself), its signature is
    judged against the key as it was before it: an event takes effect when it is recorded, and
    the service accepted it with the key active. Raises EvidenceError (FORMAT_FAILURE or
    HASH_FAILURE).
    """
    key = receipt.signer_key
    last_index = key.registration.leaf_index
    times = [(last_index, registration.accepted_at)]
    full = before = record
    for i, entry in enumerate(key.events):
        what = f"event {i}"
        if entry.leaf_index <= last_index:
            _fail(_FORMAT, f"{what}: indices must increase, starting after the registration")
        leaf = proven_leaf(entry, checkpoint=checkpoint, what=what)
        event = _key_event(entry, leaf, kid=key.kid, what=what)
        try:
            full = full.with_event(event)
        except KeyRegistryError as exc:
            _fail(_FORMAT, f"{what}: {exc}")
        if entry.leaf_index < receipt.leaf_index:
            before = full
        times.append((entry.leaf_index, leaf.accepted_at))
        last_index = entry.leaf_index
    is_self_event = any(e.leaf_index == receipt.leaf_index for e in key.events)
    return KeyHistory(full, before if is_self_event else full, tuple(times))


def check_time_order(times: Sequence[tuple[int, datetime]]) -> None:
    """Check the ledger invariant: accepted_at strictly increases with the leaf index.

    Raises EvidenceError (FORMAT_FAILURE) naming the first pair of indices out of order.
    """
    ordered = sorted(dict(times).items())
    for (first, first_at), (second, second_at) in itertools.pairwise(ordered):
        if second_at <= first_at:
            _fail(_FORMAT, f"leaf {second} is not dated after leaf {first}")
