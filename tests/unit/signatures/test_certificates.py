"""signatures.certificates and signatures.crl: X.509 chains for certified keys, at a point in time.

Each test builds on CA hierarchies made here with cryptography, once for the module:
an ECDSA one (P-384 root -> P-256 intermediate) and an RSA one (PKCS #1 root -> RSA-PSS signed
intermediate), with Ed25519, P-256 and RSA-2048 leaves. Every failure is a named test.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from signatures.certificates import (
    DEFAULT_CERTIFICATE_POLICY,
    DEFAULT_MAX_CHAIN_LENGTH,
    MAX_CERTIFICATE_BYTES,
    MAX_CHAIN_LENGTH,
    CertificatePolicy,
    CertificateSignatureAlgorithm,
    CertifiedKey,
    KeyUsageBit,
    verify_certificate_chain,
    verify_certificate_for_jwk,
)
from signatures.errors import (
    CertificateAlgorithmError,
    CertificateError,
    CertificateFormatError,
    CertificateKeyMismatchError,
    CertificatePathError,
    CertificateRevokedError,
    CertificateUsageError,
    CertificateValidityError,
    JwkError,
    NaiveDatetimeError,
    RevocationUnavailableError,
    ValidationInputError,
)
from signatures.jwk import PublicJwk, b64url_encode
from signatures.jws import PrivateKey, sign_detached, verify_detached
from signatures.keys import AssuranceLevel

CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | Ed25519PrivateKey
Digest = hashes.SHA256 | hashes.SHA384 | hashes.SHA512

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
YEAR = 365 * DAY
AT = T0 + 30 * DAY  # the validation time of most tests
LEAF_NOT_AFTER = T0 + 2 * YEAR
SUBJECT_ID = "ir-nid:0499370899"  # personal data: never in an error

SIGNING = {"digital_signature": True, "content_commitment": True}
NO_REVOCATION = CertificatePolicy(require_revocation_data=False)

ROOT_KEY = ec.generate_private_key(ec.SECP384R1())
INTER_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_ROOT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_INTER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
LEAF_KEYS: dict[str, PrivateKey] = {
    "ed25519": Ed25519PrivateKey.generate(),
    "p256": ec.generate_private_key(ec.SECP256R1()),
    "rsa2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
LEAF_KEY = LEAF_KEYS["p256"]
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pishkhan test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, ca: bool, **bits: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment")
    flags = {name: bits.get(name, False) for name in names}
    return x509.KeyUsage(
        **flags,
        key_agreement=False,
        key_cert_sign=ca or bits.get("key_cert_sign", False),
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _digest(issuer_key: CaKey, digest: Digest | None) -> Digest | None:
    """Ed25519 signs without a separate hash; the others with SHA-256 unless told."""
    return None if isinstance(issuer_key, Ed25519PrivateKey) else digest or hashes.SHA256()


def issue(
    public_key: object,
    *,
    subject: str,
    issuer: str,
    issuer_key: CaKey,
    ca: bool = False,
    not_before: datetime = T0,
    not_after: datetime = LEAF_NOT_AFTER,
    usage: dict[str, bool] | None = None,
    digest: Digest | None = None,
    pss: bool = False,
    path_length: int | None = None,
) -> x509.Certificate:
    """A certificate of the shape real signing PKIs issue (AKI, SKI, critical constraints)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if usage is not None or ca:
        builder = builder.add_extension(_key_usage(ca=ca, **(usage or {})), critical=True)
    if pss:
        assert isinstance(issuer_key, rsa.RSAPrivateKey)
        pss_padding = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return builder.sign(issuer_key, hashes.SHA256(), rsa_padding=pss_padding)
    return builder.sign(issuer_key, _digest(issuer_key, digest))


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


