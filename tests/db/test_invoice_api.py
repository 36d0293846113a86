"""Electronic invoices through the service, on SQLite and PostgreSQL: batches recorded invoice by
invoice (the valid ones kept, each invalid one with its errors), duplicates, memory IDs bound to
their first seller, chains of corrections, returns and cancellations, the buyer's answer within
its window (and deemed acceptance after it), and the lists each side sees.

The service's clock is movable (forward only: acceptance times never go back), so a buyer's
window can close; envelopes are signed with created_at on that clock.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.keys import CheckpointKeyring, checkpoint_sign_note
from api.routes import tax_invoices
from api.settings import Settings
from api.transactions.registry import default_registry
from api.transactions.service import TransactionService
from api.transactions.tax_types import invoice_types
from ledger.note import NoteSigner
from signatures.canonical import JsonValue
from signatures.client import generate_private_key
from tax.calendar import period_containing
from tax.rulepack import pack_for
from tests.db.conftest import ORIGIN
from tests.db.test_invoice_store import BUYER, batch, invoice, line, tax_id
from tests.db.test_transactions_pipeline import (
    Party,
    assert_verifies,
    new_party,
    problem,
    register,
    signed,
    tree_size,
)
from tests.idp import bearer, verifier

TEHRAN = ZoneInfo("Asia/Tehran")
SUBMIT, RESPOND = "tax.invoice.submit", "tax.invoice.respond"


class Clock:
    """The service's clock: now, or moved forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def move_to(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)


@dataclass
class World:
    client: TestClient
    clock: Clock
    seller: Party
    buyer: Party
    rng: random.Random

    def party(self, role: str = "business", *, entity: bool = True) -> Party:
        return new_party(self.client, self.rng, role, entity=entity)


