"""audit.receipt_check: complete receipts built without a server, and every mutation named.

Each mutation test asserts the exact ETSI indication and sub-indication, and the check that
decided (the last one run). docs/FORMATS.md section 5 explains each choice.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from audit.receipt_check import (
    CHECK_CHECKPOINT,
    CHECK_EVENTS,
    CHECK_FORMAT,
    CHECK_INCLUSION,
    CHECK_LEAF,
    CHECK_NAMES,
    CHECK_REGISTRATION,
    CHECK_VALIDATION,
    EXIT_FAILED,
    EXIT_INDETERMINATE,
    EXIT_PASSED,
    ReceiptReport,
    check_receipt,
)
from ledger.leaf import TransactionLeaf, encode_leaf, parse_leaf
from ledger.note import NoteSigner
from signatures.errors import NaiveDatetimeError
from signatures.keys import AssuranceLevel
from signatures.validation import Indication, SubIndication
from tests.receipt_factory import (
    ALGS,
    AT,
    OTHER_SUBJECT,
    FakeLedger,
    Scenario,
    Signer,
    cached_key,
    receipt_for,
    scenario,
)

Receipt = dict[str, Any]
PASSED = (Indication.TOTAL_PASSED, None)
FAILED = Indication.TOTAL_FAILED
UNSURE = Indication.INDETERMINATE
S = SubIndication


@pytest.fixture(scope="module")
def base() -> Scenario:
    return scenario(filler=5)


def verdict(report: ReceiptReport) -> tuple[Indication, SubIndication | None]:
    return report.indication, report.sub_indication


def decided_by(report: ReceiptReport) -> str:
    return report.checks[-1].name


def mutate(base: Scenario, change: Callable[[Receipt], object]) -> ReceiptReport:
    receipt = base.copy()
    change(receipt)
    return base.check(receipt)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def flip(text: str) -> str:
    """The base64 of the same bytes with the first bit flipped."""
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 0x80
    return b64(bytes(raw))


# --- passing receipts ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_valid_receipt_is_total_passed(alg: str) -> None:
    report = scenario(alg).check()  # type: ignore[arg-type]
    assert verdict(report) == PASSED
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    assert all(c.passed for c in report.checks)
    assert report.exit_code == EXIT_PASSED
    assert report.validation is not None and report.validation.alg == alg


def test_report_facts_and_json(base: Scenario) -> None:
    report = base.check()
    assert report.transaction_id == base.tx.tx_id
    assert report.leaf_index == base.tx.index
    assert report.accepted_at == base.tx.accepted_at
    assert report.kid == base.signer.kid
    assert report.tree_size == base.ledger.size
    assert report.origin == base.ledger.origin
    body = json.loads(json.dumps(report.as_dict()))
    assert body["indication"] == "TOTAL_PASSED"
    assert body["indication_uri"] == "urn:etsi:019102:mainindication:total-passed"
    assert body["validation"]["proof_of_existence"]["ledger_index"] == base.tx.index
    assert body["validation"]["decisive_time_source"] == "proof_of_existence"
    assert [c["name"] for c in body["checks"]] == list(CHECK_NAMES)


def test_receipt_against_a_trusted_key_among_others(base: Scenario) -> None:
    stranger = NoteSigner.generate("someone.else/log").verifier.vkey
    assert verdict(base.check(vkeys=[stranger, base.ledger.vkey])) == PASSED


def test_revocation_after_the_transaction_is_total_passed() -> None:
    report = scenario(after=["revoke"]).check()
    assert verdict(report) == PASSED
    assert report.validation is not None and report.validation.key_revoked_at is not None


def test_suspension_ended_before_the_transaction_is_total_passed() -> None:
    assert verdict(scenario(before=["suspend", "reinstate"]).check()) == PASSED


def test_receipt_for_the_key_registration_itself_is_total_passed() -> None:
    ledger, signer = FakeLedger(), Signer()
    ledger.filler(2)
    registration = signer.register(ledger)
    receipt = receipt_for(ledger, registration, signer, registration)
    report = check_receipt(json.dumps(receipt).encode(), trusted_vkeys=[ledger.vkey], at=AT)
    assert verdict(report) == PASSED


def test_receipt_for_a_self_revocation_is_total_passed() -> None:
    ledger, signer = FakeLedger(), Signer()
    registration = signer.register(ledger)
    revocation = signer.revoke(ledger)
    receipt = receipt_for(ledger, revocation, signer, registration, [revocation])
    report = check_receipt(json.dumps(receipt).encode(), trusted_vkeys=[ledger.vkey], at=AT)
    assert verdict(report) == PASSED


def test_checkpoint_of_a_later_tree_size() -> None:
    # Proofs against a bigger checkpoint than the one current at acceptance.
    s = scenario()
    s.ledger.filler(9)
    receipt = receipt_for(s.ledger, s.tx, s.signer, s.registration)
    assert verdict(s.check(receipt)) == PASSED


# --- 1. receipt format ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"not json", b"[]", b'{"format": "pishkhan-receipt/1"}', b"\xff\xfe"]
)
def test_unparsable_receipt_is_format_failure(data: bytes) -> None:
    report = check_receipt(data, trusted_vkeys=[], at=AT)
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert decided_by(report) == CHECK_FORMAT
    assert report.exit_code == EXIT_FAILED


def test_unknown_receipt_format_version(base: Scenario) -> None:
    report = mutate(base, lambda r: r.update(format="pishkhan-receipt/9"))
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)


def test_naive_validation_time_is_a_programmer_error(base: Scenario) -> None:
    with pytest.raises(NaiveDatetimeError):
        check_receipt(base.data(), trusted_vkeys=base.vkeys, at=AT.replace(tzinfo=None))


# --- 2. checkpoint signature ---------------------------------------------------------------------


def test_checkpoint_signed_by_an_untrusted_key(base: Scenario) -> None:
    other = NoteSigner.generate(base.ledger.origin)
    report = base.check(vkeys=[other.verifier.vkey])
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)
    assert decided_by(report) == CHECK_CHECKPOINT
    assert report.exit_code == EXIT_INDETERMINATE


def test_checkpoint_re_signed_by_an_impostor(base: Scenario) -> None:
    impostor = NoteSigner.generate(base.ledger.origin)
    note = base.ledger.checkpoint(signers=[impostor])
    report = mutate(base, lambda r: r.update(checkpoint=note))
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)


def test_checkpoint_signature_bit_flipped(base: Scenario) -> None:
    def change(receipt: Receipt) -> None:
        body, _, line = receipt["checkpoint"].rstrip("\n").rpartition("\n")
        name, encoded = line.rsplit(" ", 1)
        raw = bytearray(base64.b64decode(encoded))
        raw[-1] ^= 0x01  # in the signature, after the 4-byte key ID
        receipt["checkpoint"] = f"{body}\n{name} {b64(bytes(raw))}\n"

    report = mutate(base, change)
    assert verdict(report) == (FAILED, S.SIG_CRYPTO_FAILURE)
    assert decided_by(report) == CHECK_CHECKPOINT


def test_checkpoint_body_changed_under_its_signature(base: Scenario) -> None:
    size = str(base.ledger.size)
    report = mutate(
        base, lambda r: r.update(checkpoint=r["checkpoint"].replace(f"\n{size}\n", "\n99\n", 1))
    )
    assert verdict(report) == (FAILED, S.SIG_CRYPTO_FAILURE)


def test_checkpoint_not_a_signed_note(base: Scenario) -> None:
    report = mutate(base, lambda r: r.update(checkpoint="pishkhan.test/ledger\n7\n"))
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert decided_by(report) == CHECK_CHECKPOINT


def test_no_trusted_keys(base: Scenario) -> None:
    assert verdict(base.check(vkeys=[])) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)


def test_malformed_trusted_key(base: Scenario) -> None:
    report = base.check(vkeys=["not a vkey"])
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)


def test_checkpoint_of_another_origin_than_required(base: Scenario) -> None:
    report = check_receipt(base.data(), trusted_vkeys=base.vkeys, at=AT, origin="other.example")
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)
    ok = check_receipt(base.data(), trusted_vkeys=base.vkeys, at=AT, origin=base.ledger.origin)
    assert verdict(ok) == PASSED


# --- 3. leaf binding -----------------------------------------------------------------------------


def test_envelope_payload_changed(base: Scenario) -> None:
    report = mutate(base, lambda r: r["envelope"]["payload"]["amount"].update(amount_minor=1))
    assert verdict(report) == (FAILED, S.HASH_FAILURE)
    assert decided_by(report) == CHECK_LEAF


def test_jws_changed(base: Scenario) -> None:
    other = base.signer.sign(base.ledger, "bill.pay", {"note": "another transaction"})
    report = mutate(base, lambda r: r.update(jws=other.jws))
    assert verdict(report) == (FAILED, S.HASH_FAILURE)
    assert decided_by(report) == CHECK_LEAF


def test_result_changed(base: Scenario) -> None:
    report = mutate(base, lambda r: r["result"].update(status="refunded"))
    assert verdict(report) == (FAILED, S.HASH_FAILURE)


def test_transaction_id_changed(base: Scenario) -> None:
    report = mutate(base, lambda r: r.update(transaction_id="00000000-0000-4000-8000-000000000000"))
    assert verdict(report) == (FAILED, S.HASH_FAILURE)


def test_leaf_replaced_by_another_leaf_of_the_ledger(base: Scenario) -> None:
    report = mutate(base, lambda r: r.update(leaf=b64(base.registration.leaf)))
    assert verdict(report) == (FAILED, S.HASH_FAILURE)
    assert decided_by(report) == CHECK_LEAF


def test_leaf_bytes_changed(base: Scenario) -> None:
    report = mutate(base, lambda r: r.update(leaf=flip(r["leaf"])))
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert decided_by(report) == CHECK_LEAF


def test_leaf_re_encoded_non_canonically(base: Scenario) -> None:
    spaced = json.dumps(json.loads(base.tx.leaf), sort_keys=True).encode()
    report = mutate(base, lambda r: r.update(leaf=b64(spaced)))
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)


def test_signer_key_of_another_key(base: Scenario) -> None:
    other = scenario("ES256")
    report = mutate(base, lambda r: r.update(signer_key=other.receipt["signer_key"]))
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)
    assert decided_by(report) == CHECK_LEAF


def _forged_leaf_ledger(**changes: object) -> Scenario:
    """A ledger whose transaction leaf disagrees with its own JWS or envelope."""
    s = scenario()
    leaf = parse_leaf(s.tx.leaf)
    values = {**leaf.__dict__, **changes}
    forged = encode_leaf(TransactionLeaf(**values))
    index = s.tx.index
    s.ledger.entries[index] = s.tx.__class__(
        index, forged, s.tx.envelope, s.tx.jws, s.tx.result, s.tx.tx_id, s.tx.accepted_at
    )
    s.tx = s.ledger.entries[index]
    s.receipt = receipt_for(s.ledger, s.tx, s.signer, s.registration)
    return s


def test_leaf_kid_other_than_the_jws_header_kid() -> None:
    s = _forged_leaf_ledger(kid=Signer("ES256").kid)
    report = s.check()
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert decided_by(report) == CHECK_LEAF


def test_leaf_type_other_than_the_envelope_type() -> None:
    s = _forged_leaf_ledger(type="tax.vat.file")
    assert verdict(s.check()) == (FAILED, S.FORMAT_FAILURE)


# --- 4. leaf inclusion ---------------------------------------------------------------------------


def test_leaf_index_changed(base: Scenario) -> None:
    report = mutate(base, lambda r: r.update(leaf_index=r["leaf_index"] + 1))
    assert verdict(report) == (FAILED, S.HASH_FAILURE)
    assert decided_by(report) == CHECK_INCLUSION


def test_leaf_index_beyond_the_tree(base: Scenario) -> None:
    report = mutate(base, lambda r: r.update(leaf_index=base.ledger.size))
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert decided_by(report) == CHECK_INCLUSION


def test_proof_hash_changed(base: Scenario) -> None:
    report = mutate(
        base, lambda r: r["inclusion_proof"].__setitem__(1, flip(r["inclusion_proof"][1]))
    )
    assert verdict(report) == (FAILED, S.HASH_FAILURE)
    assert decided_by(report) == CHECK_INCLUSION


def test_proof_hashes_swapped(base: Scenario) -> None:
    def change(receipt: Receipt) -> None:
        proof = receipt["inclusion_proof"]
        proof[0], proof[1] = proof[1], proof[0]

    report = mutate(base, change)
    assert verdict(report) == (FAILED, S.HASH_FAILURE)


def test_proof_truncated(base: Scenario) -> None:
    report = mutate(base, lambda r: r["inclusion_proof"].pop())
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert decided_by(report) == CHECK_INCLUSION


def test_proof_extended(base: Scenario) -> None:
    report = mutate(base, lambda r: r["inclusion_proof"].append(b64(b"\x00" * 32)))
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)


def test_checkpoint_from_another_tree(base: Scenario) -> None:
    # Same size, same trusted key, other leaves: a signed root the leaf is not under.
    other = FakeLedger(signer=base.ledger.signer)
    other.filler(base.ledger.size)
    report = mutate(base, lambda r: r.update(checkpoint=other.checkpoint()))
    assert verdict(report) == (FAILED, S.HASH_FAILURE)
    assert decided_by(report) == CHECK_INCLUSION


# --- 5. registration -----------------------------------------------------------------------------


def _registered(register: Callable[[FakeLedger, Signer], Any], **receipt_args: Any) -> Scenario:
    """A scenario whose registration entry is made by ``register``."""
    ledger, signer = FakeLedger(), Signer()
    ledger.filler(2)
    registration = register(ledger, signer)
    tx = signer.pay(ledger)
    receipt = receipt_for(ledger, tx, signer, registration, **receipt_args)
    return Scenario(ledger, signer, registration, tx, [], receipt)


def test_registration_of_another_key() -> None:
    other = Signer("ES256", slot=1)
    s = _registered(lambda ledger, signer: other.register(ledger))
    report = s.check()
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)
    assert decided_by(report) == CHECK_REGISTRATION


def test_signer_key_jwk_replaced(base: Scenario) -> None:
    other_jwk = dict(Signer("EdDSA", slot=1).jwk.to_dict())
    report = mutate(base, lambda r: r["signer_key"].update(jwk=other_jwk))
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)
    assert decided_by(report) == CHECK_REGISTRATION


def test_proof_of_possession_signed_by_another_key() -> None:
    intruder = cached_key("EdDSA", 1)
    s = _registered(lambda ledger, signer: signer.register(ledger, key=intruder))
    report = s.check()
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)
    assert "proof of possession" in report.detail


def test_registration_index_after_the_transaction() -> None:
    ledger, signer = FakeLedger(), Signer()
    tx = signer.pay(ledger)
    registration = signer.register(ledger)
    receipt = receipt_for(ledger, tx, signer, registration)
    report = check_receipt(json.dumps(receipt).encode(), trusted_vkeys=[ledger.vkey], at=AT)
    assert verdict(report) == (FAILED, S.NOT_YET_VALID)
    assert decided_by(report) == CHECK_REGISTRATION


def test_registration_not_included(base: Scenario) -> None:
    def change(receipt: Receipt) -> None:
        proof = receipt["signer_key"]["registration"]["inclusion_proof"]
        proof[0] = flip(proof[0])

    report = mutate(base, change)
    assert verdict(report) == (FAILED, S.HASH_FAILURE)
    assert decided_by(report) == CHECK_REGISTRATION


def test_registration_envelope_changed(base: Scenario) -> None:
    report = mutate(base, lambda r: r["signer_key"]["registration"]["envelope"].update(version=2))
    assert verdict(report) == (FAILED, S.HASH_FAILURE)
    assert decided_by(report) == CHECK_REGISTRATION


def test_registration_entry_is_another_transaction(base: Scenario) -> None:
    def change(receipt: Receipt) -> None:
        receipt["signer_key"]["registration"] = {
            "leaf_index": receipt["leaf_index"],
            "leaf": receipt["leaf"],
            "inclusion_proof": receipt["inclusion_proof"],
            "envelope": receipt["envelope"],
            "jws": receipt["jws"],
        }

    report = mutate(base, change)
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)


def test_registration_by_another_subject(base: Scenario) -> None:
    report = mutate(base, lambda r: r["signer_key"].update(subject=OTHER_SUBJECT))
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)


def test_certified_assurance_without_a_certificate(base: Scenario) -> None:
    report = mutate(base, lambda r: r["signer_key"].update(assurance="certified"))
    assert verdict(report) == (UNSURE, S.NO_SIGNING_CERTIFICATE_FOUND)


def test_certified_assurance_with_a_certificate_chain() -> None:
    s = _registered(
        lambda ledger, signer: signer.register(ledger, x5c=[b64(b"DER")]),
        assurance=AssuranceLevel.CERTIFIED,
    )
    assert verdict(s.check()) == PASSED


def test_key_expired_before_the_transaction() -> None:
    s = _registered(
        lambda ledger, signer: signer.register(
            ledger, not_after=ledger.next_time + timedelta(seconds=30)
        )
    )
    report = s.check()
    assert verdict(report) == (FAILED, S.EXPIRED)
    assert decided_by(report) == CHECK_VALIDATION


# --- 6. key events -------------------------------------------------------------------------------


def test_revocation_recorded_before_the_transaction() -> None:
    report = scenario(before=["revoke"]).check()
    assert verdict(report) == (FAILED, S.REVOKED)
    assert decided_by(report) == CHECK_VALIDATION
    assert report.checks[-1].passed is False


def test_suspension_in_effect() -> None:
    report = scenario(before=["suspend"]).check()
    assert verdict(report) == (UNSURE, S.TRY_LATER)
    assert decided_by(report) == CHECK_VALIDATION


def test_transaction_during_a_suspension_that_has_ended() -> None:
    report = scenario(before=["suspend"], after=["reinstate"]).check()
    assert verdict(report) == (UNSURE, S.SIG_CONSTRAINTS_FAILURE)


@pytest.fixture(scope="module")
def evented() -> Scenario:
    return scenario(before=["suspend", "reinstate"], after=["revoke"])


def test_events_out_of_order(evented: Scenario) -> None:
    report = mutate(evented, lambda r: r["signer_key"]["events"].reverse())
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert decided_by(report) == CHECK_EVENTS


def test_event_not_included(evented: Scenario) -> None:
    def change(receipt: Receipt) -> None:
        proof = receipt["signer_key"]["events"][1]["inclusion_proof"]
        proof[0] = flip(proof[0])

    report = mutate(evented, change)
    assert verdict(report) == (FAILED, S.HASH_FAILURE)
    assert decided_by(report) == CHECK_EVENTS


def test_event_envelope_changed(evented: Scenario) -> None:
    report = mutate(
        evented,
        lambda r: r["signer_key"]["events"][2]["envelope"]["payload"].update(reason="superseded"),
    )
    assert verdict(report) == (FAILED, S.HASH_FAILURE)


def test_event_dropped_leaves_a_valid_state_machine_only_if_consistent(evented: Scenario) -> None:
    # Dropping the suspension leaves a reinstatement of an active key: refused.
    report = mutate(evented, lambda r: r["signer_key"]["events"].pop(0))
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert decided_by(report) == CHECK_EVENTS


def test_event_about_another_key() -> None:
    ledger, signer, other = FakeLedger(), Signer(), Signer("ES256", slot=1)
    registration = signer.register(ledger)
    other.register(ledger)
    foreign = other.revoke(ledger)
    tx = signer.pay(ledger)
    receipt = receipt_for(ledger, tx, signer, registration, [foreign])
    report = check_receipt(json.dumps(receipt).encode(), trusted_vkeys=[ledger.vkey], at=AT)
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert "another key" in report.detail


def test_event_that_is_not_a_key_event(evented: Scenario) -> None:
    ledger, signer = evented.ledger, evented.signer
    payment = ledger.entries[evented.tx.index]
    receipt = receipt_for(ledger, evented.tx, signer, evented.registration, [payment])
    assert verdict(evented.check(receipt)) == (FAILED, S.FORMAT_FAILURE)


def test_event_before_the_registration() -> None:
    ledger, signer = FakeLedger(), Signer()
    early = ledger.record(signer.sign(ledger, "key.suspend", {"kid": signer.kid}))
    registration = signer.register(ledger)
    tx = signer.pay(ledger)
    receipt = receipt_for(ledger, tx, signer, registration, [early])
    report = check_receipt(json.dumps(receipt).encode(), trusted_vkeys=[ledger.vkey], at=AT)
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert decided_by(report) == CHECK_EVENTS


def test_leaf_times_not_increasing_with_the_index() -> None:
    ledger, signer = FakeLedger(), Signer()
    registration = signer.register(ledger)
    late = ledger.next_time + timedelta(hours=1)
    suspension = ledger.record(
        signer.sign(ledger, "key.suspend", {"kid": signer.kid}), accepted_at=late
    )
    reinstatement = signer.reinstate(ledger)  # dated before the suspension, one index later
    tx = signer.pay(ledger)
    receipt = receipt_for(ledger, tx, signer, registration, [suspension, reinstatement])
    report = check_receipt(json.dumps(receipt).encode(), trusted_vkeys=[ledger.vkey], at=AT)
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert decided_by(report) == CHECK_EVENTS


def test_transaction_dated_before_the_registration() -> None:
    ledger, signer = FakeLedger(), Signer()
    registration = signer.register(ledger)
    earlier = registration.accepted_at - timedelta(seconds=5)
    tx = ledger.record(signer.sign(ledger, "bill.pay", {"note": "x"}), accepted_at=earlier)
    receipt = receipt_for(ledger, tx, signer, registration)
    report = check_receipt(json.dumps(receipt).encode(), trusted_vkeys=[ledger.vkey], at=AT)
    assert verdict(report) == (FAILED, S.FORMAT_FAILURE)
    assert "dated" in report.detail


# --- 7. validation -------------------------------------------------------------------------------


def test_validation_time_before_the_transaction_was_recorded(base: Scenario) -> None:
    report = base.check(at=base.tx.accepted_at - timedelta(seconds=1))
    assert verdict(report) == (UNSURE, S.TRY_LATER)
    assert decided_by(report) == CHECK_VALIDATION
    assert report.validation is None


def test_verdict_does_not_change_decades_later() -> None:
    s = scenario(after=["revoke"])
    assert verdict(s.check(at=AT + timedelta(days=365 * 30))) == PASSED


# --- never raises --------------------------------------------------------------------------------


def _paths(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


@pytest.mark.parametrize("replacement", [None, [], "x", -1])
def test_any_member_replaced_gives_a_report(evented: Scenario, replacement: object) -> None:
    # Regression: an array where a string was expected once raised TypeError (unhashable).
    for path in _paths(evented.receipt):
        receipt = evented.copy()
        node: Any = receipt
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = replacement
        report = evented.check(receipt)
        assert report.checks, path
        # Only dropping every event keeps a valid receipt: omissions cannot be detected (§5).
        assert not report.passed or path == ("signer_key", "events"), path
