"""X.509 certificate chains for keys registered with assurance ``certified`` (issue 3, item 4).

A signer may present a chain (DER, leaf first, as in a JWS ``x5c``) for the key it registers.
The chain is validated at an explicit instant ``at`` against configured trust anchors, with the
revocation data (CRLs) handed in by the caller: nothing is ever fetched (no AIA, CRL
distribution point or OCSP access), so validation is pure and repeatable years later.

Path building and RFC 5280 / CA/B Forum path validation are cryptography's
(``cryptography.x509.verification``, https://cryptography.io/en/latest/x509/verification/):
a client verifier (a signer is not a host name) built by ``PolicyBuilder().store(Store(...))
.time(at)``, with the WebPKI extension profiles relaxed only where a signing certificate
differs from a TLS client certificate (subjectAltName and extendedKeyUsage may be absent or say
anything). Around it we check what the verifier does not: the chain's order, the leaf's key
usage, signature algorithms per the policy, every certificate's validity at ``at`` (to name the
one at fault), the path length, the issuing CAs' keys and revocation. docs/SIGNATURES.md
("Certificates (optional)") gives the order of checks and the revocation semantics.

Pure code: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from itertools import pairwise

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import SignatureAlgorithmOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from signatures.crl import check_revocation, extension_value, fingerprint_s256, iso_utc
from signatures.errors import (
    CertificateAlgorithmError,
    CertificateFormatError,
    CertificateKeyMismatchError,
    CertificatePathError,
    CertificateUsageError,
    CertificateValidityError,
    JwkError,
    ValidationInputError,
)
from signatures.jwk import MAX_RSA_BITS, MIN_RSA_BITS, PublicJwk
from signatures.keys import AssuranceLevel, require_aware

# A path counts every certificate, leaf and trust anchor included: leaf, intermediates, root.
MIN_CHAIN_LENGTH = 2
DEFAULT_MAX_CHAIN_LENGTH = 5
MAX_CHAIN_LENGTH = 8
# Far above any real certificate (a JWS header holds at most 8 KiB of them anyway).
MAX_CERTIFICATE_BYTES = 16 * 1024
# Configuration, not signer input, but bounded all the same.
MAX_TRUST_ANCHORS = 256
MAX_CRLS = 64
# Curves an issuing CA's ECDSA key may use. cryptography's verifier also takes P-521; we do not.
ALLOWED_ISSUER_CURVES = frozenset({"secp256r1", "secp384r1"})
# A verifier message quotes at most this much, after dropping the certificate it names.
MAX_DETAIL_CHARS = 200
_VERIFIER_CERTIFICATE = re.compile(r"\s*\(encountered processing <Certificate\(.*\)>\)", re.DOTALL)


class KeyUsageBit(StrEnum):
    """keyUsage bits (RFC 5280 section 4.2.1.3) that let a certificate's key sign."""

    DIGITAL_SIGNATURE = "digital_signature"
    CONTENT_COMMITMENT = "content_commitment"  # formerly nonRepudiation


class CertificateSignatureAlgorithm(StrEnum):
    """Signature algorithms a certificate or CRL of the chain may be signed with.

    Never SHA-1, MD5 or SHA-224. No Ed25519: cryptography's verifier (WebPKI profile, 50.x)
    refuses Ed25519 CA keys, so such a chain could never be validated (an Ed25519 *leaf* key,
    signed by an RSA or ECDSA CA, is fine).
    """

    RSA_PKCS1_SHA256 = "rsa-pkcs1-sha256"
    RSA_PKCS1_SHA384 = "rsa-pkcs1-sha384"
    RSA_PKCS1_SHA512 = "rsa-pkcs1-sha512"
    RSA_PSS_SHA256 = "rsa-pss-sha256"
    RSA_PSS_SHA384 = "rsa-pss-sha384"
    RSA_PSS_SHA512 = "rsa-pss-sha512"
    ECDSA_SHA256 = "ecdsa-sha256"
    ECDSA_SHA384 = "ecdsa-sha384"
    ECDSA_SHA512 = "ecdsa-sha512"


