"""Trust anchors and CRLs for X.509 chains at key registration, read from settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from api.certificate_trust import CertificateTrustError, load_certificate_trust
from api.settings import Settings
from tests.unit.signatures.test_certificates import EC_PKI


def _settings(**values: object) -> Settings:
    return Settings.model_construct(**values)


def test_no_anchors_means_no_trust() -> None:
    assert load_certificate_trust(_settings()) is None


def test_anchors_and_crls_in_pem_and_der(tmp_path: Path) -> None:
    bundle = tmp_path / "anchors.pem"
    bundle.write_bytes(EC_PKI.root.public_bytes(Encoding.PEM))
    crls = tmp_path / "crls"
    crls.mkdir()
    (crls / "root.crl").write_bytes(EC_PKI.crl(of_root=True).public_bytes(Encoding.DER))
    (crls / "inter.pem").write_bytes(EC_PKI.crl().public_bytes(Encoding.PEM))
    (crls / "README").write_text("not a CRL, and not read")
    trust = load_certificate_trust(
        _settings(certificate_trust_anchors=bundle, certificate_crl_dir=crls)
    )
    assert trust is not None
    assert list(trust.trust_anchors) == [EC_PKI.root]
    assert {c.issuer for c in trust.crls} == {EC_PKI.root.subject, EC_PKI.inter.subject}


def test_a_bundle_without_certificates_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "anchors.pem"
    bundle.write_text("nothing here")
    with pytest.raises(CertificateTrustError) as caught:
        load_certificate_trust(_settings(certificate_trust_anchors=bundle))
    assert caught.value.setting == "PISHKHAN_CERTIFICATE_TRUST_ANCHORS"


def test_a_missing_bundle_and_a_broken_crl_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CertificateTrustError, match="cannot read"):
        load_certificate_trust(_settings(certificate_trust_anchors=tmp_path / "missing.pem"))
    bundle = tmp_path / "anchors.pem"
    bundle.write_bytes(EC_PKI.root.public_bytes(Encoding.PEM))
    (tmp_path / "bad.crl").write_bytes(b"\x30\x03garbage")
    with pytest.raises(CertificateTrustError) as caught:
        load_certificate_trust(
            _settings(certificate_trust_anchors=bundle, certificate_crl_dir=tmp_path)
        )
    assert caught.value.setting == "PISHKHAN_CERTIFICATE_CRL_DIR"
