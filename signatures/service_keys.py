"""The service's own signing keys, stored encrypted at rest as PKCS#8 PEM with a passphrase.

The passphrase comes from a secret file or the environment, never from the command line, and is
never logged. Missing keys are generated only when the caller allows it (the embedded default);
otherwise the service refuses to start: fail closed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signatures.errors import ServiceKeyError

MIN_PASSPHRASE_BYTES = 16
GENERATED_PASSPHRASE_BYTES = 32
_PRIVATE_FILE_MODE = 0o600
_PRIVATE_DIR_MODE = 0o700  # a directory we create for keys: nobody else may list it


def read_passphrase(*, file: Path | None, value: str | None) -> bytes:
    """The key passphrase from a secret file (preferred) or a value from the environment.

    Raises ServiceKeyError when neither is given, the file is unreadable, or the passphrase is
    shorter than MIN_PASSPHRASE_BYTES.
    """
    if file is not None:
        try:
            raw = file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ServiceKeyError(
                f"cannot read the passphrase file: {exc.strerror}", path=file
            ) from None
    elif value is not None:
        raw = value.encode()
    else:
        raise ServiceKeyError("no key passphrase configured (a passphrase file or variable)")
    if len(raw) < MIN_PASSPHRASE_BYTES:
        raise ServiceKeyError(f"the key passphrase must be at least {MIN_PASSPHRASE_BYTES} bytes")
    return raw


def create_passphrase_file(path: Path) -> bytes:
    """Write a fresh random passphrase to a new owner-only file and return it.

    Raises ServiceKeyError when the file already exists or cannot be written.
    """
    passphrase = secrets.token_urlsafe(GENERATED_PASSPHRASE_BYTES).encode()
    _write_private(path, passphrase + b"\n")
    return passphrase


def _write_private(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(mode=_PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_FILE_MODE)
    except OSError as exc:
        raise ServiceKeyError(f"cannot create key file: {exc.strerror}", path=path) from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def load_ed25519(path: Path, *, passphrase: bytes) -> Ed25519PrivateKey:
    """Load an encrypted PKCS#8 Ed25519 private key.

    Raises ServiceKeyError when the file is missing, the passphrase is wrong or the key is not
    Ed25519.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ServiceKeyError(f"cannot read key file: {exc.strerror}", path=path) from None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError):
        raise ServiceKeyError(
            "the key file cannot be decrypted with the configured passphrase "
            "or is not an encrypted PKCS#8 key",
            path=path,
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ServiceKeyError("the key file does not hold an Ed25519 key", path=path)
    return key


def create_ed25519(path: Path, *, passphrase: bytes) -> Ed25519PrivateKey:
    """Generate an Ed25519 key and store it encrypted at path (which must not exist).

    Raises ServiceKeyError when the file exists or cannot be written.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    _write_private(path, pem)
    return key