@pytest.fixture
def world(engine: Engine, signer: NoteSigner) -> Iterator[World]:
    settings = Settings.model_construct(ledger_origin=ORIGIN, rate_limit_per_minute=10_000)
    registry = default_registry()
    for t in invoice_types():  # until the lead wires them into the default registry
        if registry.get(t.name) is None:
            registry.register(t)
    app = create_app(
        settings,
        engine=engine,
        checkpoint_signer=signer,
        token_verifier=verifier(),
        registry=registry,
    )
    if not any(getattr(r, "path", "") == "/v1/tax/invoices" for r in app.routes):
        app.include_router(tax_invoices.router)
    clock = Clock()
    app.state.clock = clock
    app.state.transactions = TransactionService(
        engine,
        registry=registry,
        origin=ORIGIN,
        sign_note=checkpoint_sign_note(CheckpointKeyring.single(signer)),
        clock=clock,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        rng = random.Random(71)
        seller = new_party(client, rng, "business", entity=True)
        # The buyer the invoice builders name by default.
        buyer = Party(BUYER, bearer(BUYER, "business"), generate_private_key("EdDSA"))
        register(client, buyer)
        yield World(client, clock, seller, buyer, rng)


def post(w: World, party: Party, type_: str, payload: dict[str, JsonValue], **kw: Any) -> Any:
    body = signed(party, type_, payload, created_at=w.clock(), **kw)
    return w.client.post("/v1/transactions", json=body, headers=party.headers)


def submit(w: World, party: Party, invoices: list[dict[str, Any]], **kw: Any) -> Any:
    r = post(w, party, SUBMIT, batch(invoices), **kw)
    assert r.status_code == 201, r.text
    return r.json()["result"]


def answer(w: World, party: Party, tax_id_text: str, decision: str) -> Any:
    payload: dict[str, JsonValue] = {
        "jurisdiction": "ir",
        "tax_id": tax_id_text,
        "decision": decision,
    }
    return post(w, party, RESPOND, payload)


def rules(result: dict[str, Any]) -> list[list[str]]:
    return [[e["rule"] for e in i["errors"]] for i in result["invoices"]]


def view(w: World, party: Party, tax_id_text: str) -> Any:
    return w.client.get(f"/v1/tax/invoices/{tax_id_text}", headers=party.headers)


def listed(w: World, party: Party, **query: str) -> list[str]:
    r = w.client.get("/v1/tax/invoices", params=query, headers=party.headers)
    assert r.status_code == 200, r.text
    return [i["tax_id"] for i in r.json()["items"]]


def hour_ago(w: World) -> datetime:
    return w.clock() - timedelta(hours=1)


def refused_rule(r: Any) -> str:
    body: Any = problem(r, 409, "invoice-response-refused")
    return str(body["errors"][0]["rule"])


# --- batches --------------------------------------------------------------------------------------


def test_a_batch_records_the_valid_invoices_and_each_invalid_one_with_its_errors(
    world: World, engine: Engine, signer: NoteSigner
) -> None:
    w, at = world, hour_ago(world)
    wrong_vat = invoice(2, issued_at=at)
    wrong_vat["lines"][0]["vat_minor"] += 1  # one rial over
    bad_check = invoice(4, issued_at=at)
    bad_check["tax_id"] = str(bad_check["tax_id"])[:-1] + str(
        (int(str(bad_check["tax_id"])[-1]) + 1) % 10
    )
    invoices = [
        invoice(1, issued_at=at),
        wrong_vat,
        invoice(3, issued_at=at, lines=[line("1.5", 333_333, 1), line()]),
        bad_check,
        invoice(5, issued_at=at, buyer=None),  # type 2: a consumer, no buyer
    ]
    r = post(w, w.seller, SUBMIT, batch(invoices))
    assert r.status_code == 201, r.text
    assert_verifies(r.json(), signer)
    result = r.json()["result"]
    assert (result["accepted"], result["rejected"]) == (3, 2)
    assert [i["status"] for i in result["invoices"]] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
        "accepted",
    ]
    assert [i["tax_id"] for i in result["invoices"]] == [i["tax_id"] for i in invoices]
    vat_errors = {(e["pointer"], e["rule"]) for e in result["invoices"][1]["errors"]}
    assert ("/payload/invoices/1/lines/0/vat_minor", "arithmetic_mismatch") in vat_errors
    assert {rule for _, rule in vat_errors} == {"arithmetic_mismatch"}
    assert [(e["pointer"], e["rule"]) for e in result["invoices"][3]["errors"]] == [
        ("/payload/invoices/3/tax_id", "invalid_check_digit")
    ]
    recorded = [str(invoices[i]["tax_id"]) for i in (0, 2, 4)]
    assert set(listed(w, w.seller)) == set(recorded)
    assert set(listed(w, w.buyer)) == set(recorded[:2])  # the consumer's invoice names no buyer
    problem(view(w, w.seller, str(wrong_vat["tax_id"])), 404, "invoice-not-found")
    # A batch whose every invoice fails is still recorded: the seller signed it.
    before = tree_size(engine)
    none_valid = submit(w, w.seller, [wrong_vat])
    assert (none_valid["accepted"], none_valid["rejected"]) == (0, 1)
    assert tree_size(engine) == before + 1


def test_a_tax_id_is_refused_twice_in_a_batch_and_against_the_recorded_ones(world: World) -> None:
    w, at = world, hour_ago(world)
    first = invoice(1, issued_at=at)
    again_in_batch = invoice(1, issued_at=at, lines=[line("3")])
    broken = invoice(2, issued_at=at)
    broken["totals"]["total_minor"] += 1
    fixed = invoice(2, issued_at=at)  # same tax ID as the broken one before it
    result = submit(w, w.seller, [first, again_in_batch, broken, fixed])
    assert rules(result) == [
        [],
        ["duplicate_tax_id"],
        ["arithmetic_mismatch"],
        ["duplicate_tax_id"],
    ]
    later = submit(w, w.seller, [invoice(1, issued_at=at), fixed, invoice(3, issued_at=at)])
    assert rules(later) == [["duplicate_tax_id"], [], []]
    assert set(listed(w, w.seller)) == {first["tax_id"], fixed["tax_id"], tax_id(3, issued_at=at)}


