"""The committed OpenAPI document is the one the code produces."""

from __future__ import annotations

from pathlib import Path

from api.openapi_dump import render_spec

COMMITTED = Path(__file__).resolve().parents[3] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_code() -> None:
    assert COMMITTED.exists(), f"{COMMITTED} is missing: run `make openapi` and commit it"
    assert COMMITTED.read_text(encoding="utf-8") == render_spec(), (
        "openapi/openapi.json is stale: run `make openapi` and commit the result"
    )


def test_dump_is_deterministic() -> None:
    # Fresh signers and engines each time: nothing random may reach the document.
    assert render_spec() == render_spec()
