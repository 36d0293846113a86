"""The electronic-invoice store on SQLite and PostgreSQL: the migration matches
tax/invoice_schema.py, every value survives a round trip, lookups and writes take a constant
number of statements whatever the batch's size, cancellations and decisions change only what
they may, and list pages are exact under every filter.

Also the invoice builders the API tests share: valid invoices of the ir pack (10 % standard VAT
since 1403), with tax IDs made by tax.tax_ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from sqlalchemy import Column, Connection, Engine, MetaData, Text, event, func, select
from sqlalchemy.exc import IntegrityError

from signatures.canonical import MAX_DOCUMENT_BYTES, JsonValue, canonicalize
from signatures.client import build_envelope
from signatures.envelope import Envelope, parse_envelope
from signatures.errors import FieldError
from tax import invoice_handlers, invoice_schema, invoice_store
from tax.errors import TaxFieldError
from tax.invoice_handlers import (
    Checked,
    PrecheckedBatches,
    handle_invoice_submit,
    parse_submit_envelope,
)
from tax.invoice_schema import tax_invoices
from tax.invoice_store import (
    Decision,
    InvoiceStatus,
    ListFilter,
    MemoryIdBinding,
    Side,
    StoredInvoice,
)
from tax.tax_ids import make_tax_id
from tests.db.test_payments_schema import _differences

SELLER, BUYER, OTHER = "ir-lid:10380284790", "ir-lid:14007650912", "ir-nid:0499370899"
MEMORY_ID = "A11111"
T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


# --- builders (shared with test_invoice_api) ------------------------------------------------------


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line(
    quantity: str = "2", unit_price_minor: int = 1_000_000, discount_minor: int = 0
) -> dict[str, Any]:
    """A line at the ir standard rate (10 %) with its VAT and total computed exactly."""
    after = _round(Decimal(quantity) * unit_price_minor) - discount_minor
    vat = _round(after * Decimal("0.10"))
    return {
        "code": "2330001234567",
        "quantity": quantity,
        "unit": "164",
        "unit_price_minor": unit_price_minor,
        "discount_minor": discount_minor,
        "vat_rate": "0.10",
        "vat_minor": vat,
        "total_minor": after + vat,
    }


def tax_id(serial: int, *, issued_at: datetime, memory_id: str = MEMORY_ID) -> str:
    return make_tax_id(memory_id, day=issued_at.astimezone(UTC).date(), serial=serial).text


def invoice(
    serial: int,
    *,
    issued_at: datetime,
    memory_id: str = MEMORY_ID,
    subtype: str = "original",
    reference: str | None = None,
    buyer: str | None = BUYER,
    lines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A valid invoice (type 1 with a buyer, type 2 without) whose totals add up."""
    body = lines or [line()]
    before = sum(
        _round(Decimal(str(x["quantity"])) * int(str(x["unit_price_minor"]))) for x in body
    )
    discount = sum(int(str(x["discount_minor"])) for x in body)
    out: dict[str, Any] = {
        "tax_id": tax_id(serial, issued_at=issued_at, memory_id=memory_id),
        "issued_at": issued_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "type": 1 if buyer is not None else 2,
        "pattern": 1,
        "subtype": subtype,
        "lines": body,
        "totals": {
            "before_discount_minor": before,
            "discount_minor": discount,
            "after_discount_minor": before - discount,
            "vat_minor": sum(int(str(x["vat_minor"])) for x in body),
            "total_minor": sum(int(str(x["total_minor"])) for x in body),
        },
    }
    if buyer is not None:
        out["buyer"] = buyer
    if reference is not None:
        out["reference_tax_id"] = reference
    return out


def batch(invoices: list[dict[str, Any]]) -> dict[str, JsonValue]:
    return {"jurisdiction": "ir", "invoices": list[JsonValue](invoices)}


