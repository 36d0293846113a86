"""Wiring of the service keys from the settings: the checkpoint signer and its verifier key."""

from __future__ import annotations

from api.settings import Settings
from ledger.note import NoteSigner
from signatures.errors import ServiceKeyError
from signatures.service_keys import (
    create_ed25519,
    create_passphrase_file,
    load_ed25519,
    read_passphrase,
)


def _passphrase(settings: Settings) -> bytes:
    value = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
    if settings.key_passphrase_file is None and value is None and settings.may_generate_keys:
        # The embedded default keeps a generated passphrase beside the key, owner-only.
        file = settings.checkpoint_key_file.with_name("passphrase")
        if not file.exists():
            return create_passphrase_file(file)
        return read_passphrase(file=file, value=None)
    return read_passphrase(file=settings.key_passphrase_file, value=value)


def load_checkpoint_signer(settings: Settings) -> NoteSigner:
    """The Ed25519 checkpoint signer, generated on first start when the settings allow it.

    Raises ServiceKeyError when the key is missing (and may not be generated) or unreadable.
    """
    path = settings.checkpoint_key_file
    passphrase = _passphrase(settings)
    if path.exists():
        key = load_ed25519(path, passphrase=passphrase)
    elif settings.may_generate_keys:
        key = create_ed25519(path, passphrase=passphrase)
    else:
        raise ServiceKeyError("the checkpoint key file does not exist", path=path)
    return NoteSigner(settings.key_name, key)
