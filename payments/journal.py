"""The double-entry book: accounts, balanced journal entries and one builder per money movement.

Sign convention: a posting's `amount_minor` is signed, **positive = debit, negative = credit**.
Every entry balances per currency, and every balance is derived from postings (`balances`).

Accounts (`kind` or `kind:owner`, see parse_account_id): provider_clearing:<provider> (asset,
collected by a provider, not yet settled), agency_revenue:<agency-id> (revenue),
agency_refunds:<agency-id> (contra-revenue), provider_fees:<provider> (expense, borne by the
service), payer_clearing (liability: money collected for a payable that takes no more, owed back
to the payer). docs/PAYMENTS.md has the T-account table of every builder.

Each builder returns one entry whose `entry_id` is `<movement>:<reference>` (movement payment,
refund or fee), so a unique constraint on entry ids books each intent, refund and fee once: a
payment and an unallocated payment of one intent share the id `payment:<intent-id>`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from payments.currency import is_accepted_currency, split_increment
from payments.errors import AccountIdError, JournalEntryError

MAX_ACCOUNT_ID_CHARS = 96
MAX_POSTINGS_PER_ENTRY = 16  # a payment split over MAX_TRANSFERS (5) needs 6
MAX_POSTING_MINOR = 2**53 - 1  # = signatures.canonical.MAX_SAFE_INTEGER: exact in JSON
MAX_CAUSE_CHARS = 64
MAX_REFERENCE_CHARS = 128
MAX_ENTRY_ID_CHARS = len("payment:") + MAX_REFERENCE_CHARS

CAUSE_PAYMENT_SUCCEEDED = "payment.succeeded"
CAUSE_PAYMENT_UNALLOCATED = "payment.unallocated"
CAUSE_REFUND_SUCCEEDED = "refund.succeeded"
CAUSE_REFUND_UNALLOCATED = "refund.unallocated"
CAUSE_PROVIDER_FEE = "provider.fee"

# [0-9], never \d: \d also matches Persian and Arabic-Indic digits.
_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_AGENCY_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")  # as agency subjects in signatures.envelope
_CAUSE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
_REFERENCE = re.compile(r"[A-Za-z0-9._:-]+")
_ENTRY_ID = re.compile(r"[A-Za-z0-9._:/-]+")


class AccountKind(StrEnum):
    PAYER_CLEARING = "payer_clearing"  # no owner
    PROVIDER_CLEARING = "provider_clearing"  # owner: provider name
    PROVIDER_FEES = "provider_fees"  # owner: provider name
    AGENCY_REVENUE = "agency_revenue"  # owner: agency id
    AGENCY_REFUNDS = "agency_refunds"  # owner: agency id


_OWNER_GRAMMAR: dict[AccountKind, re.Pattern[str] | None] = {
    AccountKind.PAYER_CLEARING: None,
    AccountKind.PROVIDER_CLEARING: _PROVIDER_NAME,
    AccountKind.PROVIDER_FEES: _PROVIDER_NAME,
    AccountKind.AGENCY_REVENUE: _AGENCY_ID,
    AccountKind.AGENCY_REFUNDS: _AGENCY_ID,
}


@dataclass(frozen=True)
class AccountId:
    """A parsed account id; str() gives the text form."""

    kind: AccountKind
    owner: str | None

    def __str__(self) -> str:
        return self.kind.value if self.owner is None else f"{self.kind.value}:{self.owner}"


def parse_account_id(text: str) -> AccountId:
    """Parse `payer_clearing`, `provider_clearing:<provider>`, `provider_fees:<provider>`,
    `agency_revenue:<agency-id>` or `agency_refunds:<agency-id>`.

    A provider name is 1-32 of [a-z0-9_] starting with a letter; an agency id is 2-63 of
    [a-z0-9-] not starting with "-" (as in `agency:` subjects). Raises AccountIdError with rule
    too_long, unknown_kind, owner_required, owner_forbidden or invalid_owner.
    """
    if len(text) > MAX_ACCOUNT_ID_CHARS:
        raise AccountIdError(f"longer than {MAX_ACCOUNT_ID_CHARS} characters", rule="too_long")
    kind_text, colon, owner = text.partition(":")
    try:
        kind = AccountKind(kind_text)
    except ValueError:
        raise AccountIdError("not a known account kind", rule="unknown_kind") from None
    grammar = _OWNER_GRAMMAR[kind]
    if grammar is None:
        if colon:
            raise AccountIdError(f"{kind.value} has no owner", rule="owner_forbidden")
        return AccountId(kind=kind, owner=None)
    if not colon:
        raise AccountIdError(f"{kind.value} needs an owner", rule="owner_required")
    if not grammar.fullmatch(owner):
        raise AccountIdError(f"not a valid owner of {kind.value}", rule="invalid_owner")
    return AccountId(kind=kind, owner=owner)


def account_id(kind: AccountKind, owner: str | None = None) -> str:
    """The text id of `kind` owned by `owner` (None for payer_clearing).

    Raises AccountIdError as parse_account_id does.
    """
    text = kind.value if owner is None else f"{kind.value}:{owner}"
    parse_account_id(text)
    return text


def is_account_id(text: str) -> bool:
    """Whether parse_account_id accepts `text`."""
    try:
        parse_account_id(text)
    except AccountIdError:
        return False
    return True


# --- entries --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    """One line of an entry: `amount_minor` is signed, + debit, − credit, never zero."""

    account: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class JournalEntry:
    """A balanced set of postings for one money movement; construction checks it (make_entry).

    `cause` names the movement ("payment.succeeded"), `reference` what it is about (an intent
    or refund id), `occurred_at` is aware.
    """

    entry_id: str
    occurred_at: datetime
    cause: str
    reference: str
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        _check_header(self)
        _check_postings(self.postings)


def make_entry(
    *,
    entry_id: str,
    occurred_at: datetime,
    cause: str,
    reference: str,
    postings: Sequence[Posting],
) -> JournalEntry:
    """A checked entry. Raises JournalEntryError with rule invalid_entry_id, invalid_cause,
    invalid_reference, naive_timestamp, too_few_postings (< 2), too_many_postings
    (> MAX_POSTINGS_PER_ENTRY), invalid_account, zero_amount, amount_too_large
    (|amount| > MAX_POSTING_MINOR), unknown_currency or unbalanced (a currency whose postings do
    not sum to zero; `currency` names it)."""
    return JournalEntry(
        entry_id=entry_id,
        occurred_at=occurred_at,
        cause=cause,
        reference=reference,
        postings=tuple(postings),
    )


def _check_header(entry: JournalEntry) -> None:
    if len(entry.entry_id) > MAX_ENTRY_ID_CHARS or not _ENTRY_ID.fullmatch(entry.entry_id):
        raise JournalEntryError(
            "the entry id is 1-136 of [A-Za-z0-9._:/-]", rule="invalid_entry_id"
        )
    if len(entry.cause) > MAX_CAUSE_CHARS or not _CAUSE.fullmatch(entry.cause):
        raise JournalEntryError("the cause is a dotted lowercase name", rule="invalid_cause")
    if len(entry.reference) > MAX_REFERENCE_CHARS or not _REFERENCE.fullmatch(entry.reference):
        raise JournalEntryError(
            "the reference is 1-128 of [A-Za-z0-9._:-]", rule="invalid_reference"
        )
    if entry.occurred_at.utcoffset() is None:
        raise JournalEntryError("occurred_at must carry a time zone", rule="naive_timestamp")


def _check_postings(postings: tuple[Posting, ...]) -> None:
    if len(postings) < 2:
        raise JournalEntryError("an entry needs at least two postings", rule="too_few_postings")
    if len(postings) > MAX_POSTINGS_PER_ENTRY:
        raise JournalEntryError(
            f"more than {MAX_POSTINGS_PER_ENTRY} postings", rule="too_many_postings"
        )
    sums: dict[str, int] = defaultdict(int)
    for posting in postings:
        _check_posting(posting)
        sums[posting.currency] += posting.amount_minor
    for currency, total in sorted(sums.items()):
        if total != 0:
            raise JournalEntryError(
                "debits and credits differ", rule="unbalanced", currency=currency
            )


def _check_posting(posting: Posting) -> None:
    if not is_account_id(posting.account):
        raise JournalEntryError("a posting names no valid account", rule="invalid_account")
    amount = posting.amount_minor
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise JournalEntryError("amount_minor must be an integer", rule="invalid_amount")
    if amount == 0:
        raise JournalEntryError("a posting never moves zero", rule="zero_amount")
    if abs(amount) > MAX_POSTING_MINOR:
        raise JournalEntryError(f"above {MAX_POSTING_MINOR} in magnitude", rule="amount_too_large")
    if not is_accepted_currency(posting.currency):
        raise JournalEntryError(
            "not an accepted currency", rule="unknown_currency", currency=posting.currency
        )


def balances(entries: Iterable[JournalEntry]) -> dict[tuple[str, str], int]:
    """The balance of every (account, currency) any posting touched (zero balances included),
    debit positive, derived from the postings alone."""
    result: dict[tuple[str, str], int] = defaultdict(int)
    for entry in entries:
        for posting in entry.postings:
            result[(posting.account, posting.currency)] += posting.amount_minor
    return dict(result)


def is_balanced(entries: Iterable[JournalEntry]) -> bool:
    """Whether every entry, and so the book, sums to zero in each currency."""
    for entry in entries:
        sums: dict[str, int] = defaultdict(int)
        for posting in entry.postings:
            sums[posting.currency] += posting.amount_minor
        if any(total != 0 for total in sums.values()):
            return False
    return True


# --- builders, one per money movement -------------------------------------------------------------


class Split(Protocol):
    """What a builder needs of a transfer (payments.payables.Transfer is one)."""

    @property
    def account(self) -> str: ...

    @property
    def amount_minor(self) -> int: ...


def payment_entry(
    *,
    intent_id: str,
    provider: str,
    occurred_at: datetime,
    currency: str,
    amount_minor: int,
    transfers: Sequence[Split],
    paid_before_minor: int = 0,
) -> JournalEntry:
    """A captured payment: debit provider_clearing:<provider>, credit each transfer's
    agency_revenue account its share (split_increment over the transfer amounts, so an
    instalment after `paid_before_minor` already paid gets its exact pro-rata part).

    Raises JournalEntryError: no_transfers, invalid_account (a transfer account that is not
    agency_revenue), invalid_amount (amount ≤ 0 or beyond what is left to pay), and make_entry's.
    """
    shares = _shares(transfers, before_minor=paid_before_minor, amount_minor=amount_minor)
    postings = [Posting(_provider_account(provider), amount_minor, currency)]
    for transfer, share in zip(transfers, shares, strict=True):
        if share:
            postings.append(Posting(transfer.account, -share, currency))
    return _entry("payment", CAUSE_PAYMENT_SUCCEEDED, intent_id, occurred_at, postings)


def refund_entry(
    *,
    refund_id: str,
    provider: str,
    occurred_at: datetime,
    currency: str,
    amount_minor: int,
    transfers: Sequence[Split],
    paid_minor: int,
    refunded_before_minor: int = 0,
) -> JournalEntry:
    """A refund (full or partial) as a new compensating entry: debit each transfer agency's
    agency_refunds account its share, credit provider_clearing:<provider> the amount.

    Shares are split_increment from `refunded_before_minor` over the transfer amounts, the same
    rule payments use, so no transfer is ever refunded more than was paid to it.
    Raises JournalEntryError: exceeds_paid (refunded_before + amount > paid_minor), and
    payment_entry's rules.
    """
    if refunded_before_minor + amount_minor > paid_minor:
        raise JournalEntryError("the refund exceeds what was paid", rule="exceeds_paid")
    shares = _shares(transfers, before_minor=refunded_before_minor, amount_minor=amount_minor)
    postings = []
    for transfer, share in zip(transfers, shares, strict=True):
        if share:
            owner = parse_account_id(transfer.account).owner
            postings.append(Posting(account_id(AccountKind.AGENCY_REFUNDS, owner), share, currency))
    postings.append(Posting(_provider_account(provider), -amount_minor, currency))
    return _entry("refund", CAUSE_REFUND_SUCCEEDED, refund_id, occurred_at, postings)


def provider_fee_entry(
    *, reference: str, provider: str, occurred_at: datetime, currency: str, fee_minor: int
) -> JournalEntry:
    """The provider's fee for a charge or refund (`reference`): debit provider_fees:<provider>,
    credit provider_clearing:<provider>. Raises JournalEntryError: invalid_amount (fee ≤ 0), and
    make_entry's rules."""
    fees = account_id(AccountKind.PROVIDER_FEES, _provider_name(provider))
    legs = (fees, _provider_account(provider), fee_minor, currency)
    return _two_legs("fee", CAUSE_PROVIDER_FEE, reference, occurred_at, legs)


