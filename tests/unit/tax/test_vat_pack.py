"""E-tax II data in the shipped packs: VAT rates by date and category (`vat_rates_at`), the
quarterly (ir) and monthly (ee) VAT returns with their deadlines, and the invoice parameters.

Dates checked here come from the sources in the packs: ir VAT law 1400 in force from 1400-10-13,
10 % from 1403-01-01, returns and payment by the end of the month after each quarter (INTA
notice 28: winter 1402 by the end of Farvardin 1403); ee 22 % from 2024, 24 % from 1 July 2025,
accommodation 13 % and press 9 % from 2025, KMD by the 20th of the next month.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal

import pytest

from tax.calendar import due_date, ended_periods, parse_date, parse_period
from tax.errors import RulePackError
from tax.rulepack import (
    CATALOGUE_KINDS,
    RETURN_NAMES,
    TEXT_CHOICES,
    VAT_RATE_PREFIX,
    RulePack,
    Status,
    pack_for,
    parse_pack,
)

VAT_NAMES = [
    "invoice.rounding",
    "invoice.response_window_days",
    "invoice.submission_window_days",
    "deadline.vat",
    "payment_deadline.vat",
    "penalty.late_filing.vat",
    "interest.late_payment.vat",
]


@pytest.fixture(scope="module")
def ir() -> RulePack:
    return pack_for("ir")


@pytest.fixture(scope="module")
def ee() -> RulePack:
    return pack_for("ee")


def _rates(pack: RulePack, on: date) -> dict[str, Decimal]:
    found = pack.vat_rates_at(on=on)
    out: dict[str, Decimal] = {}
    for category, dated in found.items():
        assert dated.name == f"{VAT_RATE_PREFIX}{category}" and dated.kind == "rate"
        assert isinstance(dated.value, Decimal)
        out[category] = dated.value
    return out


# --- the catalogue -------------------------------------------------------------------------------


def test_the_catalogue_knows_vat() -> None:
    assert "vat" in RETURN_NAMES
    assert TEXT_CHOICES["invoice.rounding"] == ("half_up", "down")
    assert {name: CATALOGUE_KINDS[name] for name in VAT_NAMES} == {
        "invoice.rounding": "text",
        "invoice.response_window_days": "count",
        "invoice.submission_window_days": "count",
        "deadline.vat": "deadline",
        "payment_deadline.vat": "deadline",
        "penalty.late_filing.vat": "rate",
        "interest.late_payment.vat": "rate",
    }


@pytest.mark.parametrize("jurisdiction", ["ir", "ee"])
def test_every_vat_parameter_is_shipped_and_sourced(jurisdiction: str) -> None:
    pack = pack_for(jurisdiction)
    vat_names = [name for name in pack.params if name.startswith(VAT_RATE_PREFIX)]
    assert {"vat.rate.standard", "vat.rate.zero"} <= set(vat_names)
    for name in [*VAT_NAMES, *vat_names]:
        values = pack.params[name]
        assert values, name
        for value in values:
            assert value.kind == CATALOGUE_KINDS.get(name, "rate")
            assert value.source.citation and value.source.key in pack.sources
            # Every value nobody confirmed says why in its note.
            assert value.status is Status.ENACTED or value.note, (name, value.since)


# --- vat_rates_at ------------------------------------------------------------------------------


def test_ir_rates_by_date(ir: RulePack) -> None:
    # Nothing before the VAT law of 1400 is modelled: 1400-10-12 is still the old law.
    assert ir.vat_rates_at(on=parse_date(ir, "1400-10-12")) == {}
    first = ir.vat_rates_at(on=parse_date(ir, "1400-10-13"))
    assert first["standard"].since == date(2022, 1, 3)
    assert _rates(ir, parse_date(ir, "1400-10-13")) == {
        "standard": Decimal("0.09"),
        "zero": Decimal("0"),
    }
    assert _rates(ir, parse_date(ir, "1402-12-29"))["standard"] == Decimal("0.09")
    assert _rates(ir, parse_date(ir, "1403-01-01")) == {
        "standard": Decimal("0.10"),
        "zero": Decimal("0"),
    }
    assert _rates(ir, parse_date(ir, "1404-06-01"))["standard"] == Decimal("0.10")
    raised = ir.vat_rates_at(on=date(2024, 3, 20))["standard"]
    assert (raised.source.key, raised.status) == ("budget-1403-vat", Status.UNVERIFIED)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2022, 7, 31), {"standard": "0.20", "reduced": "0.09", "accommodation": "0.09",
                             "zero": "0"}),  # press has no category of its own yet
        (date(2022, 8, 1), {"standard": "0.20", "reduced": "0.09", "accommodation": "0.09",
                            "press": "0.05", "zero": "0"}),
        (date(2023, 12, 31), {"standard": "0.20", "reduced": "0.09", "accommodation": "0.09",
                              "press": "0.05", "zero": "0"}),
        (date(2024, 1, 1), {"standard": "0.22", "reduced": "0.09", "accommodation": "0.09",
                            "press": "0.05", "zero": "0"}),
        (date(2025, 1, 1), {"standard": "0.22", "reduced": "0.09", "accommodation": "0.13",
                            "press": "0.09", "zero": "0"}),
        (date(2025, 6, 30), {"standard": "0.22", "reduced": "0.09", "accommodation": "0.13",
                             "press": "0.09", "zero": "0"}),
        (date(2025, 7, 1), {"standard": "0.24", "reduced": "0.09", "accommodation": "0.13",
                            "press": "0.09", "zero": "0"}),
    ],
)  # fmt: skip
def test_ee_rates_by_date(ee: RulePack, day: date, expected: dict[str, str]) -> None:
    assert _rates(ee, day) == {category: Decimal(rate) for category, rate in expected.items()}


def test_ee_24_percent_is_enacted(ee: RulePack) -> None:
    standard = ee.vat_rates_at(on=date(2025, 7, 1))["standard"]
    assert (standard.status, standard.source.key, standard.since) == (
        Status.ENACTED,
        "err-vat-24",
        date(2025, 7, 1),
    )


SMALL = """
[pack]
jurisdiction = "xx"
title = "VAT test"
revision = 1
currency = "EUR"
calendar = "gregorian"
tax_agency = "agency:test"
weekend = ["sunday"]
rounding = "half_up"

