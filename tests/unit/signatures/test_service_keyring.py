"""The checkpoint keyring: strict manifest parsing, signing windows, retired keys kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from api.keys import CheckpointKeyring, checkpoint_sign_note, load_checkpoint_keyring
from api.settings import Settings
from ledger.note import NoteSigner, split_note, verify_note
from signatures.errors import ServiceKeyError
from signatures.service_keys import (
    MAX_KEYRING_KEYS,
    MAX_KEYRING_MANIFEST_BYTES,
    KeyringEntry,
    create_ed25519,
    load_keyring,
    parse_keyring_manifest,
    render_keyring_manifest,
)

PASSPHRASE = "correct horse battery staple"
NAME = "pishkhan.test/ledger"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 3, 1, tzinfo=UTC)  # B starts
T2 = datetime(2026, 3, 8, tzinfo=UTC)  # A ends: overlap [T1, T2)
SECOND = timedelta(seconds=1)


def _entry(file: str, *, nb: str = "2026-01-01T00:00:00Z", na: str | None = None) -> Any:
    return {"file": file, "name": NAME, "not_before": nb, "not_after": na}


def _manifest(*entries: Any) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


def test_manifest_round_trip() -> None:
    entries = [
        KeyringEntry(file="a.pem", name=NAME, not_before=T0, not_after=T2),
        KeyringEntry(file="b.pem", name=NAME, not_before=T1, not_after=None),
    ]
    assert parse_keyring_manifest(render_keyring_manifest(entries)) == entries


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"\xff", r"\(file\)"),
        (b"[]", "keys"),
        (b'{"keys": []}', "keys"),
        (b'{"keys": [], "extra": 1}', "keys"),
        (b'{"keys": [1]}', r"keys\[0\]"),
        (b'{"keys": [], "keys": []}', "keys: appears twice"),
        (
            _manifest({"file": "a.pem", "name": NAME, "not_before": "2026-01-01T00:00:00Z"}),
            "not_after: is missing",
        ),
        (_manifest({**_entry("a.pem"), "kid": "x"}), r"keys\[0\]\.kid"),
        (_manifest(_entry("../a.pem")), r"keys\[0\]\.file"),
        (_manifest(_entry("/etc/a.pem")), r"keys\[0\]\.file"),
        (_manifest(_entry("")), r"keys\[0\]\.file"),
        (_manifest({**_entry("a.pem"), "name": "two words"}), r"keys\[0\]\.name"),
        (_manifest({**_entry("a.pem"), "name": "a+b"}), r"keys\[0\]\.name"),
        (_manifest({**_entry("a.pem"), "name": 7}), r"keys\[0\]\.name"),
        (_manifest(_entry("a.pem", nb="2026-01-01T00:00:00+00:00")), "not_before"),
        (_manifest(_entry("a.pem", nb="2026-01-01 00:00:00Z")), "not_before"),
        (_manifest(_entry("a.pem", nb="2026-02-30T00:00:00Z")), "not_before: is not a valid"),
        (_manifest(_entry("a.pem", na="2025-12-31T23:59:59Z")), "not_after: is before"),
        (_manifest(_entry("a.pem", na="soon")), "not_after"),
        (_manifest(_entry("a.pem"), _entry("a.pem")), r"keys\[1\]\.file: lists a key file twice"),
        (b" " * (MAX_KEYRING_MANIFEST_BYTES + 1), "larger than"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_manifest_is_refused_naming_the_field(data: bytes, field: str) -> None:
    with pytest.raises(ServiceKeyError, match=field):
        parse_keyring_manifest(data)


def test_more_than_the_limit_of_keys_is_refused() -> None:
    many = [_entry(f"k{i}.pem") for i in range(MAX_KEYRING_KEYS + 1)]
    with pytest.raises(ServiceKeyError, match="MAX_KEYRING_KEYS"):
        parse_keyring_manifest(_manifest(*many))
    assert len(parse_keyring_manifest(_manifest(*many[:MAX_KEYRING_KEYS]))) == MAX_KEYRING_KEYS
    entries = [
        KeyringEntry(file=f"k{i}", name=NAME, not_before=T0, not_after=None)
        for i in range(MAX_KEYRING_KEYS + 1)
    ]
    with pytest.raises(ServiceKeyError, match="MAX_KEYRING_KEYS"):
        render_keyring_manifest(entries)


def _keyring(tmp_path: Path) -> tuple[Path, Settings]:
    create_ed25519(tmp_path / "a.pem", passphrase=PASSPHRASE.encode())
    create_ed25519(tmp_path / "b.pem", passphrase=PASSPHRASE.encode())
    create_ed25519(tmp_path / "old.pem", passphrase=PASSPHRASE.encode())
    manifest = tmp_path / "keyring.json"
    entries = [
        KeyringEntry(file="old.pem", name=NAME, not_before=T0 - timedelta(days=90), not_after=T0),
        KeyringEntry(file="a.pem", name=NAME, not_before=T0, not_after=T2),
        KeyringEntry(file="b.pem", name=NAME, not_before=T1, not_after=None),
    ]
    manifest.write_bytes(render_keyring_manifest(entries))
    settings = Settings.model_construct(
        checkpoint_keyring=manifest,
        checkpoint_key_file=tmp_path / "absent.pem",
        key_passphrase=SecretStr(PASSPHRASE),
    )
    return manifest, settings


def _names(keyring: CheckpointKeyring, at: datetime) -> list[str]:
    by_key = {k.verifier.key_id: k.entry.file for k in keyring.keys}
    return [by_key[s.key_id] for s in keyring.signers_at(at)]


def test_signers_across_the_overlap_window_edges(tmp_path: Path) -> None:
    _, settings = _keyring(tmp_path)
    keyring = load_checkpoint_keyring(settings)
    assert _names(keyring, T0 - SECOND) == ["old.pem"]
    assert _names(keyring, T0) == ["a.pem"]  # not_before is inclusive, not_after exclusive
    assert _names(keyring, T1 - SECOND) == ["a.pem"]
    assert _names(keyring, T1) == ["a.pem", "b.pem"]  # the overlap: both sign
    assert _names(keyring, T2 - SECOND) == ["a.pem", "b.pem"]
    assert _names(keyring, T2) == ["b.pem"]
    assert _names(keyring, T2 + timedelta(days=3650)) == ["b.pem"]


def test_verifiers_include_retired_keys(tmp_path: Path) -> None:
    _, settings = _keyring(tmp_path)
    keyring = load_checkpoint_keyring(settings)
    assert [v.key_id for v in keyring.verifiers()] == [k.signer.key_id for k in keyring.keys]
    assert len(keyring.verifiers()) == 3
    note_at_t1 = checkpoint_sign_note(keyring, clock=lambda: T1)("o\n1\nAAAA\n")
    verify_note(note_at_t1, keyring.verifiers())  # raises unless every signature verifies
    _, signatures = split_note(note_at_t1)
    assert {s.key_id for s in signatures} == {k.signer.key_id for k in keyring.keys[1:]}


def test_no_key_valid_now_refuses_to_start(tmp_path: Path) -> None:
    manifest, settings = _keyring(tmp_path)
    ended = [
        KeyringEntry(file="a.pem", name=NAME, not_before=T0, not_after=T2),
    ]
    manifest.write_bytes(render_keyring_manifest(ended))
    with pytest.raises(ServiceKeyError, match="no checkpoint key is valid"):
        load_checkpoint_keyring(settings)
    # An auditor needs no signer: the retired keys still verify.
    assert len(load_checkpoint_keyring(settings, require_current=False).verifiers()) == 1
    sign = checkpoint_sign_note(load_checkpoint_keyring(settings, require_current=False))
    with pytest.raises(ServiceKeyError, match="no checkpoint key is valid"):
        sign("o\n1\nAAAA\n")


def test_missing_or_undecryptable_key_file_is_refused(tmp_path: Path) -> None:
    manifest, _ = _keyring(tmp_path)
    (tmp_path / "b.pem").unlink()
    with pytest.raises(ServiceKeyError, match="cannot read key file"):
        load_keyring(manifest, passphrase=PASSPHRASE.encode())
    with pytest.raises(ServiceKeyError, match="cannot be decrypted"):
        load_keyring(manifest, passphrase=b"another passphrase entirely")


def test_one_key_listed_twice_is_refused(tmp_path: Path) -> None:
    manifest, _ = _keyring(tmp_path)
    (tmp_path / "copy.pem").write_bytes((tmp_path / "a.pem").read_bytes())
    entries = [
        KeyringEntry(file="a.pem", name=NAME, not_before=T0, not_after=None),
        KeyringEntry(file="copy.pem", name=NAME, not_before=T0, not_after=None),
    ]
    manifest.write_bytes(render_keyring_manifest(entries))
    with pytest.raises(ServiceKeyError, match="one key twice"):
        load_keyring(manifest, passphrase=PASSPHRASE.encode())


def test_without_a_manifest_the_single_key_is_the_keyring(tmp_path: Path) -> None:
    key_file = tmp_path / "checkpoint-ed25519.pem"
    key = create_ed25519(key_file, passphrase=PASSPHRASE.encode())
    settings = Settings.model_construct(
        checkpoint_keyring=tmp_path / "absent.json",
        checkpoint_key_file=key_file,
        key_passphrase=SecretStr(PASSPHRASE),
    )
    keyring = load_checkpoint_keyring(settings)
    (only,) = keyring.keys
    assert only.entry.not_before == datetime(1970, 1, 1, tzinfo=UTC)
    assert only.entry.not_after is None
    assert only.signer.verifier == NoteSigner(settings.key_name, key).verifier
    assert keyring.signers_at(T0) == [only.signer]
