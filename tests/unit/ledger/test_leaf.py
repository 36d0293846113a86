"""ledger.leaf: the leaf format, its timestamps, and every refusal (named by member and rule)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.errors import LeafFormatError
from ledger.leaf import (
    MAX_LEAF_JSON_BYTES,
    MEMBERS,
    TransactionLeaf,
    encode_leaf,
    format_timestamp,
    parse_leaf,
    parse_timestamp,
    sha256_of_json,
)
from signatures.canonical import JsonValue, canonicalize
from signatures.errors import NaiveDatetimeError

ENVELOPE_HASH = hashlib.sha256(b"envelope").digest()
RESULT_HASH = hashlib.sha256(b"result").digest()
KID = "KF7ACJLLDrEKUr2eU4muF7H2nNrcRXtWkNdfwb6onxs"
JWS = "eyJhbGciOiJFZERTQSJ9..c2lnbmF0dXJl"
TX_ID = "0b7e1c9a-4f0e-4d7a-9b1e-2c3d4e5f6a7b"
ACCEPTED_AT = datetime(2026, 3, 21, 8, 30, 0, 120000, tzinfo=UTC)


def make_leaf(**changes: object) -> TransactionLeaf:
    values: dict[str, object] = {
        "tx_id": TX_ID,
        "type": "bill.pay",
        "accepted_at": ACCEPTED_AT,
        "envelope_sha256": ENVELOPE_HASH,
        "jws": JWS,
        "kid": KID,
        "result_sha256": RESULT_HASH,
    }
    values.update(changes)
    return TransactionLeaf(**values)  # type: ignore[arg-type]


def leaf_json(**changes: object) -> dict[str, object]:
    value: dict[str, object] = json.loads(encode_leaf(make_leaf()))
    value.update(changes)
    return value


def refusal(data: bytes) -> LeafFormatError:
    with pytest.raises(LeafFormatError) as caught:
        parse_leaf(data)
    return caught.value


# --- encoding ------------------------------------------------------------------------------------


def test_known_answer_bytes() -> None:
    expected = (
        '{"accepted_at":"2026-03-21T08:30:00.120000Z",'
        f'"envelope_sha256":"{ENVELOPE_HASH.hex()}",'
        f'"jws":"{JWS}","kid":"{KID}",'
        f'"result_sha256":"{RESULT_HASH.hex()}",'
        f'"tx_id":"{TX_ID}","type":"bill.pay","v":1}}'
    ).encode()
    assert encode_leaf(make_leaf()) == expected


def test_round_trip() -> None:
    leaf = make_leaf()
    assert parse_leaf(encode_leaf(leaf)) == leaf


def test_encoding_is_canonical_json_of_exactly_the_members() -> None:
    data = encode_leaf(make_leaf())
    value = json.loads(data)
    assert tuple(sorted(value)) == tuple(sorted(MEMBERS))
    assert canonicalize(value) == data


def test_accepted_at_in_another_zone_is_encoded_in_utc() -> None:
    tehran = timezone(timedelta(hours=3, minutes=30))
    leaf = make_leaf(accepted_at=ACCEPTED_AT.astimezone(tehran))
    assert encode_leaf(leaf) == encode_leaf(make_leaf())


def test_sha256_of_json_hashes_the_canonical_form() -> None:
    value: dict[str, JsonValue] = {"b": 1, "a": [True, None, "x"]}
    assert sha256_of_json(value) == hashlib.sha256(b'{"a":[true,null,"x"],"b":1}').digest()


# --- timestamps ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000000Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC), "2026-01-02T03:04:05.000007Z"),
        (datetime(999, 1, 1, tzinfo=UTC), "0999-01-01T00:00:00.000000Z"),
    ],
)
def test_format_timestamp_always_has_six_fraction_digits(at: datetime, text: str) -> None:
    assert format_timestamp(at) == text
    assert parse_timestamp(text) == at


def test_format_timestamp_refuses_naive() -> None:
    with pytest.raises(NaiveDatetimeError):
        format_timestamp(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("2026-01-02T03:04:05Z", "invalid_format"),  # no fraction
        ("2026-01-02T03:04:05.123Z", "invalid_format"),  # three digits
        ("2026-01-02T03:04:05.1234567Z", "invalid_format"),  # seven digits
        ("2026-01-02T03:04:05.000000+00:00", "invalid_format"),
        ("2026-01-02T03:04:05.000000z", "invalid_format"),
        ("2026-01-02 03:04:05.000000Z", "invalid_format"),
        ("۲۰۲۶-01-02T03:04:05.000000Z", "invalid_format"),  # Persian digits
        ("2026-02-30T03:04:05.000000Z", "invalid_timestamp"),
        ("2026-01-02T24:00:00.000000Z", "invalid_timestamp"),
        ("2026-01-02T23:59:60.000000Z", "invalid_timestamp"),
    ],
)
def test_parse_timestamp_refusals(text: str, rule: str) -> None:
    with pytest.raises(LeafFormatError) as caught:
        parse_timestamp(text)
    assert (caught.value.member, caught.value.rule) == ("accepted_at", rule)


def test_parse_timestamp_names_the_member_it_is_given() -> None:
    with pytest.raises(LeafFormatError) as caught:
        parse_timestamp("soon", member="not_after")
    assert caught.value.member == "not_after"


# --- construction refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "value", "rule"),
    [
        ("tx_id", TX_ID.upper(), "invalid_format"),
        ("tx_id", TX_ID.replace("-", ""), "invalid_format"),
        ("tx_id", 7, "wrong_type"),
        ("type", "Bill.Pay", "invalid_format"),
        ("type", "bill", "invalid_format"),
        ("accepted_at", datetime(2026, 1, 1), "not_aware"),
        ("accepted_at", "2026-01-01T00:00:00.000000Z", "wrong_type"),
        ("envelope_sha256", ENVELOPE_HASH[:31], "invalid_format"),
        ("envelope_sha256", ENVELOPE_HASH.hex(), "wrong_type"),
        ("result_sha256", RESULT_HASH + b"\x00", "invalid_format"),
        ("jws", "a.b.c", "invalid_format"),
        ("jws", "eyJ..sig with space", "invalid_format"),
        ("jws", "e" * 20_000 + "..s", "invalid_format"),
        ("kid", KID[:-1], "invalid_format"),
        ("kid", KID + "A", "invalid_format"),
        ("kid", KID.replace("K", "+", 1), "invalid_format"),
    ],
)
def test_construction_refusals(member: str, value: object, rule: str) -> None:
    with pytest.raises(LeafFormatError) as caught:
        make_leaf(**{member: value})
    assert (caught.value.member, caught.value.rule) == (member, rule)


# --- parsing refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("member", MEMBERS)
def test_missing_member_is_refused(member: str) -> None:
    value = leaf_json()
    del value[member]
    error = refusal(canonicalize(value))  # type: ignore[arg-type]
    assert (error.member, error.rule) == (member, "required")


@pytest.mark.parametrize(
    ("changes", "member", "rule"),
    [
        ({"extra": 1}, "extra", "unknown_member"),
        ({"v": 2}, "v", "unsupported_version"),
        ({"v": "1"}, "v", "wrong_type"),
        ({"v": True}, "v", "wrong_type"),
        ({"tx_id": TX_ID.upper()}, "tx_id", "invalid_format"),
        ({"type": None}, "type", "wrong_type"),
        ({"accepted_at": "2026-03-21T08:30:00.12Z"}, "accepted_at", "invalid_format"),
        ({"accepted_at": 1774081800}, "accepted_at", "wrong_type"),
        ({"envelope_sha256": ENVELOPE_HASH.hex().upper()}, "envelope_sha256", "invalid_format"),
        ({"result_sha256": RESULT_HASH.hex()[:-2]}, "result_sha256", "invalid_format"),
        ({"jws": JWS.replace("..", ".x.")}, "jws", "invalid_format"),
        ({"kid": 5}, "kid", "wrong_type"),
    ],
)
def test_member_refusals(changes: dict[str, object], member: str, rule: str) -> None:
    error = refusal(canonicalize(leaf_json(**changes)))  # type: ignore[arg-type]
    assert (error.member, error.rule) == (member, rule)


def test_whitespace_is_non_canonical() -> None:
    data = json.dumps(json.loads(encode_leaf(make_leaf())), sort_keys=True).encode()
    error = refusal(data)
    assert (error.member, error.rule) == ("", "non_canonical")


def test_member_order_is_non_canonical() -> None:
    value = json.loads(encode_leaf(make_leaf()))
    data = json.dumps(dict(reversed(value.items())), separators=(",", ":")).encode()
    assert refusal(data).rule == "non_canonical"


def test_escaped_character_is_non_canonical() -> None:
    data = encode_leaf(make_leaf()).replace(b'"bill.pay"', b'"bill\\u002epay"')
    assert parse_leaf(data.replace(b"\\u002e", b".")) == make_leaf()
    assert refusal(data).rule == "non_canonical"


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"not json", "invalid_json"),
        (b'{"v":1.0}', "invalid_json"),
        (b'{"v":1,"v":1}', "invalid_json"),
        (b"[1]", "wrong_type"),
        (b"\xff", "invalid_json"),
        (b" " * (MAX_LEAF_JSON_BYTES + 1), "too_large"),
    ],
)
def test_not_a_leaf_object(data: bytes, rule: str) -> None:
    assert refusal(data).rule == rule