[sources.law]
citation = "Test Act"

[returns]

[params."vat.rate.standard"]
kind = "rate"
[[params."vat.rate.standard".values]]
since = "2020-01-01"
value = "0.20"
source = "law"
status = "enacted"

[params."vat.rate.later"]
kind = "rate"
[[params."vat.rate.later".values]]
since = "2026-01-01"
value = "0.05"
source = "law"
status = "enacted"

[params."corporate.rate"]
kind = "rate"
[[params."corporate.rate".values]]
since = "2020-01-01"
value = "0.30"
source = "law"
status = "enacted"

[params."vat.ratex"]
kind = "rate"
[[params."vat.ratex".values]]
since = "2020-01-01"
value = "0.40"
source = "law"
status = "enacted"
"""


def test_vat_rates_at_leaves_out_what_is_not_yet_in_force_and_other_rates() -> None:
    pack = parse_pack(SMALL.encode(), name="small.toml")
    assert _rates(pack, date(2025, 12, 31)) == {"standard": Decimal("0.20")}
    assert _rates(pack, date(2026, 1, 1)) == {
        "standard": Decimal("0.20"),
        "later": Decimal("0.05"),
    }
    assert pack.vat_rates_at(on=date(2019, 12, 31)) == {}
    assert list(pack.vat_rates_at(on=date(2026, 1, 1))) == ["later", "standard"]  # sorted


def test_vat_rates_at_refuses_a_vat_name_that_is_not_a_rate() -> None:
    # The loader refuses such a file; a pack built another way still cannot slip one through.
    pack = parse_pack(SMALL.encode(), name="small.toml")
    wrong = dataclasses.replace(pack.params["vat.rate.standard"][0], kind="amount")
    broken = dataclasses.replace(pack, params={**pack.params, "vat.rate.standard": (wrong,)})
    with pytest.raises(RulePackError) as caught:
        broken.vat_rates_at(on=date(2025, 1, 1))
    assert caught.value.pointer == "params.vat.rate.standard.kind"


# --- the VAT returns -----------------------------------------------------------------------------


def test_vat_returns_of_both_packs(ir: RulePack, ee: RulePack) -> None:
    for pack, period, subjects, first in [
        (ir, "quarter", frozenset({"ir-lid"}), "1403-Q1"),
        (ee, "month", frozenset({"ee-rg"}), "2025-01"),
    ]:
        vat = pack.returns["vat"]
        assert (vat.period, vat.subjects, vat.first_period) == (period, subjects, first)
        assert (vat.deadline, vat.payment_deadline) == ("deadline.vat", "payment_deadline.vat")
        assert parse_period(pack, first, kind=period).label == first


def test_ir_vat_is_due_at_the_end_of_the_month_after_the_quarter(ir: RulePack) -> None:
    spring = parse_period(ir, "1403-Q1", kind="quarter")
    assert due_date(ir, spring, "deadline.vat") == (parse_date(ir, "1403-04-31"), [])
    assert due_date(ir, spring, "payment_deadline.vat") == (parse_date(ir, "1403-04-31"), [])
    winter = parse_period(ir, "1403-Q4", kind="quarter")
    assert due_date(ir, winter, "deadline.vat") == (parse_date(ir, "1404-01-31"), [])
    # INTA notice 28: winter 1402 by the end of Farvardin 1403, which was a Friday.
    day, reasons = due_date(ir, parse_period(ir, "1402-Q4", kind="quarter"), "deadline.vat")
    assert day == parse_date(ir, "1403-02-01") == date(2024, 4, 20)
    assert reasons == ["1403-01-31 is a Friday (weekend)"]


def test_ee_vat_is_due_on_the_20th_of_the_next_month(ee: RulePack) -> None:
    assert due_date(ee, parse_period(ee, "2025-05", kind="month"), "deadline.vat") == (
        date(2025, 6, 20),
        [],
    )
    day, reasons = due_date(ee, parse_period(ee, "2025-08", kind="month"), "payment_deadline.vat")
    assert day == date(2025, 9, 22)
    assert reasons == ["2025-09-20 is a Saturday (weekend)", "2025-09-21 is a Sunday (weekend)"]
    # December's return across the year end.
    assert due_date(ee, parse_period(ee, "2025-12", kind="month"), "deadline.vat") == (
        date(2026, 1, 20),
        [],
    )


def test_every_listed_vat_period_has_its_deadlines(ir: RulePack, ee: RulePack) -> None:
    for pack in (ir, ee):
        vat = pack.returns["vat"]
        periods = ended_periods(pack, vat, today=date(2026, 11, 22))
        assert periods and periods[0].label == vat.first_period
        for period in periods:
            for name in (vat.deadline, vat.payment_deadline):
                due_on, _ = due_date(pack, period, name)
                assert period.end < due_on <= period.end + timedelta(days=366)


# --- invoice parameters and penalties ------------------------------------------------------------


def test_invoice_windows_and_rounding(ir: RulePack, ee: RulePack) -> None:
    on_ir, on_ee = parse_date(ir, "1403-06-01"), date(2025, 6, 1)
    assert ir.count_at("invoice.response_window_days", on=on_ir).value == 30
    assert ir.count_at("invoice.submission_window_days", on=on_ir).value == 7
    assert ee.count_at("invoice.response_window_days", on=on_ee).value == 30
    assert ee.count_at("invoice.submission_window_days", on=on_ee).value == 20
    for pack, on in ((ir, on_ir), (ee, on_ee)):
        rounding = pack.text_at("invoice.rounding", on=on)
        assert rounding.value in TEXT_CHOICES["invoice.rounding"]
    ee_window = ee.count_at("invoice.response_window_days", on=on_ee)
    assert ee_window.status is Status.UNVERIFIED
    assert "no buyer-confirmation rule" in ee_window.note


def test_vat_penalties_and_interest(ir: RulePack, ee: RulePack) -> None:
    on_ir, on_ee = parse_date(ir, "1403-06-01"), date(2025, 6, 1)
    assert ir.rate_at("penalty.late_filing.vat", on=on_ir).value == Decimal("0")
    assert ir.rate_at("interest.late_payment.vat", on=on_ir).value == Decimal("0.02")
    assert ee.rate_at("penalty.late_filing.vat", on=on_ee).value == Decimal("0")
    assert ee.rate_at("interest.late_payment.vat", on=on_ee).value == Decimal("0.0006")
    # ee VAT interest follows the income-tax interest history (Taxation Act § 117).
    for day in (date(2020, 4, 1), date(2021, 6, 1), date(2023, 1, 1)):
        assert (
            ee.rate_at("interest.late_payment.vat", on=day).value
            == ee.rate_at("interest.late_payment", on=day).value
        )
