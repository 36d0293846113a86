"""ledger.receipt: building, encoding and parsing receipts, and every refusal (member and rule)."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from ledger.errors import ReceiptFormatError
from ledger.merkle import MAX_PROOF_HASHES
from ledger.receipt import (
    MAX_KEY_EVENTS_IN_RECEIPT,
    MAX_RECEIPT_BYTES,
    MEMBERS,
    PROVEN_ENTRY_MEMBERS,
    RECEIPT_FORMAT,
    SIGNER_KEY_MEMBERS,
    ProvenEntry,
    SignerKeyEvidence,
    build_receipt,
    encode_receipt,
    load_receipt_json,
    parse_receipt,
    parse_receipt_json,
)
from ledger.receipt import Receipt as ParsedReceipt
from signatures.canonical import JsonValue
from tests.receipt_factory import Scenario, scenario

Receipt = dict[str, Any]


@pytest.fixture(scope="module")
def valid() -> Scenario:
    return scenario(before=["suspend", "reinstate"], after=["revoke"])


def refusal(value: object) -> ReceiptFormatError:
    with pytest.raises(ReceiptFormatError) as caught:
        parse_receipt(value)  # type: ignore[arg-type]
    return caught.value


def mutated(valid: Scenario, change: Callable[[Receipt], object]) -> ReceiptFormatError:
    receipt = valid.copy()
    change(receipt)
    return refusal(receipt)


# --- building and round trips --------------------------------------------------------------------


def test_build_parse_round_trip(valid: Scenario) -> None:
    receipt = parse_receipt(valid.receipt)
    assert receipt.as_json() == valid.receipt
    assert receipt.transaction_id == valid.tx.tx_id
    assert receipt.leaf == valid.tx.leaf
    assert receipt.leaf_index == valid.tx.index
    assert receipt.signer_key.registration.leaf_index == valid.registration.index
    assert [e.leaf_index for e in receipt.signer_key.events] == [e.index for e in valid.events]


def test_encoded_receipt_parses_back(valid: Scenario) -> None:
    data = encode_receipt(valid.receipt)
    assert json.loads(data) == valid.receipt
    assert parse_receipt_json(data) == parse_receipt(valid.receipt)


def test_members_in_the_specified_order(valid: Scenario) -> None:
    assert tuple(valid.receipt) == MEMBERS
    assert valid.receipt["format"] == RECEIPT_FORMAT
    assert tuple(valid.receipt["signer_key"]) == SIGNER_KEY_MEMBERS  # type: ignore[arg-type]


def test_bytes_are_standard_base64_with_padding(valid: Scenario) -> None:
    leaf = valid.receipt["leaf"]
    assert isinstance(leaf, str)
    assert base64.b64decode(leaf, validate=True) == valid.tx.leaf
    for h in valid.receipt["inclusion_proof"]:  # type: ignore[union-attr]
        assert isinstance(h, str) and len(h) == 44 and h.endswith("=")


def _rebuild_upper_id(receipt: ParsedReceipt, *, self_check: bool) -> dict[str, JsonValue]:
    return build_receipt(
        transaction_id=receipt.transaction_id.upper(),
        envelope=receipt.envelope,
        jws=receipt.jws,
        result=receipt.result,
        leaf=receipt.leaf,
        leaf_index=receipt.leaf_index,
        inclusion_proof=receipt.inclusion_proof,
        checkpoint_note=receipt.checkpoint,
        signer_key=receipt.signer_key,
        self_check=self_check,
    )


def test_build_refuses_what_parse_refuses(valid: Scenario) -> None:
    receipt = parse_receipt(valid.receipt)
    with pytest.raises(ReceiptFormatError) as caught:
        _rebuild_upper_id(receipt, self_check=True)
    assert (caught.value.member, caught.value.rule) == ("/transaction_id", "invalid_format")


def test_build_without_self_check_leaves_form_to_the_caller(valid: Scenario) -> None:
    # The service's hot path: what it built from verified values is not parsed again.
    receipt = parse_receipt(valid.receipt)
    built = _rebuild_upper_id(receipt, self_check=False)
    assert built["transaction_id"] == receipt.transaction_id.upper()
    with pytest.raises(ReceiptFormatError):
        parse_receipt(built)


def test_build_refuses_a_receipt_over_max_receipt_bytes(valid: Scenario) -> None:
    receipt = parse_receipt(valid.receipt)
    # Each entry is well formed (a 60 KB envelope is within the canonical profile), together
    # they are not: the bound is on the whole receipt.
    bulky = ProvenEntry(
        leaf_index=receipt.signer_key.events[0].leaf_index,
        leaf=receipt.leaf,
        inclusion_proof=receipt.inclusion_proof,
        envelope={**receipt.envelope, "padding": "x" * 60_000},
        jws=receipt.jws,
    )
    count = MAX_RECEIPT_BYTES // 60_000 + 1
    evidence = SignerKeyEvidence(
        kid=receipt.signer_key.kid,
        subject=receipt.signer_key.subject,
        jwk=receipt.signer_key.jwk,
        assurance=receipt.signer_key.assurance,
        registration=receipt.signer_key.registration,
        events=(bulky,) * count,
    )
    with pytest.raises(ReceiptFormatError) as caught:
        build_receipt(
            transaction_id=receipt.transaction_id,
            envelope=receipt.envelope,
            jws=receipt.jws,
            result=receipt.result,
            leaf=receipt.leaf,
            leaf_index=receipt.leaf_index,
            inclusion_proof=list(receipt.inclusion_proof),
            checkpoint_note=receipt.checkpoint,
            signer_key=evidence,
        )
    assert (caught.value.member, caught.value.rule) == ("", "too_large")


def test_max_key_events_of_ordinary_size_fit(valid: Scenario) -> None:
    receipt = parse_receipt(valid.receipt)
    event = receipt.signer_key.events[0]
    size = len(json.dumps(event.as_json()))
    assert size * MAX_KEY_EVENTS_IN_RECEIPT < MAX_RECEIPT_BYTES // 2


def test_proven_entry_as_json() -> None:
    entry = ProvenEntry(
        leaf_index=3, leaf=b"leaf", inclusion_proof=(b"\x01" * 32,), envelope={}, jws="a..b"
    )
    assert entry.as_json() == {
        "leaf_index": 3,
        "leaf": "bGVhZg==",
        "inclusion_proof": [base64.b64encode(b"\x01" * 32).decode()],
        "envelope": {},
        "jws": "a..b",
    }


# --- JSON refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"{", "invalid_json"),
        (b"\xef\xbb\xbf{}", "invalid_json"),
        (b'{"a":"\xff"}', "invalid_json"),
        (b'{"a":1,"a":2}', "duplicate_key"),
        (b'{"a":1.5}', "float_not_allowed"),
        (b'{"a":1e3}', "float_not_allowed"),
        (b'{"a":NaN}', "float_not_allowed"),
        (b'{"a":9007199254740992}', "integer_out_of_range"),
        (b'{"a":-' + b"9" * 5000 + b"}", "integer_out_of_range"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        (b" " * (MAX_RECEIPT_BYTES + 1), "too_large"),
    ],
)
def test_json_refusals(data: bytes, rule: str) -> None:
    with pytest.raises(ReceiptFormatError) as caught:
        load_receipt_json(data)
    assert caught.value.rule == rule


def test_receipt_whitespace_is_allowed(valid: Scenario) -> None:
    data = json.dumps(valid.receipt, indent=4).encode()
    assert parse_receipt_json(data) == parse_receipt(valid.receipt)


# --- member refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("member", MEMBERS)
def test_missing_member(valid: Scenario, member: str) -> None:
    error = mutated(valid, lambda r: r.pop(member))
    assert (error.member, error.rule) == (f"/{member}", "required")


@pytest.mark.parametrize("member", SIGNER_KEY_MEMBERS)
def test_missing_signer_key_member(valid: Scenario, member: str) -> None:
    error = mutated(valid, lambda r: r["signer_key"].pop(member))
    assert (error.member, error.rule) == (f"/signer_key/{member}", "required")


@pytest.mark.parametrize("member", PROVEN_ENTRY_MEMBERS)
def test_missing_proven_entry_member(valid: Scenario, member: str) -> None:
    error = mutated(valid, lambda r: r["signer_key"]["events"][1].pop(member))
    assert (error.member, error.rule) == (f"/signer_key/events/1/{member}", "required")


def _set(path: str, value: object) -> Callable[[Receipt], None]:
    def change(receipt: Receipt) -> None:
        *parents, last = path.strip("/").split("/")
        node: Any = receipt
        for name in parents:
            node = node[int(name)] if isinstance(node, list) else node[name]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


LEAF_B64 = base64.b64encode(b'{"v":1}').decode()
HASH_B64 = base64.b64encode(b"\x07" * 32).decode()


@pytest.mark.parametrize(
    ("path", "value", "member", "rule"),
    [
        ("/extra", 1, "/extra", "unknown_member"),
        ("/format", "pishkhan-receipt/2", "/format", "unsupported_format"),
        ("/transaction_id", "not-a-uuid", "/transaction_id", "invalid_format"),
        ("/transaction_id", 7, "/transaction_id", "wrong_type"),
        ("/envelope", [], "/envelope", "wrong_type"),
        ("/envelope/signer", 1, "/envelope/signer", "wrong_type"),
        (
            "/envelope/payload/amount/amount_minor",
            1.5,
            "/envelope/payload/amount/amount_minor",
            "float_not_allowed",
        ),
        ("/result", "ok", "/result", "wrong_type"),
        ("/result/big", 2**60, "/result/big", "integer_out_of_range"),
        ("/jws", "a.b.c", "/jws", "invalid_format"),
        ("/leaf", LEAF_B64.rstrip("="), "/leaf", "invalid_base64"),
        ("/leaf", "----", "/leaf", "invalid_base64"),  # the URL-safe alphabet
        ("/leaf", "eyJ2IjoxfR==", "/leaf", "invalid_base64"),  # unused bits set
        ("/leaf", "eyJ2IjoxfQ===", "/leaf", "invalid_base64"),
        ("/leaf", "QQ==" * 30_000, "/leaf", "too_large"),
        ("/leaf_index", -1, "/leaf_index", "out_of_range"),
        ("/leaf_index", True, "/leaf_index", "wrong_type"),
        ("/leaf_index", "3", "/leaf_index", "wrong_type"),
        ("/inclusion_proof", HASH_B64, "/inclusion_proof", "wrong_type"),
        (
            "/inclusion_proof/0",
            base64.b64encode(b"\x07" * 31).decode(),
            "/inclusion_proof/0",
            "invalid_format",
        ),
        ("/inclusion_proof/0", 5, "/inclusion_proof/0", "wrong_type"),
        ("/checkpoint", None, "/checkpoint", "wrong_type"),
        ("/checkpoint", "x" * (256 * 1024 + 1), "/checkpoint", "too_large"),
        ("/signer_key/kid", "short", "/signer_key/kid", "invalid_format"),
        ("/signer_key/assurance", "qualified", "/signer_key/assurance", "invalid_format"),
        ("/signer_key/jwk/d", "c2VjcmV0", "/signer_key/jwk/d", "invalid_jwk"),
        ("/signer_key/jwk/kty", "oct", "/signer_key/jwk/kty", "invalid_jwk"),
        ("/signer_key/events", {}, "/signer_key/events", "wrong_type"),
        (
            "/signer_key/registration/leaf_index",
            -2,
            "/signer_key/registration/leaf_index",
            "out_of_range",
        ),
        ("/signer_key/events/0/jws", "", "/signer_key/events/0/jws", "invalid_format"),
        (
            "/signer_key/events/0/envelope/type",
            None,
            "/signer_key/events/0/envelope/type",
            "wrong_type",
        ),
    ],
)
def test_member_refusals(valid: Scenario, path: str, value: object, member: str, rule: str) -> None:
    error = mutated(valid, _set(path, value))
    assert (error.member, error.rule) == (member, rule)


def test_proof_longer_than_max_proof_hashes(valid: Scenario) -> None:
    error = mutated(valid, _set("/inclusion_proof", [HASH_B64] * (MAX_PROOF_HASHES + 1)))
    assert (error.member, error.rule) == ("/inclusion_proof", "too_many")


def test_more_than_max_key_events(valid: Scenario) -> None:
    def change(receipt: Receipt) -> None:
        event = receipt["signer_key"]["events"][0]
        receipt["signer_key"]["events"] = [copy.deepcopy(event)] * (MAX_KEY_EVENTS_IN_RECEIPT + 1)

    error = mutated(valid, change)
    assert (error.member, error.rule) == ("/signer_key/events", "too_many")


def test_receipt_not_an_object() -> None:
    error = refusal([])
    assert (error.member, error.rule) == ("", "wrong_type")
