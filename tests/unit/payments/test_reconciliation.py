"""Unit tests of payments.reconciliation: matching, every mismatch kind, reports, agency views."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import date
from typing import Any

import pytest

from payments import reconciliation
from payments.errors import ReconciliationInputError
from payments.providers import Settlement, SettlementKind
from payments.reconciliation import (
    BookedMovement,
    LineStatus,
    ReconciliationReport,
    Side,
    filter_for_agency,
    reconcile,
    report_csv,
    report_json,
)

DAY = date(2025, 5, 1)
CHARGE, REFUND = SettlementKind.CHARGE, SettlementKind.REFUND
WATER, TAX = "revenue:water-co", "revenue:tax-org"


def _settled(
    ref: str, amount: int, kind: SettlementKind = CHARGE, currency: str = "IRR"
) -> Settlement:
    return Settlement("sandbox", ref, kind, amount, currency, DAY)


def _booked(
    ref: str,
    amount: int,
    kind: SettlementKind = CHARGE,
    currency: str = "IRR",
    accounts: tuple[str, ...] = (WATER,),
    entry: str | None = None,
) -> BookedMovement:
    return BookedMovement(
        "sandbox", ref, kind, amount, currency, DAY, entry or f"e-{ref}", accounts
    )


def _run(settlements: list[Settlement], booked: list[BookedMovement]) -> ReconciliationReport:
    return reconcile(day=DAY, provider="sandbox", settlements=settlements, booked=booked)


def _json(report: ReconciliationReport) -> Any:
    """report_json through a JSON round trip: proves it holds plain JSON values only."""
    return json.loads(json.dumps(report_json(report)))


def _statuses(report: ReconciliationReport) -> list[tuple[str, str, str | None]]:
    return [
        (line.provider_ref, line.status.value, None if line.side is None else line.side.value)
        for line in report.lines
    ]


# --- matching ------------------------------------------------------------------------------------


def test_matched_line_carries_both_sides() -> None:
    report = _run([_settled("ch_1", 50_000)], [_booked("ch_1", 50_000, accounts=(TAX, WATER))])
    (line,) = report.lines
    assert line.status is LineStatus.MATCHED
    assert (line.provider_amount_minor, line.book_amount_minor) == (50_000, 50_000)
    assert (line.provider_currency, line.book_currency, line.entry_id) == ("IRR", "IRR", "e-ch_1")
    assert line.agency_accounts == (TAX, WATER)
    assert report.is_clean() and report.matched == report.lines and report.mismatches == ()


def test_every_single_mismatch_kind() -> None:
    report = _run(
        [
            _settled("a_only_provider", 1_000),
            _settled("c_amount", 2_000),
            _settled("d_currency", 3_000, currency="EUR"),
        ],
        [
            _booked("b_only_book", 4_000),
            _booked("c_amount", 2_500),
            _booked("d_currency", 3_000),
        ],
    )
    assert _statuses(report) == [
        ("a_only_provider", "missing_in_book", None),
        ("b_only_book", "missing_at_provider", None),
        ("c_amount", "amount_differs", None),
        ("d_currency", "currency_differs", None),
    ]
    assert not report.is_clean() and report.matched == ()
    missing_in_book = report.lines[0]
    assert (missing_in_book.book_amount_minor, missing_in_book.entry_id) == (None, None)
    assert missing_in_book.agency_accounts == ()
    missing_at_provider = report.lines[1]
    assert (missing_at_provider.provider_amount_minor, missing_at_provider.provider_currency) == (
        None,
        None,
    )


def test_currency_differs_wins_over_amount() -> None:
    report = _run([_settled("x", 1, currency="USD")], [_booked("x", 2)])
    assert report.lines[0].status is LineStatus.CURRENCY_DIFFERS


def test_charge_and_refund_with_one_reference_are_different_keys() -> None:
    report = _run([_settled("r", 100, kind=REFUND)], [_booked("r", 100, kind=CHARGE)])
    assert [(line.kind, line.status) for line in report.lines] == [
        (CHARGE, LineStatus.MISSING_AT_PROVIDER),
        (REFUND, LineStatus.MISSING_IN_BOOK),
    ]


def test_duplicate_at_provider_marks_every_record_of_the_key() -> None:
    report = _run(
        [_settled("dup", 700), _settled("dup", 700)],
        [_booked("dup", 700, accounts=(WATER, TAX))],
    )
    assert _statuses(report) == [
        ("dup", "duplicate", "book"),
        ("dup", "duplicate", "provider"),
        ("dup", "duplicate", "provider"),
    ]
    # Provider-side duplicate lines carry the key's accounts, so the agency sees them.
    assert {line.agency_accounts for line in report.lines} == {(TAX, WATER)}


def test_duplicate_in_book_alone() -> None:
    report = _run(
        [], [_booked("dup", 1, entry="e2"), _booked("dup", 1, entry="e1", accounts=(TAX,))]
    )
    assert [(line.status, line.side, line.entry_id) for line in report.lines] == [
        (LineStatus.DUPLICATE, Side.BOOK, "e1"),
        (LineStatus.DUPLICATE, Side.BOOK, "e2"),
    ]
    assert [line.agency_accounts for line in report.lines] == [(TAX,), (WATER,)]


def test_report_is_independent_of_input_order() -> None:
    settlements = [_settled(f"ch_{i}", 1000 + i) for i in range(20)] + [_settled("ch_3", 1003)]
    booked = [_booked(f"ch_{i}", 1000 + i + (i % 3 == 0)) for i in range(5, 25)]
    first = _run(settlements, booked)
    shuffler = random.Random(7)
    for _ in range(5):
        shuffler.shuffle(settlements)
        shuffler.shuffle(booked)
        assert _run(settlements, booked) == first


def test_empty_day_is_clean() -> None:
    report = _run([], [])
    assert report.is_clean()
    assert report_json(report)["totals"] == {}


# --- input checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settlements", "booked", "side", "index", "rule"),
    [
        (
            [_settled("a", 1), Settlement("stripe", "b", CHARGE, 1, "IRR", DAY)],
            [],
            "provider",
            1,
            "other_provider",
        ),
        (
            [Settlement("sandbox", "b", CHARGE, 1, "IRR", date(2025, 5, 2))],
            [],
            "provider",
            0,
            "other_day",
        ),
        ([_settled("a", -1)], [], "provider", 0, "negative_amount"),
        (
            [],
            [BookedMovement("stripe", "a", CHARGE, 1, "IRR", DAY, "e", ())],
            "book",
            0,
            "other_provider",
        ),
        (
            [],
            [BookedMovement("sandbox", "a", CHARGE, 1, "IRR", date(2025, 4, 30), "e", ())],
            "book",
            0,
            "other_day",
        ),
        ([], [_booked("a", 1), _booked("b", -5)], "book", 1, "negative_amount"),
    ],
)
def test_records_reconcile_cannot_judge(
    settlements: list[Settlement], booked: list[BookedMovement], side: str, index: int, rule: str
) -> None:
    with pytest.raises(ReconciliationInputError) as caught:
        _run(settlements, booked)
    assert (caught.value.side, caught.value.index, caught.value.rule) == (side, index, rule)


@pytest.mark.parametrize("side", ["provider", "book"])
def test_too_many_records(monkeypatch: pytest.MonkeyPatch, side: str) -> None:
    monkeypatch.setattr(reconciliation, "MAX_RECONCILIATION_RECORDS", 2)
    settlements = [_settled(f"{i}", 1) for i in range(3 if side == "provider" else 2)]
    booked = [_booked(f"{i}", 1) for i in range(3 if side == "book" else 2)]
    with pytest.raises(ReconciliationInputError) as caught:
        _run(settlements, booked)
    assert (caught.value.side, caught.value.index, caught.value.rule) == (
        side,
        -1,
        "too_many_records",
    )


# --- JSON ----------------------------------------------------------------------------------------


def test_report_json_schema() -> None:
    report = _run(
        [
            _settled("ch_1", 10_000),
            _settled("rf_1", 3_000, kind=REFUND),
            _settled("ch_2", 5, currency="EUR"),
        ],
        [_booked("ch_1", 10_000), _booked("rf_1", 2_000, kind=REFUND)],
    )
    data = _json(report)
    assert data == report_json(report)
    assert {k: data[k] for k in ("format", "day", "provider", "clean")} == {
        "format": "pishkhan.reconciliation/1",
        "day": "2025-05-01",
        "provider": "sandbox",
        "clean": False,
    }
    assert data["counts"] == {
        "matched": 1,
        "missing_in_book": 1,
        "missing_at_provider": 0,
        "amount_differs": 1,
        "currency_differs": 0,
        "duplicate": 0,
    }
    assert data["totals"] == {
        "EUR": {
            "provider_charges_minor": 5,
            "provider_refunds_minor": 0,
            "book_charges_minor": 0,
            "book_refunds_minor": 0,
            "provider_net_minor": 5,
            "book_net_minor": 0,
            "difference_minor": 5,
        },
        "IRR": {
            "provider_charges_minor": 10_000,
            "provider_refunds_minor": 3_000,
            "book_charges_minor": 10_000,
            "book_refunds_minor": 2_000,
            "provider_net_minor": 7_000,
            "book_net_minor": 8_000,
            "difference_minor": -1_000,
        },
    }
    assert data["lines"][0] == {
        "status": "matched",
        "side": None,
        "kind": "charge",
        "provider_ref": "ch_1",
        "provider_amount_minor": 10_000,
        "provider_currency": "IRR",
        "book_amount_minor": 10_000,
        "book_currency": "IRR",
        "entry_id": "e-ch_1",
        "agency_accounts": [WATER],
    }
    assert [line["provider_ref"] for line in data["lines"]] == ["ch_1", "ch_2", "rf_1"]


def test_totals_count_both_sides_of_a_currency_difference() -> None:
    totals = _json(_run([_settled("x", 7, currency="USD")], [_booked("x", 9)]))["totals"]
    assert totals["IRR"]["book_charges_minor"] == 9
    assert totals["USD"]["provider_charges_minor"] == 7


# --- CSV -----------------------------------------------------------------------------------------


def test_report_csv_rfc4180() -> None:
    report = _run(
        [_settled("ch_1", 10_000), _settled("ch,2", 5)],
        [_booked("ch_1", 10_000, accounts=(TAX, WATER)), _booked("=HYPERLINK()", 1)],
    )
    text = report_csv(report)
    assert text.split("\r\n")[0] == ",".join(reconciliation.CSV_COLUMNS)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1:] == [
        [
            "2025-05-01",
            "sandbox",
            "missing_at_provider",
            "",
            "charge",
            "'=HYPERLINK()",
            "",
            "",
            "1",
            "IRR",
            "e-=HYPERLINK()",
            WATER,
        ],
        [
            "2025-05-01",
            "sandbox",
            "missing_in_book",
            "",
            "charge",
            "ch,2",
            "5",
            "IRR",
            "",
            "",
            "",
            "",
        ],
        [
            "2025-05-01",
            "sandbox",
            "matched",
            "",
            "charge",
            "ch_1",
            "10000",
            "IRR",
            "10000",
            "IRR",
            "e-ch_1",
            f"{TAX} {WATER}",
        ],
    ]
    assert '"ch,2"' in text


def test_report_csv_duplicate_side_column() -> None:
    rows = list(csv.reader(io.StringIO(report_csv(_run([_settled("d", 1)] * 2, [])), newline="")))
    assert [(row[2], row[3]) for row in rows[1:]] == [("duplicate", "provider")] * 2


# --- agency view ---------------------------------------------------------------------------------


def test_filter_for_agency_keeps_own_lines_and_hides_other_accounts() -> None:
    report = _run(
        [_settled("split", 100), _settled("water_only", 50), _settled("stray", 9)],
        [
            _booked("split", 100, accounts=(TAX, WATER)),
            _booked("water_only", 60),
            _booked("tax_only", 1, accounts=(TAX,)),
        ],
    )
    water = filter_for_agency(report, [WATER])
    assert [(line.provider_ref, line.status, line.agency_accounts) for line in water.lines] == [
        ("split", LineStatus.MATCHED, (WATER,)),
        ("water_only", LineStatus.AMOUNT_DIFFERS, (WATER,)),
    ]
    assert (water.day, water.provider) == (report.day, report.provider)
    assert _json(water)["totals"]["IRR"]["book_charges_minor"] == 160
    # the stray settlement (missing in book) touches no account: administrators only
    assert "stray" not in {
        line.provider_ref for line in filter_for_agency(report, [WATER, TAX]).lines
    }


def test_filter_for_unknown_account_is_empty() -> None:
    report = _run([_settled("a", 1)], [_booked("a", 1)])
    assert filter_for_agency(report, ["revenue:nobody"]).lines == ()
