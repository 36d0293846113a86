"""The licence store on SQLite and PostgreSQL: the migration matches licences/schema.py, every
value survives a round trip, a taken number and a second renewal awaiting payment are refused
without breaking the transaction, the compare-and-set on version lets one writer win, pages are
exact and newest first, events are numbered 1, 2, …"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, Index, MetaData, insert
from sqlalchemy.exc import IntegrityError

from licences import renewal_store, schema, store
from licences.errors import DuplicateLicenceNumberError, LicenceStateError, RenewalPendingError
from licences.renewal_store import StoredRenewal
from licences.status import LicenceStatus
from licences.store import StoredLicence
from licences.terms import Term
from licences.types import LicenceType, default_licence_types
from payments import payable_store
from payments.payables import Payable, PayableKind, Transfer
from tests.db.test_payments_schema import _differences, _kinds

T0 = datetime(2025, 5, 22, 6, 0, tzinfo=UTC)
HOLDER, OTHER = "ir-nid:0499370899", "ir-nid:1234567008"
RAHVAR, ASNAF = "agency:rahvar", "agency:asnaf"
TERM = Term(valid_from=date(2025, 5, 22), expires_on=date(2035, 5, 21))
NEW_TERM = Term(valid_from=date(2035, 5, 22), expires_on=date(2045, 5, 21))
PAY_BY = date(2035, 3, 22)


def _driving() -> LicenceType:
    found = default_licence_types().get("ir.driving")
    assert found is not None
    return found


def _licence(number: str = "1234567890", **changes: object) -> StoredLicence:
    base = StoredLicence(
        licence_id=str(uuid.uuid4()),
        licence_type="ir.driving",
        number=number,
        holder=HOLDER,
        issuer=RAHVAR,
        term=TERM,
        status=LicenceStatus.VALID,
        status_reason=None,
        version=1,
        issued_at=T0,
        updated_at=T0,
        ledger_index=2**53 - 1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _renewal(
    licence_id: str, *, status: str = "awaiting_payment", **changes: object
) -> StoredRenewal:
    renewal_id = str(uuid.uuid4())
    base = StoredRenewal(
        renewal_id=renewal_id,
        licence_id=licence_id,
        holder=HOLDER,
        status=status,
        payable_id=renewal_id if status == "awaiting_payment" else None,
        fee_amount_minor=12_000_000 if status == "awaiting_payment" else None,
        fee_currency="IRR" if status == "awaiting_payment" else None,
        new_term=NEW_TERM,
        requested_at=T0 + timedelta(days=1),
        completed_at=None,
        ledger_index=9,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _fee_payable(conn: Connection, renewal: StoredRenewal) -> None:
    """The renewal's fee payable, as the renew handler writes it before the renewal."""
    assert renewal.payable_id is not None and renewal.fee_amount_minor is not None
    transfer = Transfer("agency_revenue:rahvar", renewal.fee_amount_minor, "licence_fee")
    payable = Payable(
        payable_id=renewal.payable_id,
        kind=PayableKind.FEE,
        issuer=RAHVAR,
        debtor=HOLDER,
        amount_minor=renewal.fee_amount_minor,
        currency="IRR",
        transfers=(transfer,),
        allows_instalments=False,
        due_on=PAY_BY,
        reference="licence-renewal",
    )
    stored = payable_store.StoredPayable(payable, None, None, None, renewal.requested_at, 9)
    payable_store.insert_payable(conn, stored)


def _awaiting(conn: Connection, licence_id: str) -> StoredRenewal:
    renewal = _renewal(licence_id)
    _fee_payable(conn, renewal)
    renewal_store.insert_renewal(conn, renewal)
    return renewal


# --- the schema ----------------------------------------------------------------------------------


def test_migration_matches_licences_schema(engine: Engine) -> None:
    assert _differences(engine, schema.metadata) == []


