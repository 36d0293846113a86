"""The service's own signing keys, stored encrypted at rest as PKCS#8 PEM with a passphrase.

The passphrase comes from a secret file or the environment, never from the command line, and is
never logged. Missing keys are generated only when the caller allows it (the embedded default);
otherwise the service refuses to start: fail closed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


# --- Keyring: several keys with validity windows, for rotation with overlap ---------------------

# A keyring is small: one current key, one or two in overlap, and the retired ones that stay
# published so that old checkpoints still verify. Rotate into a new keyring before this is hit.
MAX_KEYRING_KEYS = 16
MAX_KEYRING_MANIFEST_BYTES = 64 * 1024
MAX_KEY_NAME_CHARS = 256
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_RFC3339_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_ENTRY_MEMBERS = frozenset({"file", "name", "not_before", "not_after"})
_MANIFEST_FILE_MODE = 0o644  # public keys' metadata: no secret in it


@dataclass(frozen=True, kw_only=True)
class KeyringEntry:
    """One manifest entry: a key file (relative to the manifest's directory), its note key name,
    and its signing window not_before ≤ t < not_after (no end when not_after is None)."""

    file: str
    name: str
    not_before: datetime
    not_after: datetime | None

    def is_valid_at(self, at: datetime) -> bool:
        """Whether this key signs new checkpoints at `at` (an aware datetime)."""
        return self.not_before <= at and (self.not_after is None or at < self.not_after)


@dataclass(frozen=True, kw_only=True)
class ServiceKey:
    """A keyring entry with its decrypted private key."""

    entry: KeyringEntry
    private_key: Ed25519PrivateKey = field(repr=False)  # keep key material out of logs


def format_rfc3339(at: datetime) -> str:
    """`at` as RFC 3339 UTC with a Z and whole seconds (fractions are dropped)."""
    return at.astimezone(UTC).strftime(_RFC3339_FORMAT)


def _manifest_error(message: str, *, field_name: str, path: Path | None) -> ServiceKeyError:
    return ServiceKeyError(f"keyring manifest: {field_name}: {message}", path=path)


def _parse_time(value: object, *, field_name: str, path: Path | None) -> datetime:
    if not isinstance(value, str) or not _RFC3339_Z.fullmatch(value):
        raise _manifest_error(
            "must be an RFC 3339 UTC time YYYY-MM-DDTHH:MM:SSZ", field_name=field_name, path=path
        )
    try:
        return datetime.strptime(value, _RFC3339_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _manifest_error(
            "is not a valid date and time", field_name=field_name, path=path
        ) from None


def _parse_file(value: object, *, field_name: str, path: Path | None) -> str:
    # A bare file name in the manifest's directory: no path can point elsewhere.
    if (
        not isinstance(value, str)
        or value in ("", ".", "..")
        or "/" in value
        or "\\" in value
        or "\x00" in value
    ):
        raise _manifest_error(
            "must be a file name in the manifest's directory", field_name=field_name, path=path
        )
    return value


def _parse_name(value: object, *, field_name: str, path: Path | None) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_KEY_NAME_CHARS
        or "+" in value
        or any(c.isspace() or ord(c) < 0x20 for c in value)
    ):
        raise _manifest_error(
            f"must be a key name of 1 to {MAX_KEY_NAME_CHARS} characters without white space "
            "or '+'",
            field_name=field_name,
            path=path,
        )
    return value


def _parse_entry(obj: object, *, index: int, path: Path | None) -> KeyringEntry:
    where = f"keys[{index}]"
    if not isinstance(obj, dict):
        raise _manifest_error("must be an object", field_name=where, path=path)
    for member in sorted(_ENTRY_MEMBERS - obj.keys()):
        raise _manifest_error("is missing", field_name=f"{where}.{member}", path=path)
    for member in sorted(obj.keys() - _ENTRY_MEMBERS):
        raise _manifest_error("is not a known member", field_name=f"{where}.{member}", path=path)
    not_before = _parse_time(obj["not_before"], field_name=f"{where}.not_before", path=path)
    not_after = None
    if obj["not_after"] is not None:
        not_after = _parse_time(obj["not_after"], field_name=f"{where}.not_after", path=path)
        if not_after < not_before:
            raise _manifest_error(
                "is before not_before", field_name=f"{where}.not_after", path=path
            )
    return KeyringEntry(
        file=_parse_file(obj["file"], field_name=f"{where}.file", path=path),
        name=_parse_name(obj["name"], field_name=f"{where}.name", path=path),
        not_before=not_before,
        not_after=not_after,
    )


def _no_duplicate_members(pairs: list[tuple[str, object]]) -> dict[str, object]:
    names = [name for name, _ in pairs]
    for name in names:
        if names.count(name) > 1:
            raise _manifest_error("appears twice", field_name=name, path=None)
    return dict(pairs)


def parse_keyring_manifest(data: bytes, *, path: Path | None = None) -> list[KeyringEntry]:
    """Parse a keyring manifest `{"keys": [{"file", "name", "not_before", "not_after"}]}`.

    Raises ServiceKeyError naming the offending field: not UTF-8 JSON, too large, a duplicate or
    unknown member, a missing or malformed one, no key, more than MAX_KEYRING_KEYS, a key file
    listed twice.
    """
    if len(data) > MAX_KEYRING_MANIFEST_BYTES:
        raise _manifest_error(
            f"larger than {MAX_KEYRING_MANIFEST_BYTES} bytes", field_name="(file)", path=path
        )
    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_members)
    except ServiceKeyError as exc:  # a duplicate member, found by the hook
        raise ServiceKeyError(str(exc), path=path) from None
    except (UnicodeDecodeError, ValueError):
        raise _manifest_error("is not UTF-8 JSON", field_name="(file)", path=path) from None
    if not isinstance(obj, dict) or set(obj) != {"keys"}:
        raise _manifest_error("must be an object with one member", field_name="keys", path=path)
    keys = obj["keys"]
    if not isinstance(keys, list) or not keys:
        raise _manifest_error("must be a non-empty array", field_name="keys", path=path)
    if len(keys) > MAX_KEYRING_KEYS:
        raise _manifest_error(
            f"holds more than MAX_KEYRING_KEYS={MAX_KEYRING_KEYS} keys",
            field_name="keys",
            path=path,
        )
    entries = [_parse_entry(item, index=i, path=path) for i, item in enumerate(keys)]
    files = [e.file for e in entries]
    for i, entry in enumerate(entries):
        if files.index(entry.file) != i:
            raise _manifest_error("lists a key file twice", field_name=f"keys[{i}].file", path=path)
    return entries


def render_keyring_manifest(entries: Sequence[KeyringEntry]) -> bytes:
    """The manifest bytes for entries, as parse_keyring_manifest reads them.

    Raises ServiceKeyError when there is no entry or more than MAX_KEYRING_KEYS.
    """
    if not entries or len(entries) > MAX_KEYRING_KEYS:
        raise ServiceKeyError(f"a keyring holds 1 to MAX_KEYRING_KEYS={MAX_KEYRING_KEYS} keys")
    keys = [
        {
            "file": e.file,
            "name": e.name,
            "not_before": format_rfc3339(e.not_before),
            "not_after": None if e.not_after is None else format_rfc3339(e.not_after),
        }
        for e in entries
    ]
    return (json.dumps({"keys": keys}, indent=2) + "\n").encode("utf-8")


def write_file_atomically(path: Path, data: bytes) -> None:
    """Replace path with data: write a temporary file beside it, fsync, rename, fsync the dir.

    A crash leaves either the old file or the new one, never a mix. Raises ServiceKeyError.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _MANIFEST_FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ServiceKeyError(f"cannot write {path.name}: {exc.strerror}", path=path) from None


def load_keyring(manifest: Path, *, passphrase: bytes) -> list[ServiceKey]:
    """Every key of the manifest, decrypted, in manifest order.

    Raises ServiceKeyError when the manifest is unreadable or malformed (see
    parse_keyring_manifest), a key file is missing or undecryptable, or one key is listed twice.
    """
    try:
        data = manifest.read_bytes()
    except OSError as exc:
        raise ServiceKeyError(
            f"cannot read the keyring manifest: {exc.strerror}", path=manifest
        ) from None
    entries = parse_keyring_manifest(data, path=manifest)
    keys = [
        ServiceKey(
            entry=e, private_key=load_ed25519(manifest.parent / e.file, passphrase=passphrase)
        )
        for e in entries
    ]
    publics = [k.private_key.public_key().public_bytes_raw() for k in keys]
    if len(set(publics)) != len(publics):
        raise ServiceKeyError("the keyring lists one key twice", path=manifest)
    return keys


def keys_valid_at(keys: Sequence[ServiceKey], at: datetime) -> list[ServiceKey]:
    """The keys whose window holds `at`: they all sign what is signed at `at`."""
    return [k for k in keys if k.entry.is_valid_at(at)]
