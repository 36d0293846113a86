"""The pipeline's checks before the write, in the issue's order; each refusal its own problem.

authenticate (the route) → validate the envelope → the signer is the caller, or holds a valid
delegation for `on_behalf_of` and this type → the signature is valid now with the signer's
registered key → `created_at` within ±MAX_CLOCK_SKEW_S of server time. The nonce, idempotency
and the domain handler follow in the write transaction (api/transactions/commit.py), where a
unique constraint and the ledger lock make them hold across workers and machines.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from api.auth import Principal
from api.limits import MAX_TRANSACTION_BODY_BYTES
from api.problems import FieldError, Problem, problem_type
from api.transactions.keycache import SigningKeyCache
from api.transactions.registry import TransactionType, TypeRegistry
from signatures import registry_store
from signatures.canonical import JsonValue, canonicalize, parse_json
from signatures.envelope import Envelope, parse_envelope
from signatures.errors import CanonicalFormError, EnvelopeError, JwsError
from signatures.errors import FieldError as SigFieldError
from signatures.jws import MAX_PAYLOAD_BYTES, parse_protected_header
from signatures.keys import AssuranceLevel, KeyRecord
from signatures.validation import SubIndication, validate_at

# created_at may differ from the server's clock by at most this much, either way.
MAX_CLOCK_SKEW_S = 300
MAX_SIGNATURE_CHARS = 16 * 1024  # a PS256 signature with an x5c chain fits well within
MAX_IDEMPOTENCY_KEY_CHARS = 255
BODY_MEMBERS = frozenset({"envelope", "signature"})

_KEY_PROBLEMS = frozenset(
    {
        SubIndication.REVOKED_NO_POE,
        SubIndication.OUT_OF_BOUNDS_NO_POE,
        SubIndication.TRY_LATER,
        SubIndication.NOT_YET_VALID,
        SubIndication.SIG_CONSTRAINTS_FAILURE,
        SubIndication.REVOKED,
        SubIndication.EXPIRED,
    }
)


@dataclass(frozen=True)
class Prepared:
    """A transaction that passed every check before the write."""

    tx_id: str
    tx_type: TransactionType
    envelope: Envelope
    jws: str
    kid: str
    caller: str
    idempotency_key: str | None
    request_sha256: bytes

    @property
    def owner(self) -> str:
        return str(self.envelope.on_behalf_of or self.envelope.signer)


def _fields(errors: tuple[SigFieldError, ...], prefix: str) -> tuple[FieldError, ...]:
    return tuple(
        FieldError(field=prefix + e.pointer, rule=e.rule, message=e.message) for e in errors
    )


def invalid_body(detail: str, errors: tuple[FieldError, ...] = ()) -> Problem:
    return Problem(
        400, problem_type("invalid-body"), "The request body is not valid", detail, errors
    )


def parse_body(body: bytes) -> tuple[dict[str, JsonValue], str, bytes]:
    """The envelope object, the JWS and SHA-256 of the body's canonical form.

    Raises Problem invalid-body (not strict JSON, not {"envelope": {...}, "signature": "..."}).
    """
    try:
        value = parse_json(body, max_bytes=MAX_TRANSACTION_BODY_BYTES)
    except CanonicalFormError as exc:
        raise invalid_body("the body is not strict JSON", _fields(exc.errors, "")) from None
    if not isinstance(value, dict):
        raise invalid_body("the body must be a JSON object")
    extra = sorted(set(value) - BODY_MEMBERS)
    missing = sorted(BODY_MEMBERS - set(value))
    errors = tuple(
        [FieldError(field="/" + m, rule="unknown_member", message="not allowed") for m in extra]
        + [FieldError(field="/" + m, rule="required", message="required") for m in missing]
    )
    if errors:
        raise invalid_body('the body is {"envelope": {...}, "signature": "<JWS>"}', errors)
    envelope, signature = value["envelope"], value["signature"]
    if not isinstance(signature, str) or not 0 < len(signature) <= MAX_SIGNATURE_CHARS:
        raise invalid_body(
            "signature must be a compact detached JWS",
            (FieldError(field="/signature", rule="wrong_type", message="a JWS string"),),
        )
    if not isinstance(envelope, dict):
        raise invalid_body(
            "envelope must be an object",
            (FieldError(field="/envelope", rule="wrong_type", message="an object"),),
        )
    canonical = canonicalize(value, max_bytes=MAX_TRANSACTION_BODY_BYTES)
    return envelope, signature, hashlib.sha256(canonical).digest()


def check_envelope(
    value: dict[str, JsonValue], registry: TypeRegistry, principal: Principal
) -> tuple[Envelope, TransactionType]:
    """Raises Problem envelope-invalid, unknown-transaction-type, forbidden (the caller's roles
    may not submit this type), payload-invalid."""
    try:
        envelope = parse_envelope(value, max_bytes=MAX_PAYLOAD_BYTES)
    except EnvelopeError as exc:
        raise Problem(
            400,
            problem_type("envelope-invalid"),
            "The envelope is not valid",
            "fix each field listed in errors",
            _fields(exc.errors, "/envelope"),
        ) from None
    tx_type = registry.get(envelope.type)
    if tx_type is None or tx_type.version != envelope.version:
        raise Problem(
            400,
            problem_type("unknown-transaction-type"),
            "Unknown transaction type",
            f"no transaction type {envelope.type!r} version {envelope.version}; "
            f"known: {', '.join(registry.names())}",
        )
    if len(envelope.canonical) > tx_type.max_envelope_bytes:
        raise Problem(
            413,
            problem_type("envelope-too-large"),
            "The envelope is too large for its type",
            f"a {envelope.type} envelope is at most {tx_type.max_envelope_bytes} bytes "
            "in canonical form",
        )
    if not principal.roles & tx_type.roles:
        # Function-level authorisation first: a caller who may not submit this type learns
        # nothing of its payload rules.
        raise Problem(
            403,
            problem_type("forbidden"),
            "Forbidden",
            f"{envelope.type} needs one of the roles {', '.join(sorted(tx_type.roles))}",
        )
    try:
        tx_type.validate_payload(envelope)
    except EnvelopeError as exc:
        raise Problem(
            400,
            problem_type("payload-invalid"),
            "The payload is not valid for this transaction type",
            "fix each field listed in errors",
            _fields(exc.errors, "/envelope"),
        ) from None
    return envelope, tx_type


def check_caller(
    read: Callable[[], Connection],
    envelope: Envelope,
    tx_type: TransactionType,
    principal: Principal,
    *,
    now: datetime,
) -> None:
    """Object-level authorisation. Raises Problem signer-not-caller, no-delegation."""
    if str(envelope.signer) != principal.subject:
        raise Problem(
            403,
            problem_type("signer-not-caller"),
            "The signer is not the caller",
            "the envelope's signer must be the authenticated subject",
        )
    if envelope.on_behalf_of is None:
        return
    grantor = str(envelope.on_behalf_of)
    found = tx_type.on_behalf and registry_store.find_valid_delegation(
        read(), grantor=grantor, delegate=principal.subject, transaction_type=envelope.type, at=now
    )
    if not found:
        raise Problem(
            403,
            problem_type("no-delegation"),
            "No delegation for this transaction",
            f"the signer holds no valid delegation from on_behalf_of for {envelope.type}",
        )


def signing_key(
    load: Callable[[str], KeyRecord | None],
    envelope: Envelope,
    tx_type: TransactionType,
    jws: str,
    *,
    now: datetime,
) -> KeyRecord | None:
    """The key the JWS must verify with: the registration's own key (proof of possession), else
    the registered key named by the header's kid (read with load) when it belongs to the
    signer."""
    if tx_type.possession_key is not None:
        jwk = tx_type.possession_key(envelope)
        return KeyRecord.register(
            jwk=jwk, subject=str(envelope.signer), assurance=AssuranceLevel.REGISTERED, at=now
        )
    try:
        kid = parse_protected_header(jws).kid
    except JwsError:
        return None  # validate_at reports the format failure
    record = load(kid)
    if record is None or record.subject != str(envelope.signer):
        return None  # another subject's key is reported exactly as an unknown one
    return record


def check_signature(envelope: Envelope, jws: str, key: KeyRecord | None, *, now: datetime) -> str:
    """Validate the JWS now (signatures.validation). Returns the kid.

    Raises Problem signing-key-unknown, signing-key-not-active or signature-invalid.
    """
    report = validate_at(jws=jws, payload=envelope.canonical, key=key, poe=None, at=now)
    if report.passed and key is not None:
        return key.kid
    sub = report.sub_indication
    extensions: dict[str, JsonValue] = {
        "indication": report.indication.value,
        "sub_indication": None if sub is None else sub.value,
    }
    if sub is SubIndication.NO_SIGNING_CERTIFICATE_FOUND:
        raise Problem(
            400,
            problem_type("signing-key-unknown"),
            "The signing key is not registered to the signer",
            report.detail,
            extensions=extensions,
        )
    if sub in _KEY_PROBLEMS:
        raise Problem(
            403,
            problem_type("signing-key-not-active"),
            "The signing key may not sign now",
            report.detail,
            extensions=extensions,
        )
    raise Problem(
        400,
        problem_type("signature-invalid"),
        "The signature is not valid",
        report.detail,
        extensions=extensions,
    )


def check_created_at(envelope: Envelope, *, now: datetime) -> None:
    """Raises Problem created-at-out-of-window beyond ±MAX_CLOCK_SKEW_S."""
    skew = timedelta(seconds=MAX_CLOCK_SKEW_S)
    if not now - skew <= envelope.created_at <= now + skew:
        raise Problem(
            400,
            problem_type("created-at-out-of-window"),
            "created_at is too far from the server's time",
            f"created_at must be within ±{MAX_CLOCK_SKEW_S} s of the server's clock",
            (
                FieldError(
                    field="/envelope/created_at", rule="out_of_window", message="stale or future"
                ),
            ),
        )


def check_idempotency_key(value: str | None) -> str | None:
    """Raises Problem invalid-idempotency-key (empty, too long, not printable ASCII)."""
    if value is None:
        return None
    if not 0 < len(value) <= MAX_IDEMPOTENCY_KEY_CHARS or not all(
        33 <= ord(c) < 127 for c in value
    ):
        raise Problem(
            400,
            problem_type("invalid-idempotency-key"),
            "Invalid Idempotency-Key",
            f"1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters without spaces",
        )
    return value


def prepare(
    read: Callable[[], Connection],
    body: bytes,
    *,
    principal: Principal,
    registry: TypeRegistry,
    keys: SigningKeyCache,
    idempotency_key: str | None,
    now: datetime,
) -> Prepared:
    """Every check before the write, in order. read() gives a read-only connection, opened only
    when a check needs the database (a delegation, a key not in the cache). Raises Problem."""
    value, jws, request_sha256 = parse_body(body)
    envelope, tx_type = check_envelope(value, registry, principal)
    check_caller(read, envelope, tx_type, principal, now=now)
    key = signing_key(
        lambda kid: keys.get(kid, lambda k: registry_store.load_key(read(), k), at=now),
        envelope,
        tx_type,
        jws,
        now=now,
    )
    kid = check_signature(envelope, jws, key, now=now)
    check_created_at(envelope, now=now)
    return Prepared(
        tx_id=str(uuid.uuid4()),
        tx_type=tx_type,
        envelope=envelope,
        jws=jws,
        kid=kid,
        caller=principal.subject,
        idempotency_key=idempotency_key,
        request_sha256=request_sha256,
    )
