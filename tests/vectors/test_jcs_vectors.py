"""Known-answer vectors for signatures.canonical (RFC 8785, JCS), and what our profile refuses.

Where each vector comes from (values transcribed; no code copied):

* RFC_3_2_2: RFC 8785 §3.2.2, the sample input and its canonical output
  (https://www.rfc-editor.org/rfc/rfc8785#section-3.2.2). It holds floats, so our profile refuses
  it; the float-free part must come out as in the RFC, and the whole of it is checked against the
  `rfc8785` package we build on.
* RFC_3_2_3: RFC 8785 §3.2.3, the property sorting example (UTF-16 code unit order: the emoji
  U+1F600, a surrogate pair D83D DE00, sorts before U+FB33).
* RFC_APPENDIX_B: RFC 8785 Appendix B, the number serialisation samples (IEEE 754 bit patterns
  and their JSON text). Only integers exist in our profile: 0 and −0 canonicalise to "0"; ±2**53
  and the ~2**68 sample are out of range; every other sample is a float and is refused. The whole
  table is checked against the `rfc8785` package (NaN and Infinity must fail there too).
* CYBERPHONE: cyberphone/json-canonicalization (the reference implementation of the RFC's
  author), testdata/input/*.json and testdata/output/*.json: weird, french, unicode, structures,
  values, and testdata/outhex/simpleString.txt.
"""

from __future__ import annotations

import struct

import pytest
import rfc8785

from signatures.canonical import canonicalize, parse_json
from signatures.errors import CanonicalFormError


def _refusals(data: bytes) -> list[tuple[str, str]]:
    with pytest.raises(CanonicalFormError) as caught:
        parse_json(data)
    return [(error.pointer, error.rule) for error in caught.value.errors]


# --- RFC_3_2_2 ------------------------------------------------------------------------------------

RFC_3_2_2_INPUT = rb"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC_3_2_2_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
).encode()


def test_rfc_3_2_2_floats_are_refused_each_at_its_pointer() -> None:
    assert _refusals(RFC_3_2_2_INPUT) == [
        (f"/numbers/{index}", "float_not_allowed") for index in range(5)
    ]


def test_rfc_3_2_2_without_the_numbers() -> None:
    data = RFC_3_2_2_INPUT.replace(
        b"[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]", b"[]"
    )
    expected = RFC_3_2_2_OUTPUT.replace(b"[333333333.3333333,1e+30,4.5,0.002,1e-27]", b"[]")
    assert canonicalize(parse_json(data)) == expected


def test_rfc_3_2_2_with_the_rfc8785_package() -> None:
    value: dict[str, list[float] | str | list[bool | None]] = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": '\u20ac$\u000f\nA\'B"\\\\"/',
        "literals": [None, True, False],
    }
    assert rfc8785.dumps(value) == RFC_3_2_2_OUTPUT


# --- RFC_3_2_3 ------------------------------------------------------------------------------------

RFC_3_2_3_INPUT = rb"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC_3_2_3_OUTPUT = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode()


def test_rfc_3_2_3_sorting_by_utf16_code_units() -> None:
    assert canonicalize(parse_json(RFC_3_2_3_INPUT)) == RFC_3_2_3_OUTPUT


def test_rfc_3_2_3_the_order_is_not_code_point_order() -> None:
    # By code point U+FB33 < U+1F600; by UTF-16 code unit 0xD83D < 0xFB33. JCS uses the latter.
    value = parse_json(RFC_3_2_3_OUTPUT)
    assert isinstance(value, dict)
    keys = list(value)
    assert keys.index("\U0001f600") < keys.index("\ufb33")
    assert sorted(keys) != keys


# --- RFC_APPENDIX_B -------------------------------------------------------------------------------

APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("7fffffffffffffff", "NaN"),
    ("7ff0000000000000", "Infinity"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]
APPENDIX_B_IDS = [f"{bits}={text}" for bits, text in APPENDIX_B]


def _double(bits: str) -> float:
    return float(struct.unpack(">d", bytes.fromhex(bits))[0])


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B, ids=APPENDIX_B_IDS)
def test_appendix_b_with_the_rfc8785_package(bits: str, text: str) -> None:
    value = _double(bits)
    if text in ("NaN", "Infinity"):
        with pytest.raises(rfc8785.CanonicalizationError):
            rfc8785.dumps(value)
    else:
        assert rfc8785.dumps(value) == text.encode()


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B, ids=APPENDIX_B_IDS)
def test_appendix_b_floats_are_refused(bits: str, text: str) -> None:
    with pytest.raises(CanonicalFormError) as caught:
        canonicalize([_double(bits)])  # type: ignore[list-item]
    assert (caught.value.pointer, caught.value.rule) == ("/0", "float_not_allowed")


