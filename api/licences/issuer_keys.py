"""The licensing agencies' credential keys: held by the service, registered in the key registry.

Each agency that issues licences has one Ed25519 key that signs its licence credentials
(licences/credential.py). The service holds it, like the checkpoint key: an encrypted PKCS#8 PEM
file ``<licence_issuer_key_dir>/<agency id>.pem`` under the service key passphrase, created on
first use. Two workers may want it at the same moment: each writes a complete temporary file and
hard-links it into place, which fails for all but one (``link`` never replaces), and the losers
load the winner's key. Every worker on every machine must see the same directory (as with the
checkpoint key) so that they all sign with, and publish, the same keys.

A verifier trusts a credential key because the key registry says which agency it belongs to.
The key is registered there by an ordinary ``key.register`` transaction, signed by the key itself
(proof of possession) and submitted as the agency through the real pipeline, so it is in the
ledger like every other key. This happens the first time the agency's key is needed for a
credential; an answer that the key is already registered (another worker won) counts as done,
and success is remembered for the life of the process.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import anyio.to_thread
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection

from api.auth import Principal, Role
from api.database import read_only, run_in_transaction
from api.keys import service_key_passphrase
from api.problems import Problem, problem_type
from api.settings import Settings
from api.transactions.service import TransactionService
from licences.credential import IssuerKey, issuer_key, issuer_key_json
from signatures.canonical import JsonValue
from signatures.client import build_key_registration, sign_envelope, transaction_body
from signatures.envelope import SubjectKind, parse_subject
from signatures.errors import ServiceKeyError, SubjectError
from signatures.keys import KeyRecord
from signatures.registry_store import issue_challenge, load_key, load_keys

# One key per agency; an agency list longer than this is a configuration mistake.
MAX_ISSUER_AGENCIES: Final = 256
KEY_FILE_SUFFIX: Final = ".pem"
_KEY_DIR_MODE: Final = 0o700  # nobody else may list the service's keys
_KEY_FILE_MODE: Final = 0o600
# The pipeline's answer when the key is already in the registry (api/problems.py).
ALREADY_REGISTERED_TYPE: Final = problem_type("already-exists")

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PublishedIssuerKey:
    """A credential key as the registry records it: the key, the ledger index of its
    ``key.register`` transaction, and the registry record (its status over time)."""

    key: IssuerKey
    registered_index: int
    record: KeyRecord


def published_key_json(published: PublishedIssuerKey) -> dict[str, JsonValue]:
    """The public JWK with ``kid`` and ``iss`` (licences.credential.issuer_key_json), plus
    ``registered_index``: where to find the key's registration in the ledger."""
    return {**issuer_key_json(published.key), "registered_index": published.registered_index}


def verification_keys(published: Iterable[PublishedIssuerKey]) -> dict[str, IssuerKey]:
    """The ``keys`` argument of licences.credential.verify_credential, by kid."""
    return {p.key.kid: p.key for p in published}


def agency_id(agency: str) -> str:
    """The id of an agency subject ``agency:<id>`` (also its key file's stem).

    Raises ValueError when agency is not an agency subject.
    """
    try:
        subject = parse_subject(agency)
    except SubjectError:
        raise ValueError("not an agency subject") from None
    if subject.kind is not SubjectKind.AGENCY:
        raise ValueError("not an agency subject")
    return subject.identifier


# --- the registration pipeline --------------------------------------------------------------------


class KeyRegistrar(Protocol):
    """What ensure_registered needs from the service: the registry, challenges, the pipeline."""

    def now(self) -> datetime:
        """The time the service will check the envelope's created_at against."""
        ...

    def registered_subject(self, kid: str) -> str | None:
        """The subject key kid is registered to, or None."""
        ...

    def issue_challenge(self, subject: str) -> str:
        """A fresh key.register challenge for subject."""
        ...

    async def submit(self, subject: str, body: bytes) -> None:
        """Run a POST /v1/transactions body as subject; raises Problem when it is refused."""
        ...


