"""`pishkhan keys rotate-checkpoint`: new key, overlap windows, atomic manifest, no argv secret."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api import key_admin
from api.cli import main
from api.keys import load_checkpoint_keyring, load_checkpoint_signer
from api.settings import get_settings
from ledger.note import NoteVerifier
from signatures.service_keys import MAX_KEYRING_KEYS, parse_keyring_manifest

PASSPHRASE = "rotation passphrase, long enough"
ORIGIN = "pishkhan.test/ledger"


@pytest.fixture
def keydir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    keys = tmp_path / "keys"
    secret = tmp_path / "passphrase.secret"
    secret.write_text(PASSPHRASE + "\n")
    monkeypatch.setenv("PISHKHAN_LEDGER_ORIGIN", ORIGIN)
    monkeypatch.setenv("PISHKHAN_CHECKPOINT_KEY_FILE", str(keys / "checkpoint-ed25519.pem"))
    monkeypatch.setenv("PISHKHAN_CHECKPOINT_KEYRING", str(keys / "checkpoint-keyring.json"))
    monkeypatch.setenv("PISHKHAN_KEY_PASSPHRASE_FILE", str(secret))
    monkeypatch.setenv("PISHKHAN_GENERATE_KEYS", "true")
    get_settings.cache_clear()
    load_checkpoint_signer(get_settings())  # the legacy single key, as before any rotation
    yield keys
    get_settings.cache_clear()


def _rotate(capsys: pytest.CaptureFixture[str], days: int) -> NoteVerifier:
    assert main(["keys", "rotate-checkpoint", "--overlap-days", str(days)]) == 0
    return NoteVerifier.from_vkey(capsys.readouterr().out.strip())


def test_rotate_twice(keydir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    legacy = load_checkpoint_signer(get_settings()).verifier
    before = datetime.now(UTC).replace(microsecond=0)
    b = _rotate(capsys, 7)
    manifest = keydir / "checkpoint-keyring.json"
    first = parse_keyring_manifest(manifest.read_bytes())
    assert first[0].file == "checkpoint-ed25519.pem"
    assert first[0].not_before == datetime(1970, 1, 1, tzinfo=UTC)
    assert first[0].not_after is not None
    assert before + timedelta(days=7) <= first[0].not_after <= datetime.now(UTC) + timedelta(days=7)
    assert first[1].not_before == first[0].not_after - timedelta(days=7)
    assert first[1].not_after is None
    assert first[1].file.startswith("checkpoint-") and first[1].file.endswith(".pem")

    c = _rotate(capsys, 2)  # every key signing now (A and B) ends two days from now
    second = parse_keyring_manifest(manifest.read_bytes())
    assert len(second) == 3
    two_days = second[2].not_before + timedelta(days=2)
    assert second[0].not_after == second[1].not_after == two_days
    assert second[0].not_before == first[0].not_before and second[1] != first[1]
    assert second[2].not_after is None
    assert len({e.file for e in second}) == 3

    keyring = load_checkpoint_keyring(get_settings())
    assert [v.vkey for v in keyring.verifiers()] == [legacy.vkey, b.vkey, c.vkey]
    now = datetime.now(UTC)
    assert {s.verifier.vkey for s in keyring.signers_at(now)} == {legacy.vkey, b.vkey, c.vkey}
    later = now + timedelta(days=3)
    assert [s.verifier.vkey for s in keyring.signers_at(later)] == [c.vkey]


def test_manifest_is_replaced_atomically(
    keydir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _rotate(capsys, 1)
    manifest = keydir / "checkpoint-keyring.json"
    before = manifest.read_bytes()
    calls: list[str] = []
    real_replace, real_fsync = os.replace, os.fsync

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def failing_replace(src: object, dst: object) -> None:
        calls.append("replace")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", failing_replace)
    assert main(["keys", "rotate-checkpoint", "--overlap-days", "1"]) == 2
    assert "No space left" in capsys.readouterr().err
    assert calls[-2:] == ["fsync", "replace"]  # the data reached the disk before the rename
    assert manifest.read_bytes() == before  # the old manifest, whole
    assert not [p for p in keydir.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(os, "replace", real_replace)
    _rotate(capsys, 1)
    assert len(json.loads(manifest.read_text())["keys"]) == 3


@pytest.mark.parametrize("days", ["-1", "91", "x"])
def test_overlap_out_of_bounds_is_refused(
    keydir: Path, capsys: pytest.CaptureFixture[str], days: str
) -> None:
    try:
        code = main(["keys", "rotate-checkpoint", "--overlap-days", days])
    except SystemExit as exc:  # argparse: not an integer
        code = int(exc.code or 0)
    assert code == 2
    assert not (keydir / "checkpoint-keyring.json").exists()
    assert key_admin.MIN_OVERLAP_DAYS == 0 and key_admin.MAX_OVERLAP_DAYS == 90


def test_passphrase_is_never_taken_from_the_command_line(
    keydir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["keys", "rotate-checkpoint", "--overlap-days", "1", "--passphrase", PASSPHRASE],
        ["keys", "rotate-checkpoint", "--overlap-days", "1", "--passphrase-file", "x"],
        ["keys", "rotate-checkpoint", "--overlap", "1"],  # no abbreviations either
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    capsys.readouterr()
    _rotate(capsys, 1)
    for path in keydir.iterdir():
        assert PASSPHRASE.encode() not in path.read_bytes()


def test_wrong_passphrase_changes_nothing(
    keydir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PISHKHAN_KEY_PASSPHRASE_FILE")
    monkeypatch.setenv("PISHKHAN_KEY_PASSPHRASE", "not the passphrase of the key")
    get_settings.cache_clear()
    files = sorted(p.name for p in keydir.iterdir())
    assert main(["keys", "rotate-checkpoint", "--overlap-days", "1"]) == 2
    assert "cannot be decrypted" in capsys.readouterr().err
    assert sorted(p.name for p in keydir.iterdir()) == files


def test_full_keyring_is_refused(keydir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(MAX_KEYRING_KEYS - 1):
        _rotate(capsys, 0)
    assert main(["keys", "rotate-checkpoint", "--overlap-days", "0"]) == 2
    assert "MAX_KEYRING_KEYS" in capsys.readouterr().err
    keyring = load_checkpoint_keyring(get_settings())
    assert len(keyring.verifiers()) == MAX_KEYRING_KEYS
    assert len(keyring.signers_at(datetime.now(UTC))) == 1