def test_a_memory_id_belongs_to_the_first_seller_that_uses_it(world: World) -> None:
    w, at = world, hour_ago(world)
    other = w.party()
    assert rules(submit(w, w.seller, [invoice(1, issued_at=at)])) == [[]]
    taken = submit(
        w, other, [invoice(2, issued_at=at), invoice(3, issued_at=at, memory_id="C33333")]
    )
    assert rules(taken) == [["memory_id_of_another_seller"], []]
    assert rules(submit(w, w.seller, [invoice(4, issued_at=at)])) == [[]]
    # Within one batch too: the first recorded invoice binds the memory ID.
    third = w.party()
    mixed = submit(
        w,
        third,
        [
            invoice(1, issued_at=at, memory_id="D44444"),
            invoice(9, issued_at=at, memory_id="C33333"),
        ],
    )
    assert rules(mixed) == [[], ["memory_id_of_another_seller"]]


def test_corrections_returns_and_a_cancellation_form_the_originals_chain(world: World) -> None:
    w, at = world, hour_ago(world)
    original, fix, back, cancel, fix_after = (tax_id(n, issued_at=at) for n in range(1, 6))
    submit(w, w.seller, [invoice(1, issued_at=at)])
    result = submit(
        w,
        w.seller,
        [
            invoice(2, issued_at=at, subtype="corrective", reference=original, lines=[line("3")]),
            invoice(3, issued_at=at, subtype="sales_return", reference=original, lines=[line("1")]),
            invoice(6, issued_at=at, subtype="corrective", reference=fix),
            invoice(7, issued_at=at, subtype="corrective", reference=tax_id(99, issued_at=at)),
        ],
    )
    assert rules(result) == [[], [], ["reference_not_original"], ["reference_not_found"]]
    # Only the original's seller refers to it (under its own memory ID).
    other = w.party()
    foreign = invoice(1, issued_at=at, memory_id="E55555", subtype="corrective", reference=original)
    assert rules(submit(w, other, [foreign])) == [["not_the_original_seller"]]
    # The cancellation marks the original cancelled; nothing may refer to it afterwards.
    cancelled = submit(
        w,
        w.seller,
        [
            invoice(4, issued_at=at, subtype="cancellation", reference=original),
            invoice(5, issued_at=at, subtype="corrective", reference=original),
        ],
    )
    assert rules(cancelled) == [[], ["original_cancelled"]]
    assert rules(
        submit(w, w.seller, [invoice(8, issued_at=at, subtype="sales_return", reference=original)])
    ) == [["original_cancelled"]]
    for party in (w.seller, w.buyer):
        got = view(w, party, fix)
        assert got.status_code == 200, got.text
        chain = got.json()["chain"]
        assert [c["tax_id"] for c in chain] == [original, fix, back, cancel]
        assert [c["subtype"] for c in chain] == [
            "original",
            "corrective",
            "sales_return",
            "cancellation",
        ]
        assert chain[0]["status"] == "cancelled" and chain[1]["status"] == "issued"
    assert view(w, w.seller, original).json()["status"] == "cancelled"
    problem(view(w, w.seller, fix_after), 404, "invoice-not-found")
    problem(view(w, other, original), 404, "invoice-not-found")
    # An original cancelled within its own batch: a later invoice of that batch sees it.
    in_batch = submit(
        w,
        w.seller,
        [
            invoice(10, issued_at=at),
            invoice(11, issued_at=at, subtype="cancellation", reference=tax_id(10, issued_at=at)),
            invoice(12, issued_at=at, subtype="corrective", reference=tax_id(10, issued_at=at)),
        ],
    )
    assert rules(in_batch) == [[], [], ["original_cancelled"]]
    assert view(w, w.seller, tax_id(10, issued_at=at)).json()["status"] == "cancelled"


def test_late_and_future_invoices_are_rejected(world: World) -> None:
    w = world
    now = w.clock()
    window_days = 7  # ir: invoice.submission_window_days
    on_time = now - timedelta(days=window_days)
    late = now - timedelta(days=window_days + 1)
    future = now + timedelta(hours=1)
    result = submit(
        w,
        w.seller,
        [invoice(1, issued_at=on_time), invoice(2, issued_at=late), invoice(3, issued_at=future)],
    )
    assert rules(result) == [[], ["late_submission"], ["issued_in_future"]]
    assert result["invoices"][1]["errors"][0]["pointer"] == "/payload/invoices/1/issued_at"