class PipelineRegistrar:
    """A KeyRegistrar over the app's TransactionService: submits in process, through every step
    of the pipeline (checks, handler, ledger), as the agency with the agency role."""

    def __init__(self, service: TransactionService, *, clock: Clock = _utc_now) -> None:
        self._service = service
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    def registered_subject(self, kid: str) -> str | None:
        with self._service.engine.connect() as conn:
            record = load_key(read_only(conn), kid)
        return None if record is None else record.subject

    def issue_challenge(self, subject: str) -> str:
        now = self._clock()
        challenge = run_in_transaction(
            self._service.engine,
            lambda conn: issue_challenge(conn, subject=subject, now=now),
        )
        return challenge.value

    async def submit(self, subject: str, body: bytes) -> None:
        principal = Principal(subject=subject, roles=frozenset({Role.AGENCY}))
        await self._service.submit(body, principal=principal, idempotency_key=None)


def registration_body(
    private_key: Ed25519PrivateKey, *, agency: str, challenge: str, now: datetime
) -> bytes:
    """The POST /v1/transactions body registering private_key's public key for agency, signed
    with that key. Raises EnvelopeError or ClientKeyError (signatures.client) when refused."""
    envelope = build_key_registration(
        private_key, subject=agency, challenge=challenge, created_at=now
    )
    signed = sign_envelope(envelope, private_key, iat=int(now.timestamp()))
    return json.dumps(transaction_body(signed), separators=(",", ":")).encode()