_ALG = CertificateSignatureAlgorithm
_BY_OID: dict[x509.ObjectIdentifier, CertificateSignatureAlgorithm] = {
    SignatureAlgorithmOID.RSA_WITH_SHA256: _ALG.RSA_PKCS1_SHA256,
    SignatureAlgorithmOID.RSA_WITH_SHA384: _ALG.RSA_PKCS1_SHA384,
    SignatureAlgorithmOID.RSA_WITH_SHA512: _ALG.RSA_PKCS1_SHA512,
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: _ALG.ECDSA_SHA256,
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: _ALG.ECDSA_SHA384,
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: _ALG.ECDSA_SHA512,
}
_PSS_BY_HASH: dict[str, CertificateSignatureAlgorithm] = {
    "sha256": _ALG.RSA_PSS_SHA256,
    "sha384": _ALG.RSA_PSS_SHA384,
    "sha512": _ALG.RSA_PSS_SHA512,
}
# Readable names for refused algorithms that are met in practice; others are named by OID.
_REFUSED_NAMES = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "rsa-pkcs1-md5",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "rsa-pkcs1-sha1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-sha1",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "dsa-sha1",
    SignatureAlgorithmOID.ED25519: "ed25519",
}

Signed = x509.Certificate | x509.CertificateRevocationList


@dataclass(frozen=True, kw_only=True)
class CertificatePolicy:
    """What a certificate chain must satisfy.

    ``required_key_usage``: the leaf's keyUsage must assert **at least one** of these bits.
    ``max_chain_length`` counts the validated path, leaf and trust anchor included.
    Raises ValidationInputError for a length outside [MIN_CHAIN_LENGTH, MAX_CHAIN_LENGTH], an
    empty or foreign key usage or algorithm set, or a non-bool flag.
    """

    require_revocation_data: bool = True
    max_chain_length: int = DEFAULT_MAX_CHAIN_LENGTH
    required_key_usage: frozenset[KeyUsageBit] = frozenset(KeyUsageBit)
    allowed_signature_algorithms: frozenset[CertificateSignatureAlgorithm] = frozenset(_ALG)

    def __post_init__(self) -> None:
        if not isinstance(self.require_revocation_data, bool):
            raise ValidationInputError("must be a bool", field="require_revocation_data")
        length = self.max_chain_length
        if type(length) is not int or not MIN_CHAIN_LENGTH <= length <= MAX_CHAIN_LENGTH:
            message = f"must be an int in [{MIN_CHAIN_LENGTH}, {MAX_CHAIN_LENGTH}]"
            raise ValidationInputError(message, field="max_chain_length")
        for name, value, kind in (
            ("required_key_usage", self.required_key_usage, KeyUsageBit),
            ("allowed_signature_algorithms", self.allowed_signature_algorithms, _ALG),
        ):
            if not isinstance(value, frozenset) or not value or not value <= frozenset(kind):
                message = f"must be a non-empty frozenset of {kind.__name__}"
                raise ValidationInputError(message, field=name)


DEFAULT_CERTIFICATE_POLICY = CertificatePolicy()


@dataclass(frozen=True, kw_only=True)
class CertifiedKey:
    """A key certified by a chain that validated at some instant.

    ``chain_fingerprints_s256`` are the base64url SHA-256 of each certificate of the validated
    path, leaf first and trust anchor last (the first is the JWS ``x5t#S256``).
    ``not_before``/``not_after`` bound the whole path (the latest notBefore, the earliest
    notAfter); like X.509 validity they are inclusive, so the registry's half-open key validity
    is ``[not_before, not_after + 1 s)``.
    """

    public_jwk: PublicJwk
    subject: x509.Name
    serial_number: int
    chain_fingerprints_s256: tuple[str, ...]
    not_before: datetime
    not_after: datetime

    @property
    def kid(self) -> str:
        return self.public_jwk.kid

    @property
    def assurance(self) -> AssuranceLevel:
        return AssuranceLevel.CERTIFIED


