"""Errors raised by signatures/. They carry data and know nothing of HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


class SignaturesError(Exception):
    """Base class of every signatures error."""


class ServiceKeyError(SignaturesError):
    """A service key or its passphrase is missing, unreadable or of the wrong kind."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


# --- JWK and JWS (signatures.jwk, signatures.jws) -------------------------------------------------


class JwkError(SignaturesError):
    """A JWK is malformed, private, of an unsupported type or curve, or too weak.

    ``member`` names the offending JWK member ("" for the object as a whole) and ``rule`` the
    rule it breaks, e.g. "private member", "unsupported curve", "modulus size".
    """

    def __init__(self, message: str, *, member: str, rule: str) -> None:
        super().__init__(message)
        self.member = member
        self.rule = rule


class JwsError(SignaturesError):
    """A detached JWS is not acceptable."""


class JwsFormatError(JwsError):
    """The compact serialisation is malformed: segments, base64url, sizes, or header JSON."""


class JwsHeaderError(JwsError):
    """A protected header member is missing, forbidden, unknown, duplicated or invalid."""

    def __init__(self, message: str, *, member: str) -> None:
        super().__init__(message)
        self.member = member


class JwsAlgorithmError(JwsError):
    """The header ``alg`` is refused, or is not the algorithm pinned to the key.

    ``key_alg`` is None when no key was involved (parsing alone).
    """

    def __init__(self, message: str, *, header_alg: str, key_alg: str | None) -> None:
        super().__init__(message)
        self.header_alg = header_alg
        self.key_alg = key_alg


class JwsKeyMismatchError(JwsError):
    """The header ``kid`` is not the thumbprint of the key the signature is checked against."""

    def __init__(self, message: str, *, kid: str, expected_kid: str) -> None:
        super().__init__(message)
        self.kid = kid
        self.expected_kid = expected_kid


class JwsSignatureError(JwsError):
    """The signature does not verify over the signing input with the key."""


# --- Canonical form and envelope -----------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """One refused field: where (an RFC 6901 JSON Pointer), which rule, and why in words.

    Messages never repeat the refused value: it may be personal data (a national ID).
    """

    pointer: str
    rule: str
    message: str


class CanonicalFormError(SignaturesError):
    """JSON input or a value is outside the canonical profile (RFC 8785 / I-JSON, integers only).

    `pointer`, `rule` and the message describe the first problem in document order; `errors`
    holds every problem found (at most MAX_REPORTED_ERRORS of signatures.canonical).
    """

    def __init__(self, errors: tuple[FieldError, ...]) -> None:
        if not errors:
            raise ValueError("CanonicalFormError needs at least one FieldError")
        super().__init__(f"{errors[0].pointer or '(root)'}: {errors[0].message} ({errors[0].rule})")
        self.errors = errors
        self.pointer = errors[0].pointer
        self.rule = errors[0].rule


class FieldErrors(Exception):
    """Input refused field by field: `errors` lists every refused field (JSON Pointer, rule, why),
    the first one in the message. The base of each package's field error (EnvelopeError here,
    payments' PaymentFieldError, tax's TaxFieldError), which adds its package's base class.

    Raises ValueError when `errors` is empty.
    """

    def __init__(self, errors: tuple[FieldError, ...]) -> None:
        if not errors:
            raise ValueError(f"{type(self).__name__} needs at least one FieldError")
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first.pointer or '(root)'}: {first.message} ({first.rule}){more}")
        self.errors = errors


class EnvelopeError(SignaturesError, FieldErrors):
    """A transaction envelope (or a part of its payload) is refused; `errors` lists every field."""


class SubjectError(SignaturesError):
    """A subject string (ir-nid:…, ir-lid:…, agency:…) is malformed or fails its check digit."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


# --- Key registry and delegations (signatures.keys) ----------------------------------------------


class KeyRegistryError(SignaturesError):
    """A key record, key event or delegation is malformed, or a change to one is refused."""


