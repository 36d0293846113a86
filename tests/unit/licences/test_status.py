"""Unit tests of licences.status: the agency actions' state machine and the effective status."""

from __future__ import annotations

from datetime import date

import pytest

from licences.errors import LicenceStateError
from licences.status import (
    AgencyAction,
    EffectiveStatus,
    LicenceStatus,
    apply_action,
    effective_status,
)
from licences.terms import Term

V, S, R = LicenceStatus.VALID, LicenceStatus.SUSPENDED, LicenceStatus.REVOKED
SUSPEND, REINSTATE, REVOKE = AgencyAction.SUSPEND, AgencyAction.REINSTATE, AgencyAction.REVOKE

ALLOWED = {(V, SUSPEND): S, (S, REINSTATE): V, (V, REVOKE): R, (S, REVOKE): R}


@pytest.mark.parametrize("status", list(LicenceStatus))
@pytest.mark.parametrize("action", list(AgencyAction))
def test_every_action_from_every_status(status: LicenceStatus, action: AgencyAction) -> None:
    expected = ALLOWED.get((status, action))
    if expected is not None:
        assert apply_action(status, action) is expected
        return
    with pytest.raises(LicenceStateError) as caught:
        apply_action(status, action)
    assert (caught.value.action, caught.value.status) == (action.value, status.value)
    assert str(caught.value) == f"cannot {action.value} a licence that is {status.value}"


def test_the_table_above_covers_four_transitions_and_five_refusals() -> None:
    refused = [
        (status, action)
        for status in LicenceStatus
        for action in AgencyAction
        if (status, action) not in ALLOWED
    ]
    assert len(refused) == 5  # suspend S, reinstate V, and all three on R


def test_state_error_for_a_concurrent_change() -> None:
    error = LicenceStateError("concurrent_change")
    assert (error.action, error.status) == ("concurrent_change", None)


TERM = Term(date(2020, 1, 1), date(2024, 12, 31))


@pytest.mark.parametrize(
    ("status", "today", "expected"),
    [
        (V, date(2020, 1, 1), EffectiveStatus.VALID),  # first day
        (V, date(2024, 12, 31), EffectiveStatus.VALID),  # last day (inclusive)
        (V, date(2025, 1, 1), EffectiveStatus.EXPIRED),
        (V, date(2019, 12, 31), EffectiveStatus.NOT_YET_VALID),
        (S, date(2022, 1, 1), EffectiveStatus.SUSPENDED),
        (S, date(2025, 1, 1), EffectiveStatus.SUSPENDED),  # suspended outranks expired
        (S, date(2019, 12, 31), EffectiveStatus.SUSPENDED),
        (R, date(2022, 1, 1), EffectiveStatus.REVOKED),
        (R, date(2025, 1, 1), EffectiveStatus.REVOKED),  # revoked outranks expired
        (R, date(2019, 12, 31), EffectiveStatus.REVOKED),
    ],
)
def test_effective_status_precedence(
    status: LicenceStatus, today: date, expected: EffectiveStatus
) -> None:
    assert effective_status(status, TERM, today=today) is expected