@dataclass(frozen=True)
class Pki:
    root_key: CaKey
    root: x509.Certificate
    inter_key: CaKey
    inter: x509.Certificate

    def leaf(self, key: PrivateKey = LEAF_KEY, **kwargs: object) -> x509.Certificate:
        kwargs.setdefault("usage", SIGNING)
        return issue(
            key.public_key(),
            subject=SUBJECT_ID,
            issuer="Intermediate CA",
            issuer_key=self.inter_key,
            **kwargs,  # type: ignore[arg-type]
        )

    def crl(self, *, of_root: bool = False, **kwargs: object) -> x509.CertificateRevocationList:
        key, name = (self.root_key, "Root CA") if of_root else (self.inter_key, "Intermediate CA")
        return make_crl(key, name, **kwargs)  # type: ignore[arg-type]

    def crls(self) -> list[x509.CertificateRevocationList]:
        """The current CRLs of both CAs, revoking nothing."""
        return [self.crl(of_root=True), self.crl()]


def make_crl(
    issuer_key: CaKey,
    issuer: str,
    *,
    this_update: datetime = AT - DAY,
    next_update: datetime = AT + 6 * DAY,
    revoked: Sequence[tuple[int, datetime, x509.ReasonFlags | None]] = (),
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name(issuer))
        .last_update(this_update)
        .next_update(next_update)
    )
    for serial, when, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(issuer_key, _digest(issuer_key, None))


def make_pki(
    root_key: CaKey, inter_key: CaKey, *, digest: Digest | None = None, pss: bool = False
) -> Pki:
    root = issue(
        root_key.public_key(),
        subject="Root CA",
        issuer="Root CA",
        issuer_key=root_key,
        ca=True,
        not_before=T0 - YEAR,
        not_after=T0 + 10 * YEAR,
        digest=digest,
    )
    inter = issue(
        inter_key.public_key(),
        subject="Intermediate CA",
        issuer="Root CA",
        issuer_key=root_key,
        ca=True,
        not_before=T0 - YEAR,
        not_after=T0 + 5 * YEAR,
        digest=digest,
        pss=pss,
    )
    return Pki(root_key, root, inter_key, inter)


EC_PKI = make_pki(ROOT_KEY, INTER_KEY, digest=hashes.SHA384())
RSA_PKI = make_pki(RSA_ROOT_KEY, RSA_INTER_KEY, pss=True)
EC_LEAF = EC_PKI.leaf()


def verify(
    chain: Sequence[x509.Certificate],
    *,
    pki: Pki = EC_PKI,
    crls: Sequence[x509.CertificateRevocationList] | None = None,
    at: datetime = AT,
    policy: CertificatePolicy = DEFAULT_CERTIFICATE_POLICY,
    anchors: Sequence[x509.Certificate] | None = None,
) -> CertifiedKey:
    return verify_certificate_chain(
        [der(certificate) for certificate in chain],
        trust_anchors=[pki.root] if anchors is None else anchors,
        crls=pki.crls() if crls is None else crls,
        at=at,
        policy=policy,
    )


# --- valid chains --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(LEAF_KEYS))
@pytest.mark.parametrize("pki", [EC_PKI, RSA_PKI], ids=["ecdsa-ca", "rsa-pss-ca"])
def test_valid_chain_certifies_the_leaf_key_as_a_jwk(kind: str, pki: Pki) -> None:
    key = LEAF_KEYS[kind]
    leaf = pki.leaf(key)
    certified = verify_certificate_chain(
        [der(leaf), der(pki.inter)], trust_anchors=[pki.root], crls=pki.crls(), at=AT
    )
    jwk = PublicJwk.from_public_key(key.public_key())
    assert certified.public_jwk == jwk
    assert certified.kid == jwk.kid
    assert certified.assurance is AssuranceLevel.CERTIFIED
    assert certified.subject == leaf.subject
    assert certified.serial_number == leaf.serial_number


