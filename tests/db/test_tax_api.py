"""Tax through the service, on SQLite and PostgreSQL: signed returns recorded with their traces,
assessed into payables or credits, amended as chains of versions, followed by the filer and
(without amounts or subjects) by auditors; obligations, previews and the packs."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from api.settings import Settings
from ledger.note import NoteSigner
from payments.schema import payables
from signatures.canonical import canonicalize
from signatures.client import generate_private_key
from tests.db.conftest import ORIGIN
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

POSTAL = "1193653471"
EE_PERSON = "ee-ik:37605030299"


@pytest.fixture
def client(engine: Engine, signer: NoteSigner) -> Iterator[TestClient]:
    settings = Settings.model_construct(ledger_origin=ORIGIN, rate_limit_per_minute=10_000)
    app = create_app(settings, engine=engine, checkpoint_signer=signer, token_verifier=verifier())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def personal(period: str = "1403", *, other: int = 2_000_000_000, **extra: Any) -> dict[str, Any]:
    return {
        "jurisdiction": "ir",
        "period": period,
        "postal_code": POSTAL,
        "salary": [{"employer": "ir-lid:10380284790", "annual_minor": 3_000_000_000}],
        "other_income_minor": other,
        **extra,
    }


def file(client: TestClient, party: Party, payload: dict[str, Any], **kw: Any) -> Any:
    type_ = kw.pop("type_", "tax.return.personal")
    return client.post(
        "/v1/transactions", json=signed(party, type_, payload, **kw), headers=party.headers
    )


def accepted(r: Any) -> dict[str, Any]:
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()["result"]
    assert result["status"] == "accepted", result
    return result


def test_a_return_is_recorded_traced_and_assessed_into_a_payable(
    client: TestClient, engine: Engine, signer: NoteSigner
) -> None:
    citizen = new_party(client, random.Random(61))
    r = file(client, citizen, personal())
    result = accepted(r)
    assert_verifies(r.json(), signer)
    # The trace hash is the SHA-256 of the canonical trace lines, as docs/TAX.md says.
    lines = result["computation"]["lines"]
    assert result["trace_sha256"] == hashlib.sha256(canonicalize(lines)).hexdigest()
    assert result["pack_version"].startswith("ir-r")
    codes = [line["code"] for line in lines]
    assert "tax.total" in codes and "general.taxable" in codes
    # Every line says where its figure comes from: a parameter line names its source and date.
    with_param = [line for line in lines if line.get("parameter")]
    assert with_param and all(p["parameter"]["source"]["citation"] for p in with_param)
    # 1403's deadline (end of Khordad 1404) is long past: the assessment adds the late-filing
    # penalty and the late-payment interest, each its own line, and sums them.
    assessment = result["assessment"]
    by_code = {line["code"]: line["amount_minor"] for line in assessment["lines"]}
    assert by_code["penalty.late_filing"] > 0 and by_code["interest.late_payment"] > 0
    assert (
        assessment["due_minor"]
        == result["computation"]["tax_minor"]
        + by_code["penalty.late_filing"]
        + by_code["interest.late_payment"]
    )
    # art. 190's rate is read from secondary sources only: the assessment says so.
    assert "interest.late_payment" in assessment["unverified_parameters"]
    # The payable is in payments, of kind tax, owed by the citizen, for the whole amount.
    payable = client.get(f"/v1/payables/{assessment['payable_id']}", headers=citizen.headers)
    assert payable.status_code == 200, payable.text
    assert payable.json()["kind"] == "tax"
    assert payable.json()["amount"]["amount_minor"] == assessment["due_minor"]
    # The filer follows it.
    view = client.get(f"/v1/tax/filings/{result['filing_id']}", headers=citizen.headers).json()
    assert view["status"] == "accepted" and view["version"] == 1
    assert view["detail"]["trace_sha256"] == result["trace_sha256"]
    assert view["balance"]["outstanding_minor"] == assessment["due_minor"]
    assert view["balance"]["interest_accrued_minor"] == 0
    listed = client.get("/v1/tax/filings", headers=citizen.headers).json()["items"]
    assert [f["filing_id"] for f in listed] == [result["filing_id"]]
    # Left unpaid past its due date, the payable accrues interest, shown line by line.
    later = datetime.now(UTC) + timedelta(days=65)
    client.app.state.clock = lambda: later  # type: ignore[attr-defined]
    view = client.get(f"/v1/tax/filings/{result['filing_id']}", headers=citizen.headers).json()
    accrued = view["balance"]["interest_lines"]
    assert [line["code"] for line in accrued] == ["interest.after_due_date"]
    assert view["balance"]["interest_accrued_minor"] == accrued[0]["amount_minor"] > 0


def test_amendments_form_a_chain_with_differences_and_balances(
    client: TestClient, engine: Engine
) -> None:
    citizen = new_party(client, random.Random(62))
    first = accepted(file(client, citizen, personal()))
    # More income: an additional payable for the difference only.
    second = accepted(
        file(client, citizen, personal(other=3_000_000_000, amends=first["filing_id"]))
    )
    diff = {row["code"]: row for row in second["difference"]}
    assert diff["general.income"]["delta_minor"] == 1_000_000_000
    assert diff["tax.total"]["delta_minor"] == (
        second["computation"]["tax_minor"] - first["computation"]["tax_minor"]
    )
    assert second["assessment"]["due_minor"] > 0 and second["assessment"]["credit_minor"] == 0
    assert second["assessment"]["payable_id"] == second["filing_id"]
    # Amending an old version is refused and records nothing; so is a second "first" filing.
    before = tree_size(engine)
    stale = file(client, citizen, personal(other=1, amends=first["filing_id"]))
    assert problem(stale, 409, "filing-chain-conflict")["errors"][0]["rule"] == "amends_not_head"
    fresh = file(client, citizen, personal(other=1))
    assert problem(fresh, 409, "filing-chain-conflict")["errors"][0]["rule"] == "amends_required"
    assert tree_size(engine) == before
    # Less income: a credit, and no payable.
    third = accepted(file(client, citizen, personal(other=0, amends=second["filing_id"])))
    assert third["assessment"]["credit_minor"] > 0 and third["assessment"]["payable_id"] is None
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(payables)).scalar_one()
    assert count == 2
    view = client.get(f"/v1/tax/filings/{third['filing_id']}", headers=citizen.headers).json()
    assert [v["version"] for v in view["chain"]] == [1, 2, 3]
    assert view["chain"][0]["superseded_by"] == second["filing_id"]
    balance = view["balance"]
    assessed = first["assessment"]["due_minor"] + second["assessment"]["due_minor"]
    assert balance["assessed_minor"] == assessed
    assert balance["credited_minor"] == third["assessment"]["credit_minor"]
    assert balance["outstanding_minor"] == assessed - balance["credited_minor"]


def test_a_return_breaking_a_rule_is_recorded_as_rejected(client: TestClient) -> None:
    citizen = new_party(client, random.Random(63))
    r = file(client, citizen, personal("1405"))  # the fiscal year running now
    assert r.status_code == 201, r.text
    result = r.json()["result"]
    assert result["status"] == "rejected" and "assessment" not in result
    issues = {(i["code"], i["severity"]) for i in result["issues"]}
    assert ("period_not_ended", "error") in issues
    view = client.get(f"/v1/tax/filings/{result['filing_id']}", headers=citizen.headers).json()
    assert view["status"] == "rejected" and view["version"] is None
    # A rejected filing is no version: the next return is a first filing again.
    accepted(file(client, citizen, personal("1403")))


def test_bad_input_is_refused_with_its_field(client: TestClient, engine: Engine) -> None:
    citizen = new_party(client, random.Random(64))
    before = tree_size(engine)
    r = file(client, citizen, personal(postal_code="0193653471"))
    body = problem(r, 400, "payload-invalid")
    assert {e["field"] for e in body["errors"]} == {"/envelope/payload/postal_code"}
    wrong_place = {"jurisdiction": "ee", "period": "2025", "other_income_minor": 1}
    body = problem(file(client, citizen, wrong_place), 400, "payload-invalid")
    assert body["errors"][0]["rule"] == "not_a_taxpayer_of_jurisdiction"
    assert tree_size(engine) == before


def test_a_representative_files_for_the_entity(client: TestClient) -> None:
    rng = random.Random(65)
    entity = new_party(client, rng, "business", entity=True)
    clerk = new_party(client, rng, "business")
    not_after = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    grant = signed(
        entity,
        "delegation.grant",
        {"delegate": clerk.subject, "types": ["tax.return.corporate"], "not_after": not_after},
    )
    assert client.post("/v1/transactions", json=grant, headers=entity.headers).status_code == 201
    payload = {
        "jurisdiction": "ir",
        "period": "1403",
        "postal_code": POSTAL,
        "profit_minor": 10**10,
    }
    r = file(client, clerk, payload, type_="tax.return.corporate", on_behalf_of=entity.subject)
    result = accepted(r)
    by_code = {line["code"]: line["amount_minor"] for line in result["computation"]["lines"]}
    assert by_code["corporate.tax"] == 10**10 // 4  # art. 105: 25 % of the taxable profit
    for party in (entity, clerk):
        got = client.get(f"/v1/tax/filings/{result['filing_id']}", headers=party.headers)
        assert got.status_code == 200 and got.json()["taxpayer"] == entity.subject
    # A person does not file a corporate return for itself.
    body = problem(
        file(client, clerk, payload, type_="tax.return.corporate"), 400, "payload-invalid"
    )
    assert body["errors"][0]["rule"] == "not_a_taxpayer_of_jurisdiction"


def test_others_see_404_and_auditors_see_the_chain_without_amounts(client: TestClient) -> None:
    rng = random.Random(66)
    citizen, other = new_party(client, rng), new_party(client, rng)
    result = accepted(file(client, citizen, personal()))
    url = f"/v1/tax/filings/{result['filing_id']}"
    problem(client.get(url, headers=other.headers), 404, "filing-not-found")
    problem(
        client.get("/v1/tax/filings/" + "0" * 36, headers=other.headers), 404, "filing-not-found"
    )
    audit = client.get(url, headers=bearer("auditor:ana", "auditor"))
    assert audit.status_code == 200, audit.text
    view = audit.json()
    assert view["ledger_index"] >= 0 and view["trace_sha256"] == result["trace_sha256"]
    text = audit.text
    assert citizen.subject.split(":")[1] not in text and "tax_minor" not in text
    assert client.get("/v1/tax/filings", headers=other.headers).json()["items"] == []


def test_obligations_follow_filings_and_deadlines(client: TestClient) -> None:
    citizen = new_party(client, random.Random(67))
    items = client.get("/v1/tax/obligations", headers=citizen.headers).json()["items"]
    by_period = {o["period"]: o for o in items if o["kind"] == "personal"}
    assert {"1402", "1403", "1404"} <= set(by_period)
    assert all(o["jurisdiction"] == "ir" for o in items)
    assert by_period["1403"]["status"] == "overdue"
    assert by_period["1403"]["due_on"]["jalali"].startswith("1404-03-3")  # end of Khordad, rolled
    result = accepted(file(client, citizen, personal()))
    items = client.get("/v1/tax/obligations", headers=citizen.headers).json()["items"]
    after = {o["period"]: o for o in items if o["kind"] == "personal"}
    assert after["1403"]["status"] == "filed_late"
    assert after["1403"]["filing_id"] == result["filing_id"]
    # Before 1403's deadline the obligation was open and 1404 not yet listed.
    app = client.app
    app.state.clock = lambda: datetime(2025, 5, 1, 12, tzinfo=UTC)  # type: ignore[attr-defined]
    early = client.get("/v1/tax/obligations", headers=citizen.headers).json()["items"]
    periods = {o["period"]: o["status"] for o in early if o["kind"] == "personal"}
    assert periods["1403"] == "filed" or periods["1403"] == "filed_late"
    assert "1404" not in periods


def test_an_estonian_resident_files_in_ee(client: TestClient) -> None:
    resident = Party(EE_PERSON, bearer(EE_PERSON, "citizen"), generate_private_key("EdDSA"))  # type: ignore[arg-type]
    register(client, resident)
    items = client.get("/v1/tax/obligations", headers=resident.headers).json()["items"]
    assert items and {o["jurisdiction"] for o in items} == {"ee"}
    payload = {"jurisdiction": "ee", "period": "2025", "other_income_minor": 3_000_000}
    result = accepted(file(client, resident, payload))
    assert result["currency"] == "EUR"
    # Personal code holders do not file in ir.
    bad = problem(file(client, resident, personal()), 400, "payload-invalid")
    assert bad["errors"][0]["rule"] == "not_a_taxpayer_of_jurisdiction"


def test_the_preview_computes_what_filing_would_and_writes_nothing(
    client: TestClient, engine: Engine
) -> None:
    citizen = new_party(client, random.Random(68))
    before = tree_size(engine)
    body = {"type": "tax.return.personal", "payload": personal()}
    preview = client.post("/v1/tax/calculate", json=body, headers=citizen.headers)
    assert preview.status_code == 200, preview.text
    assert tree_size(engine) == before
    assert client.get("/v1/tax/filings", headers=citizen.headers).json()["items"] == []
    result = accepted(file(client, citizen, personal()))
    assert preview.json()["trace_sha256"] == result["trace_sha256"]
    assert preview.json()["assessment"]["due_minor"] == result["assessment"]["due_minor"]
    bad = client.post(
        "/v1/tax/calculate", json={"type": "tax.return.vat", "payload": {}}, headers=citizen.headers
    )
    assert problem(bad, 400, "invalid-field")["errors"][0]["rule"] == "unknown_type"
    refused = client.post(
        "/v1/tax/calculate",
        content=b'{"type": "tax.return.personal", "payload": {"period": 1.5}}',
        headers={**citizen.headers, "content-type": "application/json"},
    )
    problem(refused, 400, "invalid-field")


def test_the_packs_are_public(client: TestClient) -> None:
    listed = client.get("/v1/tax/packs").json()["items"]
    assert {p["jurisdiction"] for p in listed} == {"ee", "ir"}
    pack = client.get("/v1/tax/packs/ir")
    assert pack.status_code == 200 and "corporate.rate" in pack.text
    problem(client.get("/v1/tax/packs/zz"), 404, "pack-not-found")


def test_the_vat_return_and_its_preview_are_served(client: TestClient) -> None:
    """Wiring only (tests/db/test_vat_returns.py has the figures): a business previews and files
    the quarter running now, which has not ended, so the return is recorded as rejected."""
    entity = new_party(client, random.Random(69), "business", entity=True)
    today = datetime.now(UTC).date()
    from tax.calendar import period_containing
    from tax.rulepack import pack_for

    current = period_containing(pack_for("ir"), today, kind="quarter").label
    url = f"/v1/tax/vat/{current}"
    preview = client.get(url, params={"jurisdiction": "ir"}, headers=entity.headers)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["declared"] == {"output_vat_minor": 0, "input_vat_minor": 0}
    assert {i["code"] for i in body["issues"]} == {"period_not_ended"}
    assert client.get(url, headers=entity.headers).status_code == 400  # jurisdiction required
    payload = {"jurisdiction": "ir", "period": current, "declared": body["declared"]}
    r = file(client, entity, payload, type_="tax.return.vat")
    assert r.status_code == 201, r.text
    assert r.json()["result"]["status"] == "rejected"
    citizen = new_party(client, random.Random(70))
    problem(client.get(url, params={"jurisdiction": "ir"}, headers=citizen.headers), 400,
            "invalid-field")  # fmt: skip
