"""signatures.envelope: the envelope members, subjects and money; every refusal by name.

Subject vectors (values transcribed, checked by hand in the comments):

* ir-nid valid: 0499370899 (the project's example; sum 266, r 2, check 9); 0932833810 (the worked
  example of computerteacher.ir/blog/national-identification-number: sum 220, r 0, check 0);
  0076229645 and 1583250689 (persian-tools/rust-persian-tools, src/national_id docs);
  4993708051 (computed here: sum 298, r 1, check 1).
* ir-lid: 10380284790 valid; 10380284792, 10380285692, 09748208301 and 11111111111 invalid
  (persian-tools/persian-tools test/verifyIranianLegalId.spec.ts and
  persian-tools/rust-persian-tools src/legal_id/mod.rs); 10380284700 valid (computed here:
  k 2, sum 1209, r 10, so check 0).
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from signatures.canonical import JsonValue, parse_json
from signatures.envelope import (
    ISO_4217_CURRENCIES,
    MAX_NONCE_BYTES,
    MAX_TYPE_CHARS,
    MIN_NONCE_BYTES,
    Envelope,
    Money,
    Subject,
    SubjectKind,
    is_valid_subject,
    parse_envelope,
    parse_envelope_json,
    parse_money,
    parse_subject,
)
from signatures.errors import EnvelopeError, SignaturesError, SubjectError

DOC = Path(__file__).resolve().parents[3] / "docs" / "ENVELOPE.md"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


NONCE = _b64url(bytes(range(MIN_NONCE_BYTES)))


def _envelope(**changes: object) -> dict[str, JsonValue]:
    """A valid envelope with members replaced (by non-JSON values too, on purpose)."""
    value: dict[str, JsonValue] = {
        "type": "bill.pay",
        "version": 1,
        "signer": "ir-nid:0499370899",
        "nonce": NONCE,
        "created_at": "2025-03-21T08:30:00Z",
        "payload": {"amount": {"amount_minor": 1_250_000, "currency": "IRR"}},
    }
    value.update(cast(dict[str, JsonValue], changes))
    return value


def _without(name: str) -> dict[str, JsonValue]:
    value = _envelope()
    del value[name]
    return value


def _errors(value: JsonValue) -> list[tuple[str, str]]:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(value)
    assert isinstance(caught.value, SignaturesError)
    return [(error.pointer, error.rule) for error in caught.value.errors]


# --- accepted -------------------------------------------------------------------------------------


def test_a_valid_envelope_parses_with_its_canonical_bytes() -> None:
    envelope = parse_envelope(_envelope(on_behalf_of="ir-lid:10380284790"))
    assert isinstance(envelope, Envelope)
    assert envelope.type == "bill.pay"
    assert envelope.version == 1
    assert envelope.signer == Subject(SubjectKind.NATURAL_PERSON, "0499370899")
    assert envelope.on_behalf_of == Subject(SubjectKind.LEGAL_ENTITY, "10380284790")
    assert envelope.nonce == NONCE
    assert envelope.nonce_bytes == bytes(range(MIN_NONCE_BYTES))
    assert envelope.created_at == datetime(2025, 3, 21, 8, 30, tzinfo=UTC)
    assert envelope.payload == {"amount": {"amount_minor": 1_250_000, "currency": "IRR"}}
    assert envelope.canonical.startswith(b'{"created_at":"2025-03-21T08:30:00Z","nonce":')
    assert envelope.sha256 == hashlib.sha256(envelope.canonical).digest()
    assert parse_envelope(parse_json(envelope.canonical)) == envelope


def test_on_behalf_of_is_optional() -> None:
    assert parse_envelope(_envelope()).on_behalf_of is None


def test_member_order_and_whitespace_do_not_change_the_canonical_bytes() -> None:
    value = _envelope()
    reordered = dict(reversed(list(value.items())))
    assert parse_envelope(reordered).canonical == parse_envelope(value).canonical


def test_the_payload_is_a_plain_copy_of_what_is_signed() -> None:
    payload: dict[str, JsonValue] = {"items": [1, 2]}
    envelope = parse_envelope(_envelope(payload=payload))
    assert isinstance(payload["items"], list)
    payload["items"].append(3)
    assert envelope.payload == {"items": [1, 2]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-21T08:30:00Z", datetime(2025, 3, 21, 8, 30, tzinfo=UTC)),
        ("2025-03-21T08:30:00.5Z", datetime(2025, 3, 21, 8, 30, 0, 500_000, tzinfo=UTC)),
        ("2025-03-21T08:30:00.123456Z", datetime(2025, 3, 21, 8, 30, 0, 123_456, tzinfo=UTC)),
        ("2025-03-21T08:30:00.123456789Z", datetime(2025, 3, 21, 8, 30, 0, 123_456, tzinfo=UTC)),
        ("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
    ],
    ids=["seconds", "tenths", "microseconds", "nanoseconds_truncated", "leap_day"],
)
def test_created_at_forms(text: str, expected: datetime) -> None:
    assert parse_envelope(_envelope(created_at=text)).created_at == expected


def test_nonce_limits_are_inclusive() -> None:
    for size in (MIN_NONCE_BYTES, MIN_NONCE_BYTES + 1, MIN_NONCE_BYTES + 2, MAX_NONCE_BYTES):
        nonce = _b64url(bytes(size))
        assert parse_envelope(_envelope(nonce=nonce)).nonce_bytes == bytes(size)


def test_type_of_the_maximum_length_is_accepted() -> None:
    name = "a." + "b" * (MAX_TYPE_CHARS - 2)
    assert parse_envelope(_envelope(type=name)).type == name


# --- refused: one named mutation each -------------------------------------------------------------

REFUSALS = [
    pytest.param(_envelope(signature="x"), "/signature", "unknown_member", id="unknown_member"),
    pytest.param(_envelope(kid="abc"), "/kid", "unknown_member", id="unknown_member_kid"),
    pytest.param(_without("type"), "/type", "required", id="missing_type"),
    pytest.param(_without("version"), "/version", "required", id="missing_version"),
    pytest.param(_without("signer"), "/signer", "required", id="missing_signer"),
    pytest.param(_without("nonce"), "/nonce", "required", id="missing_nonce"),
    pytest.param(_without("created_at"), "/created_at", "required", id="missing_created_at"),
    pytest.param(_without("payload"), "/payload", "required", id="missing_payload"),
    pytest.param(_envelope(nonce=None), "/nonce", "wrong_type", id="null_nonce"),
    pytest.param(
        _envelope(on_behalf_of=None), "/on_behalf_of", "wrong_type", id="null_on_behalf_of"
    ),
    # type
    pytest.param(_envelope(type="Bill.pay"), "/type", "invalid_format", id="type_uppercase"),
    pytest.param(_envelope(type="bill"), "/type", "invalid_format", id="type_one_segment"),
    pytest.param(_envelope(type="bill.pay."), "/type", "invalid_format", id="type_trailing_dot"),
    pytest.param(_envelope(type="bill.1pay"), "/type", "invalid_format", id="type_segment_digit"),
    pytest.param(_envelope(type="bill.pay\n"), "/type", "invalid_format", id="type_newline"),
    pytest.param(_envelope(type="a." + "b" * 63), "/type", "too_long", id="type_65_chars"),
    pytest.param(_envelope(type=7), "/type", "wrong_type", id="type_number"),
    # version
    pytest.param(_envelope(version=0), "/version", "out_of_range", id="version_zero"),
    pytest.param(_envelope(version=-1), "/version", "out_of_range", id="version_negative"),
    pytest.param(_envelope(version=True), "/version", "wrong_type", id="version_true"),
    pytest.param(_envelope(version="1"), "/version", "wrong_type", id="version_string"),
    pytest.param(_envelope(version=1.0), "/version", "float_not_allowed", id="version_float"),
    # signer and on_behalf_of
    pytest.param(
        _envelope(signer="ir-nid:0499370898"),
        "/signer",
        "invalid_check_digit",
        id="national_id_bad_check_digit",
    ),
    pytest.param(
        _envelope(signer="ir-nid:1111111111"),
        "/signer",
        "invalid_identifier",
        id="national_id_repeated_digit",
    ),
    pytest.param(
        _envelope(signer="ir-nid:۰۴۹۹۳۷۰۸۹۹"),
        "/signer",
        "invalid_subject",
        id="national_id_persian_digits",
    ),
    pytest.param(
        _envelope(signer="ir-nid:499370899"),
        "/signer",
        "invalid_subject",
        id="national_id_9_digits",
    ),
    pytest.param(
        _envelope(signer="ir-nid:0499370899\n"),
        "/signer",
        "invalid_subject",
        id="national_id_trailing_newline",
    ),
    pytest.param(
        _envelope(signer="0499370899"), "/signer", "invalid_subject", id="subject_no_kind"
    ),
    pytest.param(
        _envelope(signer="IR-NID:0499370899"), "/signer", "invalid_subject", id="kind_uppercase"
    ),
    pytest.param(
        _envelope(on_behalf_of="ir-lid:10380284792"),
        "/on_behalf_of",
        "invalid_check_digit",
        id="legal_id_bad_check_digit",
    ),
    pytest.param(
        _envelope(on_behalf_of="ir-lid:10300000000"),
        "/on_behalf_of",
        "invalid_identifier",
        id="legal_id_zero_serial",
    ),
    pytest.param(
        _envelope(on_behalf_of="ir-nid:0499370899"),
        "/on_behalf_of",
        "same_as_signer",
        id="on_behalf_of_same_as_signer",
    ),
    pytest.param(_envelope(signer=42), "/signer", "wrong_type", id="signer_number"),
    # nonce
    pytest.param(
        _envelope(nonce=_b64url(bytes(MIN_NONCE_BYTES - 1))),
        "/nonce",
        "too_short",
        id="short_nonce",
    ),
    pytest.param(
        _envelope(nonce=_b64url(bytes(MAX_NONCE_BYTES + 1))), "/nonce", "too_long", id="long_nonce"
    ),
    pytest.param(_envelope(nonce=NONCE + "=="), "/nonce", "invalid_format", id="padded_nonce"),
    pytest.param(
        _envelope(nonce="+/" + NONCE[2:]), "/nonce", "invalid_format", id="standard_base64_nonce"
    ),
    pytest.param(
        _envelope(nonce=NONCE[:-1] + "x"), "/nonce", "invalid_format", id="non_canonical_nonce_bits"
    ),
    pytest.param(
        _envelope(nonce=NONCE + "AAA"), "/nonce", "invalid_format", id="nonce_length_4k_1"
    ),
    pytest.param(_envelope(nonce=12345), "/nonce", "wrong_type", id="nonce_number"),
    # created_at
    pytest.param(
        _envelope(created_at="2025-03-21T12:00:00+03:30"),
        "/created_at",
        "timezone_not_utc",
        id="bad_created_at_timezone",
    ),
    pytest.param(
        _envelope(created_at="2025-03-21T08:30:00+00:00"),
        "/created_at",
        "timezone_not_utc",
        id="created_at_offset_zero",
    ),
    pytest.param(
        _envelope(created_at="2025-03-21T08:30:00"),
        "/created_at",
        "timezone_not_utc",
        id="created_at_no_timezone",
    ),
    pytest.param(
        _envelope(created_at="2025-03-21t08:30:00z"),
        "/created_at",
        "invalid_format",
        id="created_at_lowercase",
    ),
    pytest.param(
        _envelope(created_at="2025-03-21"),
        "/created_at",
        "invalid_format",
        id="created_at_date_only",
    ),
    pytest.param(
        _envelope(created_at="1742545800"), "/created_at", "invalid_format", id="created_at_epoch"
    ),
    pytest.param(
        _envelope(created_at="2025-02-30T08:30:00Z"),
        "/created_at",
        "invalid_timestamp",
        id="created_at_30_february",
    ),
    pytest.param(
        _envelope(created_at="2016-12-31T23:59:60Z"),
        "/created_at",
        "invalid_timestamp",
        id="created_at_leap_second",
    ),
    pytest.param(
        _envelope(created_at="2025-03-21T08:30:00.1234567890Z"),
        "/created_at",
        "too_long",
        id="created_at_10_fraction_digits",
    ),
    pytest.param(
        _envelope(created_at=1742545800), "/created_at", "wrong_type", id="created_at_int"
    ),
    # payload and the canonical profile inside it
    pytest.param(_envelope(payload=[]), "/payload", "wrong_type", id="payload_array"),
    pytest.param(
        _envelope(payload={"amount": {"amount_minor": 12.5, "currency": "IRR"}}),
        "/payload/amount/amount_minor",
        "float_not_allowed",
        id="float_amount",
    ),
    pytest.param(
        _envelope(payload={"s": "\ud800"}), "/payload/s", "lone_surrogate", id="lone_surrogate"
    ),
    pytest.param(["not", "an", "object"], "", "wrong_type", id="envelope_array"),
]


@pytest.mark.parametrize(("value", "pointer", "rule"), REFUSALS)
def test_parse_envelope_refuses(value: JsonValue, pointer: str, rule: str) -> None:
    assert _errors(value) == [(pointer, rule)]


def test_every_refused_field_is_reported_at_once() -> None:
    value = _envelope(version=0, nonce="shrt", created_at="yesterday", extra=1)
    del value["type"]
    assert sorted(_errors(value)) == [
        ("/created_at", "invalid_format"),
        ("/extra", "unknown_member"),
        ("/nonce", "too_short"),
        ("/type", "required"),
        ("/version", "out_of_range"),
    ]


def test_a_value_refused_by_the_profile_is_not_judged_twice() -> None:
    assert _errors(_envelope(version=2.0, signer="ir-nid:\udc00")) == [
        ("/version", "float_not_allowed"),
        ("/signer", "lone_surrogate"),
    ]


def test_parse_envelope_json_reports_profile_errors_as_envelope_errors() -> None:
    data = b'{"nonce":"a","nonce":"b","version":1e0}'
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope_json(data)
    assert [(e.pointer, e.rule) for e in caught.value.errors] == [
        ("/nonce", "duplicate_key"),
        ("/version", "float_not_allowed"),
    ]


def test_duplicate_keys_are_compared_after_unescaping() -> None:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope_json(b'{"type":"a.b","\\u0074ype":"c.d"}')
    assert (caught.value.errors[0].pointer, caught.value.errors[0].rule) == (
        "/type",
        "duplicate_key",
    )


# --- subjects -------------------------------------------------------------------------------------

VALID_SUBJECTS = [
    ("ir-nid:0499370899", SubjectKind.NATURAL_PERSON, "0499370899"),
    ("ir-nid:0932833810", SubjectKind.NATURAL_PERSON, "0932833810"),
    ("ir-nid:0076229645", SubjectKind.NATURAL_PERSON, "0076229645"),
    ("ir-nid:1583250689", SubjectKind.NATURAL_PERSON, "1583250689"),
    ("ir-nid:4993708051", SubjectKind.NATURAL_PERSON, "4993708051"),
    ("ir-lid:10380284790", SubjectKind.LEGAL_ENTITY, "10380284790"),
    ("ir-lid:10380284700", SubjectKind.LEGAL_ENTITY, "10380284700"),
    ("agency:tax-org", SubjectKind.AGENCY, "tax-org"),
    ("agency:a1", SubjectKind.AGENCY, "a1"),
    ("agency:" + "a" * 63, SubjectKind.AGENCY, "a" * 63),
]


@pytest.mark.parametrize(("text", "kind", "identifier"), VALID_SUBJECTS)
def test_valid_subjects(text: str, kind: SubjectKind, identifier: str) -> None:
    subject = parse_subject(text)
    assert (subject.kind, subject.identifier) == (kind, identifier)
    assert str(subject) == text
    assert is_valid_subject(text)


INVALID_SUBJECTS = [
    pytest.param("ir-nid:0499370898", "invalid_check_digit", id="national_id_bad_check_digit"),
    pytest.param("ir-nid:0499370989", "invalid_check_digit", id="national_id_swapped_digits"),
    pytest.param("ir-nid:0932833811", "invalid_check_digit", id="national_id_r0_check_1"),
    pytest.param("ir-nid:0000000000", "invalid_identifier", id="national_id_all_zero"),
    pytest.param("ir-nid:1111111111", "invalid_identifier", id="national_id_all_one"),
    pytest.param("ir-nid:9999999999", "invalid_identifier", id="national_id_all_nine"),
    pytest.param("ir-nid:04993708999", "invalid_subject", id="national_id_11_digits"),
    pytest.param("ir-nid:049937089a", "invalid_subject", id="national_id_letter"),
    pytest.param("ir-nid:", "invalid_subject", id="national_id_empty"),
    pytest.param("ir-lid:10380284792", "invalid_check_digit", id="legal_id_bad_check_digit"),
    pytest.param("ir-lid:10380285692", "invalid_check_digit", id="legal_id_changed_serial"),
    pytest.param("ir-lid:09748208301", "invalid_check_digit", id="legal_id_vector_09748208301"),
    pytest.param("ir-lid:11111111111", "invalid_check_digit", id="legal_id_all_one"),
    pytest.param("ir-lid:10380284701", "invalid_check_digit", id="legal_id_r10_check_1"),
    pytest.param("ir-lid:00000000000", "invalid_identifier", id="legal_id_all_zero"),
    pytest.param("ir-lid:1038028479", "invalid_subject", id="legal_id_10_digits"),
    pytest.param("agency:Tax", "invalid_subject", id="agency_uppercase"),
    pytest.param("agency:a", "invalid_subject", id="agency_one_char"),
    pytest.param("agency:-tax", "invalid_subject", id="agency_leading_hyphen"),
    pytest.param("agency:" + "a" * 64, "invalid_subject", id="agency_64_chars"),
    pytest.param("agency:tax org", "invalid_subject", id="agency_space"),
    pytest.param("person:0499370899", "invalid_subject", id="unknown_kind"),
    pytest.param("", "invalid_subject", id="empty"),
    pytest.param("ir-nid:" + "0" * 10_000, "invalid_subject", id="huge"),
]


@pytest.mark.parametrize(("text", "rule"), INVALID_SUBJECTS)
def test_invalid_subjects(text: str, rule: str) -> None:
    with pytest.raises(SubjectError) as caught:
        parse_subject(text)
    assert caught.value.rule == rule
    identifier = text.partition(":")[2]
    if len(identifier) >= 4:  # messages never repeat a (possibly personal) identifier
        assert identifier not in str(caught.value)
    assert not is_valid_subject(text)


# --- money ----------------------------------------------------------------------------------------


def test_parse_money() -> None:
    value: JsonValue = {"amount_minor": 1_250_000, "currency": "IRR"}
    assert parse_money(value, pointer="/payload/amount") == Money(1_250_000, "IRR")
    assert parse_money({"amount_minor": 0, "currency": "EUR"}, pointer="/m") == Money(0, "EUR")
    top = 2**53 - 1
    assert parse_money({"amount_minor": top, "currency": "USD"}, pointer="/m").amount_minor == top


def test_the_currency_list_holds_the_codes_we_need() -> None:
    assert {"IRR", "EUR", "USD", "GBP", "AED", "TRY"} <= ISO_4217_CURRENCIES
    assert all(re.fullmatch("[A-Z]{3}", code) for code in ISO_4217_CURRENCIES)
    assert not {"XXX", "XTS", "XAU", "XDR", "HRK"} & ISO_4217_CURRENCIES


MONEY_REFUSALS = [
    pytest.param(
        {"amount_minor": 12.5, "currency": "IRR"},
        "/p/a/amount_minor",
        "float_not_allowed",
        id="float_amount",
    ),
    pytest.param(
        {"amount_minor": -1, "currency": "IRR"},
        "/p/a/amount_minor",
        "out_of_range",
        id="negative_amount",
    ),
    pytest.param(
        {"amount_minor": 2**53, "currency": "IRR"},
        "/p/a/amount_minor",
        "integer_out_of_range",
        id="amount_2_pow_53",
    ),
    pytest.param(
        {"amount_minor": True, "currency": "IRR"},
        "/p/a/amount_minor",
        "wrong_type",
        id="boolean_amount",
    ),
    pytest.param(
        {"amount_minor": "100", "currency": "IRR"},
        "/p/a/amount_minor",
        "wrong_type",
        id="string_amount",
    ),
    pytest.param(
        {"amount_minor": 100, "currency": "irr"},
        "/p/a/currency",
        "invalid_format",
        id="lowercase_currency",
    ),
    pytest.param(
        {"amount_minor": 100, "currency": "XXX"},
        "/p/a/currency",
        "unknown_currency",
        id="unknown_currency",
    ),
    pytest.param(
        {"amount_minor": 100, "currency": 364},
        "/p/a/currency",
        "wrong_type",
        id="numeric_currency",
    ),
    pytest.param({"amount_minor": 100}, "/p/a/currency", "required", id="missing_currency"),
    pytest.param(
        {"amount_minor": None, "currency": "IRR"},
        "/p/a/amount_minor",
        "wrong_type",
        id="null_amount",
    ),
    pytest.param(
        {"amount_minor": 1, "currency": "IRR", "rate": 2},
        "/p/a/rate",
        "unknown_member",
        id="unknown_member",
    ),
    pytest.param([1, "IRR"], "/p/a", "wrong_type", id="money_array"),
]


@pytest.mark.parametrize(("value", "pointer", "rule"), MONEY_REFUSALS)
def test_parse_money_refuses(value: JsonValue, pointer: str, rule: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        parse_money(value, pointer="/p/a")
    assert [(e.pointer, e.rule) for e in caught.value.errors] == [(pointer, rule)]


# --- docs/ENVELOPE.md: the worked example is what the code computes -------------------------------


def _doc_block(marker: str) -> str:
    found = re.search(rf"<!-- {marker} -->\n```[a-z]*\n(.*?)\n```", DOC.read_text("utf-8"), re.S)
    assert found, f"docs/ENVELOPE.md has no block after <!-- {marker} -->"
    return found.group(1)


def test_the_worked_example_of_the_doc() -> None:
    envelope = parse_envelope_json(_doc_block("example:input").encode())
    assert envelope.canonical == _doc_block("example:canonical").encode()
    assert envelope.sha256.hex() == _doc_block("example:sha256")
    assert f"exact {len(envelope.canonical)} bytes" in DOC.read_text("utf-8")
    assert "d8 a7 d8 b8 d9 87 d8 a7 d8 b1 d9 86 d8 a7 d9 85 d9 87" in DOC.read_text("utf-8")
    assert "اظهارنامه".encode().hex(" ") == "d8 a7 d8 b8 d9 87 d8 a7 d8 b1 d9 86 d8 a7 d9 85 d9 87"
