"""`pishkhan keys rotate-checkpoint`: rotate the checkpoint-signing key with an overlap.

A new key is generated (encrypted with the configured passphrase) and valid from now; the keys
signing now stop at now + overlap, so that during the overlap old and new sign side by side and
verifiers have time to fetch the new key. Retired keys stay in the manifest (and published): old
checkpoints are signed by them. The first rotation creates the manifest from the single key.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.keys import load_checkpoint_signer, service_key_passphrase
from api.settings import Settings, get_settings
from ledger.errors import LedgerError
from ledger.note import NoteSigner, NoteVerifier, is_valid_key_name
from signatures.errors import ServiceKeyError
from signatures.service_keys import (
    EPOCH,
    MAX_KEYRING_KEYS,
    KeyringEntry,
    create_ed25519,
    load_keyring,
    render_keyring_manifest,
    write_file_atomically,
)

MIN_OVERLAP_DAYS = 0
MAX_OVERLAP_DAYS = 90
# Two rotations within one second would want the same file name: add a counter, up to this.
MAX_KEY_FILE_ATTEMPTS = 100
_KEY_DIR_MODE = 0o700
EXIT_OK, EXIT_FAILED = 0, 2


def _current_entries(settings: Settings, passphrase: bytes) -> list[KeyringEntry]:
    """The manifest's entries (every key decrypted first), or the single legacy key's."""
    manifest = settings.checkpoint_keyring
    if manifest.exists():
        return [k.entry for k in load_keyring(manifest, passphrase=passphrase)]
    legacy = settings.checkpoint_key_file
    if legacy.resolve().parent != manifest.resolve().parent:
        raise ServiceKeyError(
            "the checkpoint key file must be in the keyring manifest's directory", path=legacy
        )
    signer = load_checkpoint_signer(settings, may_generate=False)
    return [KeyringEntry(file=legacy.name, name=signer.name, not_before=EPOCH, not_after=None)]


def _new_key_file(
    directory: Path, now: datetime, passphrase: bytes
) -> tuple[str, Ed25519PrivateKey]:
    stem = f"checkpoint-{now.strftime('%Y%m%dT%H%M%SZ')}"
    for attempt in range(MAX_KEY_FILE_ATTEMPTS):
        name = f"{stem}.pem" if attempt == 0 else f"{stem}-{attempt}.pem"
        if not (directory / name).exists():
            return name, create_ed25519(directory / name, passphrase=passphrase)
    raise ServiceKeyError("too many key files for this second", path=directory)


def rotate_checkpoint_key(settings: Settings, *, overlap_days: int, now: datetime) -> NoteVerifier:
    """Add a new checkpoint key valid from `now`; end the current keys at now + overlap_days.

    Returns the new key's verifier. Raises ServiceKeyError when overlap_days is outside
    [MIN_OVERLAP_DAYS, MAX_OVERLAP_DAYS], the keyring is unusable or full (MAX_KEYRING_KEYS), or
    a file cannot be written. The manifest is replaced atomically, after the new key exists.
    """
    if not MIN_OVERLAP_DAYS <= overlap_days <= MAX_OVERLAP_DAYS:
        raise ServiceKeyError(
            f"--overlap-days must be between {MIN_OVERLAP_DAYS} and {MAX_OVERLAP_DAYS}"
        )
    passphrase = service_key_passphrase(settings)
    entries = _current_entries(settings, passphrase)
    if len(entries) >= MAX_KEYRING_KEYS:
        raise ServiceKeyError(f"the keyring already holds MAX_KEYRING_KEYS={MAX_KEYRING_KEYS}")
    start = now.astimezone(UTC).replace(microsecond=0)
    end = start + timedelta(days=overlap_days)
    ended = [
        replace(e, not_after=end)
        if e.is_valid_at(start) and (e.not_after is None or e.not_after > end)
        else e
        for e in entries
    ]
    manifest = settings.checkpoint_keyring
    manifest.parent.mkdir(mode=_KEY_DIR_MODE, parents=True, exist_ok=True)
    if not is_valid_key_name(settings.key_name):  # refuse before writing anything
        raise ServiceKeyError(f"{settings.key_name!r} is not a valid note key name")
    file, key = _new_key_file(manifest.parent, start, passphrase)
    signer = NoteSigner(settings.key_name, key)
    new = KeyringEntry(file=file, name=signer.name, not_before=start, not_after=None)
    write_file_atomically(manifest, render_keyring_manifest([*ended, new]))
    return signer.verifier


def run_rotate_checkpoint(*, overlap_days: int) -> int:
    """The CLI: rotate, print the new vkey line; exit 2 (nothing changed) on any refusal."""
    try:
        verifier = rotate_checkpoint_key(
            get_settings(), overlap_days=overlap_days, now=datetime.now(UTC)
        )
    except (ServiceKeyError, LedgerError) as exc:
        print(f"pishkhan keys rotate-checkpoint: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(verifier.vkey)
    return EXIT_OK
