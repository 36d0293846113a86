"""Service keys: encrypted PKCS#8 at rest, passphrase rules, fail closed when missing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from api.keys import load_checkpoint_signer
from api.settings import Settings
from signatures.errors import ServiceKeyError
from signatures.service_keys import (
    MIN_PASSPHRASE_BYTES,
    create_ed25519,
    create_passphrase_file,
    load_ed25519,
    read_passphrase,
)

PASSPHRASE = b"correct horse battery staple"


def test_key_is_encrypted_at_rest_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    key = create_ed25519(path, passphrase=PASSPHRASE)
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_ed25519(path, passphrase=PASSPHRASE)
    assert loaded.public_key() == key.public_key()


def test_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    create_ed25519(path, passphrase=PASSPHRASE)
    with pytest.raises(ServiceKeyError, match="cannot be decrypted"):
        load_ed25519(path, passphrase=b"another passphrase entirely")


def test_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    create_ed25519(path, passphrase=PASSPHRASE)
    before = path.read_bytes()
    with pytest.raises(ServiceKeyError):
        create_ed25519(path, passphrase=PASSPHRASE)
    assert path.read_bytes() == before


def test_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServiceKeyError, match="cannot read key file"):
        load_ed25519(tmp_path / "absent.pem", passphrase=PASSPHRASE)


def test_passphrase_rules(tmp_path: Path) -> None:
    with pytest.raises(ServiceKeyError, match="no key passphrase"):
        read_passphrase(file=None, value=None)
    with pytest.raises(ServiceKeyError, match="at least"):
        read_passphrase(file=None, value="x" * (MIN_PASSPHRASE_BYTES - 1))
    secret = tmp_path / "secret"
    secret.write_bytes(PASSPHRASE + b"\n")
    assert read_passphrase(file=secret, value="ignored when a file is given") == PASSPHRASE
    generated = create_passphrase_file(tmp_path / "generated")
    assert read_passphrase(file=tmp_path / "generated", value=None) == generated


def test_production_settings_never_generate_a_key(tmp_path: Path) -> None:
    settings = Settings(
        env="prod", checkpoint_key_file=tmp_path / "k.pem", key_passphrase=PASSPHRASE.decode()
    )
    with pytest.raises(ServiceKeyError, match="does not exist"):
        load_checkpoint_signer(settings)
    assert not (tmp_path / "k.pem").exists()


def test_dev_settings_generate_once_then_reload_the_same_key(tmp_path: Path) -> None:
    settings = Settings(
        env="dev", checkpoint_key_file=tmp_path / "keys" / "k.pem", ledger_origin="dev.example/log"
    )
    first = load_checkpoint_signer(settings)
    second = load_checkpoint_signer(settings)
    assert first.name == "dev.example/log"
    assert first.verifier.vkey == second.verifier.vkey
    assert stat.S_IMODE((tmp_path / "keys" / "passphrase").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
