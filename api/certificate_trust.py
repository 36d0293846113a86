"""The trust configuration for X.509 chains presented at key registration, from settings.

The anchors are a PEM bundle; CRLs are every *.crl / *.pem file of a directory (PEM or DER),
read at start — nothing is ever fetched, and with the default policy a chain whose revocation
status no CRL in hand covers is refused (hard fail).
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from api.settings import Settings
from signatures.registry_handlers import CertificateTrust

MAX_TRUST_FILE_BYTES = 4 * 1024 * 1024
MAX_CRL_FILES = 256
CRL_SUFFIXES = (".crl", ".pem", ".der")


class CertificateTrustError(Exception):
    """The configured anchors or CRLs cannot be read; `setting` names the variable."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


def _read(path: Path, setting: str) -> bytes:
    try:
        if path.stat().st_size > MAX_TRUST_FILE_BYTES:
            raise CertificateTrustError(
                f"{path} is larger than {MAX_TRUST_FILE_BYTES} bytes", setting=setting
            )
        return path.read_bytes()
    except OSError as exc:
        raise CertificateTrustError(
            f"cannot read {path}: {exc.strerror}", setting=setting
        ) from None


def _load_crl(data: bytes, path: Path) -> x509.CertificateRevocationList:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise CertificateTrustError(
            f"{path} is not an X.509 CRL", setting="PISHKHAN_CERTIFICATE_CRL_DIR"
        ) from None


def load_certificate_trust(settings: Settings) -> CertificateTrust | None:
    """None when no anchors are configured. Raises CertificateTrustError for an unreadable or
    empty bundle, a CRL that does not parse, or more than MAX_CRL_FILES CRLs."""
    if settings.certificate_trust_anchors is None:
        return None
    setting = "PISHKHAN_CERTIFICATE_TRUST_ANCHORS"
    data = _read(settings.certificate_trust_anchors, setting)
    try:
        anchors = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateTrustError("no PEM certificate in the bundle", setting=setting) from None
    crls: list[x509.CertificateRevocationList] = []
    if settings.certificate_crl_dir is not None:
        files = sorted(
            p for p in settings.certificate_crl_dir.iterdir() if p.suffix.lower() in CRL_SUFFIXES
        )
        if len(files) > MAX_CRL_FILES:
            raise CertificateTrustError(
                f"more than {MAX_CRL_FILES} CRL files", setting="PISHKHAN_CERTIFICATE_CRL_DIR"
            )
        crls = [_load_crl(_read(p, "PISHKHAN_CERTIFICATE_CRL_DIR"), p) for p in files]
    return CertificateTrust(trust_anchors=tuple(anchors), crls=tuple(crls))
