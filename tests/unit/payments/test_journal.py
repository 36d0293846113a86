"""The double-entry book: currencies, account ids, entry checks, splitting, builders, balances."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from payments import currency, journal
from payments.errors import AccountIdError, JournalEntryError, UnknownCurrencyError
from payments.journal import AccountKind, Posting
from payments.payables import Transfer
from signatures.envelope import ISO_4217_CURRENCIES

NOW = datetime(2025, 3, 21, 10, 0, tzinfo=UTC)
WATER = "agency_revenue:water-tehran"
CITY = "agency_revenue:municipality"
TRANSFERS = (Transfer(WATER, 700, "water_charge"), Transfer(CITY, 300, "sewage"))


def _entry(*postings: Posting, **overrides: object) -> journal.JournalEntry:
    fields: dict[str, object] = {
        "entry_id": "payment:i-1",
        "occurred_at": NOW,
        "cause": "payment.succeeded",
        "reference": "i-1",
        "postings": postings,
    }
    fields.update(overrides)
    return journal.make_entry(**fields)  # type: ignore[arg-type]


def _pair(amount_minor: int = 100, code: str = "IRR") -> tuple[Posting, Posting]:
    return (
        Posting("provider_clearing:sandbox", amount_minor, code),
        Posting(WATER, -amount_minor, code),
    )


# --- currency ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "places"), [("IRR", 0), ("USD", 2), ("JPY", 0), ("KWD", 3)])
def test_exponent_of_known_currencies(code: str, places: int) -> None:
    assert currency.exponent(code) == places
    assert currency.is_accepted_currency(code)


@pytest.mark.parametrize("code", ["XXX", "irr", "", "IRT", "ZWL"])
def test_unknown_currency_is_refused_by_name(code: str) -> None:
    with pytest.raises(UnknownCurrencyError) as caught:
        currency.exponent(code)
    assert caught.value.currency == code
    assert not currency.is_accepted_currency(code)


def test_every_accepted_currency_is_an_iso_4217_code() -> None:
    assert set(currency.CURRENCY_EXPONENTS) <= ISO_4217_CURRENCIES
    assert all(0 <= places <= 3 for places in currency.CURRENCY_EXPONENTS.values())


# --- account ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "owner"),
    [
        ("payer_clearing", AccountKind.PAYER_CLEARING, None),
        ("provider_clearing:sandbox", AccountKind.PROVIDER_CLEARING, "sandbox"),
        ("provider_fees:stripe", AccountKind.PROVIDER_FEES, "stripe"),
        ("agency_revenue:water-tehran", AccountKind.AGENCY_REVENUE, "water-tehran"),
        ("agency_refunds:inta", AccountKind.AGENCY_REFUNDS, "inta"),
    ],
)
def test_account_ids_parse_and_round_trip(text: str, kind: AccountKind, owner: str | None) -> None:
    parsed = journal.parse_account_id(text)
    assert (parsed.kind, parsed.owner) == (kind, owner)
    assert str(parsed) == text == journal.account_id(kind, owner)
    assert journal.is_account_id(text)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("agency_revenue:" + "a" * 90, "too_long"),
        ("revenue:water", "unknown_kind"),
        ("Agency_revenue:water", "unknown_kind"),
        ("agency_revenue", "owner_required"),
        ("payer_clearing:someone", "owner_forbidden"),
        ("agency_revenue:Water", "invalid_owner"),
        ("agency_revenue:-water", "invalid_owner"),
        ("agency_revenue:w", "invalid_owner"),
        ("agency_revenue:آب", "invalid_owner"),
        ("provider_clearing:1sandbox", "invalid_owner"),
        ("provider_clearing:", "invalid_owner"),
        ("agency_revenue:water:x", "invalid_owner"),
    ],
)
def test_malformed_account_ids_are_refused_with_their_rule(text: str, rule: str) -> None:
    with pytest.raises(AccountIdError) as caught:
        journal.parse_account_id(text)
    assert caught.value.rule == rule
    assert not journal.is_account_id(text)


def test_account_id_builder_checks_the_owner() -> None:
    with pytest.raises(AccountIdError) as caught:
        journal.account_id(AccountKind.AGENCY_REVENUE)
    assert caught.value.rule == "owner_required"
    assert journal.is_agency_revenue_account(WATER)
    assert not journal.is_agency_revenue_account("agency_refunds:water-tehran")
    assert not journal.is_agency_revenue_account("nonsense")


# --- entries ----------------------------------------------------------------------------------


def test_a_balanced_entry_is_accepted_in_several_currencies() -> None:
    entry = _entry(*_pair(100, "IRR"), *_pair(250, "USD"))
    assert len(entry.postings) == 4
    assert journal.is_balanced([entry])


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"entry_id": ""}, "invalid_entry_id"),
        ({"entry_id": "payment i-1"}, "invalid_entry_id"),
        ({"entry_id": "x" * (journal.MAX_ENTRY_ID_CHARS + 1)}, "invalid_entry_id"),
        ({"cause": "Payment"}, "invalid_cause"),
        ({"cause": "payment"}, "invalid_cause"),
        ({"cause": "a." + "b" * journal.MAX_CAUSE_CHARS}, "invalid_cause"),
        ({"reference": ""}, "invalid_reference"),
        ({"reference": "i/1"}, "invalid_reference"),
        ({"reference": "r" * (journal.MAX_REFERENCE_CHARS + 1)}, "invalid_reference"),
        ({"occurred_at": datetime(2025, 3, 21, 10, 0)}, "naive_timestamp"),
    ],
)
def test_entry_header_rules(overrides: dict[str, object], rule: str) -> None:
    with pytest.raises(JournalEntryError) as caught:
        _entry(*_pair(), **overrides)
    assert caught.value.rule == rule


def test_posting_count_limits() -> None:
    with pytest.raises(JournalEntryError) as caught:
        _entry(Posting(WATER, 0, "IRR"))
    assert caught.value.rule == "too_few_postings"
    limit = journal.MAX_POSTINGS_PER_ENTRY
    at_limit = [Posting(WATER, -1, "IRR")] * (limit - 1)
    at_limit.append(Posting("provider_clearing:sandbox", limit - 1, "IRR"))
    assert len(_entry(*at_limit).postings) == limit
    with pytest.raises(JournalEntryError) as caught:
        _entry(*at_limit, Posting(WATER, 1, "USD"), Posting(CITY, -1, "USD"))
    assert caught.value.rule == "too_many_postings"


@pytest.mark.parametrize(
    ("postings", "rule"),
    [
        ((Posting("nowhere", 5, "IRR"), Posting(WATER, -5, "IRR")), "invalid_account"),
        ((Posting(WATER, 0, "IRR"), Posting(CITY, 0, "IRR")), "zero_amount"),
        ((Posting(WATER, True, "IRR"), Posting(CITY, -1, "IRR")), "invalid_amount"),
        ((Posting(WATER, 2**53, "IRR"), Posting(CITY, -(2**53), "IRR")), "amount_too_large"),
        ((Posting(WATER, 5, "XXX"), Posting(CITY, -5, "XXX")), "unknown_currency"),
        ((Posting(WATER, 5, "IRR"), Posting(CITY, -4, "IRR")), "unbalanced"),
        ((Posting(WATER, 5, "IRR"), Posting(CITY, -5, "USD")), "unbalanced"),
    ],
)
def test_posting_rules(postings: tuple[Posting, ...], rule: str) -> None:
    with pytest.raises(JournalEntryError) as caught:
        _entry(*postings)
    assert caught.value.rule == rule


def test_an_unbalanced_entry_names_its_currency() -> None:
    with pytest.raises(JournalEntryError) as caught:
        _entry(*_pair(100, "IRR"), Posting(WATER, 3, "USD"), Posting(CITY, -2, "USD"))
    assert caught.value.currency == "USD"


def test_the_largest_posting_is_accepted() -> None:
    entry = _entry(*_pair(journal.MAX_POSTING_MINOR))
    assert entry.postings[0].amount_minor == 2**53 - 1


def test_an_entry_cannot_be_edited_into_imbalance() -> None:
    entry = _entry(*_pair())
    with pytest.raises(JournalEntryError):
        dataclasses.replace(entry, postings=(*entry.postings[:1], Posting(CITY, -99, "IRR")))


# --- splitting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (333, (700, 300), (233, 100)),  # 233.1 / 99.9: the leftover goes to 300/100 > 700/234
        (1, (1, 1, 1), (1, 0, 0)),  # ties go to the lowest index
        (2, (1, 1, 1), (1, 1, 0)),
        (1000, (700, 300), (700, 300)),  # the whole total is the weights exactly
        (0, (5, 5), (0, 0)),
        (10, (0, 10), (0, 10)),
        (5, (3, 3, 3), (2, 2, 1)),
        (0, (), ()),
    ],
)
def test_allocate_cumulative_known_answers(
    total: int, weights: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    assert currency.allocate_cumulative(total, weights_minor=weights) == expected


def test_split_increment_never_takes_back_a_unit() -> None:
    # Largest remainder (Hamilton) would give 1 -> (1, 0, 0) then 2 -> (1, 1, 0) too, but it can
    # take a unit back as the total grows (the Alabama paradox); quotients cannot.
    assert currency.split_increment(before_minor=1, amount_minor=1, weights_minor=(1, 1, 1)) == (
        0,
        1,
        0,
    )
    running: tuple[int, ...] = (0, 0, 0)
    weights = (7, 5, 3)
    for total in range(1, 16):
        step = currency.split_increment(
            before_minor=total - 1, amount_minor=1, weights_minor=weights
        )
        assert sorted(step) == [0, 0, 1]
        running = tuple(a + b for a, b in zip(running, step, strict=True))
    assert running == weights


@pytest.mark.parametrize(
    ("total", "weights"),
    [(-1, (5,)), (6, (5,)), (1, (-1, 2)), (1, (1,) * (currency.MAX_SPLITS + 1))],
)
def test_allocate_cumulative_refuses_impossible_totals(
    total: int, weights: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError, match=r"weights|total"):
        currency.allocate_cumulative(total, weights_minor=weights)


def test_split_increment_refuses_negative_amounts() -> None:
    with pytest.raises(ValueError, match="negative"):
        currency.split_increment(before_minor=0, amount_minor=-1, weights_minor=(5,))


# --- builders ---------------------------------------------------------------------------------


def _postings(entry: journal.JournalEntry) -> list[tuple[str, int]]:
    return [(p.account, p.amount_minor) for p in entry.postings]


def test_payment_entry_debits_the_provider_and_credits_each_agency() -> None:
    entry = journal.payment_entry(
        intent_id="i-1",
        provider="sandbox",
        occurred_at=NOW,
        currency="IRR",
        amount_minor=1000,
        transfers=TRANSFERS,
    )
    assert entry.entry_id == "payment:i-1"
    assert (entry.cause, entry.reference) == ("payment.succeeded", "i-1")
    assert _postings(entry) == [("provider_clearing:sandbox", 1000), (WATER, -700), (CITY, -300)]


def test_instalments_split_pro_rata_and_add_up_to_the_transfers() -> None:
    first = journal.payment_entry(
        intent_id="i-1",
        provider="sandbox",
        occurred_at=NOW,
        currency="IRR",
        amount_minor=333,
        transfers=TRANSFERS,
    )
    rest = journal.payment_entry(
        intent_id="i-2",
        provider="sandbox",
        occurred_at=NOW,
        currency="IRR",
        amount_minor=667,
        transfers=TRANSFERS,
        paid_before_minor=333,
    )
    assert _postings(first)[1:] == [(WATER, -233), (CITY, -100)]
    assert _postings(rest)[1:] == [(WATER, -467), (CITY, -200)]
    book = journal.balances([first, rest])
    assert book[(WATER, "IRR")] == -700 and book[(CITY, "IRR")] == -300


def test_a_share_of_zero_is_left_out() -> None:
    entry = journal.payment_entry(
        intent_id="i-1",
        provider="sandbox",
        occurred_at=NOW,
        currency="IRR",
        amount_minor=1,
        transfers=(Transfer(WATER, 1, "a"), Transfer(CITY, 1, "b")),
    )
    assert _postings(entry) == [("provider_clearing:sandbox", 1), (WATER, -1)]


def test_refund_entry_is_a_compensating_entry_split_like_payments() -> None:
    refund = journal.refund_entry(
        refund_id="r-1",
        provider="sandbox",
        occurred_at=NOW,
        currency="IRR",
        amount_minor=100,
        transfers=TRANSFERS,
        paid_minor=1000,
    )
    assert refund.entry_id == "refund:r-1"
    assert refund.cause == "refund.succeeded"
    assert _postings(refund) == [
        ("agency_refunds:water-tehran", 70),
        ("agency_refunds:municipality", 30),
        ("provider_clearing:sandbox", -100),
    ]
    rest = journal.refund_entry(
        refund_id="r-2",
        provider="sandbox",
        occurred_at=NOW,
        currency="IRR",
        amount_minor=900,
        transfers=TRANSFERS,
        paid_minor=1000,
        refunded_before_minor=100,
    )
    assert _postings(rest)[:2] == [
        ("agency_refunds:water-tehran", 630),
        ("agency_refunds:municipality", 270),
    ]


def test_a_refund_beyond_what_was_paid_is_refused() -> None:
    with pytest.raises(JournalEntryError) as caught:
        journal.refund_entry(
            refund_id="r-1",
            provider="sandbox",
            occurred_at=NOW,
            currency="IRR",
            amount_minor=101,
            transfers=TRANSFERS,
            paid_minor=300,
            refunded_before_minor=200,
        )
    assert caught.value.rule == "exceeds_paid"


def test_fee_and_unallocated_entries() -> None:
    fee = journal.provider_fee_entry(
        reference="i-1", provider="stripe", occurred_at=NOW, currency="USD", fee_minor=30
    )
    assert fee.entry_id == "fee:i-1" and fee.cause == "provider.fee"
    assert _postings(fee) == [("provider_fees:stripe", 30), ("provider_clearing:stripe", -30)]
    kept = journal.unallocated_payment_entry(
        intent_id="i-9", provider="sandbox", occurred_at=NOW, currency="IRR", amount_minor=500
    )
    # the same id as the intent's payment entry: one intent is booked once, one way or the other
    assert kept.entry_id == "payment:i-9" and kept.cause == "payment.unallocated"
    assert _postings(kept) == [("provider_clearing:sandbox", 500), ("payer_clearing", -500)]
    back = journal.unallocated_refund_entry(
        refund_id="r-9", provider="sandbox", occurred_at=NOW, currency="IRR", amount_minor=500
    )
    assert _postings(back) == [("payer_clearing", 500), ("provider_clearing:sandbox", -500)]
    book = journal.balances([kept, back])
    assert book == {("provider_clearing:sandbox", "IRR"): 0, ("payer_clearing", "IRR"): 0}


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"transfers": ()}, "no_transfers"),
        ({"transfers": (Transfer("agency_refunds:inta", 1000, "tax"),)}, "invalid_account"),
        ({"transfers": (Transfer("payer_clearing", 1000, "tax"),)}, "invalid_account"),
        ({"provider": "Sandbox"}, "invalid_account"),
        ({"amount_minor": 0}, "invalid_amount"),
        ({"amount_minor": -5}, "invalid_amount"),
        ({"amount_minor": 1001}, "invalid_amount"),
        ({"paid_before_minor": 900}, "invalid_amount"),
        ({"paid_before_minor": -1}, "invalid_amount"),
        ({"currency": "XXX"}, "unknown_currency"),
        ({"intent_id": "bad id"}, "invalid_entry_id"),
    ],
)
def test_payment_entry_refusals(kwargs: dict[str, object], rule: str) -> None:
    arguments: dict[str, object] = {
        "intent_id": "i-1",
        "provider": "sandbox",
        "occurred_at": NOW,
        "currency": "IRR",
        "amount_minor": 1000,
        "transfers": TRANSFERS,
    }
    arguments.update(kwargs)
    with pytest.raises(JournalEntryError) as caught:
        journal.payment_entry(**arguments)  # type: ignore[arg-type]
    assert caught.value.rule == rule


@pytest.mark.parametrize("amount", [0, -1])
def test_two_leg_builders_refuse_non_positive_amounts(amount: int) -> None:
    with pytest.raises(JournalEntryError) as caught:
        journal.provider_fee_entry(
            reference="i-1", provider="stripe", occurred_at=NOW, currency="USD", fee_minor=amount
        )
    assert caught.value.rule == "invalid_amount"
    with pytest.raises(JournalEntryError):
        journal.unallocated_refund_entry(
            refund_id="r", provider="sandbox", occurred_at=NOW, currency="IRR", amount_minor=amount
        )


# --- balances ---------------------------------------------------------------------------------


def test_balances_are_sums_of_postings_per_account_and_currency() -> None:
    entries = [_entry(*_pair(100, "IRR")), _entry(*_pair(5, "USD")), _entry(*_pair(-40, "IRR"))]
    assert journal.balances(entries) == {
        ("provider_clearing:sandbox", "IRR"): 60,
        (WATER, "IRR"): -60,
        ("provider_clearing:sandbox", "USD"): 5,
        (WATER, "USD"): -5,
    }
    assert journal.balances([]) == {}
    assert journal.is_balanced(entries) and journal.is_balanced([])


def test_is_balanced_detects_a_forged_entry() -> None:
    entry = _entry(*_pair())
    object.__setattr__(entry, "postings", (Posting(WATER, 1, "IRR"), Posting(CITY, 1, "IRR")))
    assert not journal.is_balanced([_entry(*_pair()), entry])