def test_certified_key_names_the_path_and_its_common_validity() -> None:
    certified = verify_certificate_chain(
        [der(EC_LEAF), der(EC_PKI.inter)], trust_anchors=[EC_PKI.root], crls=EC_PKI.crls(), at=AT
    )
    path = (EC_LEAF, EC_PKI.inter, EC_PKI.root)
    fingerprints = tuple(b64url_encode(c.fingerprint(hashes.SHA256())) for c in path)
    assert certified.chain_fingerprints_s256 == fingerprints
    assert certified.not_before == T0  # the leaf's, the latest
    assert certified.not_after == LEAF_NOT_AFTER  # the leaf's, the earliest


def test_chain_that_includes_its_root_validates() -> None:
    certified = verify([EC_LEAF, EC_PKI.inter, EC_PKI.root])
    assert len(certified.chain_fingerprints_s256) == 3


def test_validity_bounds_are_inclusive_as_in_rfc_5280() -> None:
    crls = [EC_PKI.crl(of_root=True, this_update=T0), EC_PKI.crl(this_update=T0)]
    verify([EC_LEAF, EC_PKI.inter], at=T0, crls=crls)  # at == the leaf's notBefore


def test_at_in_another_time_zone_is_the_same_instant() -> None:
    tehran = AT.astimezone(ZoneInfo("Asia/Tehran"))
    verify([EC_LEAF, EC_PKI.inter], at=tehran)


# --- path failures -------------------------------------------------------------------------------


def test_untrusted_root_is_refused() -> None:
    other = make_pki(ec.generate_private_key(ec.SECP256R1()), INTER_KEY)
    with pytest.raises(CertificatePathError) as caught:
        verify([EC_LEAF, EC_PKI.inter], anchors=[other.root])
    assert caught.value.reason == "no_path"


def test_missing_intermediate_is_refused() -> None:
    with pytest.raises(CertificatePathError) as caught:
        verify([EC_LEAF])
    assert caught.value.reason == "no_path"


def test_wrong_order_is_refused() -> None:
    with pytest.raises(CertificatePathError) as caught:
        verify([EC_PKI.inter, EC_LEAF])
    assert (caught.value.reason, caught.value.index) == ("order", 0)


def test_certificate_signed_by_another_key_under_the_same_name_is_refused() -> None:
    forged = make_pki(ROOT_KEY, OTHER_KEY).leaf()  # names "Intermediate CA", signed by OTHER_KEY
    with pytest.raises(CertificatePathError) as caught:
        verify([forged, EC_PKI.inter])
    assert caught.value.reason == "no_path"


def test_expired_leaf_is_refused() -> None:
    leaf = EC_PKI.leaf(not_before=T0 - YEAR, not_after=AT - DAY)
    with pytest.raises(CertificateValidityError) as caught:
        verify([leaf, EC_PKI.inter])
    error = caught.value
    assert (error.reason, error.index) == ("expired", 0)
    assert error.not_after == "2025-01-30T00:00:00Z"
    assert error.at == "2025-01-31T00:00:00Z"


def test_expired_intermediate_is_refused() -> None:
    inter = issue(
        INTER_KEY.public_key(),
        subject="Intermediate CA",
        issuer="Root CA",
        issuer_key=ROOT_KEY,
        ca=True,
        not_before=T0 - YEAR,
        not_after=AT - DAY,
        digest=hashes.SHA384(),
    )
    with pytest.raises(CertificateValidityError) as caught:
        verify([EC_LEAF, inter])
    assert (caught.value.reason, caught.value.index) == ("expired", 1)


def test_not_yet_valid_leaf_is_refused() -> None:
    with pytest.raises(CertificateValidityError) as caught:
        verify([EC_LEAF, EC_PKI.inter], at=T0 - DAY)
    assert (caught.value.reason, caught.value.index) == ("not_yet_valid", 0)


