"""The VAT return from the service's own invoices, on SQLite and PostgreSQL: the handlers are called
with chosen acceptance times (the pipeline only takes the present), so that a whole quarter can be
invoiced, answered, and then filed after it ends.

ir 1404-Q1 runs 1404-01-01 … 1404-03-31 = 2025-03-21 … 2025-06-21; its return is due at the end
of the next month, 1404-04-31 = 2025-07-22. The ir standard rate is 10 % (from 1403).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from signatures.canonical import MAX_DOCUMENT_BYTES, JsonValue
from signatures.client import build_envelope
from signatures.envelope import Envelope, parse_envelope
from tax import vat_store
from tax.calendar import parse_period
from tax.errors import FilingChainError
from tax.invoice_handlers import handle_invoice_respond, handle_invoice_submit
from tax.rulepack import pack_for
from tax.vat_handlers import handle_vat_return, preview_vat
from tests.db.test_invoice_store import BUYER, SELLER, batch, invoice, line

IR = pack_for("ir")
Q1 = parse_period(IR, "1404-Q1", kind="quarter")
Q2 = parse_period(IR, "1404-Q2", kind="quarter")
MAY = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)  # inside 1404-Q1
FILED = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)  # after Q1, before its deadline


def envelope(type_: str, payload: dict[str, Any], *, signer: str) -> Envelope:
    built = build_envelope(
        type=type_, version=1, signer=signer, payload=payload, created_at=datetime.now(UTC)
    )
    return parse_envelope(built, max_bytes=MAX_DOCUMENT_BYTES)


def run(engine: Engine, handler: Any, env: Envelope, at: datetime) -> dict[str, JsonValue]:
    with engine.begin() as conn:
        result: dict[str, JsonValue] = handler(
            conn, env, tx_id=str(uuid.uuid4()), accepted_at=at, ledger_index=0
        )
    return result


def sell(engine: Engine, invoices: list[dict[str, Any]], *, at: datetime) -> None:
    result = run(engine, handle_invoice_submit, envelope("tax.invoice.submit", batch(invoices),
                 signer=SELLER), at)  # fmt: skip
    assert result["rejected"] == 0, result


def answer(engine: Engine, tax_id: str, decision: str, *, at: datetime) -> None:
    payload = {"jurisdiction": "ir", "tax_id": tax_id, "decision": decision}
    run(engine, handle_invoice_respond, envelope("tax.invoice.respond", payload, signer=BUYER), at)


def vat_return(
    engine: Engine, taxpayer: str, *, output: int, input_: int, at: datetime = FILED, **extra: Any
) -> dict[str, Any]:
    payload = {
        "jurisdiction": "ir",
        "period": "1404-Q1",
        "declared": {"output_vat_minor": output, "input_vat_minor": input_},
        **extra,
    }
    return dict(run(engine, handle_vat_return, envelope("tax.return.vat", payload,
                    signer=taxpayer), at))  # fmt: skip


def test_the_return_sums_sales_and_accepted_purchases_and_restates_on_correction(
    engine: Engine,
) -> None:
    first, second, third = (invoice(n, issued_at=MAY + timedelta(hours=n)) for n in (1, 2, 3))
    # VAT by hand: each invoice is 2 × 1,000,000 at 10 % = 200,000.
    sell(engine, [first, second, third], at=MAY + timedelta(hours=4))
    answer(engine, first["tax_id"], "accept", at=MAY + timedelta(days=1))
    answer(engine, second["tax_id"], "reject", at=MAY + timedelta(days=1))
    # third is left unanswered: deemed accepted after 30 days, long before FILED.
    with engine.connect() as conn:
        seller = vat_store.figures(conn, IR, taxpayer=SELLER, period=Q1, today=FILED.date())
        buyer = vat_store.figures(conn, IR, taxpayer=BUYER, period=Q1, today=FILED.date())
    assert (seller.output_vat_minor, seller.sales, seller.input_vat_minor) == (600_000, 3, 0)
    assert (buyer.input_vat_minor, buyer.purchases, buyer.output_vat_minor) == (400_000, 2, 0)

    sold = vat_return(engine, SELLER, output=600_000, input_=0)
    assert sold["status"] == "accepted", sold
    assert sold["assessment"]["due_minor"] == 600_000  # on time: no penalty, no interest
    assert sold["period"] == "1404-Q1" and sold["kind"] == "vat"
    bought = vat_return(engine, BUYER, output=0, input_=400_000)
    assert bought["status"] == "accepted"
    assert bought["assessment"]["credit_minor"] == 400_000

    # A correction of the first invoice (3 × 1,000,000: VAT 300,000) restates Q1: the return
    # signed against the old figures is rejected, and the amendment shows the difference.
    fix = invoice(4, issued_at=MAY + timedelta(days=2), subtype="corrective",
                  reference=first["tax_id"], lines=[line(quantity="3")])  # fmt: skip
    sell(engine, [fix], at=MAY + timedelta(days=2))
    stale = vat_return(engine, SELLER, output=600_000, input_=0, amends=sold["filing_id"])
    assert stale["status"] == "rejected"
    assert {i["code"] for i in stale["issues"]} == {"declared_figures_differ"}
    amended = vat_return(engine, SELLER, output=700_000, input_=0, amends=sold["filing_id"])
    assert amended["status"] == "accepted", amended
    diff = {row["code"]: row["delta_minor"] for row in amended["difference"]}
    assert diff["vat.output"] == 100_000
    assert amended["assessment"]["due_minor"] == 100_000


def test_a_negative_balance_is_carried_to_the_next_period(engine: Engine) -> None:
    bought = invoice(1, issued_at=MAY)
    sell(engine, [bought], at=MAY + timedelta(minutes=5))
    answer(engine, bought["tax_id"], "accept", at=MAY + timedelta(hours=1))
    assert vat_return(engine, BUYER, output=0, input_=200_000)["status"] == "accepted"
    with engine.connect() as conn:
        q2 = vat_store.figures(conn, IR, taxpayer=BUYER, period=Q2, today=date(2025, 10, 1))
    assert q2.brought_forward_minor == 200_000


def test_the_preview_gives_the_figures_to_sign_and_the_chain_rules_hold(engine: Engine) -> None:
    sell(engine, [invoice(1, issued_at=MAY)], at=MAY + timedelta(minutes=5))
    with engine.connect() as conn:
        preview = preview_vat(conn, IR, taxpayer=SELLER, period=Q1, today=FILED.date())
    assert preview["declared"] == {"output_vat_minor": 200_000, "input_vat_minor": 0}
    assert preview["assessment"]["due_minor"] == 200_000  # type: ignore[index]
    first = vat_return(engine, SELLER, output=200_000, input_=0)
    try:
        vat_return(engine, SELLER, output=200_000, input_=0)  # a second "first" return
    except FilingChainError as error:
        assert error.rule == "amends_required" and error.head == first["filing_id"]
    else:
        raise AssertionError("a second first return was accepted")
    # Filed after the deadline (1404-04-31 = 2025-07-22), an amendment that adds VAT owes
    # interest at the VAT rate (interest.late_payment.vat) on the addition.
    sell(engine, [invoice(2, issued_at=MAY + timedelta(days=1))], at=MAY + timedelta(days=1))
    late = vat_return(engine, SELLER, output=400_000, input_=0, amends=first["filing_id"],
                      at=datetime(2025, 9, 1, 8, tzinfo=UTC))  # fmt: skip
    lines = {line["code"]: line for line in late["assessment"]["lines"]}
    interest = lines["interest.late_payment"]
    assert interest["amount_minor"] > 0
    assert interest["parameter"]["name"] == "interest.late_payment.vat"