def test_the_comparison_sees_a_difference(engine: Engine) -> None:
    """The check above can fail: a missing partial index and an extra index are reported."""
    changed = MetaData()
    for table in schema.metadata.tables.values():
        table.to_metadata(changed)
    renewals = changed.tables["licence_renewals"]
    renewals.indexes -= {i for i in renewals.indexes if i.name == "licence_renewals_one_awaiting"}
    Index("licences_status", changed.tables["licences"].c.status)
    assert _kinds(_differences(engine, changed)) == {"remove_index", "add_index"}


# --- licences ------------------------------------------------------------------------------------


def test_round_trip_get_and_find(engine: Engine) -> None:
    stored = _licence(status=LicenceStatus.SUSPENDED, status_reason="unpaid_fines")
    with engine.begin() as conn:
        store.insert_licence(conn, stored)
    with engine.connect() as conn:
        assert store.get_licence(conn, stored.licence_id) == stored
        assert store.get_licence(conn, stored.licence_id, for_update=True) == stored
        assert store.find_licence(conn, licence_type="ir.driving", number=stored.number) == stored
        assert store.find_licence(conn, licence_type="ir.business", number=stored.number) is None
        assert store.get_licence(conn, str(uuid.uuid4())) is None


def test_a_taken_number_is_refused_and_the_transaction_goes_on(engine: Engine) -> None:
    first = _licence()
    same_number = _licence(holder=OTHER)
    other_type = _licence(licence_type="ir.business", issuer=ASNAF)  # same number, other type
    with engine.begin() as conn:
        store.insert_licence(conn, first)
        with pytest.raises(DuplicateLicenceNumberError) as refused:
            store.insert_licence(conn, same_number)
        assert refused.value.licence_type == "ir.driving"
        assert "1234567890" not in str(refused.value)  # a number is personal data
        # On PostgreSQL an IntegrityError would have aborted the transaction: it is still usable.
        store.insert_licence(conn, other_type)
        store.add_event(conn, first.licence_id, kind="issued", at=T0, tx_id=first.licence_id)
    with engine.connect() as conn:
        assert store.get_licence(conn, same_number.licence_id) is None
        assert store.get_licence(conn, other_type.licence_id) == other_type
        assert len(store.list_events(conn, first.licence_id)) == 1


def test_the_same_id_twice_is_not_taken_for_a_taken_number(engine: Engine) -> None:
    """Only the number's unique key is tolerated: reusing a licence id is a bug and says so."""
    first = _licence()
    with engine.begin() as conn:
        store.insert_licence(conn, first)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        store.insert_licence(conn, replace(first, number="5555555555"))


def test_compare_and_set_lets_one_writer_win(engine: Engine) -> None:
    stored = _licence()
    with engine.begin() as conn:
        store.insert_licence(conn, stored)
    suspended = replace(
        stored,
        status=LicenceStatus.SUSPENDED,
        status_reason="court_order",
        updated_at=T0 + timedelta(hours=1),
    )
    renewed = replace(stored, term=NEW_TERM, updated_at=T0 + timedelta(hours=2))
    with engine.begin() as conn:
        after = store.update_licence(conn, suspended, expected_version=1)
        assert after == replace(suspended, version=2)
        with pytest.raises(LicenceStateError) as stale:  # read version 1 too: it lost
            store.update_licence(conn, renewed, expected_version=1)
        assert (stale.value.action, stale.value.status) == (store.CONCURRENT_CHANGE, None)
    with engine.connect() as conn:
        assert store.get_licence(conn, stored.licence_id) == after
    with engine.begin() as conn:
        again = store.update_licence(conn, replace(after, term=NEW_TERM), expected_version=2)
    assert (again.version, again.term, again.status) == (3, NEW_TERM, LicenceStatus.SUSPENDED)
    with engine.begin() as conn, pytest.raises(LicenceStateError):
        store.update_licence(conn, _licence(number="7777777777"), expected_version=1)  # no row