def envelope_of(payload: dict[str, JsonValue], *, signer: str = SELLER) -> Envelope:
    built = build_envelope(
        type="tax.invoice.submit",
        version=1,
        signer=signer,
        payload=payload,
        created_at=datetime.now(UTC),
    )
    return parse_envelope(built, max_bytes=MAX_DOCUMENT_BYTES)


# --- stored rows ----------------------------------------------------------------------------------


def stored(tax_id_text: str, *, at: datetime = T0, **changes: Any) -> StoredInvoice:
    base = StoredInvoice(
        tax_id=tax_id_text,
        jurisdiction="ir",
        seller=SELLER,
        signer=OTHER,
        buyer=BUYER,
        invoice_type=1,
        pattern=1,
        subtype="original",
        reference_tax_id=None,
        issued_at=at,
        issued_on=at.date(),
        status=InvoiceStatus.ISSUED,
        decision=Decision.PENDING,
        respond_by=at.date() + timedelta(days=30),
        decided_at=None,
        decision_tx_id=None,
        currency="IRR",
        before_discount_minor=2**53 - 1,
        discount_minor=0,
        after_discount_minor=2**53 - 1,
        vat_minor=7,
        total_minor=2**53 - 1,
        submitted_at=at + timedelta(hours=1),
        ledger_index=3,
        tx_id=str(uuid.uuid4()),
        body={"tax_id": tax_id_text, "lines": [{"quantity": "2.5"}]},
    )
    return replace(base, **changes)


def ids(n: int, *, first: int = 1, at: datetime = T0) -> list[str]:
    return [tax_id(s, issued_at=at) for s in range(first, first + n)]


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement the engine's connections execute (one per executemany)."""
    seen: list[str] = []

    def count(conn: Connection, clauseelement: object, *args: object) -> None:
        seen.append(str(clauseelement).split("\n")[0])

    event.listen(engine, "before_execute", count)
    yield seen
    event.remove(engine, "before_execute", count)


# --- schema ---------------------------------------------------------------------------------------


def test_migration_matches_invoice_schema(engine: Engine) -> None:
    assert _differences(engine, invoice_schema.metadata) == []


def test_the_comparison_sees_a_difference(engine: Engine) -> None:
    changed = MetaData()
    for table in invoice_schema.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["tax_memory_ids"].append_column(Column("note", Text, nullable=True))
    assert _differences(engine, changed) != []


# --- writes and lookups ---------------------------------------------------------------------------


def test_round_trip_heads_and_memory_ids(engine: Engine, statements: list[str]) -> None:
    first, second = ids(2)
    rows = [stored(first), stored(second, buyer=None, decision=None, respond_by=None)]
    binding = MemoryIdBinding(MEMORY_ID, SELLER, T0, str(uuid.uuid4()))
    with engine.begin() as conn:
        statements.clear()
        invoice_store.insert_invoices(conn, rows)
        invoice_store.bind_memory_ids(conn, [binding])
        assert len(statements) == 2  # one per table, whatever the number of rows
        invoice_store.insert_invoices(conn, [])  # nothing to write: no statement
        assert len(statements) == 2
    with engine.connect() as conn:
        assert invoice_store.get_invoice(conn, first) == rows[0]
        assert invoice_store.get_invoice(conn, second) == rows[1]
        assert invoice_store.get_invoice(conn, ids(1, first=9)[0]) is None
        heads = invoice_store.heads_of(conn, {first, ids(1, first=9)[0]})
        assert list(heads) == [first]
        assert (heads[first].seller, heads[first].subtype, heads[first].status) == (
            SELLER,
            "original",
            InvoiceStatus.ISSUED,
        )
        assert invoice_store.memory_id_owners(conn, {MEMORY_ID, "B22222"}) == {MEMORY_ID: SELLER}


def test_a_tax_id_cannot_be_recorded_twice(engine: Engine) -> None:
    """The last line of defence under the handler's check: the primary key."""
    (only,) = ids(1)
    with engine.begin() as conn:
        invoice_store.insert_invoices(conn, [stored(only)])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        invoice_store.insert_invoices(conn, [stored(only, seller=OTHER)])


