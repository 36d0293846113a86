"""Prometheus metrics: route-template labels, the /metrics exposition, transactions, ledger size."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import (
    MAX_TRANSACTION_SERIES,
    METRICS_PATH,
    OTHER_LABEL,
    UNMATCHED_ROUTE,
    Metrics,
    install_metrics,
)
from api.problems import install_problem_handlers

NATIONAL_ID = "0012345678"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_metrics(app)

    @app.get("/v1/transactions/{tx_id}")
    def get_tx(tx_id: str) -> dict[str, str]:
        return {"tx_id": tx_id}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    return app


def _scrape(client: TestClient) -> Samples:
    r = client.get(METRICS_PATH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def _requests(*, route: str, status: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return ("pishkhan_http_requests_total", _labels(method="GET", route=route, status=status))


def test_metrics_route_template_label() -> None:
    client = TestClient(_app())
    for tx in ("a1", "b2", NATIONAL_ID):
        assert client.get(f"/v1/transactions/{tx}").status_code == 200
    assert client.get(f"/no/such/{NATIONAL_ID}").status_code == 404
    r = client.get(METRICS_PATH)
    assert NATIONAL_ID not in r.text
    samples = _scrape(client)
    route = "/v1/transactions/{tx_id}"
    assert samples[_requests(route=route, status="200")] == 3
    assert samples[_requests(route=UNMATCHED_ROUTE, status="404")] == 1
    count = samples[
        ("pishkhan_http_request_duration_seconds_count", _labels(method="GET", route=route))
    ]
    assert count == 3


def test_unhandled_error_is_counted_as_500() -> None:
    client = TestClient(_app())
    assert client.get("/boom").status_code == 500
    samples = _scrape(client)
    assert samples[_requests(route="/boom", status="500")] == 1


def test_metrics_exposition_parses() -> None:
    app = _app()
    client = TestClient(app)
    client.get("/v1/transactions/x")
    metrics: Metrics = app.state.metrics
    metrics.transaction_outcome("licence.renewal", "recorded")
    metrics.transaction_outcome("licence.renewal", "recorded")
    metrics.transaction_outcome("tax.filing", "rejected")
    metrics.set_ledger_size_reader(lambda: 42)
    samples = _scrape(client)
    tx = "pishkhan_transactions_total"
    assert samples[(tx, _labels(type="licence.renewal", outcome="recorded"))] == 2
    assert samples[(tx, _labels(type="tax.filing", outcome="rejected"))] == 1
    assert samples[("pishkhan_ledger_tree_size", frozenset())] == 42
    names = {name for name, _ in samples}
    assert "pishkhan_http_request_duration_seconds_bucket" in names


def test_metrics_route_is_not_in_the_openapi_schema() -> None:
    spec = TestClient(_app()).get("/openapi.json").json()
    assert METRICS_PATH not in spec["paths"]


def test_each_app_has_its_own_registry() -> None:
    first, second = _app(), _app()  # a shared registry would refuse the second set of names
    TestClient(first).get("/v1/transactions/x")
    route = "/v1/transactions/{tx_id}"
    assert _scrape(TestClient(first))[_requests(route=route, status="200")] == 1
    assert _requests(route=route, status="200") not in _scrape(TestClient(second))


def test_failing_ledger_size_reader_gives_no_sample() -> None:
    app = _app()
    metrics: Metrics = app.state.metrics

    def broken() -> int:
        raise ConnectionError(f"no database for {NATIONAL_ID}")

    metrics.set_ledger_size_reader(broken)
    samples = _scrape(TestClient(app))
    assert not any(name == "pishkhan_ledger_tree_size" for name, _ in samples)
    metrics.set_ledger_size_reader(lambda: 7)
    assert _scrape(TestClient(app))[("pishkhan_ledger_tree_size", frozenset())] == 7


def test_transaction_series_are_bounded() -> None:
    metrics = Metrics()
    for i in range(MAX_TRANSACTION_SERIES + 5):
        metrics.transaction_outcome(f"type-{i}", "recorded")
    families = list(text_string_to_metric_families(metrics.exposition().decode()))
    tx = next(f for f in families if f.name == "pishkhan_transactions")
    assert len(tx.samples) <= MAX_TRANSACTION_SERIES + 1  # plus the one overflow series
    overflow = [s for s in tx.samples if s.labels == {"type": OTHER_LABEL, "outcome": OTHER_LABEL}]
    assert len(overflow) == 1 and overflow[0].value == 5
    # An already-seen pair is still counted under its own labels.
    metrics.transaction_outcome("type-0", "recorded")
    labels = {"type": "type-0", "outcome": "recorded"}
    assert metrics.registry.get_sample_value("pishkhan_transactions_total", labels) == 2


def test_batches_are_observed_by_size_and_lock_times() -> None:
    metrics = Metrics()
    metrics.batch_written(items=3, lock_wait_s=0.002, lock_held_s=0.03)
    metrics.batch_written(items=40, lock_wait_s=0.2, lock_held_s=0.0004)
    value = metrics.registry.get_sample_value
    assert value("pishkhan_batch_items_count") == 2
    assert value("pishkhan_batch_items_sum") == 43
    assert value("pishkhan_batch_items_bucket", {"le": "4.0"}) == 1
    assert value("pishkhan_ledger_lock_wait_seconds_bucket", {"le": "0.0025"}) == 1
    assert value("pishkhan_ledger_lock_wait_seconds_sum") == pytest.approx(0.202)
    assert value("pishkhan_ledger_lock_held_seconds_bucket", {"le": "0.001"}) == 1
    assert value("pishkhan_ledger_lock_held_seconds_count") == 2