def test_pages_are_newest_first_and_exact(engine: Engine) -> None:
    same_time = [_licence(f"10000000{i:02d}", issued_at=T0) for i in range(3)]
    later = [
        _licence(f"20000000{i:02d}", issued_at=T0 + timedelta(minutes=i + 1)) for i in range(3)
    ]
    others = [_licence("3000000000", holder=OTHER, issuer=ASNAF, licence_type="ir.business")]
    with engine.begin() as conn:
        for stored in [*same_time, *later, *others]:
            store.insert_licence(conn, stored)
    expected = [*reversed(later), *sorted(same_time, key=lambda s: s.licence_id, reverse=True)]
    with engine.connect() as conn:
        seen: list[StoredLicence] = []
        before = None
        while page := store.list_licences(conn, holder=HOLDER, before=before, limit=2):
            seen += page
            before = (page[-1].issued_at, page[-1].licence_id)
        assert seen == expected
        assert store.list_licences(conn, issuer=ASNAF, limit=10) == others
        assert store.list_licences(conn, issuer=RAHVAR, limit=10) == expected
        for wrong in ({}, {"holder": HOLDER, "issuer": RAHVAR}):
            with pytest.raises(ValueError, match="exactly one"):
                store.list_licences(conn, limit=10, **wrong)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            store.list_licences(conn, holder=HOLDER, limit=0)


# --- events --------------------------------------------------------------------------------------


def test_events_are_numbered_per_licence(engine: Engine) -> None:
    one, two = _licence("1111111111"), _licence("2222222222")
    with engine.begin() as conn:
        store.insert_licence(conn, one)
        store.insert_licence(conn, two)
        store.add_event(conn, one.licence_id, kind="issued", at=T0, tx_id=one.licence_id)
        store.add_event(conn, two.licence_id, kind="issued", at=T0, tx_id=two.licence_id)
        later = T0 + timedelta(days=3)
        store.add_event(conn, one.licence_id, kind="suspended", at=later, tx_id="t2", reason="x_y")
        store.add_event(
            conn, one.licence_id, kind="renewed", at=later, tx_id=None, reason="fee_paid"
        )
        with pytest.raises(ValueError, match="kind"):
            store.add_event(conn, one.licence_id, kind="expired", at=later, tx_id=None)
    with engine.connect() as conn:
        events = store.list_events(conn, one.licence_id)
        assert [(e.seq, e.kind, e.tx_id, e.reason) for e in events] == [
            (1, "issued", one.licence_id, None),
            (2, "suspended", "t2", "x_y"),
            (3, "renewed", None, "fee_paid"),
        ]
        assert events[1].at == later
        assert [e.seq for e in store.list_events(conn, two.licence_id)] == [1]
        newest = store.list_events(conn, one.licence_id, limit=2)
        assert [e.seq for e in newest] == [2, 3]  # the newest, oldest first
        assert store.event_json(events[2]) == {
            "seq": 3,
            "kind": "renewed",
            "at": "2025-05-25T06:00:00.000000Z",
            "reason": "fee_paid",
        }
        with pytest.raises(ValueError):
            store.list_events(conn, one.licence_id, limit=store.MAX_EVENTS_LISTED + 1)


# --- renewals ------------------------------------------------------------------------------------


def test_renewal_round_trip_and_lookups(engine: Engine) -> None:
    licence = _licence()
    with engine.begin() as conn:
        store.insert_licence(conn, licence)
        done = _renewal(licence.licence_id, status="completed", requested_at=T0, completed_at=T0)
        renewal_store.insert_renewal(conn, done)
        waiting = _awaiting(conn, licence.licence_id)
    with engine.connect() as conn:
        assert renewal_store.get_renewal(conn, done.renewal_id) == done
        assert renewal_store.get_renewal(conn, waiting.renewal_id, for_update=True) == waiting
        assert renewal_store.pending_renewal(conn, licence.licence_id) == waiting
        assert waiting.payable_id is not None
        assert renewal_store.renewal_by_payable(conn, waiting.payable_id) == waiting
        assert renewal_store.renewal_by_payable(conn, str(uuid.uuid4())) is None
        assert renewal_store.get_renewal(conn, str(uuid.uuid4())) is None
    paid_at = T0 + timedelta(days=2)
    with engine.begin() as conn:
        renewal_store.set_renewal_status(
            conn, waiting.renewal_id, status="completed", completed_at=paid_at
        )
        with pytest.raises(ValueError):
            renewal_store.set_renewal_status(conn, waiting.renewal_id, status="paid")
        with pytest.raises(AssertionError):
            renewal_store.set_renewal_status(conn, str(uuid.uuid4()), status="void")
    with engine.connect() as conn:
        assert renewal_store.pending_renewal(conn, licence.licence_id) is None
        finished = replace(waiting, status="completed", completed_at=paid_at)
        assert renewal_store.list_renewals(conn, licence.licence_id) == [done, finished]
        assert renewal_store.list_renewals(conn, licence.licence_id, limit=1) == [finished]