def _deep_chain(depth: int) -> list[x509.Certificate]:
    """leaf, then `depth` intermediates under EC_PKI.root (i1 is issued by the root)."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(depth)]
    chain: list[x509.Certificate] = []
    issuer_key: CaKey = ROOT_KEY
    issuer = "Root CA"
    for level, key in enumerate(keys, start=1):
        chain.insert(
            0,
            issue(
                key.public_key(),
                subject=f"CA {level}",
                issuer=issuer,
                issuer_key=issuer_key,
                ca=True,
                not_before=T0 - YEAR,
                not_after=T0 + 5 * YEAR,
                digest=hashes.SHA384(),
            ),
        )
        issuer_key, issuer = key, f"CA {level}"
    leaf = issue(
        LEAF_KEY.public_key(),
        subject=SUBJECT_ID,
        issuer=issuer,
        issuer_key=issuer_key,
        usage=SIGNING,
    )
    return [leaf, *chain]


def test_chain_longer_than_the_limit_is_refused() -> None:
    chain = _deep_chain(DEFAULT_MAX_CHAIN_LENGTH - 1)  # path: leaf, 4 CAs, root = 6
    with pytest.raises(CertificatePathError) as caught:
        verify(chain, policy=NO_REVOCATION)
    assert caught.value.reason == "too_long"
    verify(chain, policy=CertificatePolicy(require_revocation_data=False, max_chain_length=6))


def test_presented_chain_longer_than_the_limit_is_refused_before_parsing() -> None:
    policy = CertificatePolicy(max_chain_length=2)
    with pytest.raises(CertificatePathError) as caught:
        verify_certificate_chain(
            [b"not even DER"] * 3, trust_anchors=[EC_PKI.root], crls=[], at=AT, policy=policy
        )
    assert caught.value.reason == "too_long"


def test_path_length_limit_counts_the_trust_anchor() -> None:
    with pytest.raises(CertificatePathError) as caught:
        verify([EC_LEAF, EC_PKI.inter], policy=CertificatePolicy(max_chain_length=2))
    assert caught.value.reason == "too_long"


# --- the leaf: usage and key ---------------------------------------------------------------------


def test_key_usage_without_digital_signature_or_non_repudiation_is_refused() -> None:
    leaf = EC_PKI.leaf(usage={"key_encipherment": True})
    with pytest.raises(CertificateUsageError) as caught:
        verify([leaf, EC_PKI.inter])
    assert (caught.value.rule, caught.value.index) == ("key_usage", 0)


@pytest.mark.parametrize("bit", ["digital_signature", "content_commitment"])
def test_either_signing_bit_suffices_by_default(bit: str) -> None:
    verify([EC_PKI.leaf(usage={bit: True}), EC_PKI.inter])


def test_policy_may_require_content_commitment_only() -> None:
    policy = CertificatePolicy(required_key_usage=frozenset({KeyUsageBit.CONTENT_COMMITMENT}))
    with pytest.raises(CertificateUsageError):
        verify([EC_PKI.leaf(usage={"digital_signature": True}), EC_PKI.inter], policy=policy)
    verify([EC_PKI.leaf(usage={"content_commitment": True}), EC_PKI.inter], policy=policy)


def test_leaf_without_key_usage_is_refused() -> None:
    leaf = EC_PKI.leaf(usage=None)
    with pytest.raises(CertificateUsageError) as caught:
        verify([leaf, EC_PKI.inter])
    assert caught.value.rule == "no_key_usage"


def test_leaf_that_is_a_ca_is_refused() -> None:
    leaf = EC_PKI.leaf(ca=True)
    with pytest.raises(CertificateUsageError) as caught:
        verify([leaf, EC_PKI.inter])
    assert caught.value.rule == "ca"


def test_leaf_asserting_key_cert_sign_is_refused() -> None:
    leaf = EC_PKI.leaf(usage={"digital_signature": True, "key_cert_sign": True})
    with pytest.raises(CertificateUsageError) as caught:
        verify([leaf, EC_PKI.inter])
    assert caught.value.rule == "key_cert_sign"


def test_leaf_key_other_than_the_registered_jwk_is_refused() -> None:
    registered = PublicJwk.from_public_key(OTHER_KEY.public_key())
    with pytest.raises(CertificateKeyMismatchError) as caught:
        verify_certificate_for_jwk(
            [der(EC_LEAF), der(EC_PKI.inter)],
            jwk=registered,
            trust_anchors=[EC_PKI.root],
            crls=EC_PKI.crls(),
            at=AT,
        )
    assert caught.value.kid == registered.kid
    assert caught.value.certified_kid == PublicJwk.from_public_key(LEAF_KEY.public_key()).kid


def test_leaf_key_equal_to_the_registered_jwk_is_certified() -> None:
    registered = PublicJwk.from_public_key(LEAF_KEY.public_key())
    certified = verify_certificate_for_jwk(
        [der(EC_LEAF), der(EC_PKI.inter)],
        jwk=registered,
        trust_anchors=[EC_PKI.root],
        crls=EC_PKI.crls(),
        at=AT,
    )
    assert certified.public_jwk == registered


def test_leaf_key_outside_the_jwk_profile_is_refused() -> None:
    leaf = EC_PKI.leaf(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(JwkError):
        verify([leaf, EC_PKI.inter])


# --- algorithms ----------------------------------------------------------------------------------


def _der_tlv(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _der_children(encoded: bytes) -> list[bytes]:
    """The TLVs inside a DER SEQUENCE, each whole."""

    def length_at(offset: int) -> tuple[int, int]:
        first = encoded[offset + 1]
        if first < 0x80:
            return 2, first
        count = first & 0x7F
        return 2 + count, int.from_bytes(encoded[offset + 2 : offset + 2 + count], "big")

    header, _ = length_at(0)
    children, offset = [], header
    while offset < len(encoded):
        head, size = length_at(offset)
        children.append(encoded[offset : offset + head + size])
        offset += head + size
    return children


ECDSA_WITH_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


def _resign_with_sha1(
    certificate: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey
) -> bytes:
    """The certificate re-signed with ecdsa-with-SHA1, which cryptography no longer issues."""
    tbs_fields = _der_children(certificate.tbs_certificate_bytes)
    tbs_fields[2] = ECDSA_WITH_SHA1  # TBSCertificate.signature (version, serial, signature, ...)
    tbs = _der_tlv(0x30, b"".join(tbs_fields))
    signature = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA1()))  # refused: the point of the test
    return _der_tlv(0x30, tbs + ECDSA_WITH_SHA1 + _der_tlv(0x03, b"\x00" + signature))


def test_sha1_signed_certificate_is_refused() -> None:
    sha1_leaf = _resign_with_sha1(EC_LEAF, INTER_KEY)
    assert isinstance(
        x509.load_der_x509_certificate(sha1_leaf).signature_hash_algorithm, hashes.SHA1
    )
    with pytest.raises(CertificateAlgorithmError) as caught:
        verify_certificate_chain(
            [sha1_leaf, der(EC_PKI.inter)], trust_anchors=[EC_PKI.root], crls=EC_PKI.crls(), at=AT
        )
    assert (caught.value.algorithm, caught.value.index) == ("ecdsa-sha1", 0)


def test_algorithm_outside_the_policy_is_refused() -> None:
    policy = CertificatePolicy(
        allowed_signature_algorithms=frozenset({CertificateSignatureAlgorithm.ECDSA_SHA256})
    )
    with pytest.raises(CertificateAlgorithmError) as caught:
        verify([EC_LEAF, EC_PKI.inter], policy=policy)  # the intermediate is ECDSA-SHA384
    assert (caught.value.algorithm, caught.value.index) == ("ecdsa-sha384", 1)


def test_ed25519_signed_chain_is_refused_as_cryptography_cannot_validate_it() -> None:
    pki = make_pki(ROOT_KEY, Ed25519PrivateKey.generate(), digest=hashes.SHA384())
    with pytest.raises(CertificateAlgorithmError) as caught:
        verify([pki.leaf(), pki.inter], pki=pki)
    assert (caught.value.algorithm, caught.value.index) == ("ed25519", 0)


def test_p521_issuing_ca_is_refused_though_cryptography_accepts_it() -> None:
    pki = make_pki(ROOT_KEY, ec.generate_private_key(ec.SECP521R1()), digest=hashes.SHA384())
    leaf = pki.leaf(digest=hashes.SHA512())
    with pytest.raises(CertificateAlgorithmError) as caught:
        verify([leaf, pki.inter], pki=pki, policy=NO_REVOCATION)
    assert (caught.value.algorithm, caught.value.index) == ("ecdsa-secp521r1", 1)


# --- revocation ----------------------------------------------------------------------------------


def _inter_crl(
    *revoked: tuple[int, datetime, x509.ReasonFlags | None],
    this_update: datetime = AT - DAY,
    next_update: datetime = AT + 6 * DAY,
) -> list[x509.CertificateRevocationList]:
    """The current root CRL, and an intermediate CRL with these entries and dates."""
    inter = make_crl(
        INTER_KEY,
        "Intermediate CA",
        this_update=this_update,
        next_update=next_update,
        revoked=revoked,
    )
    return [EC_PKI.crl(of_root=True), inter]


def test_leaf_revoked_before_at_is_refused() -> None:
    revoked = (EC_LEAF.serial_number, AT - 2 * DAY, x509.ReasonFlags.key_compromise)
    with pytest.raises(CertificateRevokedError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=_inter_crl(revoked))
    error = caught.value
    assert (error.index, error.serial_number) == (0, EC_LEAF.serial_number)
    assert (error.revoked_at, error.reason) == ("2025-01-29T00:00:00Z", "key_compromise")


def test_leaf_revoked_exactly_at_at_is_refused() -> None:
    crls = _inter_crl((EC_LEAF.serial_number, AT, None), this_update=AT)
    with pytest.raises(CertificateRevokedError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=crls)
    assert caught.value.reason is None


def test_leaf_revoked_after_at_is_valid_at_at() -> None:
    # A later CRL (issued a year on) lists a revocation that took effect after AT: at AT the
    # certificate was good, and the CRL that was current at AT covers AT.
    later = EC_PKI.crl(
        this_update=AT + YEAR,
        next_update=AT + YEAR + 7 * DAY,
        revoked=[(EC_LEAF.serial_number, AT + 100 * DAY, x509.ReasonFlags.key_compromise)],
    )
    verify([EC_LEAF, EC_PKI.inter], crls=[*EC_PKI.crls(), later])
    with pytest.raises(CertificateRevokedError):  # and at a time after the revocation, refused
        verify([EC_LEAF, EC_PKI.inter], crls=[*EC_PKI.crls(), later], at=AT + 200 * DAY)


def test_revocation_known_only_to_a_later_crl_is_refused() -> None:
    # The CRL current at AT was issued before the revocation; the next one lists it.
    later = EC_PKI.crl(
        this_update=AT + 3 * DAY,
        revoked=[(EC_LEAF.serial_number, AT - timedelta(hours=12), x509.ReasonFlags.superseded)],
    )
    with pytest.raises(CertificateRevokedError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=[*EC_PKI.crls(), later])
    assert caught.value.reason == "superseded"


def test_intermediate_revoked_is_refused() -> None:
    root_crl = EC_PKI.crl(
        of_root=True,
        revoked=[(EC_PKI.inter.serial_number, AT - YEAR / 2, x509.ReasonFlags.ca_compromise)],
    )
    with pytest.raises(CertificateRevokedError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=[root_crl, EC_PKI.crl()])
    assert (caught.value.index, caught.value.reason) == (1, "ca_compromise")


def test_revocation_beats_missing_revocation_data() -> None:
    root_crl = EC_PKI.crl(of_root=True, revoked=[(EC_PKI.inter.serial_number, AT - DAY, None)])
    with pytest.raises(CertificateRevokedError):
        verify([EC_LEAF, EC_PKI.inter], crls=[root_crl])  # the leaf's CRL is missing


def test_crl_signed_by_the_wrong_key_is_not_used() -> None:
    forged = make_crl(
        OTHER_KEY, "Intermediate CA", revoked=[(EC_LEAF.serial_number, AT - DAY, None)]
    )
    with pytest.raises(RevocationUnavailableError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=[EC_PKI.crl(of_root=True), forged])
    error = caught.value
    assert error.index == 0 and error.serial_number == EC_LEAF.serial_number
    assert error.problems == ("its signature does not verify with the issuing CA's key",)
    # Its "revocation" proves nothing: without a requirement for revocation data, it passes.
    verify([EC_LEAF, EC_PKI.inter], crls=[EC_PKI.crl(of_root=True), forged], policy=NO_REVOCATION)


def test_stale_crl_is_refused_when_revocation_data_is_required() -> None:
    stale = _inter_crl(this_update=AT - 10 * DAY, next_update=AT - DAY)
    with pytest.raises(RevocationUnavailableError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=stale)
    assert caught.value.problems == (
        "stale at 2025-01-31T00:00:00Z (nextUpdate 2025-01-30T00:00:00Z)",
    )


def test_crl_next_update_equal_to_at_is_stale() -> None:
    with pytest.raises(RevocationUnavailableError):
        verify([EC_LEAF, EC_PKI.inter], crls=_inter_crl(next_update=AT))


def test_crl_issued_after_at_does_not_cover_at() -> None:
    with pytest.raises(RevocationUnavailableError) as caught:
        verify(
            [EC_LEAF, EC_PKI.inter], crls=_inter_crl(this_update=AT + DAY, next_update=AT + 7 * DAY)
        )
    assert caught.value.problems[0].startswith("issued after")


def test_missing_crl_hard_fails_when_policy_requires_revocation_data() -> None:
    with pytest.raises(RevocationUnavailableError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=[EC_PKI.crl(of_root=True)])
    assert (caught.value.index, caught.value.problems) == (0, ())


def test_missing_intermediate_crl_hard_fails_too() -> None:
    with pytest.raises(RevocationUnavailableError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=[EC_PKI.crl()])
    assert caught.value.index == 1


def test_missing_crl_passes_when_policy_does_not_require_revocation_data() -> None:
    verify([EC_LEAF, EC_PKI.inter], crls=[], policy=NO_REVOCATION)


def test_certificate_hold_counts_only_while_the_crl_is_current() -> None:
    hold = (EC_LEAF.serial_number, AT - DAY, x509.ReasonFlags.certificate_hold)
    with pytest.raises(CertificateRevokedError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=_inter_crl(hold))
    assert caught.value.reason == "certificate_hold"
    stale = _inter_crl(hold, this_update=AT - 10 * DAY, next_update=AT - 5 * DAY)
    verify([EC_LEAF, EC_PKI.inter], crls=stale, policy=NO_REVOCATION)


def test_permanent_revocation_counts_even_from_a_stale_crl() -> None:
    revoked = (EC_LEAF.serial_number, AT - 20 * DAY, x509.ReasonFlags.key_compromise)
    stale = _inter_crl(revoked, this_update=AT - 10 * DAY, next_update=AT - 5 * DAY)
    with pytest.raises(CertificateRevokedError):
        verify([EC_LEAF, EC_PKI.inter], crls=stale, policy=NO_REVOCATION)


def test_delta_crl_is_not_used() -> None:
    delta = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name("Intermediate CA"))
        .last_update(AT - DAY)
        .next_update(AT + DAY)
        .add_extension(x509.DeltaCRLIndicator(1), critical=True)
        .sign(INTER_KEY, hashes.SHA256())
    )
    with pytest.raises(RevocationUnavailableError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=[EC_PKI.crl(of_root=True), delta])
    assert caught.value.problems == ("a delta CRL (only complete CRLs are used)",)


def test_crl_for_ca_certificates_only_does_not_cover_the_leaf() -> None:
    scope = x509.IssuingDistributionPoint(
        full_name=None,
        relative_name=None,
        only_contains_user_certs=False,
        only_contains_ca_certs=True,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name("Intermediate CA"))
        .last_update(AT - DAY)
        .next_update(AT + DAY)
        .add_extension(scope, critical=True)
        .sign(INTER_KEY, hashes.SHA256())
    )
    with pytest.raises(RevocationUnavailableError) as caught:
        verify([EC_LEAF, EC_PKI.inter], crls=[EC_PKI.crl(of_root=True), crl])
    assert "other kind of certificate" in caught.value.problems[0]


# --- the JWS x5c header --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(LEAF_KEYS))
def test_jws_with_x5c_verifies_and_its_chain_validates(kind: str) -> None:
    key = LEAF_KEYS[kind]
    leaf = EC_PKI.leaf(key)
    payload = b'{"type":"keys.register","nonce":"n"}'
    jws = sign_detached(payload, key, iat=int(AT.timestamp()), x5c=[der(leaf), der(EC_PKI.inter)])
    jwk = PublicJwk.from_public_key(key.public_key())
    header = verify_detached(jws, payload, jwk)
    certified = verify_certificate_for_jwk(
        header.x5c, jwk=jwk, trust_anchors=[EC_PKI.root], crls=EC_PKI.crls(), at=AT
    )
    assert certified.public_jwk == jwk
    assert header.x5t_s256 is not None
    assert certified.chain_fingerprints_s256[0] == b64url_encode(header.x5t_s256)


# --- inputs, limits, and what errors carry -------------------------------------------------------


def test_naive_at_is_refused() -> None:
    with pytest.raises(NaiveDatetimeError):
        verify([EC_LEAF, EC_PKI.inter], at=AT.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("max_chain_length", {"max_chain_length": 1}),
        ("max_chain_length", {"max_chain_length": MAX_CHAIN_LENGTH + 1}),
        ("max_chain_length", {"max_chain_length": True}),
        ("required_key_usage", {"required_key_usage": frozenset()}),
        ("required_key_usage", {"required_key_usage": frozenset({"key_encipherment"})}),
        ("allowed_signature_algorithms", {"allowed_signature_algorithms": frozenset({"rsa-sha1"})}),
        ("require_revocation_data", {"require_revocation_data": 1}),
    ],
)
def test_malformed_policy_is_refused(field: str, changes: dict[str, object]) -> None:
    with pytest.raises(ValidationInputError) as caught:
        replace(DEFAULT_CERTIFICATE_POLICY, **changes)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_trust_anchors_are_required() -> None:
    with pytest.raises(ValidationInputError) as caught:
        verify([EC_LEAF, EC_PKI.inter], anchors=[])
    assert caught.value.field == "trust_anchors"


@pytest.mark.parametrize(
    "chain", [[], [b"\x30\x03\x02\x01\x01"], [b"\x30" * (MAX_CERTIFICATE_BYTES + 1)], ["PEM?"]]
)
def test_malformed_chain_is_refused(chain: list[bytes]) -> None:
    with pytest.raises(CertificateFormatError):
        verify_certificate_chain(chain, trust_anchors=[EC_PKI.root], crls=[], at=AT)


def test_errors_never_carry_the_subject_name() -> None:
    failures: list[CertificateError] = []
    for chain in ([EC_LEAF], [EC_PKI.inter, EC_LEAF], [EC_PKI.leaf(ca=True), EC_PKI.inter]):
        with pytest.raises(CertificateError) as caught:
            verify(chain)
        failures.append(caught.value)
    for error in failures:
        assert SUBJECT_ID not in str(error)
        assert SUBJECT_ID not in repr(vars(error))


def test_pem_base64_is_not_der() -> None:
    text = base64.b64encode(der(EC_LEAF))
    with pytest.raises(CertificateFormatError):
        verify_certificate_chain([text], trust_anchors=[EC_PKI.root], crls=[], at=AT)
