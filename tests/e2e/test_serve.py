"""A real `pishkhan serve` process over HTTP: first start, keys, readiness, a verified checkpoint.

Runs on both databases: the server migrates and generates its development key on first start;
the test appends through the storage layer (the transaction API does that in later issues) and
checks what the server publishes with an independent reading of the C2SP formats.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.database import make_engine
from api.keys import load_checkpoint_signer
from api.settings import Settings
from ledger import store
from ledger.note import sign_note

STARTUP_TIMEOUT_S = 60.0
ORIGIN = "e2e.pishkhan.test/ledger"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    env = {
        **os.environ,
        "PISHKHAN_ENV": "dev",
        "PISHKHAN_DATABASE_URL": db_url,
        "PISHKHAN_LEDGER_ORIGIN": ORIGIN,
        "PISHKHAN_CHECKPOINT_KEY_FILE": str(tmp_path / "keys" / "checkpoint.pem"),
    }
    cmd = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert proc.poll() is None, (
                f"server exited: {proc.stdout.read() if proc.stdout else ''}"
            )
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server not ready in time"
            time.sleep(0.2)
        yield base, env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _vkey_public(line: str) -> tuple[str, bytes, Ed25519PublicKey]:
    name, key_id_hex, encoded = line.split("+", 2)  # base64 may contain "+" too
    raw = base64.b64decode(encoded)
    assert raw[0] == 0x01 and len(raw) == 33
    public = raw[1:]
    assert hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4].hex() == key_id_hex
    return name, bytes.fromhex(key_id_hex), Ed25519PublicKey.from_public_bytes(public)


def test_served_checkpoint_verifies_with_published_key(
    server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = server
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
