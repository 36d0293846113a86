"""A licence's status: what is stored, what it is on a given day, and the agencies' actions.

Stored: valid | suspended | revoked. Effective on a day: revoked > suspended > expired (the day
is after expires_on) > not_yet_valid (before valid_from) > valid. Agency actions: suspend
valid→suspended, reinstate suspended→valid, revoke valid|suspended→revoked (final). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from types import MappingProxyType

from licences.errors import LicenceStateError
from licences.terms import Term


class LicenceStatus(StrEnum):
    """What the licences table stores; expiry is never stored (it follows from the term)."""

    VALID = "valid"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class EffectiveStatus(StrEnum):
    """A licence's status on a given day."""

    VALID = "valid"
    EXPIRED = "expired"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    NOT_YET_VALID = "not_yet_valid"


class AgencyAction(StrEnum):
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    REVOKE = "revoke"


# (from, action) → to; every pair not listed is refused.
TRANSITIONS: Mapping[tuple[LicenceStatus, AgencyAction], LicenceStatus] = MappingProxyType(
    {
        (LicenceStatus.VALID, AgencyAction.SUSPEND): LicenceStatus.SUSPENDED,
        (LicenceStatus.SUSPENDED, AgencyAction.REINSTATE): LicenceStatus.VALID,
        (LicenceStatus.VALID, AgencyAction.REVOKE): LicenceStatus.REVOKED,
        (LicenceStatus.SUSPENDED, AgencyAction.REVOKE): LicenceStatus.REVOKED,
    }
)


def effective_status(status: LicenceStatus, term: Term, *, today: date) -> EffectiveStatus:
    """The status on `today`: an agency's decision outranks the calendar, so a revoked or
    suspended licence says so even after it has expired."""
    if status is LicenceStatus.REVOKED:
        return EffectiveStatus.REVOKED
    if status is LicenceStatus.SUSPENDED:
        return EffectiveStatus.SUSPENDED
    if today > term.expires_on:
        return EffectiveStatus.EXPIRED
    if today < term.valid_from:
        return EffectiveStatus.NOT_YET_VALID
    return EffectiveStatus.VALID


def apply_action(status: LicenceStatus, action: AgencyAction) -> LicenceStatus:
    """The stored status after `action`. Expiry does not matter: an expired licence can still be
    suspended or revoked (its renewal would otherwise revive it).

    Raises LicenceStateError(action, status=…) when the action does not apply (suspending a
    suspended licence, reinstating a valid one, anything on a revoked one)."""
    after = TRANSITIONS.get((status, action))
    if after is None:
        raise LicenceStateError(action.value, status=status.value)
    return after