# --- key files ------------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load(path: Path, *, passphrase: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except OSError as exc:
        raise ServiceKeyError(f"cannot read key file: {exc.strerror}", path=path) from None
    except (ValueError, TypeError):
        raise ServiceKeyError(
            "the key file cannot be decrypted with the configured passphrase", path=path
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ServiceKeyError("the key file does not hold an Ed25519 key", path=path)
    return key


def create_or_load(
    path: Path, *, passphrase: bytes, may_generate: bool = True
) -> Ed25519PrivateKey:
    """The key at path, created first when there is none; safe when processes race.

    The new key is written whole to a temporary file beside path and hard-linked into place:
    ``link`` fails when path exists, so exactly one racer's key lands and the others load it;
    nobody ever reads a half-written file. Raises ServiceKeyError when a file cannot be
    written or read, or holds no Ed25519 key decryptable with passphrase.
    """
    if path.exists():
        return _load(path, passphrase=passphrase)
    if not may_generate:
        # Fail closed outside dev, like the checkpoint key: a missing key is provisioned, or
        # generated only when PISHKHAN_GENERATE_KEYS says so.
        raise ServiceKeyError("the agency's credential key file does not exist", path=path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        path.parent.mkdir(mode=_KEY_DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEY_FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another worker's key landed first: use it
            return _load(path, passphrase=passphrase)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise ServiceKeyError(f"cannot create key file: {exc.strerror}", path=path) from None
    finally:
        tmp.unlink(missing_ok=True)
    return key


# --- the keys -------------------------------------------------------------------------------------


class IssuerKeys:
    """The credential keys of every licensing agency, loaded or created on first use.

    Safe to share between the threads of one process; every process may hold its own over the
    same directory.
    """

    def __init__(
        self,
        directory: Path,
        *,
        passphrase: bytes | Callable[[], bytes],
        may_generate: bool = True,
    ) -> None:
        self.directory = directory
        self.may_generate = may_generate
        # A callable is asked on first use only: an app that never issues a credential needs
        # no passphrase for these keys.
        self._passphrase_source = passphrase
        self._passphrase: bytes | None = passphrase if isinstance(passphrase, bytes) else None
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[IssuerKey, Ed25519PrivateKey]] = {}
        self._registered: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> IssuerKeys:
        """Keys under settings.licence_issuer_key_dir, encrypted with the service key
        passphrase (read when first needed: ServiceKeyError then if none is configured). A
        missing key is generated only where the service may generate keys (dev, or
        PISHKHAN_GENERATE_KEYS)."""
        return cls(
            settings.licence_issuer_key_dir,
            passphrase=lambda: service_key_passphrase(settings),
            may_generate=settings.may_generate_keys,
        )

    def _secret(self) -> bytes:
        if self._passphrase is None:
            source = self._passphrase_source
            self._passphrase = source if isinstance(source, bytes) else source()
        return self._passphrase

    def path(self, agency: str) -> Path:
        """The key file of agency. Raises ValueError when agency is not an agency subject."""
        return self.directory / f"{agency_id(agency)}{KEY_FILE_SUFFIX}"

    def _remember(self, agency: str, private_key: Ed25519PrivateKey) -> IssuerKey:
        public = issuer_key(private_key.public_key(), issuer=agency)
        self._keys[agency] = (public, private_key)
        return public

    def signing_key(self, agency: str) -> tuple[str, Ed25519PrivateKey]:
        """The kid and private key that sign agency's credentials, created on first use where
        keys may be generated.

        Raises ValueError for a subject that is not an agency, ServiceKeyError when the key
        cannot be created or loaded (missing and not to be generated, no passphrase, wrong
        passphrase, unwritable directory).
        """
        path = self.path(agency)
        with self._lock:
            if agency not in self._keys:
                key = create_or_load(
                    path, passphrase=self._secret(), may_generate=self.may_generate
                )
                self._remember(agency, key)
            public, private_key = self._keys[agency]
        return public.kid, private_key

    def existing_key(self, agency: str) -> IssuerKey | None:
        """agency's credential key when its file exists (never creates one), else None.

        Raises ValueError and ServiceKeyError as signing_key does.
        """
        path = self.path(agency)
        with self._lock:
            if agency not in self._keys:
                if not path.exists():
                    return None
                self._remember(agency, _load(path, passphrase=self._secret()))
            return self._keys[agency][0]

    async def ensure_registered(self, agency: str, registrar: KeyRegistrar) -> str:
        """Make sure agency's credential key is in the key registry as agency's; returns its kid.

        Registers it through the pipeline when the registry lacks it (an "already exists"
        answer counts as done: another worker registered it); remembers success for the life
        of this object. Raises ServiceKeyError when the key is unusable or registered to
        another subject, and the Problem the pipeline raised when the registration is refused.
        """
        kid, private_key = await anyio.to_thread.run_sync(self.signing_key, agency)
        if agency in self._registered:
            return kid
        owner = await anyio.to_thread.run_sync(registrar.registered_subject, kid)
        if owner is None:
            challenge = await anyio.to_thread.run_sync(registrar.issue_challenge, agency)
            body = registration_body(
                private_key, agency=agency, challenge=challenge, now=registrar.now()
            )
            try:
                await registrar.submit(agency, body)
            except Problem as problem:
                if problem.type != ALREADY_REGISTERED_TYPE:
                    raise
            owner = await anyio.to_thread.run_sync(registrar.registered_subject, kid)
        if owner != agency:
            raise ServiceKeyError("the credential key is not registered to its agency")
        self._registered.add(agency)
        return kid

    def published_keys(
        self, conn: Connection, *, agencies: Collection[str]
    ) -> list[PublishedIssuerKey]:
        """The credential keys of agencies that are registered to them, by agency order.

        Keys not (yet) registered, or registered to another subject, are left out: nothing they
        could have signed was ever handed out. Raises ValueError for more than
        MAX_ISSUER_AGENCIES agencies or a subject that is not an agency, ServiceKeyError for
        an unreadable key file.
        """
        if len(agencies) > MAX_ISSUER_AGENCIES:
            raise ValueError(f"more than MAX_ISSUER_AGENCIES={MAX_ISSUER_AGENCIES} agencies")
        keys = [key for agency in agencies if (key := self.existing_key(agency)) is not None]
        records = load_keys(conn, [key.kid for key in keys])
        published: list[PublishedIssuerKey] = []
        for key in keys:
            record = records.get(key.kid)
            if record is None or record.subject != key.issuer:
                continue
            index = record.events[0].ledger_index
            assert index is not None, "a registered key records its key.register leaf"
            published.append(PublishedIssuerKey(key=key, registered_index=index, record=record))
        return published