INTEGER_SAMPLES = [
    pytest.param("0000000000000000", b"0", id="zero"),
    pytest.param("8000000000000000", b"0", id="minus_zero"),
    pytest.param("4340000000000000", None, id="2_pow_53"),
    pytest.param("c340000000000000", None, id="minus_2_pow_53"),
    pytest.param("4430000000000000", None, id="about_2_pow_68"),
    pytest.param("444b1ae4d6e2ef4e", None, id="999999999999999700000"),
    pytest.param("444b1ae4d6e2ef4f", None, id="999999999999999900000"),
]


@pytest.mark.parametrize(("bits", "expected"), INTEGER_SAMPLES)
def test_appendix_b_integer_samples_as_integers(bits: str, expected: bytes | None) -> None:
    value = int(_double(bits))
    if expected is not None:
        assert canonicalize(value) == expected
        return
    with pytest.raises(CanonicalFormError) as caught:
        canonicalize(value)
    assert caught.value.rule == "integer_out_of_range"


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B, ids=APPENDIX_B_IDS)
def test_appendix_b_texts_parsed(bits: str, text: str) -> None:
    data = text.encode()
    if text in ("0", "-0"):
        assert parse_json(data) == 0
    elif text.lstrip("-").isdigit():
        assert _refusals(data) == [("", "integer_out_of_range")]
    else:
        assert _refusals(data) == [("", "float_not_allowed")]


# --- CYBERPHONE -----------------------------------------------------------------------------------

CYBERPHONE = [
    pytest.param(
        rb"""{
  "\u20ac": "Euro Sign",
  "1": "One",
  "\u0080": "Control\u007f",
  "\ud83d\ude02": "Smiley",
  "\u00f6": "Latin Small Letter O With Diaeresis",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "</script>": "Browser Challenge"
}
""",
        (
            '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",'
            '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
            '"\U0001f602":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
        ).encode(),
        id="weird",
    ),
    pytest.param(
        """{
  "peach": "This sorting order",
  "péché": "is wrong according to French",
  "pêche": "but canonicalization MUST",
  "sin":   "ingnore locale"
}
""".encode(),
        (
            '{"peach":"This sorting order","péché":"is wrong according to French",'
            '"pêche":"but canonicalization MUST","sin":"ingnore locale"}'
        ).encode(),
        id="french",
    ),
    pytest.param(
        b'{\n  "Unnormalized Unicode":"\\u1e0d\\u0307"\n}\n',
        '{"Unnormalized Unicode":"\u1e0d\u0307"}'.encode(),
        id="unicode_not_normalised",
    ),
    pytest.param(
        # structures.json with its one float, 56.0, written as the integer 56 it canonicalises to
        b'{\n  "1": {"f": {"f": "hi","F": 5} ,"\\n": 56},\n  "10": { },\n  "": "empty",\n'
        b'  "a": { },\n  "111": [ { } ],\n  "A": { }\n}',
        b'{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}',
        id="structures_with_integer",
    ),
    pytest.param(
        b'    "this is a test string 1235"',
        bytes.fromhex(
            "22 74 68 69 73 20 69 73 20 61 20 74 65 73 74 20 73 74 72 69 6E 67 20 31 32 33 35 22"
        ),
        id="simple_string_outhex",
    ),
]


@pytest.mark.parametrize(("data", "expected"), CYBERPHONE)
def test_cyberphone_testdata(data: bytes, expected: bytes) -> None:
    assert canonicalize(parse_json(data)) == expected
    assert canonicalize(parse_json(expected)) == expected  # canonical bytes are a fixed point


def test_cyberphone_structures_as_published_is_refused_for_its_float() -> None:
    data = b'{"1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0},"10": { },"": "empty"}'
    assert _refusals(data) == [("/1/\n", "float_not_allowed")]


def test_cyberphone_values_is_refused_for_its_floats() -> None:
    data = (
        b'{"numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],'
        b' "escaping": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        b' "literals": [null, true, false]}'
    )
    assert _refusals(data) == [(f"/numbers/{index}", "float_not_allowed") for index in range(5)]