def test_a_malformed_batch_or_a_seller_outside_the_jurisdiction_is_refused_whole(
    world: World, engine: Engine
) -> None:
    w = world
    before = tree_size(engine)
    empty = post(w, w.seller, SUBMIT, {"jurisdiction": "ir", "invoices": []})
    body: Any = problem(empty, 400, "payload-invalid")
    assert body["errors"][0]["rule"] == "too_short"
    wrong_place = post(
        w, w.seller, SUBMIT, {"jurisdiction": "ee", "invoices": [invoice(1, issued_at=hour_ago(w))]}
    )
    body = problem(wrong_place, 400, "payload-invalid")
    assert body["errors"][0]["rule"] == "not_a_taxpayer_of_jurisdiction"
    assert tree_size(engine) == before


def test_a_representative_submits_for_the_entity(world: World) -> None:
    w, at = world, hour_ago(world)
    clerk = w.party(entity=False)
    not_after = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    grant: dict[str, JsonValue] = {
        "delegate": clerk.subject,
        "types": [SUBMIT],
        "not_after": not_after,
    }
    assert post(w, w.seller, "delegation.grant", grant).status_code == 201
    result = submit(w, clerk, [invoice(1, issued_at=at)], on_behalf_of=w.seller.subject)
    assert rules(result) == [[]]
    seen = view(w, w.seller, tax_id(1, issued_at=at)).json()
    assert (seen["seller"], seen["signer"]) == (w.seller.subject, clerk.subject)
    assert "signer" not in view(w, w.buyer, tax_id(1, issued_at=at)).json()


# --- the buyer's answer ---------------------------------------------------------------------------


def test_the_buyer_accepts_or_rejects_once(world: World) -> None:
    w, at = world, hour_ago(world)
    first, second, third, back, consumer = (tax_id(n, issued_at=at) for n in range(1, 6))
    submit(
        w,
        w.seller,
        [
            invoice(1, issued_at=at),
            invoice(2, issued_at=at),
            invoice(3, issued_at=at),
            invoice(4, issued_at=at, subtype="sales_return", reference=third, lines=[line("1")]),
            invoice(5, issued_at=at, buyer=None),
        ],
    )
    r = answer(w, w.buyer, first, "accept")
    assert r.status_code == 201, r.text
    assert r.json()["result"] == {
        "tax_id": first,
        "decision": "accepted",
        "seller": w.seller.subject,
    }
    assert refused_rule(answer(w, w.buyer, first, "reject")) == "already_decided"
    assert answer(w, w.buyer, second, "reject").status_code == 201
    # Only the buyer answers; a seller or anyone else is told the invoice does not exist.
    assert refused_rule(answer(w, w.seller, third, "accept")) == "invoice_not_found"
    assert refused_rule(answer(w, w.party(), third, "accept")) == "invoice_not_found"
    assert refused_rule(answer(w, w.buyer, consumer, "accept")) == "invoice_not_found"
    assert (
        refused_rule(answer(w, w.buyer, tax_id(77, issued_at=at), "accept")) == "invoice_not_found"
    )
    assert refused_rule(answer(w, w.buyer, back, "accept")) == "not_answerable"
    bad = answer(w, w.buyer, third, "maybe")
    body: Any = problem(bad, 400, "payload-invalid")
    assert body["errors"][0]["rule"] == "invalid_choice"
    for party in (w.seller, w.buyer):
        assert view(w, party, first).json()["decision"] == "accepted"
        assert view(w, party, second).json()["decision"] == "rejected"
        assert view(w, party, third).json()["decision"] == "pending"
        assert view(w, party, back).json()["decision"] is None
    assert listed(w, w.seller, status="accepted") == [first]
    assert listed(w, w.seller, status="rejected") == [second]
    # A cancelled invoice is not answered either.
    submit(w, w.seller, [invoice(6, issued_at=at, subtype="cancellation", reference=third)])
    assert refused_rule(answer(w, w.buyer, third, "accept")) == "invoice_cancelled"


def _tehran_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=TEHRAN).astimezone(UTC)


