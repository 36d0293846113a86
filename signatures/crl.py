"""Revocation of the certificates of a validated path, from CRLs handed in (RFC 5280 section 5).

Nothing is fetched: the caller hands in the CRLs, and this module decides, at an explicit
instant ``at``, which of them speak for a certificate and what they say then.

* A CRL is **usable** for a certificate when its issuer name is the certificate's issuer, the
  issuing CA may sign CRLs (keyUsage cRLSign), its signature algorithm is allowed and its
  signature verifies with the issuing CA's key, it is a complete CRL (no delta, no indirect or
  reason-partitioned CRL, no unknown critical extension), it has a nextUpdate after its
  thisUpdate, and its issuingDistributionPoint, if any, covers the certificate.
* A usable CRL **covers** ``at`` when ``thisUpdate <= at < nextUpdate``: it was the current CRL
  then.
* A usable CRL of **any** date that lists the certificate with a revocationDate at or before
  ``at`` proves it revoked at ``at`` (revocation is permanent); a revocationDate after ``at``
  leaves it valid at ``at``. A hold (certificateHold) is temporary and counts only from a CRL
  still current at ``at`` or issued after it. The invalidityDate extension is not used: like the
  key registry, we never backdate a revocation.

Pure code: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from signatures.errors import CertificateRevokedError, RevocationUnavailableError
from signatures.jwk import b64url_encode

E = TypeVar("E", bound=x509.ExtensionType)
Crl = x509.CertificateRevocationList


def extension_value(extensions: x509.Extensions, kind: type[E]) -> E | None:
    """The value of the extension of type kind, or None when there is none."""
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def fingerprint_s256(certificate: x509.Certificate) -> str:
    """base64url(SHA-256(DER)), as a JWS ``x5t#S256``."""
    return b64url_encode(certificate.fingerprint(hashes.SHA256()))


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a Z."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Revocation:
    """A CRL entry in force at the instant asked about: when, and why (RFC 5280 reason name)."""

    revoked_at: datetime
    reason: str | None


def _is_ca(certificate: x509.Certificate) -> bool:
    constraints = extension_value(certificate.extensions, x509.BasicConstraints)
    return constraints is not None and constraints.ca


def _scope_problem(crl: Crl, certificate: x509.Certificate) -> str | None:
    """Why crl's issuingDistributionPoint does not cover certificate; None when it does."""
    scope = extension_value(crl.extensions, x509.IssuingDistributionPoint)
    if scope is None:
        return None
    if scope.indirect_crl or scope.only_some_reasons or scope.only_contains_attribute_certs:
        return "a partial CRL (indirect, some reasons or attribute certificates only)"
    is_ca = _is_ca(certificate)
    if (scope.only_contains_user_certs and is_ca) or (scope.only_contains_ca_certs and not is_ca):
        return "a CRL for the other kind of certificate (CA or end entity)"
    if scope.full_name is None and scope.relative_name is None:
        return None
    wanted = (scope.full_name, scope.relative_name)
    points = extension_value(certificate.extensions, x509.CRLDistributionPoints) or ()
    if all((point.full_name, point.relative_name) != wanted for point in points):
        return "a CRL for another distribution point"
    return None


def crl_problem(crl: Crl, *, certificate: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """Why crl (named after certificate's issuer) is not usable for it, signature algorithm
    aside; None when it is usable."""
    usage = extension_value(issuer.extensions, x509.KeyUsage)
    if usage is not None and not usage.crl_sign:
        return "the issuing CA may not sign CRLs (no keyUsage cRLSign)"
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return "the issuing CA's key type cannot be checked"
    if not crl.is_signature_valid(key):
        return "its signature does not verify with the issuing CA's key"
    if extension_value(crl.extensions, x509.DeltaCRLIndicator) is not None:
        return "a delta CRL (only complete CRLs are used)"
    for extension in crl.extensions:
        if extension.critical and not isinstance(extension.value, x509.IssuingDistributionPoint):
            return f"unsupported critical extension {extension.oid.dotted_string}"
    if crl.next_update_utc is None or crl.next_update_utc <= crl.last_update_utc:
        return "no nextUpdate after its thisUpdate"
    return _scope_problem(crl, certificate)


def window_problem(crl: Crl, at: datetime) -> str | None:
    """Why crl was not the current CRL at ``at`` (thisUpdate <= at < nextUpdate), or None."""
    if at < crl.last_update_utc:
        return f"issued after {iso_utc(at)} (thisUpdate {iso_utc(crl.last_update_utc)})"
    if crl.next_update_utc is not None and crl.next_update_utc <= at:
        return f"stale at {iso_utc(at)} (nextUpdate {iso_utc(crl.next_update_utc)})"
    return None


def revocation_at(crl: Crl, certificate: x509.Certificate, at: datetime) -> Revocation | None:
    """The revocation crl shows in force for certificate at ``at``, or None (see the module
    docstring: revoked at or before ``at``; a hold only from a CRL not stale at ``at``)."""
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    if entry is None or entry.revocation_date_utc > at:
        return None
    flag = extension_value(entry.extensions, x509.CRLReason)
    reason = None if flag is None else flag.reason
    if reason is x509.ReasonFlags.remove_from_crl:
        return None
    next_update = crl.next_update_utc
    if reason is x509.ReasonFlags.certificate_hold and (next_update is None or next_update <= at):
        return None
    return Revocation(entry.revocation_date_utc, None if reason is None else reason.name)


def check_revocation(
    path: Sequence[x509.Certificate],
    crls: Sequence[Crl],
    *,
    at: datetime,
    require_revocation_data: bool,
    algorithm_problem: Callable[[Crl], str | None],
) -> None:
    """Check every certificate of path (leaf first) but its last, the trust anchor.

    First, no usable CRL from its issuer (the next certificate) shows it revoked at ``at``, for
    any certificate: a revocation is a definite answer and beats missing data. Then, when
    require_revocation_data, a usable CRL from its issuer covers ``at``. algorithm_problem says
    why a CRL's signature algorithm is refused (None when allowed).
    Raises CertificateRevokedError, then RevocationUnavailableError.
    """
    usable: list[list[Crl]] = []
    problems: list[tuple[str, ...]] = []
    for certificate, issuer in pairwise(path):
        found = [crl for crl in crls if crl.issuer == certificate.issuer]
        why = [
            (
                crl,
                algorithm_problem(crl) or crl_problem(crl, certificate=certificate, issuer=issuer),
            )
            for crl in found
        ]
        usable.append([crl for crl, problem in why if problem is None])
        problems.append(tuple(problem for _, problem in why if problem is not None))
    for index, certificate in enumerate(path[:-1]):
        for crl in usable[index]:
            revoked = revocation_at(crl, certificate, at)
            if revoked is not None:
                raise CertificateRevokedError(
                    f"certificate {index} is revoked since {iso_utc(revoked.revoked_at)}",
                    index=index,
                    fingerprint_s256=fingerprint_s256(certificate),
                    serial_number=certificate.serial_number,
                    revoked_at=iso_utc(revoked.revoked_at),
                    reason=revoked.reason,
                )
    if not require_revocation_data:
        return
    for index, certificate in enumerate(path[:-1]):
        windows = [window_problem(crl, at) for crl in usable[index]]
        if None not in windows:
            raise RevocationUnavailableError(
                f"no usable CRL from its issuer covers certificate {index} at {iso_utc(at)}",
                index=index,
                fingerprint_s256=fingerprint_s256(certificate),
                serial_number=certificate.serial_number,
                problems=problems[index] + tuple(w for w in windows if w is not None),
            )
