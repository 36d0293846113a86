"""Checkpoint key rotation on both databases: A alone, A and B during the overlap, B after it.

Every checkpoint verifies with `pishkhan audit verify-ledger`, trusting the keys the service
publishes (and, without --trusted-keys, the whole keyring); both key documents list both keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.cli import main
from api.keys import checkpoint_sign_note, load_checkpoint_keyring, load_checkpoint_signer
from api.settings import get_settings
from ledger import store
from ledger.note import NoteVerifier, split_note
from signatures.jwk import PublicJwk
from tests.db.conftest import ORIGIN
from tests.idp import verifier

PASSPHRASE = "db rotation passphrase, long enough"
OVERLAP_DAYS = 3


@pytest.fixture
def configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine, db_url: str
) -> Iterator[None]:
    keys = tmp_path / "keys"
    secret = tmp_path / "passphrase.secret"
    secret.write_text(PASSPHRASE + "\n")
    for name, value in {
        "PISHKHAN_DATABASE_URL": db_url,
        "PISHKHAN_LEDGER_ORIGIN": ORIGIN,
        "PISHKHAN_CHECKPOINT_KEY_FILE": str(keys / "checkpoint-ed25519.pem"),
        "PISHKHAN_CHECKPOINT_KEYRING": str(keys / "checkpoint-keyring.json"),
        "PISHKHAN_KEY_PASSPHRASE_FILE": str(secret),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _append(engine: Engine, leaf: bytes, *, at: datetime) -> str:
    keyring = load_checkpoint_keyring(get_settings(), require_current=False)
    with engine.begin() as conn:
        result = store.append(
            conn,
            [leaf],
            origin=ORIGIN,
            sign_note=checkpoint_sign_note(keyring, clock=lambda: at),
            now=at,
        )
    return result.checkpoint.note


def _signed_by(note: str) -> set[bytes]:
    return {s.key_id for s in split_note(note)[1]}


def _window(at: datetime | None) -> str | None:
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_rotation_with_overlap(
    configured: None,
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = load_checkpoint_signer(get_settings(), may_generate=True)
    now = datetime.now(UTC)
    note_a = _append(engine, b"signed by A", at=now)
    assert _signed_by(note_a) == {a.key_id}

    assert main(["keys", "rotate-checkpoint", "--overlap-days", str(OVERLAP_DAYS)]) == 0
    b = NoteVerifier.from_vkey(capsys.readouterr().out.strip())
    note_ab = _append(engine, b"signed by A and B", at=datetime.now(UTC))
    assert _signed_by(note_ab) == {a.key_id, b.key_id}
    after = datetime.now(UTC) + timedelta(days=OVERLAP_DAYS, seconds=1)
    note_b = _append(engine, b"signed by B", at=after)
    assert _signed_by(note_b) == {b.key_id}

    keyring = load_checkpoint_keyring(get_settings())
    (entry_a, entry_b) = (k.entry for k in keyring.keys)
    assert entry_a.not_after == entry_b.not_before + timedelta(days=OVERLAP_DAYS)
    client = TestClient(create_app(get_settings(), engine=engine, token_verifier=verifier()))

    published = client.get("/v1/ledger/keys")
    assert published.headers["content-type"] == "text/plain; charset=utf-8"
    assert published.text == f"{a.verifier.vkey}\n{b.vkey}\n"
    jwks = client.get("/.well-known/pishkhan-keys")
    assert jwks.status_code == 200
    assert jwks.headers["content-type"] == "application/json"
    expected = []
    for key, entry in ((a.verifier, entry_a), (b, entry_b)):
        jwk = PublicJwk.from_public_key(key.public_key)
        expected.append(
            {
                **jwk.to_dict(),
                "kid": jwk.kid,
                "alg": "EdDSA",
                "use": "sig",
                "pishkhan_key_name": ORIGIN,
                "pishkhan_vkey": key.vkey,
                "pishkhan_not_before": _window(entry.not_before),
                "pishkhan_not_after": _window(entry.not_after),
                "pishkhan_purpose": "checkpoint",
            }
        )
    assert jwks.json() == {"keys": expected}
    assert jwks.json()["keys"][0]["pishkhan_not_before"] == "1970-01-01T00:00:00Z"
    assert jwks.json()["keys"][1]["pishkhan_not_after"] is None

    trusted = tmp_path / "trusted.vkeys"
    trusted.write_text(published.text)
    for extra in (["--trusted-keys", str(trusted)], []):  # published keys; the whole keyring
        code = main(["audit", "verify-ledger", "--database", db_url, "--json", *extra])
        report = json.loads(capsys.readouterr().out)
        assert code == 0, report
        assert report["status"] == "consistent"
        assert report["checkpoints_checked"] == 3
    only_b = tmp_path / "only-b.vkeys"
    only_b.write_text(f"{b.vkey}\n")  # the first checkpoint has no signature by B
    assert main(["audit", "verify-ledger", "--database", db_url, "--trusted-keys", str(only_b)])
    capsys.readouterr()