def test_lookups_beyond_one_statement_and_their_limit(engine: Engine) -> None:
    many = ids(1500)
    with engine.begin() as conn:
        invoice_store.insert_invoices(conn, [stored(t) for t in many[::2]])
    with engine.connect() as conn:
        assert set(invoice_store.heads_of(conn, many)) == set(many[::2])
        over = ids(invoice_store.MAX_LOOKUP_IDS + 1)
        with pytest.raises(ValueError, match="at most"):
            invoice_store.heads_of(conn, over)
        with pytest.raises(ValueError, match="at most"):
            invoice_store.memory_id_owners(conn, over)


def test_cancellation_and_decisions_change_only_what_they_may(engine: Engine) -> None:
    first, second = ids(2)
    with engine.begin() as conn:
        invoice_store.insert_invoices(conn, [stored(first), stored(second)])
        invoice_store.mark_cancelled(conn, {first})
        with pytest.raises(AssertionError):  # cancelled already
            invoice_store.mark_cancelled(conn, {first})
    decided_at, tx = T0 + timedelta(days=2), str(uuid.uuid4())
    with engine.begin() as conn:
        invoice_store.record_decision(
            conn, tax_id=second, decision=Decision.REJECTED, decided_at=decided_at, tx_id=tx
        )
        with pytest.raises(AssertionError):  # decided already
            invoice_store.record_decision(
                conn, tax_id=second, decision=Decision.ACCEPTED, decided_at=decided_at, tx_id=tx
            )
        with pytest.raises(ValueError):
            invoice_store.record_decision(
                conn, tax_id=first, decision=Decision.PENDING, decided_at=decided_at, tx_id=tx
            )
    with engine.connect() as conn:
        cancelled, rejected = (invoice_store.get_invoice(conn, t) for t in (first, second))
    assert cancelled is not None and cancelled.status == InvoiceStatus.CANCELLED
    assert cancelled.decision == Decision.PENDING
    assert rejected is not None and rejected.status == InvoiceStatus.ISSUED
    assert (rejected.decision, rejected.decided_at, rejected.decision_tx_id) == (
        Decision.REJECTED,
        decided_at,
        tx,
    )


def test_a_pending_decision_is_deemed_accepted_after_its_window() -> None:
    row = stored(ids(1)[0])
    assert row.respond_by is not None
    assert invoice_store.decision_on(row, row.respond_by) == Decision.PENDING
    after = row.respond_by + timedelta(days=1)
    assert invoice_store.decision_on(row, after) == Decision.DEEMED_ACCEPTED
    assert invoice_store.decision_on(replace(row, decision=Decision.REJECTED), after) == "rejected"
    assert invoice_store.decision_on(replace(row, decision=None, respond_by=None), after) is None


def test_the_chain_of_an_original(engine: Engine) -> None:
    original, fix, back, lone = ids(4)
    rows = [
        stored(original),
        stored(fix, at=T0 + timedelta(days=1), subtype="corrective", reference_tax_id=original),
        stored(back, at=T0 + timedelta(days=2), subtype="sales_return", reference_tax_id=original),
        stored(lone),
    ]
    with engine.begin() as conn:
        invoice_store.insert_invoices(conn, rows)
    with engine.connect() as conn:
        chain = invoice_store.chain_of(conn, original)
    assert [c.tax_id for c in chain] == [original, fix, back]


