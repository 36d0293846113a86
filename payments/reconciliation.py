"""Daily reconciliation: tie a provider's settlement report to what our journal says moved.

For one day and one provider, every settlement line and every booked movement is matched on
(kind, provider_ref): a charge and a refund never match each other, whatever their references.
Each record of either side ends up in exactly one report line, so totals computed from the lines
account for every rial on both sides:

* matched — one record on each side, same currency and amount;
* currency_differs — one on each side, different currencies (amounts are then not compared);
* amount_differs — one on each side, same currency, different amounts;
* missing_in_book — the provider settled it, the journal has nothing;
* missing_at_provider — the journal booked it, the provider did not settle it that day;
* duplicate — the key occurs more than once on one side: every record of that key, on both
  sides, becomes a duplicate line (`side` says where it comes from) and nothing of it is matched.

Lines are sorted by provider_ref, kind, side, entry_id, then amounts, so the same inputs in any
order give the same report. report_json and report_csv are documented in docs/PAYMENTS.md.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import TypeVar

from payments.errors import ReconciliationInputError
from payments.providers import Settlement, SettlementKind
from signatures.canonical import JsonValue

REPORT_FORMAT = "pishkhan.reconciliation/1"
MAX_RECONCILIATION_RECORDS = 100_000  # per side, for one day and one provider
CSV_COLUMNS = (
    "day",
    "provider",
    "status",
    "side",
    "kind",
    "provider_ref",
    "provider_amount_minor",
    "provider_currency",
    "book_amount_minor",
    "book_currency",
    "entry_id",
    "agency_accounts",
)
CSV_ACCOUNT_SEPARATOR = " "  # account ids never contain spaces (payments.journal grammar)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such a
# text cell is prefixed with an apostrophe. No identifier we issue starts with one.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_Record = TypeVar("_Record", Settlement, "BookedMovement")


class LineStatus(StrEnum):
    MATCHED = "matched"
    MISSING_IN_BOOK = "missing_in_book"
    MISSING_AT_PROVIDER = "missing_at_provider"
    AMOUNT_DIFFERS = "amount_differs"
    CURRENCY_DIFFERS = "currency_differs"
    DUPLICATE = "duplicate"


class Side(StrEnum):
    PROVIDER = "provider"
    BOOK = "book"


@dataclass(frozen=True)
class BookedMovement:
    """What the journal says moved through a provider: one charge or refund, its journal entry,
    and the agency accounts whose revenue it touched (amount_minor ≥ 0; kind gives the sign)."""

    provider: str
    provider_ref: str
    kind: SettlementKind
    amount_minor: int
    currency: str
    booked_on: date
    entry_id: str
    agency_accounts: tuple[str, ...]


@dataclass(frozen=True)
class ReconciliationLine:
    """One line of the report. Provider fields are None when no settlement is on the line, book
    fields and entry_id when no booked movement is. `side` is set on duplicate lines only."""

    status: LineStatus
    kind: SettlementKind
    provider_ref: str
    provider_amount_minor: int | None
    provider_currency: str | None
    book_amount_minor: int | None
    book_currency: str | None
    entry_id: str | None
    agency_accounts: tuple[str, ...]
    side: Side | None = None


@dataclass(frozen=True)
class ReconciliationReport:
    day: date
    provider: str
    lines: tuple[ReconciliationLine, ...]

    @property
    def matched(self) -> tuple[ReconciliationLine, ...]:
        return tuple(line for line in self.lines if line.status is LineStatus.MATCHED)

    @property
    def mismatches(self) -> tuple[ReconciliationLine, ...]:
        return tuple(line for line in self.lines if line.status is not LineStatus.MATCHED)

    def is_clean(self) -> bool:
        """Whether every line matched."""
        return not self.mismatches


def reconcile(
    *,
    day: date,
    provider: str,
    settlements: Iterable[Settlement],
    booked: Iterable[BookedMovement],
) -> ReconciliationReport:
    """Match one day's settlements of `provider` against the movements booked for it that day.

    Raises ReconciliationInputError when a record is for another provider or day, has a
    negative amount, or when a side holds more than MAX_RECONCILIATION_RECORDS records.
    """
    at_provider = _bounded(settlements, Side.PROVIDER)
    in_book = _bounded(booked, Side.BOOK)
    for index, settlement in enumerate(at_provider):
        _check_record(settlement, settlement.settled_on, Side.PROVIDER, index, day, provider)
    for index, movement in enumerate(in_book):
        _check_record(movement, movement.booked_on, Side.BOOK, index, day, provider)
    provider_by_key: defaultdict[tuple[str, str], list[Settlement]] = defaultdict(list)
    book_by_key: defaultdict[tuple[str, str], list[BookedMovement]] = defaultdict(list)
    for settlement in at_provider:
        provider_by_key[(settlement.provider_ref, settlement.kind)].append(settlement)
    for movement in in_book:
        book_by_key[(movement.provider_ref, movement.kind)].append(movement)
    lines: list[ReconciliationLine] = []
    for key in set(provider_by_key) | set(book_by_key):
        lines.extend(_lines_for(provider_by_key.get(key, []), book_by_key.get(key, [])))
    return ReconciliationReport(day=day, provider=provider, lines=tuple(sorted(lines, key=_order)))


def filter_for_agency(
    report: ReconciliationReport, account_ids: Iterable[str]
) -> ReconciliationReport:
    """The lines touching any of `account_ids`, each showing only those of its accounts.

    An agency sees its own lines and not which other agencies shared a split payment. Amounts
    stay whole-movement amounts (an agency's share is in the journal postings). Lines missing in
    the book touch no account yet, so only administrators see them.
    """
    wanted = frozenset(account_ids)
    lines = []
    for line in report.lines:
        own = tuple(account for account in line.agency_accounts if account in wanted)
        if own:
            lines.append(replace(line, agency_accounts=own))
    return replace(report, lines=tuple(lines))


def report_json(report: ReconciliationReport) -> dict[str, JsonValue]:
    """The report as JSON-ready data: format, day, provider, clean, counts (every status),
    totals per currency (from the lines) and the lines, in report order. Absent values are null."""
    counts = dict.fromkeys((status.value for status in LineStatus), 0)
    for line in report.lines:
        counts[line.status.value] += 1
    return {
        "format": REPORT_FORMAT,
        "day": report.day.isoformat(),
        "provider": report.provider,
        "clean": report.is_clean(),
        "counts": dict(counts.items()),
        "totals": _totals(report.lines),
        "lines": [_line_json(line) for line in report.lines],
    }


def report_csv(report: ReconciliationReport) -> str:
    """The lines as RFC 4180 CSV (CRLF line ends, a header row of CSV_COLUMNS); empty cells for
    absent values; agency accounts joined by CSV_ACCOUNT_SEPARATOR."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in report.lines:
        cells: list[object] = [
            report.day.isoformat(),
            report.provider,
            line.status.value,
            "" if line.side is None else line.side.value,
            line.kind.value,
            line.provider_ref,
            line.provider_amount_minor,
            line.provider_currency,
            line.book_amount_minor,
            line.book_currency,
            line.entry_id,
            CSV_ACCOUNT_SEPARATOR.join(line.agency_accounts),
        ]
        writer.writerow([_csv_cell(cell) for cell in cells])
    return out.getvalue()


# --- helpers -------------------------------------------------------------------------------------


def _bounded(records: Iterable[_Record], side: Side) -> list[_Record]:
    taken = list(itertools.islice(records, MAX_RECONCILIATION_RECORDS + 1))
    if len(taken) > MAX_RECONCILIATION_RECORDS:
        message = f"more than {MAX_RECONCILIATION_RECORDS} {side.value} records for one day"
        raise ReconciliationInputError(message, side=side.value, index=-1, rule="too_many_records")
    return taken


def _check_record(
    record: Settlement | BookedMovement,
    on: date,
    side: Side,
    index: int,
    day: date,
    provider: str,
) -> None:
    if record.provider != provider:
        rule, message = "other_provider", "the record is for another provider"
    elif on != day:
        rule, message = "other_day", "the record is for another day"
    elif record.amount_minor < 0:
        rule, message = "negative_amount", "amounts are ≥ 0; the kind gives the direction"
    else:
        return
    raise ReconciliationInputError(message, side=side.value, index=index, rule=rule)


def _lines_for(
    settlements: Sequence[Settlement], movements: Sequence[BookedMovement]
) -> list[ReconciliationLine]:
    """The report lines of one (provider_ref, kind) key."""
    accounts = tuple(sorted({a for movement in movements for a in movement.agency_accounts}))
    if len(settlements) > 1 or len(movements) > 1:
        return [
            _line(LineStatus.DUPLICATE, s, None, accounts, Side.PROVIDER) for s in settlements
        ] + [
            _line(LineStatus.DUPLICATE, None, m, tuple(sorted(m.agency_accounts)), Side.BOOK)
            for m in movements
        ]
    settlement = settlements[0] if settlements else None
    movement = movements[0] if movements else None
    if movement is None:
        status = LineStatus.MISSING_IN_BOOK
    elif settlement is None:
        status = LineStatus.MISSING_AT_PROVIDER
    elif settlement.currency != movement.currency:
        status = LineStatus.CURRENCY_DIFFERS
    elif settlement.amount_minor != movement.amount_minor:
        status = LineStatus.AMOUNT_DIFFERS
    else:
        status = LineStatus.MATCHED
    return [_line(status, settlement, movement, accounts, None)]


def _line(
    status: LineStatus,
    settlement: Settlement | None,
    movement: BookedMovement | None,
    accounts: tuple[str, ...],
    side: Side | None,
) -> ReconciliationLine:
    record = settlement or movement
    assert record is not None  # every line holds at least one record
    return ReconciliationLine(
        status=status,
        kind=record.kind,
        provider_ref=record.provider_ref,
        provider_amount_minor=None if settlement is None else settlement.amount_minor,
        provider_currency=None if settlement is None else settlement.currency,
        book_amount_minor=None if movement is None else movement.amount_minor,
        book_currency=None if movement is None else movement.currency,
        entry_id=None if movement is None else movement.entry_id,
        agency_accounts=accounts,
        side=side,
    )


def _order(line: ReconciliationLine) -> tuple[str, str, str, str, int, str, int, str, str]:
    return (
        line.provider_ref,
        line.kind.value,
        "" if line.side is None else line.side.value,
        line.entry_id or "",
        -1 if line.provider_amount_minor is None else line.provider_amount_minor,
        line.provider_currency or "",
        -1 if line.book_amount_minor is None else line.book_amount_minor,
        line.book_currency or "",
        line.status.value,
    )


def _totals(lines: Iterable[ReconciliationLine]) -> dict[str, JsonValue]:
    buckets = ("provider_charges", "provider_refunds", "book_charges", "book_refunds")
    sums: defaultdict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(buckets, 0))
    for line in lines:
        bucket = "charges" if line.kind is SettlementKind.CHARGE else "refunds"
        if line.provider_amount_minor is not None and line.provider_currency is not None:
            sums[line.provider_currency][f"provider_{bucket}"] += line.provider_amount_minor
        if line.book_amount_minor is not None and line.book_currency is not None:
            sums[line.book_currency][f"book_{bucket}"] += line.book_amount_minor
    totals: dict[str, JsonValue] = {}
    for currency in sorted(sums):
        s = sums[currency]
        provider_net = s["provider_charges"] - s["provider_refunds"]
        book_net = s["book_charges"] - s["book_refunds"]
        totals[currency] = {
            **{f"{name}_minor": value for name, value in s.items()},
            "provider_net_minor": provider_net,
            "book_net_minor": book_net,
            "difference_minor": provider_net - book_net,
        }
    return totals


def _line_json(line: ReconciliationLine) -> dict[str, JsonValue]:
    return {
        "status": line.status.value,
        "side": None if line.side is None else line.side.value,
        "kind": line.kind.value,
        "provider_ref": line.provider_ref,
        "provider_amount_minor": line.provider_amount_minor,
        "provider_currency": line.provider_currency,
        "book_amount_minor": line.book_amount_minor,
        "book_currency": line.book_currency,
        "entry_id": line.entry_id,
        "agency_accounts": list(line.agency_accounts),
    }


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
