"""The tax filings store on SQLite and PostgreSQL: the migration matches tax/schema.py, every
value survives a round trip, a chain has one head, versions are unique, pages are exact."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Column, Engine, MetaData, Text
from sqlalchemy.exc import IntegrityError

from tax import filing_store, schema
from tax.filing_store import FilingStatus, StoredFiling
from tests.db.test_payments_schema import _differences

T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
PERSON, OTHER = "ir-nid:0499370899", "ir-nid:1234567008"


def _filing(version: int | None, *, at: datetime = T0, **changes: object) -> StoredFiling:
    base = StoredFiling(
        filing_id=str(uuid.uuid4()),
        taxpayer=PERSON,
        signer=PERSON,
        jurisdiction="ir",
        kind="personal",
        period="1403",
        status=FilingStatus.ACCEPTED if version is not None else FilingStatus.REJECTED,
        version=version,
        amends=None,
        superseded_by=None,
        pack_version="ir-r1-0123456789ab",
        trace_sha256="ab" * 32,
        currency="IRR",
        tax_minor=2**53 - 1,
        credits_minor=7,
        due_minor=100,
        credit_minor=0,
        due_on=date(2025, 6, 21),
        first_filed_on=date(2025, 6, 1) if version is not None else None,
        payable_id=None,
        submitted_at=at,
        ledger_index=3,
        detail={"computation": {"lines": [{"code": "tax.total", "amount_minor": 1}]}},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_migration_matches_tax_schema(engine: Engine) -> None:
    assert _differences(engine, schema.metadata) == []


def test_the_comparison_sees_a_difference(engine: Engine) -> None:
    changed = MetaData()
    for table in schema.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["tax_filings"].append_column(Column("note", Text, nullable=True))
    assert _differences(engine, changed) != []


def test_round_trip_and_head(engine: Engine) -> None:
    first = _filing(1)
    with engine.begin() as conn:
        filing_store.insert_filing(conn, first)
    with engine.connect() as conn:
        assert filing_store.get_filing(conn, first.filing_id) == first
        head = filing_store.head_of(
            conn, taxpayer=PERSON, jurisdiction="ir", kind="personal", period="1403"
        )
        assert head == first
        assert filing_store.get_filing(conn, str(uuid.uuid4())) is None


def test_amendment_moves_the_head_and_marks_the_old_one(engine: Engine) -> None:
    first, rejected = _filing(1), _filing(None, at=T0 + timedelta(hours=1))
    second = _filing(2, at=T0 + timedelta(hours=2), amends=first.filing_id)
    with engine.begin() as conn:
        filing_store.insert_filing(conn, first)
        filing_store.insert_filing(conn, rejected)
        filing_store.insert_filing(conn, second)
        filing_store.mark_superseded(conn, filing_id=first.filing_id, by=second.filing_id)
        with pytest.raises(AssertionError):  # only a head can be superseded, once
            filing_store.mark_superseded(conn, filing_id=first.filing_id, by=second.filing_id)
    with engine.connect() as conn:
        where = {"taxpayer": PERSON, "jurisdiction": "ir", "kind": "personal", "period": "1403"}
        head = filing_store.head_of(conn, **where)
        assert head is not None and head.filing_id == second.filing_id
        chain = filing_store.chain_of(conn, **where)
        assert [f.filing_id for f in chain] == [f.filing_id for f in (first, rejected, second)]
        assert chain[0].superseded_by == second.filing_id
        heads = filing_store.heads_of_taxpayer(conn, taxpayer=PERSON, jurisdiction="ir")
        assert [h.filing_id for h in heads] == [second.filing_id]
        assert filing_store.heads_of_taxpayer(conn, taxpayer=OTHER, jurisdiction="ir") == []


def test_a_version_cannot_be_taken_twice(engine: Engine) -> None:
    """The last line of defence under the handler's check: one version N per obligation."""
    with engine.begin() as conn:
        filing_store.insert_filing(conn, _filing(1))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        filing_store.insert_filing(conn, _filing(1))
    with engine.begin() as conn:  # rejected filings have no version and never collide
        filing_store.insert_filing(conn, _filing(None))
        filing_store.insert_filing(conn, _filing(None))
        filing_store.insert_filing(conn, _filing(1, taxpayer=OTHER))


def test_pages_are_exact(engine: Engine) -> None:
    filings = [_filing(None, at=T0 + timedelta(minutes=i % 3)) for i in range(7)]
    with engine.begin() as conn:
        for f in filings:
            filing_store.insert_filing(conn, f)
    expected = sorted(filings, key=lambda f: (f.submitted_at, f.filing_id), reverse=True)
    seen: list[str] = []
    before = None
    with engine.connect() as conn:
        while True:
            page = filing_store.list_filings(conn, taxpayer=PERSON, before=before, limit=3)
            seen += [f.filing_id for f in page]
            if len(page) < 3:
                break
            before = (page[-1].submitted_at, page[-1].filing_id)
        assert filing_store.list_filings(conn, taxpayer=OTHER, before=None, limit=3) == []
    assert seen == [f.filing_id for f in expected]