def test_the_references_of_many_originals_in_one_call(engine: Engine) -> None:
    first, second, fix, back, fix_later = ids(5)
    rows = [
        stored(first),
        stored(second),
        stored(fix_later, at=T0 + timedelta(days=2), subtype="corrective", reference_tax_id=first),
        stored(fix, at=T0 + timedelta(days=1), subtype="corrective", reference_tax_id=first),
        stored(back, at=T0 + timedelta(days=1), subtype="sales_return", reference_tax_id=second),
    ]
    with engine.begin() as conn:
        invoice_store.insert_invoices(conn, rows)
    with engine.connect() as conn:
        found = invoice_store.invoices_referencing(conn, [first, second, fix, *ids(2000, first=10)])
    assert {k: [i.tax_id for i in v] for k, v in found.items()} == {
        first: [fix, fix_later],
        second: [back],
    }


def test_a_stored_body_is_its_rfc_8785_form() -> None:
    body: dict[str, JsonValue] = {
        "z": [1, -(2**53) + 1, {"b": "\u00e9\u20ac\U0001f600", "a": '"\\/\b\f\n\r\t\u001f\u007f'}],
        "a": None,
        "\u00e9": True,
        "m": "\u2028",
    }
    assert invoice_store.body_text(body).encode() == canonicalize(body)


# --- lists ----------------------------------------------------------------------------------------


def _listed(conn: Connection, f: ListFilter, *, limit: int = 100) -> list[str]:
    return [i.tax_id for i in invoice_store.list_invoices(conn, f, before=None, limit=limit)]


def test_lists_show_own_invoices_under_every_filter(engine: Engine) -> None:
    today = T0.date() + timedelta(days=40)
    sold, bought, other, deemed, accepted, late_june = ids(6)
    rows = [
        stored(sold, respond_by=today),  # pending, its last day today
        stored(bought, seller=OTHER, buyer=SELLER),
        stored(other, seller=OTHER, buyer=BUYER),  # neither side is SELLER
        stored(deemed, respond_by=today - timedelta(days=1)),
        stored(accepted, decision=Decision.ACCEPTED, buyer=OTHER),
        stored(late_june, at=T0 + timedelta(days=29), status=InvoiceStatus.CANCELLED),
    ]
    with engine.begin() as conn:
        invoice_store.insert_invoices(conn, rows)
    mine = ListFilter(party=SELLER, today=today)
    with engine.connect() as conn:
        assert set(_listed(conn, mine)) == {sold, bought, deemed, accepted, late_june}
        assert _listed(conn, replace(mine, role=Side.BUYER)) == [bought]
        assert set(_listed(conn, replace(mine, role=Side.SELLER))) == {
            sold,
            deemed,
            accepted,
            late_june,
        }
        assert set(_listed(conn, replace(mine, counterparty=OTHER))) == {bought, accepted}
        assert _listed(conn, replace(mine, role=Side.SELLER, counterparty=OTHER)) == [accepted]
        # Pending: undecided with its window open today (late_june's runs to T0 + 59 days).
        assert _listed(conn, replace(mine, status=Decision.PENDING)) == [late_june, sold]
        # Deemed accepted: undecided past its window (bought's closed at T0 + 30 days).
        assert set(_listed(conn, replace(mine, status=Decision.DEEMED_ACCEPTED))) == {
            deemed,
            bought,
        }
        assert _listed(conn, replace(mine, status=Decision.ACCEPTED)) == [accepted]
        assert _listed(conn, replace(mine, status=InvoiceStatus.CANCELLED)) == [late_june]
        june = replace(mine, first_day=date(2025, 6, 2), last_day=date(2025, 6, 30))
        assert _listed(conn, june) == [late_june]
        assert _listed(conn, replace(mine, jurisdiction="ee")) == []
        assert _listed(conn, ListFilter(party=BUYER, today=today, role=Side.SELLER)) == []
        with pytest.raises(ValueError):
            _listed(conn, replace(mine, status="paid"))
        with pytest.raises(ValueError):
            _listed(conn, replace(mine, role="agent"))


