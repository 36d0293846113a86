"""Hypothesis: the pure payments model keeps its books, whatever payers, providers and agencies do.

A state machine issues payables (1-5 transfers, with or without instalments, in two currencies),
pays them through intents and provider events (full payments, instalments, duplicate webhook
deliveries, payments that arrive for a payable that takes no more), fails intents, refunds (full
and partial, each preceded by a stale compare-and-set attempt that must be refused), returns
unallocated money and cancels payables. After every step:

- the book balances per currency, and balances equal a running sum kept step by step;
- no payable is paid twice or over-paid, and each intent marks its payable paid at most once;
- agency revenue minus refunds equals succeeded payments minus refunds, per currency, and each
  agency account holds exactly the cumulative split of what its payables received;
- provider clearing holds payments plus unallocated money minus refunds; payer clearing owes
  exactly the unallocated money not yet returned.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from payments import currency, intents, journal, payables
from payments.errors import PayableStateError, StaleRefundableAmountError
from payments.journal import AccountKind, JournalEntry
from payments.payables import Payable
from payments.providers import ProviderEvent, ProviderStatus
from signatures.canonical import JsonValue

AGENCIES = ("water-tehran", "municipality", "inta", "police", "registry")
CURRENCIES = ("IRR", "USD")
PROVIDER = "sandbox"
DEBTOR = "ir-nid:0499370899"
MAX_TRANSFER_MINOR = 10**9


class PaymentsBook(RuleBasedStateMachine):
    payable_ids = Bundle("payable_ids")

    @initialize()
    def start(self) -> None:
        self.payables: dict[str, Payable] = {}
        self.entries: list[JournalEntry] = []
        self.running: dict[tuple[str, str], int] = defaultdict(int)
        self.entry_ids: set[str] = set()
        self.succeeded: dict[str, int] = defaultdict(int)  # allocated to payables
        self.refunded: dict[str, int] = defaultdict(int)
        self.unallocated: dict[str, int] = defaultdict(int)
        self.returned: dict[str, int] = defaultdict(int)
        self.paid_marks: dict[str, int] = defaultdict(int)  # per intent
        self.now = datetime(2025, 3, 21, 8, 0, tzinfo=UTC)
        self.counter = 0

    def _next(self, prefix: str) -> str:
        self.counter += 1
        self.now += timedelta(seconds=7)
        return f"{prefix}-{self.counter}"

    def _book(self, entry: JournalEntry) -> None:
        assert entry.entry_id not in self.entry_ids  # each intent and refund booked once
        self.entry_ids.add(entry.entry_id)
        self.entries.append(entry)
        for posting in entry.postings:
            self.running[(posting.account, posting.currency)] += posting.amount_minor

    # --- rules ---------------------------------------------------------------------------------

    @rule(
        target=payable_ids,
        amounts=st.lists(st.integers(1, MAX_TRANSFER_MINOR), min_size=1, max_size=5),
        agencies=st.lists(st.sampled_from(AGENCIES), min_size=5, max_size=5),
        code=st.sampled_from(CURRENCIES),
        instalments=st.booleans(),
    )
    def issue(self, amounts: list[int], agencies: list[str], code: str, instalments: bool) -> str:
        transfers: list[JsonValue] = [
            {"account": f"agency_revenue:{agency}", "amount_minor": amount, "category": f"c{i}"}
            for i, (amount, agency) in enumerate(zip(amounts, agencies, strict=False))
        ]
        payload: JsonValue = {
            "kind": "fee",
            "debtor": DEBTOR,
            "amount": {"amount_minor": sum(amounts), "currency": code},
            "transfers": transfers,
            "due_on": "2025-06-01",
            "reference": "service.fee",
            "allows_instalments": instalments,
        }
        draft = payables.parse_payable_payload(payload)
        payable_id = self._next("p")
        issuer = f"agency:{agencies[0]}"
        self.payables[payable_id] = payables.issue_payable(
            draft, payable_id=payable_id, issuer=issuer
        )
        return payable_id

    @rule(payable_id=payable_ids, data=st.data(), redeliver=st.booleans())
    def pay(self, payable_id: str, data: st.DataObject, redeliver: bool) -> None:
        payable = self.payables[payable_id]
        if payables.is_open(payable) and payable.allows_instalments:
            amount = data.draw(st.integers(1, payable.outstanding_minor), label="instalment")
            if payable.payments_made + 1 >= payables.MAX_PAYMENTS_PER_PAYABLE:
                amount = payable.outstanding_minor
        elif payables.is_open(payable):
            amount = payable.outstanding_minor
        else:  # a second payment (two tabs, a late provider) for a payable that takes no more
            amount = data.draw(st.integers(1, payable.amount_minor), label="late payment")
        intent, event = self._succeed(payable, amount, redeliver)
        if event is None or not intents.marks_paid(event):
            return
        self.paid_marks[intent.intent_id] += 1
        try:
            after = payables.apply_payment(payable, amount_minor=amount)
        except PayableStateError:  # PayableAlreadyPaidError included: keep it, owe it back
            assert not payables.is_open(payable)
            self._book(
                journal.unallocated_payment_entry(
                    intent_id=intent.intent_id,
                    provider=PROVIDER,
                    occurred_at=event.at,
                    currency=payable.currency,
                    amount_minor=amount,
                )
            )
            self.unallocated[payable.currency] += amount
            return
        self._book(
            journal.payment_entry(
                intent_id=intent.intent_id,
                provider=PROVIDER,
                occurred_at=event.at,
                currency=payable.currency,
                amount_minor=amount,
                transfers=payable.transfers,
                paid_before_minor=payable.paid_minor,
            )
        )
        self.payables[payable_id] = after
        self.succeeded[payable.currency] += amount

    def _succeed(
        self, payable: Payable, amount: int, redeliver: bool
    ) -> tuple[intents.Intent, intents.IntentEvent | None]:
        intent, _ = intents.create_intent(
            intent_id=self._next("i"),
            payable_id=payable.payable_id,
            provider=PROVIDER,
            amount_minor=amount,
            currency=payable.currency,
            created_at=self.now,
        )
        intent = intents.attach_charge(intent, provider_ref=f"ch-{intent.intent_id}")
        webhook = ProviderEvent(
            provider=PROVIDER,
            event_id=f"ev-{intent.intent_id}",
            charge_ref=f"ch-{intent.intent_id}",
            status=ProviderStatus.SUCCEEDED,
            amount_minor=amount,
            currency=payable.currency,
            occurred_at=self.now + timedelta(seconds=1),
        )
        result = intents.apply_provider_event(intent, webhook)
        assert result.changed and result.intent.state is intents.IntentState.SUCCEEDED
        if redeliver:  # the provider delivers the same event twice: nothing more happens
            again = intents.apply_provider_event(result.intent, webhook)
            assert again.outcome is intents.ProviderEventOutcome.DUPLICATE and again.event is None
        return result.intent, result.event

    @rule(payable_id=payable_ids, code=st.sampled_from(["card_declined", "insufficient_funds"]))
    def fail(self, payable_id: str, code: str) -> None:
        payable = self.payables[payable_id]
        intent, _ = intents.create_intent(
            intent_id=self._next("i"),
            payable_id=payable_id,
            provider=PROVIDER,
            amount_minor=payable.amount_minor,
            currency=payable.currency,
            created_at=self.now,
        )
        intent = intents.attach_charge(intent, provider_ref="ch-failed")
        webhook = ProviderEvent(
            PROVIDER, "ev-f", "ch-failed", ProviderStatus.FAILED, payable.amount_minor,
            payable.currency, self.now, failure_code=code,
        )  # fmt: skip
        result = intents.apply_provider_event(intent, webhook)
        assert result.event is not None and not intents.marks_paid(result.event)
        assert result.intent.state is intents.IntentState.FAILED
        assert self.payables[payable_id] == payable

    @rule(payable_id=payable_ids, data=st.data(), stale_by=st.integers(1, 10**6))
    def refund(self, payable_id: str, data: st.DataObject, stale_by: int) -> None:
        payable = self.payables[payable_id]
        refundable = payables.refundable_minor(payable)
        if refundable == 0:
            return
        amount = data.draw(st.one_of(st.just(refundable), st.integers(1, refundable)))
        stale = data.draw(st.sampled_from([refundable + stale_by, refundable - stale_by]))
        try:
            payables.apply_refund(payable, amount_minor=amount, expected_refundable_minor=stale)
        except StaleRefundableAmountError as error:
            assert (error.expected, error.actual) == (stale, refundable)
        else:
            raise AssertionError("a stale compare-and-set went through")
        after = payables.apply_refund(
            payable, amount_minor=amount, expected_refundable_minor=refundable
        )
        self._book(
            journal.refund_entry(
                refund_id=self._next("r"),
                provider=PROVIDER,
                occurred_at=self.now,
                currency=payable.currency,
                amount_minor=amount,
                transfers=payable.transfers,
                paid_minor=payable.paid_minor,
                refunded_before_minor=payable.refunded_minor,
            )
        )
        self.payables[payable_id] = after
        self.refunded[payable.currency] += amount

    @rule(code=st.sampled_from(CURRENCIES), data=st.data())
    def return_unallocated(self, code: str, data: st.DataObject) -> None:
        owed = self.unallocated[code] - self.returned[code]
        if owed == 0:
            return
        amount = data.draw(st.integers(1, owed))
        self._book(
            journal.unallocated_refund_entry(
                refund_id=self._next("r"),
                provider=PROVIDER,
                occurred_at=self.now,
                currency=code,
                amount_minor=amount,
            )
        )
        self.returned[code] += amount

    @rule(payable_id=payable_ids)
    def cancel(self, payable_id: str) -> None:
        payable = self.payables[payable_id]
        if payables.is_open(payable):
            self.payables[payable_id] = payables.cancel_payable(payable)

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        assert journal.is_balanced(self.entries)
        derived = journal.balances(self.entries)
        assert derived == {key: value for key, value in self.running.items()}
        for code in CURRENCIES:
            assert sum(v for (_, c), v in derived.items() if c == code) == 0

    @invariant()
    def nothing_paid_twice(self) -> None:
        assert all(marks == 1 for marks in self.paid_marks.values())
        for payable in self.payables.values():
            assert 0 <= payable.refunded_minor <= payable.paid_minor <= payable.amount_minor
            assert payable.payments_made <= payables.MAX_PAYMENTS_PER_PAYABLE
            if not payable.allows_instalments:
                assert payable.payments_made <= 1
            if payable.status is payables.PayableStatus.PAID:
                assert payable.paid_minor == payable.amount_minor

    @invariant()
    def revenue_matches_payments(self) -> None:
        derived = journal.balances(self.entries)
        for code in CURRENCIES:
            revenue = -_total(derived, AccountKind.AGENCY_REVENUE, code)
            refunds = _total(derived, AccountKind.AGENCY_REFUNDS, code)
            assert revenue - refunds == self.succeeded[code] - self.refunded[code]
            clearing = _total(derived, AccountKind.PROVIDER_CLEARING, code)
            assert clearing == (
                self.succeeded[code] + self.unallocated[code]
                - self.refunded[code] - self.returned[code]
            )  # fmt: skip
            owed = -_total(derived, AccountKind.PAYER_CLEARING, code)
            assert owed == self.unallocated[code] - self.returned[code]

    @invariant()
    def each_agency_holds_its_cumulative_split(self) -> None:
        expected_revenue: dict[tuple[str, str], int] = defaultdict(int)
        expected_refunds: dict[tuple[str, str], int] = defaultdict(int)
        for payable in self.payables.values():
            weights = [t.amount_minor for t in payable.transfers]
            paid = currency.allocate_cumulative(payable.paid_minor, weights_minor=weights)
            back = currency.allocate_cumulative(payable.refunded_minor, weights_minor=weights)
            for transfer, share, refund in zip(payable.transfers, paid, back, strict=True):
                assert 0 <= refund <= share <= transfer.amount_minor
                owner = journal.parse_account_id(transfer.account).owner
                expected_revenue[(transfer.account, payable.currency)] -= share
                refunds_account = journal.account_id(AccountKind.AGENCY_REFUNDS, owner)
                expected_refunds[(refunds_account, payable.currency)] += refund
        derived = journal.balances(self.entries)
        for key, value in {**expected_revenue, **expected_refunds}.items():
            assert derived.get(key, 0) == value


def _total(balances: dict[tuple[str, str], int], kind: AccountKind, code: str) -> int:
    return sum(
        value
        for (account, c), value in balances.items()
        if c == code and journal.parse_account_id(account).kind is kind
    )


PaymentsBook.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestPaymentsBook = PaymentsBook.TestCase


weights_lists = st.lists(st.integers(0, 10**12), min_size=1, max_size=currency.MAX_SPLITS).filter(
    lambda weights: sum(weights) > 0
)


@given(weights=weights_lists, data=st.data())
def test_allocation_is_exact_bounded_and_monotone(weights: list[int], data: st.DataObject) -> None:
    whole = sum(weights)
    total = data.draw(st.integers(0, whole - 1))
    here = currency.allocate_cumulative(total, weights_minor=weights)
    there = currency.allocate_cumulative(total + 1, weights_minor=weights)
    assert sum(here) == total and sum(there) == total + 1
    assert all(0 <= a <= b <= w for a, b, w in zip(here, there, weights, strict=True))
    # at least the floor of its exact quota, and fewer than len(weights) units above it
    for share, weight in zip(here, weights, strict=True):
        assert total * weight // whole <= share < total * weight // whole + len(weights)
    assert currency.allocate_cumulative(whole, weights_minor=weights) == tuple(weights)


@given(weights=weights_lists, data=st.data())
def test_increments_add_up_to_the_cumulative_split(weights: list[int], data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, sum(weights)), max_size=6)))
    running = [0] * len(weights)
    before = 0
    for cut in [*cuts, sum(weights)]:
        step = currency.split_increment(
            before_minor=before, amount_minor=cut - before, weights_minor=weights
        )
        assert all(share >= 0 for share in step) and sum(step) == cut - before
        running = [r + s for r, s in zip(running, step, strict=True)]
        before = cut
    assert running == weights
