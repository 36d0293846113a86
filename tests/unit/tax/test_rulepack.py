"""Rule-pack loader: the shipped packs load, every malformed input is refused with the file and
the place named, values are picked by date, and a loaded pack cannot be changed."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tax.errors import RuleNotInForceError, RulePackError, TaxFieldError
from tax.rulepack import (
    MAX_PACK_BYTES,
    Bracket,
    Deadline,
    Degressive,
    RulePack,
    Status,
    load_pack,
    pack_for,
    parse_pack,
    round_fraction,
    shipped_packs,
)

NAME = "test.toml"

# A small valid pack using every value kind; each malformed case below changes one piece of it.
BASE = """
[pack]
jurisdiction = "xx"
title = "Test pack"
revision = 3
currency = "EUR"
calendar = "gregorian"
tax_agency = "agency:test"
weekend = ["saturday", "sunday"]
rounding = "down"

[sources.law]
citation = "Test Act § 1"
url = "https://example.org/law"

[sources.other]
citation = "Other Act"

[returns.personal]
period = "year"
subjects = ["ee-ik"]
first_period = "2024"
deadline = "deadline.personal"
payment_deadline = "deadline.personal"

[holidays]
source = "law"
dates = [
  { date = "2024-01-01", name = "New Year" },
  { date = "2024-12-25", name = "Christmas", source = "other" },
]

[params."corporate.rate"]
kind = "rate"
[[params."corporate.rate".values]]
since = "2020-01-01"
value = "0.20"
source = "law"
status = "enacted"
[[params."corporate.rate".values]]
since = "2025-01-01"
value = "0.22"
source = "other"
status = "unverified"
note = "raised"

[params."personal.brackets"]
kind = "brackets"
[[params."personal.brackets".values]]
since = "2020-01-01"
value = [
  { up_to_minor = 1000, rate = "0.1" },
  { up_to_minor = 5000, rate = "0.2" },
  { rate = "0.3" },
]
source = "law"
status = "enacted"

[params."personal.exemption"]
kind = "degressive"
[[params."personal.exemption".values]]
since = "2020-01-01"
value = { full_minor = 600, from_minor = 1000, to_minor = 2000 }
source = "law"
status = "enacted"

[params."deadline.personal"]
kind = "deadline"
[[params."deadline.personal".values]]
since = "2020-01-01"
value = { months_after_period_end = 4, day = 30 }
source = "law"
status = "enacted"

[params."interest.unit"]
kind = "text"
[[params."interest.unit".values]]
since = "2020-01-01"
value = "day"
source = "law"
status = "enacted"

[params."personal.deductions.training"]
kind = "amount"
[[params."personal.deductions.training".values]]
since = "2020-01-01"
value = 120000
source = "law"
status = "enacted"