def test_pages_are_exact(engine: Engine) -> None:
    rows = [stored(t, at=T0 + timedelta(minutes=i % 3)) for i, t in enumerate(ids(7))]
    with engine.begin() as conn:
        invoice_store.insert_invoices(conn, rows)
    expected = sorted(rows, key=lambda r: (r.issued_at, r.tax_id), reverse=True)
    seen: list[str] = []
    before = None
    mine = ListFilter(party=BUYER, today=T0.date())
    with engine.connect() as conn:
        while True:
            page = invoice_store.list_invoices(conn, mine, before=before, limit=3)
            seen += [i.tax_id for i in page]
            if len(page) < 3:
                break
            before = (page[-1].issued_at, page[-1].tax_id)
    assert seen == [r.tax_id for r in expected]


# --- the submit handler, called directly ----------------------------------------------------------


def _submit(engine: Engine, payload: dict[str, JsonValue], *, at: datetime) -> dict[str, Any]:
    with engine.begin() as conn:
        result = handle_invoice_submit(
            conn, envelope_of(payload), tx_id=str(uuid.uuid4()), accepted_at=at, ledger_index=0
        )
    return dict(result)


def test_a_batch_takes_the_same_statements_for_3_invoices_as_for_1000(
    engine: Engine, statements: list[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    issued = now - timedelta(hours=1)
    small = [invoice(n, issued_at=issued) for n in range(1, 4)]
    statements.clear()
    assert _submit(engine, batch(small), at=now)["accepted"] == 3
    few = len(statements)
    big = [invoice(n, issued_at=issued, memory_id="B22222") for n in range(1, 1001)]
    statements.clear()
    result = _submit(engine, batch(big), at=now)
    assert (result["accepted"], result["rejected"]) == (1000, 0)
    assert len(statements) == few  # lookups, inserts, bindings: one statement each
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(tax_invoices)).scalar_one()
    assert count == 1003
    # The same 1,000 again: every one a duplicate, still without a statement per invoice.
    statements.clear()
    again = _submit(engine, batch(big), at=now)
    assert (again["accepted"], again["rejected"]) == (0, 1000)
    assert {e["rule"] for i in again["invoices"] for e in i["errors"]} == {"duplicate_tax_id"}
    assert len(statements) <= few


def test_invoices_checked_before_the_write_are_not_checked_again_under_the_lock(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    prechecked = envelope_of(batch([invoice(1, issued_at=now - timedelta(hours=1))]))
    unchecked = envelope_of(batch([invoice(2, issued_at=now - timedelta(hours=1))]))
    parse_submit_envelope(prechecked)  # the pipeline's check before the write

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("check_invoice ran under the ledger lock")

    monkeypatch.setattr(invoice_handlers, "check_invoice", refuse)
    at = {"accepted_at": now, "ledger_index": 0}
    with engine.begin() as conn:
        result = handle_invoice_submit(conn, prechecked, tx_id=str(uuid.uuid4()), **at)  # type: ignore[arg-type]
    assert result["accepted"] == 1
    # Taken once: a second run of the same batch, or one never prechecked, checks again.
    for envelope in (prechecked, unchecked):
        with pytest.raises(AssertionError, match="under the ledger lock"), engine.begin() as conn:
            handle_invoice_submit(conn, envelope, tx_id=str(uuid.uuid4()), **at)  # type: ignore[arg-type]


def test_prechecked_batches_hold_at_most_their_limit_of_invoices() -> None:
    held = PrecheckedBatches(limit=5)
    checked: Checked = [TaxFieldError((FieldError("/p", "r", "m"),))]
    held.put(b"a", checked * 2)
    held.put(b"b", checked * 3)
    held.put(b"c", checked * 1)  # 6 > 5: the oldest batch goes
    assert held.take(b"a") is None
    assert held.take(b"b") == checked * 3 and held.take(b"b") is None
    held.put(b"d", checked * 4)  # c (1) and d (4) fit
    assert held.take(b"c") == checked and held.take(b"d") == checked * 4
    held.put(b"e", checked * 6)  # larger than the limit alone: not kept
    assert held.take(b"e") is None
