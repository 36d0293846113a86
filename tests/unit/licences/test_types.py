"""Unit tests of licences.types: the licence types file, one loader rule at a time."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from licences import types as types_module
from licences.errors import LicenceTypeFileError
from licences.types import (
    LICENCE_TYPES_FORMAT,
    Duration,
    LicenceTypeBook,
    default_licence_types,
    licence_type_json,
    load_licence_types,
    parse_duration,
)
from payments.fees import load_default_fee_schedules
from signatures.envelope import SubjectKind

TomlValue = str | int | bool | list[str]

BASE_TYPE: dict[str, TomlValue] = {
    "code": "ir.driving",
    "title": "Driving licence",
    "jurisdiction": "ir",
    "agency": "agency:rahvar",
    "holder_kinds": ["ir-nid"],
    "validity": "P10Y",
    "renew_from": "P90D",
    "renew_until": "P1Y",
    "payment_days": 30,
    "fee_service": "driving_licence.renewal",
    "rules": ["no_unpaid_fines", "no_overdue_tax"],
    "number_pattern": "[0-9]{10}",
    "status": "unverified",
    "source_title": "A source",
    "source_url": "https://example.org/law",
    "note": "A note",
}
FEE_CODES = ("driving_licence.renewal", "business_licence.renewal")


def _toml(head: dict[str, TomlValue], types: list[dict[str, TomlValue]]) -> bytes:
    """A licence types file: JSON strings and arrays of strings are valid TOML values."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in head.items()]
    for item in types:
        lines.append("[[types]]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in item.items())
    return "\n".join(lines).encode()


def _file(**changes: TomlValue | None) -> bytes:
    """The base file with one type whose members are changed (None removes a member)."""
    item = copy.deepcopy(BASE_TYPE)
    for key, value in changes.items():
        if value is None:
            item.pop(key, None)
        else:
            item[key] = value
    return _toml({"format": LICENCE_TYPES_FORMAT}, [item])


def _refused(data: bytes, *, fee_codes: tuple[str, ...] | None = FEE_CODES) -> tuple[str, str]:
    with pytest.raises(LicenceTypeFileError) as caught:
        load_licence_types(data, fee_codes=fee_codes)
    error = caught.value
    assert error.key in str(error) and error.rule in str(error)  # the message names both
    return error.key, error.rule


# --- the packaged book ---------------------------------------------------------------------------


def test_packaged_book_has_the_four_types() -> None:
    book = default_licence_types()
    assert book.codes() == ["ee.taxi-driver", "ir.business", "ir.driving", "ir.engineering"]
    assert book.agencies() == [
        "agency:asnaf",
        "agency:mrud",
        "agency:rahvar",
        "agency:transpordiamet",
    ]
    assert default_licence_types() is book  # cached


def test_packaged_types_name_fee_services_of_the_packaged_fee_book() -> None:
    codes = load_default_fee_schedules().service_codes
    for licence_type in default_licence_types().types:
        assert licence_type.fee_service in codes
        assert licence_type.status in ("enacted", "unverified", "illustrative")
        assert licence_type.source_url is not None and licence_type.note


def test_packaged_driving_licence() -> None:
    driving = default_licence_types().get("ir.driving")
    assert driving is not None
    assert (driving.agency, driving.holder_kinds) == (
        "agency:rahvar",
        frozenset({SubjectKind.NATURAL_PERSON}),
    )
    assert (driving.validity, driving.renew_from, driving.renew_until) == (
        Duration(10, "Y"),
        Duration(90, "D"),
        Duration(1, "Y"),
    )
    assert driving.rules == {"no_unpaid_fines", "no_overdue_tax"}
    business = default_licence_types().get("ir.business")
    assert business is not None and business.rules == {"no_overdue_tax"}
    assert business.holder_kinds == frozenset(
        {SubjectKind.NATURAL_PERSON, SubjectKind.LEGAL_ENTITY}
    )


def test_licence_type_json_is_public_and_stable() -> None:
    taxi = default_licence_types().get("ee.taxi-driver")
    assert taxi is not None
    described = licence_type_json(taxi)
    assert described["validity"] == "P5Y" and described["renew_from"] == "P2M"
    assert described["holder_kinds"] == ["ee-ik"]
    assert described["rules"] == ["no_unpaid_fines", "no_overdue_tax"]  # in RULES order
    assert described["status"] == "illustrative"
    json.dumps(described)  # plain JSON


def test_book_lookup_and_duplicates() -> None:
    book = load_licence_types(_file(), fee_codes=FEE_CODES)
    assert book.get("ir.driving") is not None and book.get("ir.nothing") is None
    with pytest.raises(ValueError, match="share a code"):
        LicenceTypeBook(book.types * 2)


def test_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "types.toml"
    path.write_bytes(_file())
    assert load_licence_types(path).codes() == ["ir.driving"]


def test_optional_members_may_be_left_out() -> None:
    book = load_licence_types(_file(fee_service=None, source_url=None, note=None, rules=[]))
    only = book.types[0]
    assert (only.fee_service, only.source_url, only.note, only.rules) == (
        None,
        None,
        "",
        frozenset(),
    )


def test_fee_service_is_only_checked_against_a_book_when_given() -> None:
    data = _file(fee_service="other.renewal")
    assert load_licence_types(data).types[0].fee_service == "other.renewal"
    assert _refused(data) == ("types[0].fee_service", "unknown_fee_service")


# --- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("P1Y", Duration(1, "Y")), ("P99M", Duration(99, "M")), ("P999D", Duration(999, "D"))],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text", ["P0Y", "P100Y", "P100M", "P1000D", "P01Y", "P1Y2M", "P1W", "1Y", "p1y", "P1y", ""]
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_duration_refuses_bad_values_when_built_directly() -> None:
    with pytest.raises(ValueError):
        Duration(0, "D")
    with pytest.raises(ValueError):
        Duration(1, "W")


# --- each loader rule, with a mutated file --------------------------------------------------------


def test_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(types_module, "MAX_FILE_BYTES", 100)
    assert _refused(b" " * 101) == ("", "too_large")
    path = tmp_path / "big.toml"
    path.write_bytes(b"#" * 101)
    with pytest.raises(LicenceTypeFileError, match="too_large"):
        load_licence_types(path)


@pytest.mark.parametrize("data", [b"format = ", b"\xff\xfe", b"[[types]\n"])
def test_not_toml(data: bytes) -> None:
    assert _refused(data) == ("", "not_toml")


def test_file_level_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    item = dict(BASE_TYPE)
    assert _refused(_toml({"format": "pishkhan.licence_types/2"}, [item])) == (
        "format",
        "unknown_format",
    )
    assert _refused(_toml({}, [item])) == ("format", "missing_member")
    assert _refused(_toml({"format": LICENCE_TYPES_FORMAT, "extra": 1}, [item])) == (
        "extra",
        "unknown_member",
    )
    assert _refused(_toml({"format": LICENCE_TYPES_FORMAT, "note": " "}, [item])) == (
        "note",
        "empty",
    )
    assert _refused(_toml({"format": LICENCE_TYPES_FORMAT}, [])) == ("types", "missing_member")
    assert _refused(_toml({"format": LICENCE_TYPES_FORMAT, "types": 3}, [])) == (
        "types",
        "wrong_type",
    )
    assert _refused(_toml({"format": LICENCE_TYPES_FORMAT, "types": []}, [])) == (
        "types",
        "empty",
    )
    monkeypatch.setattr(types_module, "MAX_TYPES", 1)
    second = dict(item, code="ir.other")
    assert _refused(_toml({"format": LICENCE_TYPES_FORMAT}, [item, second])) == (
        "types",
        "too_many",
    )


def test_duplicate_code() -> None:
    data = _toml({"format": LICENCE_TYPES_FORMAT}, [dict(BASE_TYPE), dict(BASE_TYPE)])
    assert _refused(data) == ("types[1].code", "duplicate_code")


def test_type_members() -> None:
    assert _refused(_file(title=None)) == ("types[0].title", "missing_member")
    assert _refused(_file(colour="red")) == ("types[0].colour", "unknown_member")


@pytest.mark.parametrize(
    ("changes", "key", "rule"),
    [
        ({"code": "ir"}, "code", "invalid_code"),
        ({"code": "ir.Driving"}, "code", "invalid_code"),
        ({"code": "ir.d"}, "code", "invalid_code"),
        ({"code": "ir.driving.b"}, "code", "invalid_code"),
        ({"code": 7}, "code", "wrong_type"),
        ({"code": "ee.driving"}, "code", "jurisdiction_mismatch"),
        ({"jurisdiction": "fr", "code": "fr.driving"}, "jurisdiction", "unknown_jurisdiction"),
        ({"title": ""}, "title", "empty"),
        ({"title": "x" * 301}, "title", "too_long"),
        ({"title": ["a"]}, "title", "wrong_type"),
        ({"agency": "ir-nid:0013542419"}, "agency", "invalid_agency"),
        ({"agency": "agency:Rahvar"}, "agency", "invalid_agency"),
        ({"agency": "rahvar"}, "agency", "invalid_agency"),
        ({"holder_kinds": []}, "holder_kinds", "empty"),
        ({"holder_kinds": ["agency"]}, "holder_kinds", "invalid_holder_kind"),
        ({"holder_kinds": ["ir-xx"]}, "holder_kinds", "invalid_holder_kind"),
        ({"holder_kinds": ["ir-nid", "ir-nid"]}, "holder_kinds", "duplicate_entry"),
        ({"holder_kinds": "ir-nid"}, "holder_kinds", "wrong_type"),
        ({"validity": "P0Y"}, "validity", "invalid_duration"),
        ({"validity": "P10Y1M"}, "validity", "invalid_duration"),
        ({"validity": 10}, "validity", "wrong_type"),
        ({"renew_from": "P1000D"}, "renew_from", "invalid_duration"),
        ({"renew_until": "P100Y"}, "renew_until", "invalid_duration"),
        ({"renew_from": "P10Y"}, "renew_from", "window_opens_before_term"),
        ({"validity": "P1Y", "renew_from": "P12M"}, "renew_from", "window_opens_before_term"),
        ({"validity": "P30D", "renew_from": "P1M"}, "renew_from", "window_opens_before_term"),
        # a 28-day February term would open its window the day before it starts
        ({"validity": "P1M", "renew_from": "P28D"}, "renew_from", "window_opens_before_term"),
        ({"payment_days": 0}, "payment_days", "out_of_range"),
        ({"payment_days": 91}, "payment_days", "out_of_range"),
        ({"payment_days": "30"}, "payment_days", "wrong_type"),
        ({"payment_days": True}, "payment_days", "wrong_type"),
        ({"fee_service": "Driving Licence"}, "fee_service", "unknown_fee_service"),
        ({"fee_service": "passport.issue"}, "fee_service", "unknown_fee_service"),
        ({"rules": ["no_debts"]}, "rules", "unknown_rule"),
        ({"rules": ["not_revoked"]}, "rules", "unknown_rule"),  # always applies, never listed
        ({"rules": ["no_overdue_tax", "no_overdue_tax"]}, "rules", "duplicate_entry"),
        ({"number_pattern": "\\d{10}"}, "number_pattern", "invalid_pattern"),
        ({"number_pattern": "[0-9"}, "number_pattern", "invalid_pattern"),
        ({"number_pattern": "[0-9]*"}, "number_pattern", "invalid_pattern"),
        ({"number_pattern": "[0-9]" * 26}, "number_pattern", "too_long"),
        ({"status": "draft"}, "status", "invalid_status"),
        ({"status": "Enacted"}, "status", "invalid_status"),
        ({"source_title": " "}, "source_title", "empty"),
        ({"source_url": "http://example.org/law"}, "source_url", "invalid_url"),
        ({"source_url": "https://example.org/قانون"}, "source_url", "invalid_url"),
        ({"note": "x" * 2001}, "note", "too_long"),
    ],
)
def test_type_rules(changes: dict[str, TomlValue], key: str, rule: str) -> None:
    assert _refused(_file(**changes)) == (f"types[0].{key}", rule)


def test_a_window_may_open_on_the_first_day_of_the_shortest_term() -> None:
    loaded = load_licence_types(_file(validity="P1M", renew_from="P27D")).types[0]
    assert loaded.renew_from == Duration(27, "D")


def test_the_base_file_itself_loads() -> None:
    # Guards the parametrised refusals above: each fails for its own mutation alone.
    loaded = load_licence_types(_file(), fee_codes=FEE_CODES).types[0]
    assert loaded.validity == Duration(10, "Y") and loaded.payment_days == 30


def test_error_messages_carry_no_values() -> None:
    _, rule = _refused(_file(agency="ir-nid:0013542419"))
    with pytest.raises(LicenceTypeFileError) as caught:
        load_licence_types(_file(agency="ir-nid:0013542419"))
    assert rule == "invalid_agency" and "0013542419" not in str(caught.value)
