"""Offline verification of a transaction receipt: trust only the ledger keys you were given.

``check_receipt`` runs these checks in order; the first that fails decides the verdict, with
the ETSI EN 319 102-1 indication of docs/FORMATS.md sections 4 and 5:

1. ``receipt_format``: the receipt parses (ledger.receipt) -> TOTAL_FAILED/FORMAT_FAILURE.
2. ``checkpoint_signature``: the checkpoint is signed by a trusted vkey. No trusted signer ->
   INDETERMINATE/NO_SIGNING_CERTIFICATE_FOUND (nothing in the receipt can be tied to the
   ledger, the key's registration included); a trusted key's signature that does not verify ->
   TOTAL_FAILED/SIG_CRYPTO_FAILURE; a malformed note -> TOTAL_FAILED/FORMAT_FAILURE.
3. ``leaf_binding``: the leaf records this transaction id, envelope and result (by SHA-256 of
   their canonical form), this JWS, its kid and type.
4. ``leaf_inclusion``: the leaf is at leaf_index in the checkpoint's tree.
5. ``key_registration``: the signing key's registration entry (audit.receipt_evidence).
6. ``key_events``: the key's later events, and leaf times increasing with the index.
7. ``signature_validation``: signatures.validation.validate_at with the key record built from
   5 and 6 and the leaf as proof of existence; its verdict is the receipt's.

Pure code: no database, no network, no clock (``at`` is passed in).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn, TypeVar

from audit.errors import EvidenceError
from audit.receipt_evidence import (
    KeyHistory,
    apply_events,
    bind_leaf,
    check_registration,
    check_time_order,
    verify_included,
)
from ledger.checkpoint import Checkpoint, parse_checkpoint
from ledger.errors import NoteFormatError, NoteSignatureError, ReceiptFormatError
from ledger.leaf import TransactionLeaf, format_timestamp, sha256_of_json
from ledger.note import NoteVerifier, split_note, verify_note
from ledger.receipt import Receipt, parse_receipt_json
from signatures.canonical import MAX_DOCUMENT_BYTES, JsonValue, canonicalize
from signatures.errors import JwsError
from signatures.jws import parse_protected_header
from signatures.keys import require_aware
from signatures.validation import (
    Indication,
    ProofOfExistence,
    SubIndication,
    ValidationReport,
    validate_at,
)

CHECK_FORMAT = "receipt_format"
CHECK_CHECKPOINT = "checkpoint_signature"
CHECK_LEAF = "leaf_binding"
CHECK_INCLUSION = "leaf_inclusion"
CHECK_REGISTRATION = "key_registration"
CHECK_EVENTS = "key_events"
CHECK_VALIDATION = "signature_validation"
CHECK_NAMES = (
    CHECK_FORMAT,
    CHECK_CHECKPOINT,
    CHECK_LEAF,
    CHECK_INCLUSION,
    CHECK_REGISTRATION,
    CHECK_EVENTS,
    CHECK_VALIDATION,
)

EXIT_PASSED, EXIT_FAILED, EXIT_INDETERMINATE = 0, 1, 2
_EXIT_CODES = {
    Indication.TOTAL_PASSED: EXIT_PASSED,
    Indication.TOTAL_FAILED: EXIT_FAILED,
    Indication.INDETERMINATE: EXIT_INDETERMINATE,
}

_T = TypeVar("_T")


@dataclass(frozen=True)
class Check:
    """One check of the receipt: its name (CHECK_NAMES), whether it passed, and why."""

    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, JsonValue]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class _Facts:
    """What the checks established so far, for the report."""

    transaction_id: str | None = None
    leaf_index: int | None = None
    accepted_at: datetime | None = None
    kid: str | None = None
    origin: str | None = None
    tree_size: int | None = None
    checks: list[Check] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class ReceiptReport:
    """The verdict on a receipt: an ETSI main indication and sub-indication (None only for
    TOTAL_PASSED), the checks run (in order, the last one decided), the facts established, and
    the signature validation report when check 7 was reached."""

    indication: Indication
    sub_indication: SubIndication | None
    detail: str
    checks: tuple[Check, ...]
    validation: ValidationReport | None = None
    transaction_id: str | None = None
    leaf_index: int | None = None
    accepted_at: datetime | None = None
    kid: str | None = None
    origin: str | None = None
    tree_size: int | None = None

    @property
    def passed(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED

    @property
    def exit_code(self) -> int:
        """0 TOTAL_PASSED, 1 TOTAL_FAILED, 2 INDETERMINATE."""
        return _EXIT_CODES[self.indication]

    def as_dict(self) -> dict[str, JsonValue]:
        """The report as JSON-ready values; times in the leaf timestamp format."""
        sub = self.sub_indication
        return {
            "indication": self.indication.value,
            "indication_uri": self.indication.uri,
            "sub_indication": None if sub is None else sub.value,
            "sub_indication_uri": None if sub is None else sub.uri,
            "detail": self.detail,
            "transaction_id": self.transaction_id,
            "leaf_index": self.leaf_index,
            "accepted_at": None if self.accepted_at is None else format_timestamp(self.accepted_at),
            "kid": self.kid,
            "checkpoint_origin": self.origin,
            "tree_size": self.tree_size,
            "checks": [check.as_dict() for check in self.checks],
            "validation": None if self.validation is None else self.validation.as_dict(),
        }


def _fail(sub: SubIndication, detail: str) -> NoReturn:
    raise EvidenceError(sub, detail)


def _step(facts: _Facts, name: str, run: Callable[[], tuple[_T, str]]) -> _T:
    try:
        value, detail = run()
    except EvidenceError as exc:
        facts.checks.append(Check(name, False, exc.detail))
        raise
    facts.checks.append(Check(name, True, detail))
    return value


# --- the steps -----------------------------------------------------------------------------------


def _parse(data: bytes, facts: _Facts) -> tuple[Receipt, str]:
    try:
        receipt = parse_receipt_json(data)
    except ReceiptFormatError as exc:
        _fail(SubIndication.FORMAT_FAILURE, str(exc))
    facts.transaction_id, facts.leaf_index = receipt.transaction_id, receipt.leaf_index
    return receipt, "the receipt is well formed"


def _verifiers(trusted_vkeys: Sequence[str]) -> list[NoteVerifier]:
    verifiers: list[NoteVerifier] = []
    for i, vkey in enumerate(trusted_vkeys):
        try:
            verifiers.append(NoteVerifier.from_vkey(vkey))
        except NoteFormatError as exc:
            _fail(SubIndication.NO_SIGNING_CERTIFICATE_FOUND, f"trusted key {i}: {exc}")
    if not verifiers:
        _fail(SubIndication.NO_SIGNING_CERTIFICATE_FOUND, "no trusted ledger key was given")
    return verifiers


def _open_checkpoint(
    note: str, trusted_vkeys: Sequence[str], origin: str | None, facts: _Facts
) -> tuple[Checkpoint, str]:
    verifiers = _verifiers(trusted_vkeys)
    try:
        _, signatures = split_note(note)
        known = {(v.name, v.key_id) for v in verifiers}
        if not any((sig.name, sig.key_id) in known for sig in signatures):
            _fail(
                SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
                "no signature on the checkpoint is from a trusted ledger key",
            )
        verified = verify_note(note, verifiers)
        checkpoint = parse_checkpoint(verified.text)
    except NoteFormatError as exc:
        _fail(SubIndication.FORMAT_FAILURE, f"the checkpoint is malformed: {exc}")
    except NoteSignatureError as exc:
        _fail(SubIndication.SIG_CRYPTO_FAILURE, f"the checkpoint signature is bad: {exc}")
    if origin is not None and checkpoint.origin != origin:
        _fail(
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
            f"the checkpoint is from log {checkpoint.origin!r}, not {origin!r}",
        )
    facts.origin, facts.tree_size = checkpoint.origin, checkpoint.tree_size
    names = ", ".join(verified.signed_by)
    size = checkpoint.tree_size
    return checkpoint, f"signed by {names}; log {checkpoint.origin}, tree size {size}"


def _bind_transaction(receipt: Receipt, facts: _Facts) -> tuple[TransactionLeaf, str]:
    leaf = bind_leaf(receipt.leaf, envelope=receipt.envelope, jws=receipt.jws, what="transaction")
    if leaf.tx_id != receipt.transaction_id:
        _fail(SubIndication.HASH_FAILURE, "transaction_id is not the leaf's tx_id")
    if leaf.result_sha256 != sha256_of_json(receipt.result):
        _fail(SubIndication.HASH_FAILURE, "SHA-256 of the canonical result is not the leaf's")
    try:
        header = parse_protected_header(receipt.jws)
    except JwsError as exc:
        _fail(SubIndication.FORMAT_FAILURE, f"the JWS is not of the profile: {exc}")
    if header.kid != leaf.kid:
        _fail(SubIndication.FORMAT_FAILURE, "the leaf's kid is not the JWS header's kid")
    facts.accepted_at, facts.kid = leaf.accepted_at, leaf.kid
    if receipt.signer_key.kid != leaf.kid:
        _fail(
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
            f"signer_key is key {receipt.signer_key.kid}, the transaction was signed by {leaf.kid}",
        )
    return leaf, "the leaf records this transaction id, envelope, result, JWS, kid and type"


def _include(receipt: Receipt, checkpoint: Checkpoint) -> tuple[None, str]:
    verify_included(
        leaf=receipt.leaf,
        leaf_index=receipt.leaf_index,
        proof=receipt.inclusion_proof,
        checkpoint=checkpoint,
        what="transaction",
    )
    return None, f"leaf {receipt.leaf_index} is in the tree of size {checkpoint.tree_size}"


def _key_history(
    receipt: Receipt, leaf: TransactionLeaf, checkpoint: Checkpoint, facts: _Facts
) -> KeyHistory:
    key = receipt.signer_key
    record, registration = _step(
        facts,
        CHECK_REGISTRATION,
        lambda: (
            check_registration(receipt, checkpoint=checkpoint),
            f"key {key.kid} of {key.subject} registered at index {key.registration.leaf_index}",
        ),
    )

    def events() -> tuple[KeyHistory, str]:
        history = apply_events(receipt, record, registration=registration, checkpoint=checkpoint)
        check_time_order((*history.times, (receipt.leaf_index, leaf.accepted_at)))
        return history, f"{len(key.events)} key events; leaf times increase with the index"

    return _step(facts, CHECK_EVENTS, events)


def _validate(
    receipt: Receipt,
    leaf: TransactionLeaf,
    history: KeyHistory,
    checkpoint: Checkpoint,
    at: datetime,
) -> ValidationReport:
    if leaf.accepted_at > at:
        _fail(
            SubIndication.TRY_LATER,
            "the transaction was recorded after the validation time: validate at a later time",
        )
    poe = ProofOfExistence.from_ledger(
        time=leaf.accepted_at, ledger_index=receipt.leaf_index, tree_size=checkpoint.tree_size
    )
    return validate_at(
        jws=receipt.jws,
        payload=canonicalize(receipt.envelope, max_bytes=MAX_DOCUMENT_BYTES),
        key=history.for_transaction,
        poe=poe,
        at=at,
    )


def _run(
    data: bytes, *, trusted_vkeys: Sequence[str], at: datetime, origin: str | None, facts: _Facts
) -> ValidationReport:
    receipt = _step(facts, CHECK_FORMAT, lambda: _parse(data, facts))
    checkpoint = _step(
        facts,
        CHECK_CHECKPOINT,
        lambda: _open_checkpoint(receipt.checkpoint, trusted_vkeys, origin, facts),
    )
    leaf = _step(facts, CHECK_LEAF, lambda: _bind_transaction(receipt, facts))
    _step(facts, CHECK_INCLUSION, lambda: _include(receipt, checkpoint))
    history = _key_history(receipt, leaf, checkpoint, facts)
    try:
        report = _validate(receipt, leaf, history, checkpoint, at)
    except EvidenceError as exc:
        facts.checks.append(Check(CHECK_VALIDATION, False, exc.detail))
        raise
    facts.checks.append(Check(CHECK_VALIDATION, report.passed, report.detail))
    return report


def check_receipt(
    receipt_json: bytes, *, trusted_vkeys: Sequence[str], at: datetime, origin: str | None = None
) -> ReceiptReport:
    """Verify a receipt offline as of ``at``, trusting only the ledger keys ``trusted_vkeys``
    (C2SP vkey strings) and, when given, only checkpoints of the log named ``origin``.

    Never raises for a bad receipt or a bad trusted key: the report says what failed. Raises
    NaiveDatetimeError for a naive ``at`` (a programmer error).
    """
    require_aware(at, field="at")
    facts = _Facts()
    try:
        validation = _run(
            receipt_json, trusted_vkeys=trusted_vkeys, at=at, origin=origin, facts=facts
        )
    except EvidenceError as exc:
        return _report(facts, exc.sub_indication, exc.detail, None)
    return _report(facts, validation.sub_indication, validation.detail, validation)


def _report(
    facts: _Facts,
    sub: SubIndication | None,
    detail: str,
    validation: ValidationReport | None,
) -> ReceiptReport:
    return ReceiptReport(
        indication=Indication.TOTAL_PASSED if sub is None else sub.indication,
        sub_indication=sub,
        detail=detail,
        checks=tuple(facts.checks),
        validation=validation,
        transaction_id=facts.transaction_id,
        leaf_index=facts.leaf_index,
        accepted_at=facts.accepted_at,
        kid=facts.kid,
        origin=facts.origin,
        tree_size=facts.tree_size,
    )