def _check_inputs(
    trust_anchors: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    policy: CertificatePolicy,
) -> None:
    if not isinstance(policy, CertificatePolicy):
        raise ValidationInputError("policy must be a CertificatePolicy", field="policy")
    if not 0 < len(trust_anchors) <= MAX_TRUST_ANCHORS or not all(
        isinstance(anchor, x509.Certificate) for anchor in trust_anchors
    ):
        message = f"1 to MAX_TRUST_ANCHORS={MAX_TRUST_ANCHORS} certificates are needed"
        raise ValidationInputError(message, field="trust_anchors")
    if len(crls) > MAX_CRLS or not all(
        isinstance(crl, x509.CertificateRevocationList) for crl in crls
    ):
        message = f"at most MAX_CRLS={MAX_CRLS} parsed CRLs are accepted"
        raise ValidationInputError(message, field="crls")


def _parse_chain(chain: Sequence[bytes], policy: CertificatePolicy) -> list[x509.Certificate]:
    """The presented certificates, each checked to be issued by the next one."""
    if isinstance(chain, bytes | str) or not isinstance(chain, Sequence):
        raise ValidationInputError("chain must be a sequence of DER certificates", field="chain")
    if not chain:
        raise CertificateFormatError("the chain holds no certificate")
    if len(chain) > policy.max_chain_length:
        message = f"{len(chain)} certificates, more than max_chain_length={policy.max_chain_length}"
        raise CertificatePathError(message, reason="too_long")
    certificates: list[x509.Certificate] = []
    for index, der in enumerate(chain):
        if not isinstance(der, bytes) or len(der) > MAX_CERTIFICATE_BYTES:
            message = f"certificate {index} is not bytes of at most {MAX_CERTIFICATE_BYTES}"
            raise CertificateFormatError(message, index=index)
        try:
            certificate = x509.load_der_x509_certificate(der)
            certificate.extensions  # noqa: B018 -- parsed now, so a bad extension fails here
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            message = f"certificate {index} is not a DER X.509 certificate"
            raise CertificateFormatError(message, index=index) from None
        certificates.append(certificate)
    for index, (child, parent) in enumerate(pairwise(certificates)):
        if child.issuer != parent.subject:
            message = f"certificate {index} is not issued by certificate {index + 1}: leaf first"
            fingerprint = fingerprint_s256(child)
            raise CertificatePathError(
                message, reason="order", index=index, fingerprint_s256=fingerprint
            )
    return certificates


def _usage_problem(leaf: x509.Certificate, policy: CertificatePolicy) -> tuple[str, str] | None:
    """(rule, message) when the leaf may not sign: a CA, or the wrong key usage."""
    constraints = extension_value(leaf.extensions, x509.BasicConstraints)
    usage = extension_value(leaf.extensions, x509.KeyUsage)
    if constraints is not None and constraints.ca:
        return "ca", "the leaf is a CA certificate (basicConstraints cA)"
    if usage is None:
        return "no_key_usage", "the leaf has no keyUsage extension"
    if usage.key_cert_sign:
        return "key_cert_sign", "the leaf asserts keyUsage keyCertSign"
    asserted = {
        KeyUsageBit.DIGITAL_SIGNATURE: usage.digital_signature,
        KeyUsageBit.CONTENT_COMMITMENT: usage.content_commitment,
    }
    if any(asserted[bit] for bit in policy.required_key_usage):
        return None
    wanted = sorted(bit.value for bit in policy.required_key_usage)
    return "key_usage", f"the leaf's keyUsage asserts none of {wanted}"