def unallocated_payment_entry(
    *, intent_id: str, provider: str, occurred_at: datetime, currency: str, amount_minor: int
) -> JournalEntry:
    """Money the provider collected for a payable that takes no more (already paid, cancelled):
    debit provider_clearing:<provider>, credit payer_clearing (owed back to the payer).
    Raises JournalEntryError: invalid_amount (amount ≤ 0), and make_entry's rules."""
    legs = (_provider_account(provider), AccountKind.PAYER_CLEARING.value, amount_minor, currency)
    return _two_legs("payment", CAUSE_PAYMENT_UNALLOCATED, intent_id, occurred_at, legs)


def unallocated_refund_entry(
    *, refund_id: str, provider: str, occurred_at: datetime, currency: str, amount_minor: int
) -> JournalEntry:
    """Returning unallocated money: debit payer_clearing, credit provider_clearing:<provider>.
    Raises JournalEntryError: invalid_amount (amount ≤ 0), and make_entry's rules."""
    legs = (AccountKind.PAYER_CLEARING.value, _provider_account(provider), amount_minor, currency)
    return _two_legs("refund", CAUSE_REFUND_UNALLOCATED, refund_id, occurred_at, legs)


def _two_legs(
    movement: str,
    cause: str,
    reference: str,
    occurred_at: datetime,
    legs: tuple[str, str, int, str],  # debit account, credit account, amount, currency
) -> JournalEntry:
    debit, credit, amount_minor, currency = legs
    _check_positive(amount_minor)
    postings = [Posting(debit, amount_minor, currency), Posting(credit, -amount_minor, currency)]
    return _entry(movement, cause, reference, occurred_at, postings)


