"""Obligations: what a taxpayer must file, for which period, by when, and where it stands.

Pure: the packs say which kinds of subject file which returns and from which period; the caller
passes the heads of the taxpayer's chains (tax.filing_store.heads_of_taxpayer) and today's date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from signatures.canonical import JsonValue
from tax.calendar import Period, dual_date, due_date, ended_periods
from tax.errors import RuleNotInForceError
from tax.rulepack import RulePack

# Obligations one listing shows per return kind: the most recent ones (ten years of a monthly
# return), so a listing stays bounded however old a pack's first period is.
MAX_OBLIGATIONS_PER_KIND = 120


class ObligationStatus:
    OPEN = "open"  # not filed, not yet due
    OVERDUE = "overdue"  # not filed, past its (rolled) deadline
    FILED = "filed"  # a version was accepted on or before the deadline
    FILED_LATE = "filed_late"  # the first accepted version came after the deadline


@dataclass(frozen=True)
class Head:
    """What an obligation's listing needs of a chain: its head and when it was first filed."""

    kind: str
    period: str
    filing_id: str
    version: int
    first_filed_on: date


@dataclass(frozen=True)
class Obligation:
    jurisdiction: str
    kind: str
    period: Period
    due_on: date
    due_reasons: tuple[str, ...]
    status: str
    head: Head | None

    def as_json(self, pack: RulePack) -> dict[str, JsonValue]:
        return {
            "jurisdiction": self.jurisdiction,
            "kind": self.kind,
            "type": f"tax.return.{self.kind}",
            "period": self.period.label,
            "period_start": dual_date(pack, self.period.start),  # type: ignore[dict-item]
            "period_end": dual_date(pack, self.period.end),  # type: ignore[dict-item]
            "due_on": dual_date(pack, self.due_on),  # type: ignore[dict-item]
            "due_reasons": list(self.due_reasons),
            "status": self.status,
            "filing_id": self.head.filing_id if self.head else None,
            "version": self.head.version if self.head else None,
        }


def obligations_of(
    pack: RulePack, *, subject_kind: str, heads: Iterable[Head], today: date
) -> list[Obligation]:
    """The obligations of a taxpayer of `subject_kind` in `pack`, newest period first: every
    period of every return kind it files that has ended by `today`, from the pack's first
    period (at most MAX_OBLIGATIONS_PER_KIND per kind)."""
    by_key: Mapping[tuple[str, str], Head] = {(h.kind, h.period): h for h in heads}
    result: list[Obligation] = []
    for name, kind in sorted(pack.returns.items()):
        if subject_kind not in kind.subjects:
            continue
        periods = ended_periods(pack, kind, today=today)[-MAX_OBLIGATIONS_PER_KIND:]
        for period in reversed(periods):
            try:
                due_on, reasons = due_date(pack, period, kind.deadline)
            except RuleNotInForceError:
                continue  # no deadline in the pack for it: nothing can be said to be due
            head = by_key.get((name, period.label))
            result.append(
                Obligation(
                    jurisdiction=pack.jurisdiction,
                    kind=name,
                    period=period,
                    due_on=due_on,
                    due_reasons=tuple(reasons),
                    status=_status(head, due_on=due_on, today=today),
                    head=head,
                )
            )
    return result


def _status(head: Head | None, *, due_on: date, today: date) -> str:
    if head is not None:
        return (
            ObligationStatus.FILED if head.first_filed_on <= due_on else ObligationStatus.FILED_LATE
        )
    return ObligationStatus.OVERDUE if today > due_on else ObligationStatus.OPEN