[params."custom.grace_days"]
kind = "count"
[[params."custom.grace_days".values]]
since = "2020-01-01"
value = 30
source = "law"
status = "enacted"
"""


def _pack(text: str = BASE) -> RulePack:
    return parse_pack(text.encode(), name=NAME)


def _mutated(old: str, new: str) -> str:
    assert BASE.count(old) == 1, f"the mutation target must be unique: {old!r}"
    return BASE.replace(old, new)


# --- the shipped packs --------------------------------------------------------------------------


@pytest.mark.parametrize("jurisdiction", ["ir", "ee"])
def test_shipped_pack_loads_with_its_digest_and_version(jurisdiction: str) -> None:
    path = Path(__file__).parents[3] / "tax" / "packs" / f"{jurisdiction}.toml"
    pack = load_pack(path)
    assert pack.jurisdiction == jurisdiction
    assert pack.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert pack.version == f"{jurisdiction}-r{pack.revision}-{pack.digest[:12]}"
    assert shipped_packs()[jurisdiction] == pack
    assert pack_for(jurisdiction) is shipped_packs()[jurisdiction]


@pytest.mark.parametrize(
    ("jurisdiction", "names"),
    [
        (
            "ir",
            [
                "personal.salary.monthly_brackets",
                "personal.brackets",
                "personal.exemption",
                "corporate.rate",
                "corporate.base",
                "interest.late_payment",
                "interest.unit",
                "interest.partial_month",
                "penalty.late_filing.personal",
                "penalty.late_filing.corporate",
            ],
        ),
        (
            "ee",
            [
                "personal.brackets",
                "personal.exemption",
                "personal.deductions.total_cap",
                "corporate.rate",
                "corporate.base",
                "interest.late_payment",
                "interest.unit",
                "penalty.late_filing.personal",
                "penalty.late_filing.corporate",
            ],
        ),
    ],
)
def test_shipped_packs_cover_their_fiscal_years(jurisdiction: str, names: list[str]) -> None:
    pack = pack_for(jurisdiction)
    firsts = (
        [date(2022, 3, 21), date(2025, 3, 21)]  # 1401-01-01 and 1404-01-01
        if jurisdiction == "ir"
        else [date(2023, 1, 1), date(2026, 1, 1)]
    )
    for name in names:
        for first_day in firsts:
            assert pack.value_at(name, on=first_day).name == name
    for kind in pack.returns.values():
        for name in (kind.deadline, kind.payment_deadline):
            assert isinstance(pack.deadline_at(name, on=firsts[0]).value, Deadline)


def test_ee_rates_and_basic_exemption_by_year() -> None:
    ee = pack_for("ee")
    assert ee.rate_at("corporate.rate", on=date(2024, 12, 31)).value == Decimal("0.20")
    assert ee.rate_at("corporate.rate", on=date(2025, 1, 1)).value == Decimal("0.22")
    assert ee.degressive_at("personal.exemption", on=date(2025, 1, 1)).value == Degressive(
        784800, 1440000, 2520000
    )
    assert ee.degressive_at("personal.exemption", on=date(2026, 1, 1)).value == Degressive(
        840000, None, None
    )
    assert ee.rate_at("interest.late_payment", on=date(2021, 6, 1)).value == Decimal("0.0003")


def test_unknown_jurisdiction_is_a_field_error() -> None:
    with pytest.raises(TaxFieldError) as caught:
        pack_for("zz")
    (error,) = caught.value.errors
    assert (error.pointer, error.rule) == ("/payload/jurisdiction", "unknown_jurisdiction")


# --- malformed input: each refused with the file and the place ----------------------------------

MALFORMED = [
    # value kinds
    ('value = "0.20"', "value = 0.20", "params.corporate.rate.values[0].value"),
    ('value = "0.20"', 'value = "1.5"', "params.corporate.rate.values[0].value"),
    ('value = "0.20"', 'value = "20%"', "params.corporate.rate.values[0].value"),
    ('value = "0.20"', 'value = "-0.1"', "params.corporate.rate.values[0].value"),
    ("value = 120000", "value = -1", "params.personal.deductions.training.values[0].value"),
    ("value = 120000", 'value = "120000"', "params.personal.deductions.training.values[0].value"),
    ("value = 120000", "value = true", "params.personal.deductions.training.values[0].value"),
    ("value = 30", "value = 30.5", "params.custom.grace_days.values[0].value"),
    ('value = "day"', 'value = "week"', "params.interest.unit.values[0].value"),
    (
        "up_to_minor = 5000",
        "up_to_minor = 500",
        "params.personal.brackets.values[0].value[1].up_to_minor",
    ),
    (
        "up_to_minor = 5000",
        "up_to_minor = 1000",
        "params.personal.brackets.values[0].value[1].up_to_minor",
    ),
    (
        '{ rate = "0.3" }',
        '{ up_to_minor = 9000, rate = "0.3" }',
        "params.personal.brackets.values[0].value[2].up_to_minor",
    ),
    (
        '{ up_to_minor = 1000, rate = "0.1" }',
        '{ rate = "0.1" }',
        "params.personal.brackets.values[0].value[0].up_to_minor",
    ),
    ('{ rate = "0.3" }', '{ rate = "3" }', "params.personal.brackets.values[0].value[2].rate"),
    (
        '{ rate = "0.3" }',
        '{ rate = "0.3", cap = 1 }',
        "params.personal.brackets.values[0].value[2].cap",
    ),
    (", to_minor = 2000 }", " }", "params.personal.exemption.values[0].value"),
    (
        "full_minor = 600, from_minor = 1000",
        "full_minor = 600",
        "params.personal.exemption.values[0].value",
    ),
    ("to_minor = 2000", "to_minor = 1000", "params.personal.exemption.values[0].value.to_minor"),
    ("full_minor = 600,", "", "params.personal.exemption.values[0].value.full_minor"),
    ("day = 30 }", "day = 32 }", "params.deadline.personal.values[0].value.day"),
    (
        "months_after_period_end = 4",
        "months_after_period_end = 99",
        "params.deadline.personal.values[0].value.months_after_period_end",
    ),
    (", day = 30 }", " }", "params.deadline.personal.values[0].value.day"),
    # sources, dates, statuses
    (
        'value = "0.20"\nsource = "law"',
        'value = "0.20"\nsource = "nope"',
        "params.corporate.rate.values[0].source",
    ),
    ('since = "2025-01-01"', 'since = "2019-01-01"', "params.corporate.rate.values[1].since"),
    ('since = "2025-01-01"', 'since = "2020-01-01"', "params.corporate.rate.values[1].since"),
    ('since = "2025-01-01"', "since = 2025-01-01", "params.corporate.rate.values[1].since"),
    ('since = "2025-01-01"', 'since = "2025-02-30"', "params.corporate.rate.values[1].since"),
    ('since = "2025-01-01"', 'since = "2025-1-1"', "params.corporate.rate.values[1].since"),
    ('status = "unverified"', 'status = "draft"', "params.corporate.rate.values[1].status"),
    ('status = "unverified"\n', "", "params.corporate.rate.values[1].status"),
    ('note = "raised"', 'note = "raised"\nbogus = 1', "params.corporate.rate.values[1].bogus"),
    # kinds and names
    ('kind = "rate"', 'kind = "percent"', "params.corporate.rate.kind"),
    ('kind = "rate"', 'kind = "amount"', "params.corporate.rate.kind"),
    (
        '[params."custom.grace_days"]\nkind = "count"',
        '[params."custom.grace_days"]\nkind = "text"',
        "params.custom.grace_days.kind",
    ),
    (
        '[params."personal.deductions.training"]\nkind = "amount"',
        '[params."personal.deductions.training"]\nkind = "count"',
        "params.personal.deductions.training.kind",
    ),
    ('[params."custom.grace_days"]', '[params."Custom.Days"]', "params.Custom.Days"),
    # the [pack] table
    ('calendar = "gregorian"', 'calendar = "julian"', "pack.calendar"),
    ('jurisdiction = "xx"', 'jurisdiction = "XX"', "pack.jurisdiction"),
    ('currency = "EUR"', 'currency = "eur"', "pack.currency"),
    ('tax_agency = "agency:test"', 'tax_agency = "test"', "pack.tax_agency"),
    ('weekend = ["saturday", "sunday"]', 'weekend = ["saturday", "funday"]', "pack.weekend[1]"),
    ('weekend = ["saturday", "sunday"]', 'weekend = ["sunday", "sunday"]', "pack.weekend[1]"),
    (
        'weekend = ["saturday", "sunday"]',
        'weekend = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]',
        "pack.weekend",
    ),
    ('rounding = "down"', 'rounding = "up"', "pack.rounding"),
    ("revision = 3", "revision = 0", "pack.revision"),
    ('title = "Test pack"\n', "", "pack.title"),
    ("[sources.other]", "[extra]\nx = 1\n\n[sources.other]", "extra"),
    # sources
    ("[sources.other]", "[sources.Other]", "sources.Other"),
    ('url = "https://example.org/law"', 'url = "ftp://example.org/law"', "sources.law.url"),
    ('citation = "Other Act"', 'citation = ""', "sources.other.citation"),
    # returns
    ("[returns.personal]", "[returns.customs]", "returns.customs"),
    (
        'deadline = "deadline.personal"\npayment',
        'deadline = "corporate.rate"\npayment',
        "returns.personal.deadline",
    ),
    (
        'payment_deadline = "deadline.personal"',
        'payment_deadline = "deadline.none"',
        "returns.personal.payment_deadline",
    ),
    ('first_period = "2024"', 'first_period = "24"', "returns.personal.first_period"),
    ('period = "year"', 'period = "week"', "returns.personal.period"),
    # a quarterly return needs a YYYY-Qn label, a monthly one YYYY-MM
    ('period = "year"', 'period = "quarter"', "returns.personal.first_period"),
    ('period = "year"', 'period = "month"', "returns.personal.first_period"),
    ('subjects = ["ee-ik"]', 'subjects = ["us-ssn"]', "returns.personal.subjects[0]"),
    ('subjects = ["ee-ik"]', "subjects = []", "returns.personal.subjects"),
    # holidays
    (
        '{ date = "2024-12-25", name = "Christmas", source = "other" }',
        '{ date = "2024-01-01", name = "Again" }',
        "holidays.dates[1].date",
    ),
    ('source = "other" }', 'source = "nope" }', "holidays.dates[1].source"),
    (
        '{ date = "2024-01-01", name = "New Year" }',
        '{ date = "2024-13-01", name = "New Year" }',
        "holidays.dates[0].date",
    ),
    (
        '{ date = "2024-01-01", name = "New Year" }',
        '{ date = "2024-01-01" }',
        "holidays.dates[0].name",
    ),
]


@pytest.mark.parametrize(("old", "new", "pointer"), MALFORMED)
def test_malformed_pack_names_the_file_and_the_place(old: str, new: str, pointer: str) -> None:
    with pytest.raises(RulePackError) as caught:
        _pack(_mutated(old, new))
    assert caught.value.pack == NAME
    assert caught.value.pointer == pointer
    assert str(caught.value).startswith(f"{NAME}: {pointer}: ")


def test_missing_values_array_and_empty_values_are_refused() -> None:
    text = _mutated(
        '[[params."custom.grace_days".values]]\nsince = "2020-01-01"\nvalue = 30\nsource = "law"\n'
        'status = "enacted"\n',
        "values = []\n",
    )
    with pytest.raises(RulePackError) as caught:
        _pack(text)
    assert caught.value.pointer == "params.custom.grace_days.values"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[pack\n", "not TOML"),
        (b"\xff\xfe[pack]", "not UTF-8"),
        (b"#" * (MAX_PACK_BYTES + 1), "larger than"),
    ],
)
def test_unreadable_pack_is_refused_at_the_file(data: bytes, message: str) -> None:
    with pytest.raises(RulePackError) as caught:
        parse_pack(data, name=NAME)
    assert caught.value.pointer == ""
    assert message in caught.value.message


def test_missing_file_is_a_rule_pack_error(tmp_path: Path) -> None:
    with pytest.raises(RulePackError) as caught:
        load_pack(tmp_path / "absent.toml")
    assert caught.value.pack == "absent.toml"


def test_solar_hijri_dates_are_checked_in_their_calendar() -> None:
    text = _mutated('calendar = "gregorian"', 'calendar = "solar_hijri"')
    text = text.replace('"2020-01-01"', '"1399-01-01"').replace('"2025-01-01"', '"1403-12-30"')
    text = text.replace('"2024-01-01"', '"1403-01-01"').replace('"2024-12-25"', '"1403-01-12"')
    text = text.replace('first_period = "2024"', 'first_period = "1403"')
    pack = _pack(text)
    # 30 Esfand 1403 exists (a leap year) and is 20 March 2025.
    assert pack.value_at("corporate.rate", on=date(2025, 3, 20)).value == Decimal("0.22")
    assert date(2024, 3, 20) in pack.holidays
    with pytest.raises(RulePackError) as caught:
        _pack(text.replace('"1403-12-30"', '"1402-12-30"'))  # 1402 is not a leap year
    assert caught.value.pointer == "params.corporate.rate.values[1].since"
    assert "invalid_date" in caught.value.message


# --- values by date -----------------------------------------------------------------------------


def test_value_at_picks_the_value_in_force() -> None:
    pack = _pack()
    before = pack.rate_at("corporate.rate", on=date(2024, 12, 31))
    assert (before.value, before.status, before.source.key) == (
        Decimal("0.20"),
        Status.ENACTED,
        "law",
    )
    on_change = pack.rate_at("corporate.rate", on=date(2025, 1, 1))
    assert (on_change.value, on_change.status, on_change.note) == (
        Decimal("0.22"),
        Status.UNVERIFIED,
        "raised",
    )
    assert on_change.since == date(2025, 1, 1)
    assert on_change.source.citation == "Other Act"
    assert on_change.source.url is None


def test_before_the_first_value_nothing_is_in_force() -> None:
    pack = _pack()
    with pytest.raises(RuleNotInForceError) as caught:
        pack.value_at("corporate.rate", on=date(2019, 12, 31))
    assert (caught.value.jurisdiction, caught.value.name, caught.value.on) == (
        "xx",
        "corporate.rate",
        "2019-12-31",
    )
    with pytest.raises(RuleNotInForceError):
        pack.value_at("no.such.parameter", on=date(2025, 1, 1))
    assert pack.has("corporate.rate")
    assert not pack.has("no.such.parameter")


def test_typed_accessors_refuse_another_kind() -> None:
    pack = _pack()
    on = date(2024, 1, 1)
    assert pack.brackets_at("personal.brackets", on=on).value == (
        Bracket(1000, Decimal("0.1")),
        Bracket(5000, Decimal("0.2")),
        Bracket(None, Decimal("0.3")),
    )
    assert pack.deadline_at("deadline.personal", on=on).value == Deadline(4, 30)
    assert pack.text_at("interest.unit", on=on).value == "day"
    assert pack.amount_at("personal.deductions.training", on=on).value == 120000
    assert pack.count_at("custom.grace_days", on=on).value == 30
    with pytest.raises(RulePackError) as caught:
        pack.rate_at("personal.brackets", on=on)
    assert caught.value.pointer == "params.personal.brackets.kind"
    with pytest.raises(RulePackError):
        pack.amount_at("custom.grace_days", on=on)


def test_value_json_of_each_kind() -> None:
    pack = _pack()
    on = date(2024, 1, 1)
    assert pack.value_at("corporate.rate", on=on).value_json() == "0.20"
    assert pack.value_at("personal.brackets", on=on).value_json() == [
        {"rate": "0.1", "up_to_minor": 1000},
        {"rate": "0.2", "up_to_minor": 5000},
        {"rate": "0.3"},
    ]
    assert pack.value_at("personal.exemption", on=on).value_json() == {
        "full_minor": 600,
        "from_minor": 1000,
        "to_minor": 2000,
    }
    assert pack.value_at("deadline.personal", on=on).value_json() == {
        "months_after_period_end": 4,
        "day": 30,
    }
    assert pack.value_at("custom.grace_days", on=on).value_json() == 30


def test_bounds_span_every_value_and_band() -> None:
    pack = _pack()
    assert pack.bounds("corporate.rate") == (Decimal("0.20"), Decimal("0.22"))
    assert pack.bounds("personal.brackets") == (Decimal("0.1"), Decimal("0.3"))
    with pytest.raises(RulePackError):
        pack.bounds("deadline.personal")
    with pytest.raises(RuleNotInForceError):
        pack.bounds("no.such.parameter")


# --- amounts and rounding -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("income", "down", "half_up"),
    [
        (0, 600, 600),
        (1000, 600, 600),  # at from_minor: the full amount
        (1001, 599, 599),  # 600 − 600 × 1/1000 = 599.4
        (1501, 299, 299),  # 600 − 600 × 501/1000 = 299.4
        (1999, 0, 1),  # 600 − 600 × 999/1000 = 0.6
        (2000, 0, 0),  # at to_minor: nothing
        (5000, 0, 0),
    ],
)
def test_degressive_amount(income: int, down: int, half_up: int) -> None:
    exemption = Degressive(600, 1000, 2000)
    assert exemption.amount_for(income, rounding="down") == down
    assert exemption.amount_for(income, rounding="half_up") == half_up
    assert Degressive(600, None, None).amount_for(income, rounding="down") == 600


def test_rounding_modes() -> None:
    pack = _pack()
    assert pack.round_minor(Decimal("10.99")) == 10
    assert pack.round_minor(Decimal("-10.99")) == -10
    half_up = dataclasses.replace(pack, rounding="half_up")
    assert half_up.round_minor(Decimal("10.5")) == 11
    assert half_up.round_minor(Decimal("10.49")) == 10
    assert half_up.round_minor(Decimal("-10.5")) == -11
    assert pack.round_minor(Decimal(10**18) * Decimal("0.123456789")) == 123456789000000000
    with pytest.raises(ValueError, match="unknown rounding"):
        round_fraction(Decimal(1), rounding="sideways")  # type: ignore[arg-type]


# --- identity and immutability ------------------------------------------------------------------


def test_digest_changes_when_one_byte_changes() -> None:
    first = _pack()
    second = _pack(BASE.replace("Test pack", "Test pacK"))
    assert first.digest == hashlib.sha256(BASE.encode()).hexdigest()
    assert first.digest != second.digest
    assert first.version != second.version
    assert first.version == f"xx-r3-{first.digest[:12]}"


def test_a_loaded_pack_is_immutable() -> None:
    pack = _pack()
    with pytest.raises(dataclasses.FrozenInstanceError):
        pack.revision = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        pack.holidays[date(2024, 2, 1)] = pack.holidays[date(2024, 1, 1)]  # type: ignore[index]
    with pytest.raises(TypeError):
        pack.params["corporate.rate"] = ()  # type: ignore[index]
    assert isinstance(pack.params["corporate.rate"], tuple)
    assert pack.weekend == frozenset({5, 6})
    assert pack.holidays[date(2024, 12, 25)].source.key == "other"
    assert pack.returns["personal"].subjects == frozenset({"ee-ik"})


# --- E-tax II: quarterly returns and the VAT catalogue ------------------------------------------


def _param(name: str, kind: str, value: str) -> str:
    """A TOML parameter with one value since 2020, appended to BASE by the tests below."""
    return (
        f'\n[params."{name}"]\nkind = "{kind}"\n[[params."{name}".values]]\n'
        f'since = "2020-01-01"\nvalue = {value}\nsource = "law"\nstatus = "enacted"\n'
    )


@pytest.mark.parametrize(
    ("label", "ok"),
    [
        ("2024-Q1", True),
        ("2024-Q4", True),
        ("2024-Q5", False),
        ("2024-Q0", False),
        ("2024-04", False),
        ("2024", False),
    ],
)
def test_quarterly_return_first_period_label(label: str, ok: bool) -> None:
    text = _mutated('period = "year"', 'period = "quarter"').replace(
        'first_period = "2024"', f'first_period = "{label}"'
    )
    if ok:
        kind = _pack(text).returns["personal"]
        assert (kind.period, kind.first_period) == ("quarter", label)
        return
    with pytest.raises(RulePackError) as caught:
        _pack(text)
    assert caught.value.pointer == "returns.personal.first_period"


def test_a_vat_return_is_a_return_name() -> None:
    text = _mutated("[returns.personal]", "[returns.vat]")
    pack = _pack(text)
    assert set(pack.returns) == {"vat"}
    assert pack.returns["vat"].name == "vat"


CATALOGUE_MISTAKES = [
    # (name, kind, value, pointer after "params.<name>")
    ("vat.rate.standard", "amount", "20", ".kind"),
    ("vat.rate.standard", "count", "20", ".kind"),
    ("vat.rate.standard", "rate", '"1.5"', ".values[0].value"),
    ("vat.rate.standard", "rate", "0.2", ".values[0].value"),  # a TOML float
    ("vat.rate.reduced.books", "rate", '"0.09"', ""),  # a category is one name
    ("invoice.rounding", "text", '"up"', ".values[0].value"),
    ("invoice.rounding", "rate", '"0.5"', ".kind"),
    ("invoice.response_window_days", "amount", "30", ".kind"),
    ("invoice.response_window_days", "count", "-1", ".values[0].value"),
    ("invoice.response_window_days", "count", '"30"', ".values[0].value"),
    ("invoice.submission_window_days", "rate", '"7"', ".kind"),
    ("invoice.submission_window_days", "count", "100001", ".values[0].value"),
    ("deadline.vat", "count", "1", ".kind"),
    ("payment_deadline.vat", "rate", '"0"', ".kind"),
    ("penalty.late_filing.vat", "amount", "0", ".kind"),
    ("interest.late_payment.vat", "count", "2", ".kind"),
]


@pytest.mark.parametrize(("name", "kind", "value", "place"), CATALOGUE_MISTAKES)
def test_catalogue_fixes_the_vat_and_invoice_kinds(
    name: str, kind: str, value: str, place: str
) -> None:
    with pytest.raises(RulePackError) as caught:
        _pack(BASE + _param(name, kind, value))
    assert caught.value.pointer == f"params.{name}{place}"


def test_catalogue_accepts_the_vat_and_invoice_kinds() -> None:
    text = BASE + "".join(
        _param(name, kind, value)
        for name, kind, value in [
            ("vat.rate.standard", "rate", '"0.22"'),
            ("vat.rate.zero", "rate", '"0"'),
            ("invoice.rounding", "text", '"half_up"'),
            ("invoice.response_window_days", "count", "30"),
            ("invoice.submission_window_days", "count", "7"),
            ("deadline.vat", "deadline", "{ months_after_period_end = 1, day = 20 }"),
            ("payment_deadline.vat", "deadline", "{ months_after_period_end = 1, day = 20 }"),
            ("penalty.late_filing.vat", "rate", '"0"'),
            ("interest.late_payment.vat", "rate", '"0.0006"'),
            ("vatx.rate.standard", "amount", "5"),  # not under vat.rate.: any kind but text
        ]
    )
    pack = _pack(text)
    on = date(2024, 1, 1)
    assert pack.text_at("invoice.rounding", on=on).value == "half_up"
    assert pack.count_at("invoice.response_window_days", on=on).value == 30
    assert pack.deadline_at("deadline.vat", on=on).value == Deadline(1, 20)
    assert set(pack.vat_rates_at(on=on)) == {"standard", "zero"}
    assert (
        _pack(BASE + _param("invoice.rounding", "text", '"down"'))
        .text_at("invoice.rounding", on=on)
        .value
        == "down"
    )