def _shares(transfers: Sequence[Split], *, before_minor: int, amount_minor: int) -> tuple[int, ...]:
    if not transfers:
        raise JournalEntryError("a payable has at least one transfer", rule="no_transfers")
    for transfer in transfers:
        if not is_agency_revenue_account(transfer.account):
            raise JournalEntryError(
                "a transfer goes to an agency_revenue account", rule="invalid_account"
            )
    _check_positive(amount_minor)
    weights = [transfer.amount_minor for transfer in transfers]
    if before_minor < 0 or before_minor + amount_minor > sum(weights):
        raise JournalEntryError("the amount is beyond what is left", rule="invalid_amount")
    return split_increment(
        before_minor=before_minor, amount_minor=amount_minor, weights_minor=weights
    )


def _check_positive(amount_minor: int) -> None:
    if amount_minor <= 0:
        raise JournalEntryError("the amount must be positive", rule="invalid_amount")


def is_agency_revenue_account(text: str) -> bool:
    """Whether `text` is a valid agency_revenue:<agency-id> account id."""
    try:
        return parse_account_id(text).kind is AccountKind.AGENCY_REVENUE
    except AccountIdError:
        return False


def _provider_name(provider: str) -> str:
    if not _PROVIDER_NAME.fullmatch(provider):
        raise JournalEntryError("not a valid provider name", rule="invalid_account")
    return provider


def _provider_account(provider: str) -> str:
    return account_id(AccountKind.PROVIDER_CLEARING, _provider_name(provider))


def _entry(
    movement: str, cause: str, reference: str, occurred_at: datetime, postings: list[Posting]
) -> JournalEntry:
    return make_entry(
        entry_id=f"{movement}:{reference}",
        occurred_at=occurred_at,
        cause=cause,
        reference=reference,
        postings=postings,
    )
