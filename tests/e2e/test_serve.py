"""A real `pishkhan serve` process over HTTP: first start, keys, readiness, a verified checkpoint.

Runs on both databases: the server migrates and generates its development key on first start;
the test appends through the storage layer (the transaction API does that in later issues) and
checks what the server publishes with an independent reading of the C2SP formats.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.database import make_engine
from api.keys import load_checkpoint_signer
from api.settings import Settings
from ledger import store
from ledger.note import sign_note
from tests.e2e.client import E2E_ORIGIN

if TYPE_CHECKING:
    from tests.e2e.conftest import Server

ORIGIN = E2E_ORIGIN


def _vkey_public(line: str) -> tuple[str, bytes, Ed25519PublicKey]:
    name, key_id_hex, encoded = line.split("+", 2)  # base64 may contain "+" too
    raw = base64.b64decode(encoded)
    assert raw[0] == 0x01 and len(raw) == 33
    public = raw[1:]
    assert hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4].hex() == key_id_hex
    return name, bytes.fromhex(key_id_hex), Ed25519PublicKey.from_public_bytes(public)


def test_served_checkpoint_verifies_with_published_key(server: Server) -> None:
    base, env = server.base, server.env
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    empty = httpx.get(f"{base}/v1/ledger/checkpoint")
    assert empty.status_code == 404
    assert empty.headers["content-type"] == "application/problem+json"

    settings = Settings(
        env="dev",
        database_url=env["PISHKHAN_DATABASE_URL"],
        ledger_origin=ORIGIN,
        checkpoint_key_file=Path(env["PISHKHAN_CHECKPOINT_KEY_FILE"]),
    )
    signer = load_checkpoint_signer(settings)  # the key the server generated on first start
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        store.append(
            conn,
            [b"first", b"second", b"third"],
            origin=ORIGIN,
            sign_note=lambda body: sign_note(body, [signer]),
            now=datetime.now(UTC),
        )
    engine.dispose()

    keys = httpx.get(f"{base}/v1/ledger/keys")
    assert keys.headers["content-type"] == "text/plain; charset=utf-8"
    name, key_id, public = _vkey_public(keys.text.strip())
    note = httpx.get(f"{base}/v1/ledger/checkpoint").text
    body, _, signatures = note.partition("\n\n")
    body += "\n"
    assert body.split("\n")[:2] == [ORIGIN, "3"]
    line = signatures.strip()
    assert line.startswith(f"\u2014 {name} ")
    blob = base64.b64decode(line.rsplit(" ", 1)[1])
    assert blob[:4] == key_id
    public.verify(blob[4:], body.encode())  # raises InvalidSignature on failure

    proof = httpx.get(f"{base}/v1/ledger/proofs/inclusion", params={"index": 1, "tree_size": 3})
    assert proof.status_code == 200
    assert (
        proof.json()["leaf_hash"]
        == base64.b64encode(hashlib.sha256(b"\x00second").digest()).decode()
    )
    bad = httpx.get(f"{base}/v1/ledger/proofs/inclusion", params={"index": "x", "tree_size": 3})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
