"""Wiring of the service keys from the settings: the checkpoint keyring, its signers and verifiers.

The keyring is the manifest at PISHKHAN_CHECKPOINT_KEYRING when it exists, else the single key
at PISHKHAN_CHECKPOINT_KEY_FILE, valid from the epoch with no end (before the first rotation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from api.settings import Settings
from ledger.note import NoteSigner, NoteVerifier, sign_note
from signatures.errors import ServiceKeyError
from signatures.service_keys import (
    EPOCH,
    KeyringEntry,
    ServiceKey,
    create_ed25519,
    create_passphrase_file,
    load_ed25519,
    load_keyring,
    read_passphrase,
)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def service_key_passphrase(settings: Settings) -> bytes:
    """The passphrase of the service keys. Raises ServiceKeyError when none is configured."""
    value = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
    if settings.key_passphrase_file is None and value is None and settings.may_generate_keys:
        # The embedded default keeps a generated passphrase beside the key, owner-only.
        file = settings.checkpoint_key_file.with_name("passphrase")
        if not file.exists():
            return create_passphrase_file(file)
        return read_passphrase(file=file, value=None)
    return read_passphrase(file=settings.key_passphrase_file, value=value)


def load_checkpoint_signer(settings: Settings, *, may_generate: bool | None = None) -> NoteSigner:
    """The single (pre-rotation) checkpoint signer, generated on first start when allowed.

    Raises ServiceKeyError when the key is missing (and may not be generated) or unreadable.
    """
    path = settings.checkpoint_key_file
    generate = settings.may_generate_keys if may_generate is None else may_generate
    passphrase = service_key_passphrase(settings)
    if path.exists():
        key = load_ed25519(path, passphrase=passphrase)
    elif generate:
        key = create_ed25519(path, passphrase=passphrase)
    else:
        raise ServiceKeyError("the checkpoint key file does not exist", path=path)
    return NoteSigner(settings.key_name, key)


@dataclass(frozen=True, kw_only=True)
class CheckpointKey:
    """A checkpoint key of the keyring: its signer and its signing window."""

    entry: KeyringEntry
    signer: NoteSigner

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier


@dataclass(frozen=True)
class CheckpointKeyring:
    """Every checkpoint key, current, overlapping and retired, in manifest order."""

    keys: tuple[CheckpointKey, ...]

    @classmethod
    def single(cls, signer: NoteSigner, *, file: str = "") -> CheckpointKeyring:
        """A keyring of one key valid from the epoch, with no end (no manifest yet)."""
        entry = KeyringEntry(file=file, name=signer.name, not_before=EPOCH, not_after=None)
        return cls((CheckpointKey(entry=entry, signer=signer),))

    def signers_at(self, at: datetime) -> list[NoteSigner]:
        """Every key valid at `at`: during an overlap, old and new sign side by side."""
        return [k.signer for k in self.keys if k.entry.is_valid_at(at)]

    def verifiers(self) -> list[NoteVerifier]:
        """All keys ever in the keyring, retired included: old checkpoints stay verifiable."""
        return [k.verifier for k in self.keys]

    def require_signers_at(self, at: datetime) -> list[NoteSigner]:
        """signers_at(at), or ServiceKeyError when no key is valid then (fail closed)."""
        signers = self.signers_at(at)
        if not signers:
            raise ServiceKeyError(
                f"no checkpoint key is valid at {at.isoformat()}: rotate in a new key"
            )
        return signers


def _from_service_keys(keys: list[ServiceKey]) -> CheckpointKeyring:
    return CheckpointKeyring(
        tuple(
            CheckpointKey(entry=k.entry, signer=NoteSigner(k.entry.name, k.private_key))
            for k in keys
        )
    )


def load_checkpoint_keyring(
    settings: Settings, *, require_current: bool = True, may_generate: bool | None = None
) -> CheckpointKeyring:
    """The checkpoint keyring: the manifest's keys, or the single legacy key without one.

    With require_current (the service), refuses (ServiceKeyError) when no key is valid now.
    Raises ServiceKeyError when the manifest or a key is unusable (see load_keyring).
    """
    manifest = settings.checkpoint_keyring
    if manifest.exists():
        keys = load_keyring(manifest, passphrase=service_key_passphrase(settings))
        keyring = _from_service_keys(keys)
    else:
        signer = load_checkpoint_signer(settings, may_generate=may_generate)
        keyring = CheckpointKeyring.single(signer, file=settings.checkpoint_key_file.name)
    if require_current:
        keyring.require_signers_at(_utc_now())
    return keyring


def checkpoint_sign_note(
    keyring: CheckpointKeyring, *, clock: Clock = _utc_now
) -> Callable[[str], str]:
    """A `sign_note` for ledger.store.append: signs with the keys valid when it is called.

    The returned function raises ServiceKeyError when no key is valid then (fail closed).
    """

    def sign(body: str) -> str:
        return sign_note(body, keyring.require_signers_at(clock()))

    return sign
