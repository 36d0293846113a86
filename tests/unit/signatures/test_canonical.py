"""signatures.canonical: every refusal of the canonical profile, with its pointer and rule."""

from __future__ import annotations

import enum

import pytest

from signatures.canonical import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_REPORTED_ERRORS,
    MAX_SAFE_INTEGER,
    JsonValue,
    canonicalize,
    join_pointer,
    parse_json,
)
from signatures.errors import CanonicalFormError, SignaturesError

# --- parse_json: untrusted bytes ------------------------------------------------------------------

REFUSED_BYTES = [
    pytest.param(b'{"a":1,"a":2}', "/a", "duplicate_key", id="duplicate_key"),
    pytest.param(
        b'{"p":{"x":{"k":1,"k":1}}}', "/p/x/k", "duplicate_key", id="nested_duplicate_key"
    ),
    pytest.param(
        b'{"payload":{"amount_minor":1500.5}}',
        "/payload/amount_minor",
        "float_not_allowed",
        id="float_amount",
    ),
    pytest.param(b'{"n":1.0}', "/n", "float_not_allowed", id="integral_float"),
    pytest.param(b'{"n":1e3}', "/n", "float_not_allowed", id="exponent_integer"),
    pytest.param(b'{"n":1E+3}', "/n", "float_not_allowed", id="capital_exponent_integer"),
    pytest.param(b'{"n":-0.0}', "/n", "float_not_allowed", id="negative_zero_float"),
    pytest.param(b'{"n":NaN}', "/n", "float_not_allowed", id="nan"),
    pytest.param(b'{"n":Infinity}', "/n", "float_not_allowed", id="infinity"),
    pytest.param(b'{"n":-Infinity}', "/n", "float_not_allowed", id="negative_infinity"),
    pytest.param(b'{"n":9007199254740992}', "/n", "integer_out_of_range", id="integer_2_pow_53"),
    pytest.param(
        b'{"n":-9007199254740992}', "/n", "integer_out_of_range", id="integer_minus_2_pow_53"
    ),
    pytest.param(
        b'{"n":00000000000000001}', "", "invalid_json", id="leading_zeros"
    ),  # not JSON at all
    pytest.param(
        b'{"n":[' + b"9" * 5000 + b"]}", "/n/0", "integer_out_of_range", id="integer_5000_digits"
    ),
    pytest.param(b'{"s":"\\ud800"}', "/s", "lone_surrogate", id="lone_surrogate"),
    pytest.param(b'{"s":"\\udc00x"}', "/s", "lone_surrogate", id="lone_low_surrogate"),
    pytest.param(b'{"s":"\\ude00\\ud83d"}', "/s", "lone_surrogate", id="surrogate_pair_reversed"),
    pytest.param(b'{"\\ud800":1}', "/\ufffd", "lone_surrogate", id="lone_surrogate_in_key"),
    pytest.param(b'{"s":"\xff"}', "", "invalid_utf8", id="invalid_utf8"),
    pytest.param(b'{"s":"\xed\xa0\x80"}', "", "invalid_utf8", id="utf8_encoded_surrogate"),
    pytest.param(b'{"s":"\xc0\xaf"}', "", "invalid_utf8", id="overlong_utf8"),
    pytest.param(b"\xef\xbb\xbf{}", "", "invalid_utf8", id="bom"),
    pytest.param(b'{"a":1,}', "", "invalid_json", id="trailing_comma"),
    pytest.param(b"{'a':1}", "", "invalid_json", id="single_quotes"),
    pytest.param(b'{"a":1} {}', "", "invalid_json", id="two_documents"),
    pytest.param(b"", "", "invalid_json", id="empty"),
    pytest.param(b'{"s":"a\nb"}', "", "invalid_json", id="raw_control_character"),
    pytest.param(
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        "/0" * MAX_JSON_DEPTH,
        "too_deep",
        id="too_deep",
    ),
    pytest.param(
        b'{"a/b":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1),
        "/a~1b" * MAX_JSON_DEPTH,
        "too_deep",
        id="too_deep_objects",
    ),
    pytest.param(
        b'{"x":[0,{"a":"[","b":'
        + b"[" * (MAX_JSON_DEPTH - 2)
        + b"]" * (MAX_JSON_DEPTH - 2)
        + b"}]}",
        "/x/1/b" + "/0" * (MAX_JSON_DEPTH - 3),
        "too_deep",
        id="too_deep_past_a_bracket_in_a_string",
    ),
    pytest.param(b"[" * 100_000, "", "too_large", id="too_large"),
    pytest.param(b"[" * 50_000, "/0" * MAX_JSON_DEPTH, "too_deep", id="too_deep_50000"),
]


@pytest.mark.parametrize(("data", "pointer", "rule"), REFUSED_BYTES)
def test_parse_json_refuses(data: bytes, pointer: str, rule: str) -> None:
    with pytest.raises(CanonicalFormError) as caught:
        parse_json(data)
    assert (caught.value.pointer, caught.value.rule) == (pointer, rule)
    assert caught.value.errors[0].pointer == pointer
    assert isinstance(caught.value, SignaturesError)


def test_parse_json_accepts_the_limits() -> None:
    deepest = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json(deepest) is not None
    largest = b'"' + b"a" * (MAX_JSON_BYTES - 2) + b'"'
    assert parse_json(largest) == "a" * (MAX_JSON_BYTES - 2)
    assert parse_json(b"[9007199254740991,-9007199254740991]") == [
        MAX_SAFE_INTEGER,
        -MAX_SAFE_INTEGER,
    ]
    assert parse_json(b'"\\ud83d\\ude00"') == "\U0001f600"  # a pair is not a lone surrogate


