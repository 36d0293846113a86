"""Structured JSON logs: request ids, one access line per request, nothing personal or secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.limits import MAX_BODY_BYTES, install_limits
from api.logs import (
    ACCESS_LOGGER,
    REQUEST_ID_HEADER,
    configure_logging,
    current_request_id,
    install_request_ids,
    is_valid_request_id,
)
from api.metrics import install_metrics
from api.problems import install_problem_handlers

NATIONAL_ID = "0012345678"
TOKEN = "eyJhbGciOiJFZERTQSJ9.c2VjcmV0LXN1YmplY3Q.c2lnbmF0dXJl"
SECRET_MESSAGE = f"citizen {NATIONAL_ID} not found"
QUERY_SECRET = "mothers-maiden-name"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")
    touched = [logging.getLogger(n) for n in names]
    saved = [(lg.handlers[:], lg.propagate, lg.disabled, lg.level) for lg in touched]
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for lg, (handlers, propagate, disabled, level) in zip(touched, saved, strict=True):
        lg.handlers[:], lg.propagate, lg.disabled = handlers, propagate, disabled
        lg.setLevel(level)


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    # Every line must be one JSON object: json.loads fails the test otherwise.
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def _access_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in _lines(buffer) if line["logger"] == ACCESS_LOGGER]


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_limits(app)
    install_metrics(app)
    install_request_ids(app)  # last: outermost
    log = logging.getLogger("pishkhan.test")

    @app.get("/v1/people/{national_id}")
    def person(national_id: str) -> dict[str, str | None]:
        log.info("looked up a person", extra={"fields": {"matches": 1}})
        return {"request_id": current_request_id()}

    @app.post("/v1/people")
    def create(payload: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(payload)}

    @app.get("/boom")
    def boom() -> None:
        raise LookupError(SECRET_MESSAGE)

    return app


def test_log_line_is_json_with_the_request_id(log_output: io.StringIO) -> None:
    r = TestClient(_app()).get("/v1/people/x", headers={REQUEST_ID_HEADER: "trace-42.a_b"})
    assert r.status_code == 200
    assert r.headers[REQUEST_ID_HEADER] == "trace-42.a_b"
    assert r.json() == {"request_id": "trace-42.a_b"}
    lines = _lines(log_output)
    app_line = next(line for line in lines if line["logger"] == "pishkhan.test")
    assert app_line["message"] == "looked up a person"
    assert app_line["request_id"] == "trace-42.a_b"
    assert app_line["matches"] == 1
    assert app_line["level"] == "INFO"
    assert app_line["ts"].endswith("Z")
    [access] = _access_lines(log_output)
    assert access["request_id"] == "trace-42.a_b"
    assert (access["method"], access["route"], access["status"]) == (
        "GET",
        "/v1/people/{national_id}",
        200,
    )
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] >= 0


@pytest.mark.parametrize(
    "sent", [None, "", "has space", "x" * 65, "a/b", "ünï".encode(), b"id\r\nX-Evil: 1"]
)
def test_unusable_request_id_is_replaced(log_output: io.StringIO, sent: str | bytes | None) -> None:
    headers = {} if sent is None else {REQUEST_ID_HEADER: sent}
    r = TestClient(_app()).get("/v1/people/x", headers=headers)
    generated = r.headers[REQUEST_ID_HEADER]
    assert generated not in (sent, "")
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert _access_lines(log_output)[0]["request_id"] == generated


def test_request_ids_differ_per_request(log_output: io.StringIO) -> None:
    client = TestClient(_app())
    ids = {client.get("/v1/people/x").headers[REQUEST_ID_HEADER] for _ in range(3)}
    assert len(ids) == 3
    assert current_request_id() is None


def test_authorization_and_national_id_never_logged(log_output: io.StringIO) -> None:
    client = TestClient(_app())
    client.get(
        f"/v1/people/{NATIONAL_ID}?answer={QUERY_SECRET}",
        headers={"Authorization": f"Bearer {TOKEN}", "Cookie": f"session={TOKEN}"},
    )
    client.post(
        f"/v1/people?id={NATIONAL_ID}",
        json={"national_id": NATIONAL_ID},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    client.get(f"/no/such/{NATIONAL_ID}", headers={"Authorization": f"Bearer {TOKEN}"})
    output = log_output.getvalue()
    assert len(_access_lines(log_output)) == 3
    for secret in (NATIONAL_ID, TOKEN, QUERY_SECRET, "Bearer"):
        assert secret not in output
    assert {line["route"] for line in _access_lines(log_output)} == {
        "/v1/people/{national_id}",
        "/v1/people",
        "unmatched",
    }


def test_exception_message_not_logged(log_output: io.StringIO) -> None:
    r = TestClient(_app()).get("/boom", headers={REQUEST_ID_HEADER: "boom-1"})
    assert r.status_code == 500
    output = log_output.getvalue()
    assert SECRET_MESSAGE not in output and NATIONAL_ID not in output
    assert "LookupError" in output
    [access] = _access_lines(log_output)
    assert (access["status"], access["request_id"]) == (500, "boom-1")


def test_exceptions_are_logged_as_type_and_frames(log_output: io.StringIO) -> None:
    log = logging.getLogger("pishkhan.test")
    try:
        raise ValueError(SECRET_MESSAGE)
    except ValueError:
        log.exception("lookup failed")
    [line] = _lines(log_output)
    assert line["message"] == "lookup failed"
    assert line["exception"]["type"] == "ValueError"
    [frame] = line["exception"]["frames"]
    assert frame.endswith(" test_exceptions_are_logged_as_type_and_frames")
    assert "test_logs.py:" in frame
    assert NATIONAL_ID not in log_output.getvalue()


def test_limit_refusals_get_an_access_line(log_output: io.StringIO) -> None:
    r = TestClient(_app()).post(
        "/v1/people",
        content=b"x" * (MAX_BODY_BYTES + 1),
        headers={"content-type": "application/json", REQUEST_ID_HEADER: "big-1"},
    )
    assert r.status_code == 413
    assert r.headers[REQUEST_ID_HEADER] == "big-1"
    [access] = _access_lines(log_output)
    assert (access["status"], access["request_id"]) == (413, "big-1")


def test_fields_cannot_overwrite_core_members(log_output: io.StringIO) -> None:
    fields = {"message": "forged", "request_id": "forged", "level": "forged", "extra": 3}
    logging.getLogger("pishkhan.test").warning("real", extra={"fields": fields})
    [line] = _lines(log_output)
    assert (line["message"], line["request_id"], line["level"]) == ("real", None, "WARNING")
    assert line["extra"] == 3


def test_configure_logging_replaces_its_own_handler(log_output: io.StringIO) -> None:
    second = io.StringIO()
    configure_logging("INFO", stream=second)
    logging.getLogger("pishkhan.test").debug("below the level")
    logging.getLogger("pishkhan.test").info("once")
    assert log_output.getvalue() == ""
    assert [line["message"] for line in _lines(second)] == ["once"]
    assert logging.getLogger("uvicorn.access").disabled


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("LOUD")


def test_is_valid_request_id() -> None:
    assert is_valid_request_id("A-z.0_9")
    assert is_valid_request_id("x" * 64)
    assert not is_valid_request_id("x" * 65)
    assert not is_valid_request_id("a\nb")