def test_the_index_refuses_a_second_renewal_awaiting_payment(engine: Engine) -> None:
    """At the database: a plain INSERT of a second renewal awaiting payment of one licence is an
    IntegrityError; through insert_renewal it is RenewalPendingError naming the first, and the
    transaction goes on."""
    licence, other = _licence("1111111111"), _licence("2222222222")
    with engine.begin() as conn:
        store.insert_licence(conn, licence)
        store.insert_licence(conn, other)
        first = _awaiting(conn, licence.licence_id)
    second = _renewal(licence.licence_id)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(schema.licence_renewals).values(
                id=second.renewal_id,
                licence_id=licence.licence_id,
                holder=HOLDER,
                status="awaiting_payment",
                new_valid_from=NEW_TERM.valid_from,
                new_expires_on=NEW_TERM.expires_on,
                requested_at=T0,
                ledger_index=10,
            )
        )
    with engine.begin() as conn:
        with pytest.raises(RenewalPendingError) as pending:
            renewal_store.insert_renewal(conn, second)
        assert (pending.value.renewal_id, pending.value.payable_id) == (
            first.renewal_id,
            first.payable_id,
        )
        assert pending.value.pay_by == PAY_BY
        # Still usable: other licences' renewals, and renewals that do not wait, go in.
        _awaiting(conn, other.licence_id)
        renewal_store.insert_renewal(conn, _renewal(licence.licence_id, status="completed"))
        renewal_store.insert_renewal(conn, _renewal(licence.licence_id, status="lapsed"))
    with engine.begin() as conn:  # once the first has lapsed, a new one may wait
        renewal_store.set_renewal_status(conn, first.renewal_id, status="lapsed")
        third = _awaiting(conn, licence.licence_id)
    with engine.connect() as conn:
        assert renewal_store.get_renewal(conn, second.renewal_id) is None
        assert renewal_store.pending_renewal(conn, licence.licence_id) == third
        assert len(renewal_store.list_renewals(conn, licence.licence_id)) == 4
    with engine.begin() as conn, pytest.raises(ValueError):
        renewal_store.insert_renewal(conn, _renewal(licence.licence_id, status="paid"))


# --- the JSON view -------------------------------------------------------------------------------


def test_licence_json_gives_both_calendars_and_the_status_of_the_day() -> None:
    stored = _licence(status_reason="court_order")
    view = store.licence_json(stored, _driving(), today=date(2025, 6, 1))
    assert view["status"] == "valid"
    assert view["valid_from"] == {"date": "2025-05-22", "jalali": "1404-03-01"}
    assert view["expires_on"] == {"date": "2035-05-21", "jalali": "1414-02-31"}
    assert view["renewal_window"] == {
        "opens_on": {"date": "2035-02-20", "jalali": "1413-12-01"},
        "closes_on": {"date": "2036-05-20", "jalali": "1415-02-31"},
    }
    assert view["as_of"] == {"date": "2025-06-01", "jalali": "1404-03-11"}
    assert (view["status_reason"], view["version"]) == ("court_order", 1)
    assert view["issued_at"] == "2025-05-22T06:00:00.000000Z"
    expired = store.licence_json(stored, _driving(), today=date(2035, 5, 22))
    assert expired["status"] == "expired"
    assert store.licence_json(stored, _driving(), today=date(2025, 5, 21))["status"] == (
        "not_yet_valid"
    )
    revoked = replace(stored, status=LicenceStatus.REVOKED, status_reason=None)
    view = store.licence_json(revoked, _driving(), today=date(2035, 5, 22))
    assert view["status"] == "revoked" and "status_reason" not in view