def test_parse_json_one_byte_over_the_limit_is_too_large() -> None:
    with pytest.raises(CanonicalFormError) as caught:
        parse_json(b'"' + b"a" * (MAX_JSON_BYTES - 1) + b'"')
    assert caught.value.rule == "too_large"


def test_parse_json_reports_every_problem_in_document_order() -> None:
    data = b'{"a":1.5,"b":{"c":"\\ud800","c":2},"d":[1,9007199254740993]}'
    with pytest.raises(CanonicalFormError) as caught:
        parse_json(data)
    found = [(error.pointer, error.rule) for error in caught.value.errors]
    assert found == [
        ("/a", "float_not_allowed"),
        ("/b/c", "duplicate_key"),
        ("/d/1", "integer_out_of_range"),
    ]


def test_the_number_of_reported_problems_is_bounded() -> None:
    data = b"[" + b",".join([b"1.5"] * (MAX_REPORTED_ERRORS * 3)) + b"]"
    with pytest.raises(CanonicalFormError) as caught:
        parse_json(data)
    assert len(caught.value.errors) == MAX_REPORTED_ERRORS


def test_messages_never_repeat_the_refused_value() -> None:
    with pytest.raises(CanonicalFormError) as caught:
        parse_json(b'{"national_id":4993708.99}')
    assert "4993708" not in str(caught.value)
    assert all("4993708" not in error.message for error in caught.value.errors)


def test_negative_zero_integer_is_zero() -> None:
    assert parse_json(b"-0") == 0
    assert canonicalize(parse_json(b"-0")) == b"0"


def test_parse_json_returns_plain_values() -> None:
    value = parse_json(b' { "b" : [ true , null , "x" ] , "a" : { } } ')
    assert value == {"b": [True, None, "x"], "a": {}}


# --- canonicalize: values built in Python ---------------------------------------------------------


class _Colour(enum.IntEnum):
    RED = 1


class _Kind(str, enum.Enum):  # noqa: UP042 (the case str() gets wrong)
    TAX = "tax"


def _nest(depth: int) -> JsonValue:
    value: JsonValue = []
    for _ in range(depth - 1):
        value = [value]
    return value


REFUSED_VALUES = [
    pytest.param({"amount_minor": 1500.0}, "/amount_minor", "float_not_allowed", id="float_amount"),
    pytest.param([float("nan")], "/0", "float_not_allowed", id="nan"),
    pytest.param([float("inf")], "/0", "float_not_allowed", id="infinity"),
    pytest.param({"n": 2**53}, "/n", "integer_out_of_range", id="integer_2_pow_53"),
    pytest.param({"n": -(2**53)}, "/n", "integer_out_of_range", id="integer_minus_2_pow_53"),
    pytest.param({"n": 10**400}, "/n", "integer_out_of_range", id="integer_10_pow_400"),
    pytest.param({"s": "a\ud800"}, "/s", "lone_surrogate", id="lone_surrogate"),
    pytest.param({"a\udfff": 1}, "/a\ufffd", "lone_surrogate", id="lone_surrogate_in_key"),
    pytest.param({1: "x"}, "", "unsupported_type", id="integer_key"),
    pytest.param({"t": (1, 2)}, "/t", "unsupported_type", id="tuple"),
    pytest.param({"b": b"x"}, "/b", "unsupported_type", id="bytes"),
    pytest.param({"s": {"x"}}, "/s", "unsupported_type", id="set"),
    pytest.param(_nest(MAX_JSON_DEPTH + 1), "/0" * MAX_JSON_DEPTH, "too_deep", id="too_deep"),
    pytest.param("a" * MAX_JSON_BYTES, "", "too_large", id="too_large"),
]


@pytest.mark.parametrize(("value", "pointer", "rule"), REFUSED_VALUES)
def test_canonicalize_refuses(value: object, pointer: str, rule: str) -> None:
    with pytest.raises(CanonicalFormError) as caught:
        canonicalize(value)  # type: ignore[arg-type]
    assert (caught.value.pointer, caught.value.rule) == (pointer, rule)


def test_canonicalize_refuses_a_cycle_as_too_deep() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(CanonicalFormError) as caught:
        canonicalize(cycle)  # type: ignore[arg-type]
    assert caught.value.rule == "too_deep"


def test_canonicalize_accepts_the_limits() -> None:
    assert canonicalize(_nest(MAX_JSON_DEPTH)) == b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert canonicalize([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]) == (
        b"[9007199254740991,-9007199254740991]"
    )
    assert len(canonicalize("a" * (MAX_JSON_BYTES - 2))) == MAX_JSON_BYTES


def test_canonicalize_serialises_enum_members_as_their_values() -> None:
    value = {"colour": _Colour.RED, "kind": _Kind.TAX}
    assert canonicalize(value) == b'{"colour":1,"kind":"tax"}'  # type: ignore[arg-type]


def test_canonicalize_sorts_escapes_and_keeps_utf8() -> None:
    value: JsonValue = {"b": '\u20ac\n\u000f"\\/', "a": [True, False, None, 0, -1], "": {}}
    assert canonicalize(value) == (
        b'{"":{},"a":[true,false,null,0,-1],"b":"\xe2\x82\xac\\n\\u000f\\"\\\\/"}'
    )


# --- pointers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("a", "/a"),
        ("a/b", "/a~1b"),
        ("m~n", "/m~0n"),
        ("~1", "/~01"),
        ("", "/"),
        (3, "/3"),
        ("\ud800", "/\ufffd"),
    ],
)
def test_join_pointer_escapes_per_rfc_6901(token: str | int, expected: str) -> None:
    assert join_pointer("", token) == expected
    assert join_pointer("/payload", token) == "/payload" + expected