def test_the_window_closes_and_an_undecided_invoice_is_deemed_accepted(world: World) -> None:
    w, at = world, hour_ago(world)
    on_last_day, after, never = (tax_id(n, issued_at=at) for n in range(1, 4))
    submit(w, w.seller, [invoice(n, issued_at=at) for n in range(1, 4)])
    respond_by = date.fromisoformat(view(w, w.buyer, on_last_day).json()["respond_by"]["date"])
    issued_on = date.fromisoformat(view(w, w.buyer, on_last_day).json()["issued_on"]["date"])
    assert respond_by == issued_on + timedelta(days=30)  # ir: invoice.response_window_days
    w.clock.move_to(_tehran_noon(respond_by))
    assert answer(w, w.buyer, on_last_day, "reject").status_code == 201
    w.clock.move_to(_tehran_noon(respond_by + timedelta(days=1)))
    assert refused_rule(answer(w, w.buyer, after, "accept")) == "response_window_closed"
    for party in (w.seller, w.buyer):
        assert view(w, party, never).json()["decision"] == "deemed_accepted"
        assert view(w, party, on_last_day).json()["decision"] == "rejected"
    assert set(listed(w, w.buyer, status="deemed_accepted")) == {after, never}
    assert listed(w, w.buyer, status="pending") == []


# --- lists ----------------------------------------------------------------------------------------


def test_each_side_lists_its_own_invoices_with_filters_and_pages(world: World) -> None:
    w, at = world, hour_ago(world)
    other = w.party()
    sold = [tax_id(n, issued_at=at) for n in range(1, 6)]
    submit(w, w.seller, [invoice(n, issued_at=at) for n in range(1, 6)])
    bought = tax_id(1, issued_at=at, memory_id="F66666")
    submit(w, other, [invoice(1, issued_at=at, memory_id="F66666", buyer=w.seller.subject)])
    assert set(listed(w, w.seller)) == {*sold, bought}
    assert set(listed(w, w.seller, role="seller")) == set(sold)
    assert listed(w, w.seller, role="buyer") == [bought]
    assert listed(w, w.seller, counterparty=other.subject) == [bought]
    assert set(listed(w, w.seller, counterparty=w.buyer.subject)) == set(sold)
    assert listed(w, other) == [bought]
    assert listed(w, w.party()) == []
    # Periods of the ir calendar: the issue day's month, quarter and year; another is empty.
    pack = pack_for("ir")
    month = period_containing(pack, at.astimezone(TEHRAN).date(), kind="month").label
    year, month_number = month.split("-")
    quarter = f"{year}-Q{(int(month_number) - 1) // 3 + 1}"
    for label in (month, quarter, year):
        assert set(listed(w, w.seller, period=label)) == {*sold, bought}, label
    assert listed(w, w.seller, period=str(int(year) - 1)) == []
    assert listed(w, w.seller, jurisdiction="ee") == []
    # Pages: newest first by (issue time, tax ID), each invoice once.
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = w.client.get("/v1/tax/invoices", params=query, headers=w.seller.headers).json()
        seen += [i["tax_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted({*sold, bought}, reverse=True)  # one issue time: by tax ID
    for query, slug in (
        ({"cursor": "bm90LWEtY3Vyc29y"}, "invalid-cursor"),
        ({"period": "1403-Q5"}, "invalid-field"),
        ({"counterparty": "ir-lid:10380284791"}, "invalid-field"),
        ({"status": "paid"}, "invalid-request"),
    ):
        r = w.client.get("/v1/tax/invoices", params=query, headers=w.seller.headers)
        problem(r, 400, slug)
    problem(view(w, w.seller, "not-a-tax-id"), 404, "invoice-not-found")
    auditor = w.client.get("/v1/tax/invoices", headers={"Authorization": "Bearer x"})
    assert auditor.status_code == 401


@pytest.mark.slow
def test_a_batch_of_1000_invoices(world: World) -> None:
    """Needs the per-type body limit for tax.invoice.submit (a 1,000-invoice batch is ~1 MB)."""
    w, at = world, hour_ago(world)
    result = submit(w, w.seller, [invoice(n, issued_at=at) for n in range(1, 1001)])
    assert (result["accepted"], result["rejected"]) == (1000, 0)
    page = w.client.get("/v1/tax/invoices", params={"limit": "100"}, headers=w.buyer.headers)
    assert len(page.json()["items"]) == 100 and page.json()["next_cursor"] is not None
