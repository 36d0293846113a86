"""Public JSON Web Keys (RFC 7517/7518/8037) for signers, and their RFC 7638 thumbprints.

A PublicJwk is always valid: construction validates, whichever way it happens. Only three key
types exist here, each pinned to one JWS algorithm so that no header can choose another:

* OKP / Ed25519 -> EdDSA (RFC 8037)
* EC / P-256    -> ES256 (RFC 7518 section 3.4)
* RSA >= 2048   -> PS256 (RFC 7518 section 3.5)

Encodings are canonical (unpadded base64url with zero unused bits, fixed-size EC coordinates,
minimal RSA integers), so a key has exactly one JWK and therefore exactly one thumbprint.

Pure code: no I/O, no clock.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signatures.errors import JwkError

Alg = Literal["EdDSA", "ES256", "PS256"]
PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey

ALG_BY_KTY: Mapping[str, Alg] = {"OKP": "EdDSA", "EC": "ES256", "RSA": "PS256"}

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
# FIPS 186-5 appendix A.1.1: 2**16 < e < 2**256, and e odd.
MIN_RSA_PUBLIC_EXPONENT = 2**16 + 1
MAX_RSA_PUBLIC_EXPONENT = 2**256 - 1
# Both checked before any decoding: no JWK we accept has more members (4 required at most, 4
# optional), and none has a longer value than the base64url of an 8192-bit modulus.
MAX_JWK_MEMBERS = 8
MAX_MEMBER_CHARS = -(-(MAX_RSA_BITS // 8) * 4 // 3)

ED25519_KEY_BYTES = 32
P256_COORDINATE_BYTES = 32
P256_FIELD_PRIME = 2**256 - 2**224 + 2**192 + 2**96 - 1

PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
REQUIRED_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "OKP": ("crv", "kty", "x"),
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
}
_ALL_MEMBERS = ("crv", "e", "kty", "n", "x", "y")  # the dataclass fields, sorted
# Members that may accompany the key material; each is checked for consistency.
OPTIONAL_MEMBERS = frozenset({"alg", "use", "kid", "key_ops"})
SUPPORTED_CURVES: Mapping[str, str] = {"OKP": "Ed25519", "EC": "P-256"}

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


# --- base64url (RFC 7515 section 2: unpadded, URL-safe alphabet) ---------------------------------


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url of data."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_b64url(text: str) -> bytes | None:
    """The bytes text encodes, or None unless text is canonical unpadded base64url.

    Canonical means: only the URL-safe alphabet, no padding, a possible length, and zero unused
    bits, so that decoding and re-encoding gives text back.
    """
    if len(text) % 4 == 1 or _B64URL.fullmatch(text) is None:
        return None
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return data if b64url_encode(data) == text else None


def b64url_chars(size_bytes: int) -> int:
    """The length of the unpadded base64url encoding of size_bytes bytes."""
    return -(-size_bytes * 4 // 3)


# --- Ed25519 point checks (RFC 8032 section 5.1.3) -----------------------------------------------

_ED_P = 2**255 - 19
_ED_D = -121665 * pow(121666, -1, _ED_P) % _ED_P
_ED_SQRT_M1 = pow(2, (_ED_P - 1) // 4, _ED_P)
_ED_COFACTOR_DOUBLINGS = 3  # the cofactor is 8


def _ed25519_decode(encoded: bytes) -> tuple[int, int] | None:
    """The affine point encoded, or None for a non-canonical y or a y off the curve."""
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    sign = encoded[31] >> 7
    if y >= _ED_P:
        return None
    u = (y * y - 1) % _ED_P
    v = (_ED_D * y * y + 1) % _ED_P
    x = u * pow(v, 3, _ED_P) * pow(u * pow(v, 7, _ED_P), (_ED_P - 5) // 8, _ED_P) % _ED_P
    if (v * x * x - u) % _ED_P != 0:
        if (v * x * x + u) % _ED_P != 0:
            return None
        x = x * _ED_SQRT_M1 % _ED_P
    if x == 0 and sign == 1:
        return None
    return (_ED_P - x if x & 1 != sign else x), y


def _ed25519_double(point: tuple[int, int]) -> tuple[int, int]:
    x, y = point
    t = _ED_D * x * x * y * y % _ED_P
    x2 = 2 * x * y * pow(1 + t, -1, _ED_P) % _ED_P
    y2 = (y * y + x * x) * pow(1 - t, -1, _ED_P) % _ED_P
    return x2, y2


def _ed25519_problem(encoded: bytes) -> str | None:
    """Why encoded is not an acceptable Ed25519 public key, or None when it is.

    A small-order key (eight points) admits signatures that verify for every message, so a
    signer could register one and later disown "their" signatures: refused.
    """
    point = _ed25519_decode(encoded)
    if point is None:
        return "not a canonical encoding of a point on Ed25519"
    for _ in range(_ED_COFACTOR_DOUBLINGS):
        point = _ed25519_double(point)
    if point == (0, 1):
        return "a point of small order"
    return None


# --- the key -------------------------------------------------------------------------------------


def _member_bytes(name: str, value: str | None) -> bytes:
    if value is None:
        raise JwkError(f"JWK member {name!r} is required", member=name, rule="required")
    if len(value) > MAX_MEMBER_CHARS:
        raise JwkError(f"JWK member {name!r} is too long", member=name, rule="too long")
    data = parse_b64url(value)
    if data is None:
        raise JwkError(
            f"JWK member {name!r} is not canonical unpadded base64url",
            member=name,
            rule="canonical base64url",
        )
    return data


def _refuse_present(jwk: PublicJwk, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(jwk, name) is not None:
            raise JwkError(
                f"JWK member {name!r} does not belong to kty {jwk.kty!r}",
                member=name,
                rule="member of another key type",
            )


def _require_curve(jwk: PublicJwk, kty: str) -> None:
    if jwk.crv != SUPPORTED_CURVES[kty]:
        raise JwkError(
            f"curve {jwk.crv!r} is not supported for kty {kty!r} (only {SUPPORTED_CURVES[kty]!r})",
            member="crv",
            rule="unsupported curve",
        )


def _load_okp(jwk: PublicJwk) -> PublicKey:
    _refuse_present(jwk, ("y", "n", "e"))
    _require_curve(jwk, "OKP")
    x = _member_bytes("x", jwk.x)
    if len(x) != ED25519_KEY_BYTES:
        raise JwkError("Ed25519 'x' must be 32 bytes", member="x", rule="length")
    problem = _ed25519_problem(x)
    if problem is not None:
        raise JwkError(f"Ed25519 'x' is {problem}", member="x", rule="invalid point")
    return Ed25519PublicKey.from_public_bytes(x)


def _load_ec(jwk: PublicJwk) -> PublicKey:
    _refuse_present(jwk, ("n", "e"))
    _require_curve(jwk, "EC")
    coordinates: list[int] = []
    for name, value in (("x", jwk.x), ("y", jwk.y)):
        data = _member_bytes(name, value)
        # RFC 7518 section 6.2.1.2: always the full coordinate size, leading zeros kept.
        if len(data) != P256_COORDINATE_BYTES:
            raise JwkError(f"P-256 {name!r} must be 32 bytes", member=name, rule="length")
        number = int.from_bytes(data, "big")
        # cryptography reduces coordinates modulo p: an unreduced one would be a second JWK.
        if number >= P256_FIELD_PRIME:
            raise JwkError(f"P-256 {name!r} is not below p", member=name, rule="range")
        coordinates.append(number)
    try:
        numbers = ec.EllipticCurvePublicNumbers(coordinates[0], coordinates[1], ec.SECP256R1())
        return numbers.public_key()
    except ValueError:
        raise JwkError("the point is not on P-256", member="y", rule="invalid point") from None


def _rsa_integer(name: str, value: str | None) -> int:
    data = _member_bytes(name, value)
    # RFC 7518 section 2 (Base64urlUInt): the minimum number of octets.
    if not data or data[0] == 0:
        raise JwkError(
            f"RSA {name!r} must use the minimum number of octets",
            member=name,
            rule="minimal integer",
        )
    return int.from_bytes(data, "big")


def _load_rsa(jwk: PublicJwk) -> PublicKey:
    _refuse_present(jwk, ("crv", "x", "y"))
    n = _rsa_integer("n", jwk.n)
    e = _rsa_integer("e", jwk.e)
    if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
        raise JwkError(
            f"RSA modulus of {n.bit_length()} bits is outside "
            f"[MIN_RSA_BITS={MIN_RSA_BITS}, MAX_RSA_BITS={MAX_RSA_BITS}]",
            member="n",
            rule="modulus size",
        )
    if n % 2 == 0:
        raise JwkError("RSA modulus is even", member="n", rule="odd modulus")
    if e % 2 == 0 or not MIN_RSA_PUBLIC_EXPONENT <= e <= MAX_RSA_PUBLIC_EXPONENT:
        raise JwkError(
            "RSA public exponent must be odd and in [2**16 + 1, 2**256 - 1]",
            member="e",
            rule="public exponent",
        )
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError:
        raise JwkError("invalid RSA public key", member="n", rule="invalid key") from None


def _load(jwk: PublicJwk) -> PublicKey:
    if jwk.kty == "OKP":
        return _load_okp(jwk)
    if jwk.kty == "EC":
        return _load_ec(jwk)
    if jwk.kty == "RSA":
        return _load_rsa(jwk)
    if jwk.kty == "oct":
        raise JwkError("symmetric keys are refused", member="kty", rule="symmetric key")
    raise JwkError(f"kty {jwk.kty!r} is not supported", member="kty", rule="unsupported kty")


@dataclass(frozen=True)
class PublicJwk:
    """A validated public signing key: its canonical JWK members, nothing else.

    Raises JwkError on construction when the members do not form an acceptable key (see the
    module docstring and docs/JWS.md for the rules).
    """

    kty: str
    crv: str | None = None
    x: str | None = None
    y: str | None = None
    n: str | None = None
    e: str | None = None
    _key: PublicKey = field(init=False, repr=False, compare=False)
    _thumbprint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", _load(self))
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode("ascii")).digest()
        object.__setattr__(self, "_thumbprint", b64url_encode(digest))

    @property
    def public_key(self) -> PublicKey:
        """The cryptography public key object."""
        return self._key

    @property
    def alg(self) -> Alg:
        """The only JWS algorithm this key may be used with."""
        return ALG_BY_KTY[self.kty]

    @property
    def kid(self) -> str:
        """The key ID: the RFC 7638 thumbprint."""
        return self._thumbprint

    def thumbprint(self) -> str:
        """RFC 7638: base64url(SHA-256(required members, sorted, no whitespace))."""
        return self._thumbprint

    def to_dict(self) -> dict[str, str]:
        """The required public members (RFC 7638 section 3.2), and only them."""
        values = (self.crv, self.e, self.kty, self.n, self.x, self.y)
        return {k: v for k, v in zip(_ALL_MEMBERS, values, strict=True) if v is not None}

    @classmethod
    def from_public_key(cls, key: PublicKey) -> PublicJwk:
        """The JWK of a cryptography public key.

        Raises JwkError for another curve or an RSA modulus outside the allowed sizes.
        """
        if isinstance(key, Ed25519PublicKey):
            raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
            return cls(kty="OKP", crv="Ed25519", x=b64url_encode(raw))
        if isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise JwkError(
                    f"curve {key.curve.name} is not supported", member="crv", rule="unsupported"
                )
            nums = key.public_numbers()
            x, y = (v.to_bytes(P256_COORDINATE_BYTES, "big") for v in (nums.x, nums.y))
            return cls(kty="EC", crv="P-256", x=b64url_encode(x), y=b64url_encode(y))
        if isinstance(key, rsa.RSAPublicKey):
            numbers = key.public_numbers()
            n, e = (_minimal_bytes(v) for v in (numbers.n, numbers.e))
            return cls(kty="RSA", n=b64url_encode(n), e=b64url_encode(e))
        raise JwkError(f"unsupported key type {type(key).__name__}", member="kty", rule="type")

    @classmethod
    def from_dict(cls, obj: Mapping[str, object]) -> PublicJwk:
        """Parse a JWK object (as decoded from JSON), strictly.

        Raises JwkError naming the member and the rule it breaks: a private or unknown member,
        a symmetric key, another key type or curve, a weak or malformed key, a non-canonical
        encoding, an ``alg`` other than the key's, a ``use`` other than "sig", ``key_ops`` other
        than ["verify"], or a ``kid`` other than the thumbprint.
        """
        if len(obj) > MAX_JWK_MEMBERS:
            raise JwkError("too many JWK members", member="", rule="too many members")
        values = _string_members(obj)
        if "kty" not in values:
            raise JwkError("JWK member 'kty' is required", member="kty", rule="required")
        kty = values["kty"]
        if kty == "oct":
            raise JwkError("symmetric keys are refused", member="kty", rule="symmetric key")
        if kty not in REQUIRED_MEMBERS:
            raise JwkError(f"kty {kty!r} is not supported", member="kty", rule="unsupported kty")
        known = set(REQUIRED_MEMBERS[kty]) | OPTIONAL_MEMBERS
        for name in values:
            if name not in known:
                raise JwkError(f"JWK member {name!r} is not allowed", member=name, rule="unknown")
        for name in REQUIRED_MEMBERS[kty]:
            if name not in values:
                raise JwkError(f"JWK member {name!r} is required", member=name, rule="required")
        jwk = cls(**{name: values[name] for name in REQUIRED_MEMBERS[kty]})
        _check_optional(jwk, obj)
        return jwk


def _minimal_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, -(-value.bit_length() // 8)), "big")


def _string_members(obj: Mapping[str, object]) -> dict[str, str]:
    """The string-valued members of obj, after refusing private members and oversized values."""
    for name in obj:
        if not isinstance(name, str):  # a Mapping from untyped JSON-ish input
            raise JwkError("JWK member names are strings", member=repr(name), rule="type")
        if name in PRIVATE_MEMBERS:
            raise JwkError(
                f"JWK member {name!r} is private key material", member=name, rule="private member"
            )
    values: dict[str, str] = {}
    for name, value in obj.items():
        if name == "key_ops":
            continue  # a list, checked in _check_optional
        if not isinstance(value, str):
            raise JwkError(f"JWK member {name!r} must be a string", member=name, rule="type")
        if len(value) > MAX_MEMBER_CHARS:
            raise JwkError(f"JWK member {name!r} is too long", member=name, rule="too long")
        values[name] = value
    return values


def _check_optional(jwk: PublicJwk, obj: Mapping[str, object]) -> None:
    expected: dict[str, object] = {
        "alg": jwk.alg,
        "use": "sig",
        "kid": jwk.kid,
        "key_ops": ["verify"],
    }
    for name, value in expected.items():
        if name in obj and obj[name] != value:
            raise JwkError(
                f"JWK member {name!r} must be {value!r} for this key",
                member=name,
                rule="inconsistent",
            )