class KeyRecordError(KeyRegistryError):
    """A key record or key event is malformed; ``field`` names the offending field."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class KeyStateError(KeyRegistryError):
    """A key event is refused by the key state machine.

    ``state`` is the key's state before the event (a KeyStatus value, or "expired"/"revoked"),
    ``transition`` the refused event kind, ``kid`` the key and ``at`` the ISO 8601 time the event
    would have taken effect.
    """

    def __init__(self, message: str, *, kid: str, state: str, transition: str, at: str) -> None:
        super().__init__(message)
        self.kid = kid
        self.state = state
        self.transition = transition
        self.at = at


class DelegationError(KeyRegistryError):
    """A delegation is malformed or a change to it is refused; ``field`` names the field."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class DelegationLimitError(DelegationError):
    """A delegation exceeds a named limit (MAX_DELEGATION_TYPES, MAX_DELEGATION_DAYS)."""

    def __init__(
        self, message: str, *, field: str, limit_name: str, limit: int, actual: int
    ) -> None:
        super().__init__(message, field=field)
        self.limit_name = limit_name
        self.limit = limit
        self.actual = actual


# --- Key registry storage and transactions (signatures.registry_store, registry_handlers) --------


class ChallengeError(KeyRegistryError):
    """A key registration challenge cannot be used.

    ``reason`` is "unknown", "expired", "consumed" or "other_subject" (issued to another
    subject). The message says "unknown challenge" for both "unknown" and "other_subject", so a
    client cannot probe another subject's challenges; ``reason`` is for logs only.
    """

    REASONS: ClassVar[frozenset[str]] = frozenset(
        {"unknown", "expired", "consumed", "other_subject"}
    )
    _MESSAGES: ClassVar[Mapping[str, str]] = {
        "unknown": "unknown challenge",
        "other_subject": "unknown challenge",
        "expired": "the challenge has expired",
        "consumed": "the challenge was already used",
    }

    def __init__(self, reason: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown ChallengeError reason {reason!r}")
        super().__init__(self._MESSAGES[reason])
        self.reason = reason


class KeyNotFoundError(KeyRegistryError):
    """No key ``kid`` that the acting subject may use or change.

    Raised alike for a key that does not exist and for another subject's key, so that nobody
    learns which key IDs are registered to whom.
    """

    def __init__(self, kid: str) -> None:
        super().__init__("no such key")
        self.kid = kid


class RegistryConflictError(KeyRegistryError):
    """What would be created already exists: ``kind`` is "key" or "delegation", ``identifier``
    its kid or delegation ID."""

    def __init__(self, message: str, *, kind: str, identifier: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.identifier = identifier


class DelegationNotFoundError(KeyRegistryError):
    """No delegation ``delegation_id`` that the acting subject may change (missing, or granted
    by someone else: the same error, so that delegation IDs cannot be probed)."""

    def __init__(self, delegation_id: str) -> None:
        super().__init__("no such delegation")
        self.delegation_id = delegation_id


class RegistryLimitError(KeyRegistryError):
    """A named registry limit would be exceeded: ``limit_name`` (the constant), its ``limit``
    and the ``actual`` count that reached it."""

    def __init__(self, message: str, *, limit_name: str, limit: int, actual: int) -> None:
        super().__init__(message)
        self.limit_name = limit_name
        self.limit = limit
        self.actual = actual


class NaiveDatetimeError(SignaturesError, ValueError):
    """A datetime without a time zone was passed where an aware UTC instant is required.

    A programmer error, never caused by signed input: ``field`` names the argument.
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# --- Validation (signatures.validation) ----------------------------------------------------------


class ValidationInputError(SignaturesError, ValueError):
    """A programmer error in what was passed to validation (never a bad signature: that is a
    report): a malformed proof of existence or policy, or a proof dated after the validation
    time. ``field`` names the offending argument or member."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# --- Client keys (signatures.client) -------------------------------------------------------------


class ClientKeyError(SignaturesError):
    """A client's private key or its passphrase is refused: unreadable or damaged PEM, wrong or
    missing passphrase, or a key type, curve or size outside the profile.

    ``rule`` is stable and machine-readable (the RULE_* of signatures.client, e.g.
    "wrong_passphrase", "unsupported_key"). Messages never include the passphrase or key bytes.
    """

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


# --- X.509 certificate chains (signatures.certificates) ------------------------------------------


class CertificateError(SignaturesError):
    """An X.509 certificate chain is refused.

    ``index`` is the position of the certificate at fault, the leaf being 0 (the presented
    chain and the validated path agree on every position the chain presents), or None when no
    single certificate is at fault; ``fingerprint_s256`` is its base64url SHA-256 (as in a JWS
    ``x5t#S256``). Errors never carry a subject name: it is personal data.
    """

    def __init__(
        self, message: str, *, index: int | None = None, fingerprint_s256: str | None = None
    ) -> None:
        super().__init__(message)
        self.index = index
        self.fingerprint_s256 = fingerprint_s256


class CertificateFormatError(CertificateError):
    """A certificate is not bytes, too large, not DER X.509, or has malformed extensions."""


class CertificatePathError(CertificateError):
    """No acceptable path from the leaf to a trust anchor.

    ``reason`` is one of "order" (a certificate is not issued by the next one), "too_long"
    (more certificates than the policy allows), "no_path" (cryptography's path validation
    failed: untrusted root, missing intermediate, bad signature, CA constraints), "expired" and
    "not_yet_valid" (see CertificateValidityError).
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        index: int | None = None,
        fingerprint_s256: str | None = None,
    ) -> None:
        super().__init__(message, index=index, fingerprint_s256=fingerprint_s256)
        self.reason = reason


class CertificateValidityError(CertificatePathError):
    """A certificate of the chain is not valid at the validation time ``at``.

    ``not_before``, ``not_after`` (inclusive, RFC 5280) and ``at`` are ISO 8601 UTC strings.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        index: int,
        fingerprint_s256: str,
        not_before: str,
        not_after: str,
        at: str,
    ) -> None:
        super().__init__(message, reason=reason, index=index, fingerprint_s256=fingerprint_s256)
        self.not_before = not_before
        self.not_after = not_after
        self.at = at


class CertificateAlgorithmError(CertificateError):
    """A certificate or CRL is signed with an algorithm the policy refuses (SHA-1, MD5, …), or
    an issuing CA's key is of a refused type, curve or size. ``algorithm`` names it."""

    def __init__(
        self,
        message: str,
        *,
        algorithm: str,
        index: int | None = None,
        fingerprint_s256: str | None = None,
    ) -> None:
        super().__init__(message, index=index, fingerprint_s256=fingerprint_s256)
        self.algorithm = algorithm


class CertificateUsageError(CertificateError):
    """The leaf may not make signatures: ``rule`` is "ca" (basicConstraints cA is true),
    "key_cert_sign" (keyUsage keyCertSign), "no_key_usage" (no keyUsage extension) or
    "key_usage" (none of the policy's required key usages is asserted)."""

    def __init__(
        self, message: str, *, rule: str, index: int, fingerprint_s256: str | None = None
    ) -> None:
        super().__init__(message, index=index, fingerprint_s256=fingerprint_s256)
        self.rule = rule


class CertificateRevokedError(CertificateError):
    """A CRL signed by the issuing CA lists the certificate as revoked at or before ``at``.

    ``revoked_at`` is the CRL entry's revocationDate (ISO 8601 UTC), ``reason`` its CRLReason
    name (RFC 5280 section 5.3.1, e.g. "key_compromise") or None when the entry gives none.
    """

    def __init__(
        self,
        message: str,
        *,
        index: int,
        fingerprint_s256: str,
        serial_number: int,
        revoked_at: str,
        reason: str | None,
    ) -> None:
        super().__init__(message, index=index, fingerprint_s256=fingerprint_s256)
        self.serial_number = serial_number
        self.revoked_at = revoked_at
        self.reason = reason


class RevocationUnavailableError(CertificateError):
    """The policy requires revocation data and no usable CRL from the issuing CA covers ``at``
    for the certificate at ``index``. ``problems`` says, for each CRL from that issuer that was
    handed in, why it could not be used (empty when there was none)."""

    def __init__(
        self,
        message: str,
        *,
        index: int,
        fingerprint_s256: str,
        serial_number: int,
        problems: tuple[str, ...],
    ) -> None:
        super().__init__(message, index=index, fingerprint_s256=fingerprint_s256)
        self.serial_number = serial_number
        self.problems = problems


class CertificateKeyMismatchError(CertificateError):
    """The leaf certifies another key than the registered one: ``kid`` is the registered key's
    RFC 7638 thumbprint, ``certified_kid`` the leaf key's."""

    def __init__(self, message: str, *, kid: str, certified_kid: str) -> None:
        super().__init__(message, index=0)
        self.kid = kid
        self.certified_kid = certified_kid