def _check_leaf(leaf: x509.Certificate, policy: CertificatePolicy) -> PublicJwk:
    """The leaf's key as a JWK, once the leaf is shown fit to sign."""
    fingerprint = fingerprint_s256(leaf)
    problem = _usage_problem(leaf, policy)
    if problem is not None:
        rule, message = problem
        raise CertificateUsageError(message, rule=rule, index=0, fingerprint_s256=fingerprint)
    try:
        key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm):
        message = "the leaf's public key cannot be read"
        raise CertificateFormatError(message, index=0, fingerprint_s256=fingerprint) from None
    if not isinstance(key, Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        message = f"the leaf's {type(key).__name__} cannot sign transactions"
        raise JwkError(message, member="kty", rule="unsupported kty")
    return PublicJwk.from_public_key(key)


def _algorithm(signed: Signed) -> CertificateSignatureAlgorithm | None:
    oid = signed.signature_algorithm_oid
    if oid != SignatureAlgorithmOID.RSASSA_PSS:
        return _BY_OID.get(oid)
    try:
        digest = signed.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    return None if digest is None else _PSS_BY_HASH.get(digest.name)


def _algorithm_name(signed: Signed) -> str:
    algorithm = _algorithm(signed)
    if algorithm is not None:
        return algorithm.value
    oid = signed.signature_algorithm_oid
    return _REFUSED_NAMES.get(oid, oid.dotted_string)


def _check_signature_algorithms(
    certificates: Sequence[x509.Certificate], policy: CertificatePolicy, anchors: frozenset[str]
) -> None:
    """Each certificate but a trust anchor (whose self-signature proves nothing) is signed with
    an algorithm the policy allows."""
    for index, certificate in enumerate(certificates):
        fingerprint = fingerprint_s256(certificate)
        if fingerprint in anchors or _algorithm(certificate) in policy.allowed_signature_algorithms:
            continue
        name = _algorithm_name(certificate)
        raise CertificateAlgorithmError(
            f"certificate {index} is signed with {name}, which the policy refuses",
            algorithm=name,
            index=index,
            fingerprint_s256=fingerprint,
        )


def _crl_algorithm_problem(
    crl: x509.CertificateRevocationList, policy: CertificatePolicy
) -> str | None:
    if _algorithm(crl) in policy.allowed_signature_algorithms:
        return None
    return f"signed with {_algorithm_name(crl)}, which the policy refuses"


def _check_issuer_key(issuer: x509.Certificate, *, index: int) -> None:
    """The key of the CA at ``index`` is of a type, curve and size we accept."""
    key = issuer.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            return
        name = f"rsa-{key.key_size}"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name in ALLOWED_ISSUER_CURVES:
            return
        name = f"ecdsa-{key.curve.name}"
    else:
        name = type(key).__name__
    raise CertificateAlgorithmError(
        f"the key of CA certificate {index} ({name}) is refused",
        algorithm=name,
        index=index,
        fingerprint_s256=fingerprint_s256(issuer),
    )


def _check_validity(certificates: Sequence[x509.Certificate], at: datetime) -> None:
    """``at`` is within every certificate's validity (RFC 5280: both bounds inclusive)."""
    for index, certificate in enumerate(certificates):
        not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        if not_before <= at <= not_after:
            continue
        reason = "not_yet_valid" if at < not_before else "expired"
        raise CertificateValidityError(
            f"certificate {index} is {reason.replace('_', ' ')} at {iso_utc(at)}",
            reason=reason,
            index=index,
            fingerprint_s256=fingerprint_s256(certificate),
            not_before=iso_utc(not_before),
            not_after=iso_utc(not_after),
            at=iso_utc(at),
        )


def _build_path(
    certificates: list[x509.Certificate], anchors: Sequence[x509.Certificate], at: datetime
) -> list[x509.Certificate]:
    """cryptography's path building and validation, as a client verifier at ``at``."""
    any_eku = (x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(*any_eku)
    ee_policy = ee_policy.may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(*any_eku)
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(at)
        .max_chain_depth(MAX_CHAIN_LENGTH - MIN_CHAIN_LENGTH)  # ours is checked on the path
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(certificates[0], certificates[1:]).chain)
    except (VerificationError, x509.UnsupportedGeneralNameType) as error:
        detail = _VERIFIER_CERTIFICATE.sub("", str(error))[:MAX_DETAIL_CHARS]
        message = f"no valid path to a trust anchor: {detail}"
        raise CertificatePathError(message, reason="no_path") from None


def _check_path(
    path: list[x509.Certificate], policy: CertificatePolicy, at: datetime, anchors: frozenset[str]
) -> None:
    if len(path) > policy.max_chain_length:
        message = f"the path has {len(path)} certificates, more than {policy.max_chain_length}"
        raise CertificatePathError(message, reason="too_long")
    _check_validity(path, at)
    _check_signature_algorithms(path, policy, anchors)
    for index in range(1, len(path)):
        _check_issuer_key(path[index], index=index)


# --- the public API ------------------------------------------------------------------------------


def _verify(
    chain: Sequence[bytes],
    *,
    expected: PublicJwk | None,
    trust_anchors: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    at: datetime,
    policy: CertificatePolicy,
) -> CertifiedKey:
    at = require_aware(at, field="at").astimezone(UTC)
    _check_inputs(trust_anchors, crls, policy)
    certificates = _parse_chain(chain, policy)
    jwk = _check_leaf(certificates[0], policy)
    if expected is not None and jwk.kid != expected.kid:
        raise CertificateKeyMismatchError(
            "the leaf certifies another key than the registered one",
            kid=expected.kid,
            certified_kid=jwk.kid,
        )
    anchors = frozenset(fingerprint_s256(anchor) for anchor in trust_anchors)
    _check_signature_algorithms(certificates, policy, anchors)
    _check_validity(certificates, at)
    path = _build_path(certificates, trust_anchors, at)
    _check_path(path, policy, at, anchors)
    check_revocation(
        path,
        crls,
        at=at,
        require_revocation_data=policy.require_revocation_data,
        algorithm_problem=lambda crl: _crl_algorithm_problem(crl, policy),
    )
    return CertifiedKey(
        public_jwk=jwk,
        subject=path[0].subject,
        serial_number=path[0].serial_number,
        chain_fingerprints_s256=tuple(fingerprint_s256(certificate) for certificate in path),
        not_before=max(certificate.not_valid_before_utc for certificate in path),
        not_after=min(certificate.not_valid_after_utc for certificate in path),
    )


def verify_certificate_chain(
    chain: Sequence[bytes],
    *,
    trust_anchors: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    at: datetime,
    policy: CertificatePolicy = DEFAULT_CERTIFICATE_POLICY,
) -> CertifiedKey:
    """Validate chain (DER, leaf first, as in a JWS ``x5c``; the root may be left out) at
    ``at`` against trust_anchors, with crls as the only revocation data, and return the key it
    certifies.

    Raises NaiveDatetimeError for a naive ``at``; ValidationInputError for a malformed policy,
    trust anchors or CRLs; CertificateFormatError, CertificatePathError (order, too_long,
    no_path), CertificateValidityError, CertificateUsageError, CertificateAlgorithmError,
    CertificateRevokedError, RevocationUnavailableError; JwkError when the leaf's key is not
    one a transaction may be signed with (docs/JWS.md section 5).
    """
    return _verify(
        chain, expected=None, trust_anchors=trust_anchors, crls=crls, at=at, policy=policy
    )


def verify_certificate_for_jwk(
    chain: Sequence[bytes],
    *,
    jwk: PublicJwk,
    trust_anchors: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    at: datetime,
    policy: CertificatePolicy = DEFAULT_CERTIFICATE_POLICY,
) -> CertifiedKey:
    """As verify_certificate_chain, for the registered key ``jwk``: the leaf must certify that
    very key (same RFC 7638 thumbprint), checked before any signature.

    Raises CertificateKeyMismatchError when it does not, and whatever verify_certificate_chain
    raises.
    """
    if not isinstance(jwk, PublicJwk):
        raise ValidationInputError("jwk must be a PublicJwk", field="jwk")
    return _verify(
        chain, expected=jwk, trust_anchors=trust_anchors, crls=crls, at=at, policy=policy
    )
