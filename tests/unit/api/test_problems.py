"""RFC 9457 problem details: the error table, validation as 400, HTTP errors, the last resort."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Query
from fastapi.testclient import TestClient

from api.problems import (
    ABOUT_BLANK,
    ERROR_TABLE,
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPE_BASE,
    FieldError,
    Problem,
    install_problem_handlers,
    problem_from_error,
    problem_type,
)
from ledger.errors import (
    LedgerError,
    LedgerLimitError,
    NoteFormatError,
    NoteSignatureError,
    NotFoundError,
    ProofLengthError,
    RootMismatchError,
    StorageInconsistentError,
    TreeSizeError,
)
from licences.errors import LicencesError
from payments.errors import (
    PayableAmountError,
    PaymentsError,
    ProviderTimeoutError,
    StaleRefundableAmountError,
)
from signatures.errors import FieldError as SignaturesFieldError
from signatures.errors import SignaturesError
from tax.errors import FilingChainError, TaxError, TaxFieldError

# A message that must never leave the process or reach the log.
SECRET = "national id 0012345678"

# name: (error, status, type slug, title)
MAPPED = {
    "tree-size": (
        TreeSizeError("tree_size 9 is beyond the current tree size 4", field="tree_size", value=9),
        400, "tree-size-out-of-range", "Tree size or index out of range",
    ),
    "proof-length": (
        ProofLengthError("wrong length", expected=3, actual=2),
        400, "proof-length", "Proof has the wrong length",
    ),
    "root-mismatch": (
        RootMismatchError("mismatch", expected=b"\x00" * 32, computed=b"\x01" * 32),
        400, "root-mismatch", "Proof does not lead to the root",
    ),
    "not-found": (
        NotFoundError("no entry at index 7", field="index", value=7),
        404, "not-found", "Not found",
    ),
    "leaf-too-large": (
        LedgerLimitError("too big", limit_name="MAX_LEAF_BYTES", limit=65536, actual=70000),
        413, "limit-exceeded", "A size limit was exceeded",
    ),
    "batch-too-large": (
        LedgerLimitError("too many", limit_name="MAX_BATCH_LEAVES", limit=10000, actual=10001),
        413, "limit-exceeded", "A size limit was exceeded",
    ),
    "empty-batch": (
        LedgerLimitError("empty", limit_name="min_batch_leaves", limit=1, actual=0),
        400, "below-minimum", "A minimum was not met",
    ),
    "note-format": (NoteFormatError("bad note"), 400, "malformed-note", "Malformed signed note"),
    "note-signature": (
        NoteSignatureError("no trusted signature"),
        400, "note-signature", "Signed note does not verify",
    ),
    "tax-field": (
        TaxFieldError((SignaturesFieldError("/payload/period", "invalid_period", "a year"),)),
        400, "invalid-field", "A field is not valid",
    ),
    "filing-chain": (
        FilingChainError("amends names an old version", rule="amends_not_head", head=None),
        409, "filing-chain-conflict", "The return does not continue its chain of versions",
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("error", "status", "slug", "title"), list(MAPPED.values()), ids=list(MAPPED)
)
def test_package_errors_map_through_the_one_table(
    error: Exception, status: int, slug: str, title: str
) -> None:
    problem = problem_from_error(error)
    assert (problem.status, problem.type, problem.title) == (status, problem_type(slug), title)
    assert problem.detail == str(error)
    assert problem.instance is None


def test_every_table_entry_is_one_of_our_types() -> None:
    for cls, kind in ERROR_TABLE.items():
        assert issubclass(
            cls, LedgerError | SignaturesError | PaymentsError | TaxError | LicencesError
        )
        assert 400 <= kind.status < 600
        assert problem_type(kind.slug).startswith(PROBLEM_TYPE_BASE)


@pytest.mark.parametrize(
    ("ledger_field", "api_field"),
    [("leaf_index", "index"), ("tree_size", "tree_size"), ("first_size", "first"),
     ("second_size", "second")],
)  # fmt: skip
def test_tree_size_errors_name_the_query_parameter(ledger_field: str, api_field: str) -> None:
    problem = problem_from_error(TreeSizeError("out of range", field=ledger_field, value=5))
    assert problem.errors == (FieldError(field=api_field, rule="range", message="out of range"),)


def test_storage_inconsistency_fails_closed_without_internals() -> None:
    problem = problem_from_error(StorageInconsistentError("node level 3 index 9 missing"))
    assert problem.status == 500
    assert problem.type == problem_type("ledger-inconsistent")
    assert "level" not in str(problem.body())
    assert problem.instance is not None and problem.instance.startswith("urn:uuid:")


def test_unmapped_error_is_an_internal_error() -> None:
    problem = problem_from_error(ValueError(SECRET))
    assert (problem.status, problem.type) == (500, problem_type("internal-error"))
    assert SECRET not in str(problem.body())


# --- Through a test application ------------------------------------------------------------------


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/items")
    def items(n: Annotated[int, Query(ge=1, le=10)], m: int = 0) -> dict[str, int]:
        return {"n": n, "m": m}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(SECRET)

    @app.get("/not-found")
    def not_found() -> None:
        raise NotFoundError("no entry at index 3", field="index", value=3)

    @app.get("/inconsistent")
    def inconsistent() -> None:
        raise StorageInconsistentError("entries end at index 4 but the newest checkpoint has 3")

    @app.get("/teapot")
    def teapot() -> None:
        raise HTTPException(status_code=418, detail="short and stout")

    @app.get("/problem")
    def problem() -> None:
        raise Problem(409, problem_type("conflict"), "Conflict", "already there")

    return app


@pytest.fixture
def client() -> TestClient:
    # Exceptions must not escape the app at all: keep the default raise_server_exceptions=True.
    return TestClient(_app())


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


def test_validation_errors_are_400_with_one_entry_per_field(client: TestClient) -> None:
    body = _problem(client.get("/items?n=abc&m=1.5"), 400)
    assert body["type"] == problem_type("invalid-request")
    assert body["title"] == "The request is not valid"
    assert body["detail"] == "2 request fields are not valid"
    assert {(e["field"], e["rule"]) for e in body["errors"]} == {
        ("n", "int_parsing"),
        ("m", "int_parsing"),
    }
    assert all(set(e) == {"field", "rule", "message"} for e in body["errors"])
    assert "abc" not in str(body)  # the rejected input is never echoed


@pytest.mark.parametrize(
    ("query", "rule"),
    [("", "missing"), ("?n=0", "greater_than_equal"), ("?n=11", "less_than_equal")],
)
def test_validation_rules_are_named(client: TestClient, query: str, rule: str) -> None:
    body = _problem(client.get(f"/items{query}"), 400)
    assert body["errors"] == [{"field": "n", "rule": rule, "message": body["errors"][0]["message"]}]
    assert body["detail"] == "1 request field is not valid"


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    body = _problem(client.get("/no/such/route"), 404)
    assert body == {"type": ABOUT_BLANK, "title": "Not Found", "status": 404}


def test_wrong_method_is_a_405_problem_with_allow(client: TestClient) -> None:
    r = client.delete("/items")
    body = _problem(r, 405)
    assert (body["type"], body["title"]) == (ABOUT_BLANK, "Method Not Allowed")
    assert "GET" in r.headers["allow"]


def test_http_exception_keeps_its_detail(client: TestClient) -> None:
    body = _problem(client.get("/teapot"), 418)
    assert body == {
        "type": ABOUT_BLANK, "title": "I'm a Teapot", "status": 418, "detail": "short and stout",
    }  # fmt: skip


def test_raised_problem_is_rendered_as_is(client: TestClient) -> None:
    body = _problem(client.get("/problem"), 409)
    assert body == {
        "type": problem_type("conflict"), "title": "Conflict", "status": 409,
        "detail": "already there",
    }  # fmt: skip


def test_package_error_from_a_route(client: TestClient) -> None:
    body = _problem(client.get("/not-found"), 404)
    assert (body["type"], body["detail"]) == (problem_type("not-found"), "no entry at index 3")


def test_inconsistency_is_logged_for_operators_but_not_answered(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="pishkhan.api"):
        body = _problem(client.get("/inconsistent"), 500)
    assert body["type"] == problem_type("ledger-inconsistent")
    assert "checkpoint" not in body["detail"]
    assert body["instance"] in caplog.text
    assert "newest checkpoint has 3" in caplog.text


def test_last_resort_is_a_500_problem_without_traceback_or_message(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="pishkhan.api"):
        r = client.get("/boom")
    body = _problem(r, 500)
    assert set(body) == {"type", "title", "status", "instance"}
    assert (body["type"], body["title"]) == (
        problem_type("internal-error"),
        "Internal server error",
    )
    for leak in ("Traceback", "RuntimeError", SECRET, "test_problems.py"):
        assert leak not in r.text
    # The log has what an operator needs, and not the message (it may hold personal data).
    assert "RuntimeError" in caplog.text and "/boom" in caplog.text
    assert body["instance"] in caplog.text
    assert SECRET not in caplog.text


def test_openapi_documents_problems_and_no_422() -> None:
    spec = _app().openapi()
    assert "Problem" in spec["components"]["schemas"]
    assert "FieldError" in spec["components"]["schemas"]
    for path in spec["paths"].values():
        for operation in path.values():
            assert "422" not in operation["responses"]


def test_payment_refusals_name_their_fields_and_rules() -> None:
    refused = PayableAmountError(
        "more than is owed",
        rule="exceeds_outstanding",
        payable_id="p",
        amount_minor=2,
        limit_minor=1,
    )
    problem = problem_from_error(refused)
    assert (problem.status, problem.type) == (409, problem_type("amount-refused"))
    assert problem.errors == (
        FieldError(field="amount", rule="exceeds_outstanding", message="more than is owed"),
    )
    stale = problem_from_error(StaleRefundableAmountError(5, 3, payable_id="p"))
    assert (stale.status, stale.detail) == (412, "expected 5 refundable, but 3 are")
    timeout = problem_from_error(ProviderTimeoutError("slow", provider="stripe", retryable=True))
    assert (timeout.status, timeout.detail) == (504, None)
    assert timeout.instance is not None
