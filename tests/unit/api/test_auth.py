"""Bearer tokens (api/auth.py): the RFC 8725 attacks, each refused by name; good tokens accepted;
the FastAPI dependency's answers.

Tokens are minted here with pyjwt and cryptography keys, or forged by hand where pyjwt would
refuse to make them (alg none, HMAC with a public key as secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from api.auth import (
    MAX_TOKEN_CHARS,
    MAX_TOKEN_LIFETIME_S,
    AuthError,
    Principal,
    Role,
    TokenVerifier,
    require_principal,
    require_role,
)
from api.jwks import JwksError, JwksSource, JwksUnavailableError, parse_jwks
from api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers, problem_type

ISSUER = "https://id.example/realm"
AUDIENCE = "pishkhan"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
CITIZEN = "ir-nid:0499370899"
COMPANY = "ir-lid:10380284790"
LEEWAY_S = 30


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(value: object) -> str:
    return _b64(json.dumps(value).encode())


class Keys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = Ed25519PrivateKey.generate()
    attacker = ec.generate_private_key(ec.SECP256R1())


def _jwk(algorithm: Any, key: Any, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = algorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid}


JWKS = {
    "keys": [
        _jwk(RSAAlgorithm, Keys.rsa_key, "rsa-1"),
        _jwk(ECAlgorithm, Keys.ec_key, "ec-1"),
        _jwk(OKPAlgorithm, Keys.ed_key, "ed-1"),
    ]
}
SIGNERS: dict[str, tuple[Any, str]] = {
    "RS256": (Keys.rsa_key, "rsa-1"),
    "ES256": (Keys.ec_key, "ec-1"),
    "EdDSA": (Keys.ed_key, "ed-1"),
}


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": CITIZEN,
        "roles": ["citizen"],
        "iat": T - 60,
        "exp": T + 600,
        "jti": "token-1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _mint(alg: str = "ES256", *, key: Any = None, kid: str | None = None, **changes: Any) -> str:
    signer, default_kid = SIGNERS[alg]
    headers: dict[str, Any] = {"kid": kid or default_kid}
    return jwt.encode(_claims(**changes), key or signer, algorithm=alg, headers=headers)


def _forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_json_b64(header)}.{_json_b64(claims)}.{_b64(signature)}"


def _hs256(header: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_json_b64(header)}.{_json_b64(_claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


@pytest.fixture
def verifier() -> TokenVerifier:
    jwks = JwksSource.from_document(json.dumps(JWKS).encode())
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, leeway_s=LEEWAY_S)


def _refused(verifier: TokenVerifier, token: str, reason: str) -> None:
    with pytest.raises(AuthError) as caught:
        verifier.verify(token, now=NOW)
    assert reason in caught.value.reason, caught.value.reason


# --- accepted ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_accepted_token(verifier: TokenVerifier, alg: str) -> None:
    principal = verifier.verify(_mint(alg), now=NOW)
    assert principal == Principal(CITIZEN, frozenset({Role.CITIZEN}), "token-1")


def test_accepted_business_acting_as_person_and_as_entity(verifier: TokenVerifier) -> None:
    for subject in (CITIZEN, COMPANY):
        token = _mint(sub=subject, roles=["business"], jti=None)
        assert verifier.verify(token, now=NOW) == Principal(subject, frozenset({Role.BUSINESS}))


def test_accepted_aud_list_containing_ours(verifier: TokenVerifier) -> None:
    verifier.verify(_mint(aud=["other", AUDIENCE]), now=NOW)


def test_accepted_agency_auditor_and_admin(verifier: TokenVerifier) -> None:
    assert verifier.verify(_mint(sub="agency:tax-office", roles=["agency"]), now=NOW).roles == {
        Role.AGENCY
    }
    staff = verifier.verify(_mint(sub="auditor 7", roles=["auditor", "admin"]), now=NOW)
    assert staff.roles == {Role.AUDITOR, Role.ADMIN}


def test_leeway_honoured(verifier: TokenVerifier) -> None:
    verifier.verify(_mint(exp=T - LEEWAY_S + 1), now=NOW)
    verifier.verify(_mint(iat=T + LEEWAY_S), now=NOW)
    verifier.verify(_mint(nbf=T + LEEWAY_S), now=NOW)
    _refused(verifier, _mint(exp=T - LEEWAY_S), "expired")
    _refused(verifier, _mint(iat=T + LEEWAY_S + 1, exp=T + 900), "iat in the future")


# --- RFC 8725 attacks ----------------------------------------------------------------------------


def test_alg_none_without_signature(verifier: TokenVerifier) -> None:
    _refused(verifier, _forge({"alg": "none", "kid": "ec-1"}, _claims()), "alg not allowed")


def test_alg_none_with_signature(verifier: TokenVerifier) -> None:
    real_signature = _mint().split(".")[2]
    token = _forge({"alg": "none", "kid": "ec-1"}, _claims()) + real_signature
    _refused(verifier, token, "alg not allowed")


@pytest.mark.parametrize("alg", ["None", "NONE", "HS384", "RS512", "PS256", "ES384", "Ed25519"])
def test_other_algs_refused(verifier: TokenVerifier, alg: str) -> None:
    _refused(verifier, _forge({"alg": alg, "kid": "rsa-1"}, _claims(), b"x" * 64), "alg")


def test_hs256_with_rsa_public_key_pem_as_secret(verifier: TokenVerifier) -> None:
    pem = Keys.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _refused(verifier, _hs256({"alg": "HS256", "kid": "rsa-1"}, pem), "alg not allowed")


def test_hs256_with_jwk_json_as_secret(verifier: TokenVerifier) -> None:
    secret = json.dumps(JWKS["keys"][0]).encode()
    _refused(verifier, _hs256({"alg": "HS256", "kid": "rsa-1"}, secret), "alg not allowed")


def test_rs256_header_when_jwks_key_is_ec(verifier: TokenVerifier) -> None:
    token = _mint("RS256", kid="ec-1")  # signed with the RSA key, naming the EC key
    _refused(verifier, token, "differs from the key's algorithm")


def test_es256_header_when_jwks_key_is_rsa(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint("ES256", kid="rsa-1"), "differs from the key's algorithm")


def test_kid_not_in_jwks(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(kid="someone-else"), "kid not in the JWKS")


def test_missing_kid(verifier: TokenVerifier) -> None:
    token = jwt.encode(_claims(), Keys.ec_key, algorithm="ES256")
    _refused(verifier, token, "kid missing")


def test_signature_by_another_key(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(key=Keys.attacker), "InvalidSignatureError")


class _CountingServer:
    """A local server the attacker controls: it serves the attacker's JWKS and counts requests."""

    def __init__(self, document: bytes) -> None:
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def attacker_server() -> Iterator[_CountingServer]:
    document = json.dumps({"keys": [_jwk(ECAlgorithm, Keys.attacker, "evil")]}).encode()
    server = _CountingServer(document)
    yield server
    server.close()


@pytest.mark.parametrize("member", ["jku", "x5u"])
@pytest.mark.parametrize("kid", ["evil", "ec-1"])
def test_jku_and_x5u_never_fetched(
    verifier: TokenVerifier, attacker_server: _CountingServer, member: str, kid: str
) -> None:
    headers = {"kid": kid, member: attacker_server.url}
    token = jwt.encode(_claims(), Keys.attacker, algorithm="ES256", headers=headers)
    with pytest.raises(AuthError):
        verifier.verify(token, now=NOW)
    assert attacker_server.requests == 0


@pytest.mark.parametrize("kid", ["evil", "ec-1"])
def test_embedded_jwk_header_with_attackers_key(verifier: TokenVerifier, kid: str) -> None:
    headers = {"kid": kid, "jwk": _jwk(ECAlgorithm, Keys.attacker, kid)}
    token = jwt.encode(_claims(), Keys.attacker, algorithm="ES256", headers=headers)
    with pytest.raises(AuthError):
        verifier.verify(token, now=NOW)


def test_x5c_header_with_attackers_certificate(verifier: TokenVerifier) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "id.example")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(Keys.attacker.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(Keys.attacker, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    headers = {"kid": "ec-1", "x5c": [base64.b64encode(der).decode()]}
    token = jwt.encode(_claims(), Keys.attacker, algorithm="ES256", headers=headers)
    _refused(verifier, token, "InvalidSignatureError")


def test_crit_header(verifier: TokenVerifier) -> None:
    token = jwt.encode(
        _claims(), Keys.ec_key, algorithm="ES256", headers={"kid": "ec-1", "crit": ["exp"]}
    )
    _refused(verifier, token, "crit")


def test_typ_of_another_kind_of_jws(verifier: TokenVerifier) -> None:
    token = jwt.encode(
        _claims(), Keys.ec_key, algorithm="ES256", headers={"kid": "ec-1", "typ": "pishkhan-tx+jws"}
    )
    _refused(verifier, token, "typ")


def test_duplicate_header_member(verifier: TokenVerifier) -> None:
    good = _mint()
    header = '{"alg":"ES256","kid":"nope","kid":"ec-1"}'
    token = _b64(header.encode()) + good[good.index(".") :]
    _refused(verifier, token, "duplicate")


def test_wrong_iss(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(iss="https://evil.example"), "InvalidIssuerError")


def test_wrong_aud(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(aud="another-service"), "InvalidAudienceError")


def test_aud_list_not_containing_ours(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(aud=["a", "b"]), "InvalidAudienceError")


def test_expired(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(iat=T - 3600, exp=T - 600), "expired")


def test_nbf_in_the_future(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(nbf=T + 300), "nbf")


def test_iat_in_the_future(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(iat=T + 300, exp=T + 900), "iat in the future")


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud"])
def test_required_claim_missing(verifier: TokenVerifier, claim: str) -> None:
    changes: dict[str, Any] = {claim: None}
    _refused(verifier, _mint(**changes), "MissingRequiredClaimError")


def test_no_exp(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(exp=None), "MissingRequiredClaimError")


def test_lifetime_too_long(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(iat=T - 60, exp=T - 60 + MAX_TOKEN_LIFETIME_S + 1), "lifetime")


def test_exp_before_iat(verifier: TokenVerifier) -> None:
    _refused(verifier, _mint(iat=T, exp=T), "lifetime")


@pytest.mark.parametrize("value", ["soon", True, 1e300, -5])
def test_exp_not_a_numeric_date(verifier: TokenVerifier, value: object) -> None:
    with pytest.raises(AuthError):
        verifier.verify(_mint(exp=value), now=NOW)


def test_oversized_token(verifier: TokenVerifier) -> None:
    token = _mint(padding="x" * MAX_TOKEN_CHARS)
    assert len(token) > MAX_TOKEN_CHARS
    _refused(verifier, token, "longer than")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: "!" + t,  # header not base64url
        lambda t: t.replace(".", ".*", 1),  # payload not base64url
        lambda t: t + "*",  # signature not base64url
        lambda t: t.rsplit(".", 1)[0],  # two segments
        lambda t: t + ".x",  # four segments
        lambda t: _b64(b"not json") + t[t.index(".") :],
        lambda t: _b64(b"[1]") + t[t.index(".") :],
        lambda t: "é" + t,
    ],
    ids=["header", "payload", "signature", "two", "four", "not-json", "not-object", "non-ascii"],
)
def test_malformed_base64_or_structure(verifier: TokenVerifier, mutate: Any) -> None:
    with pytest.raises(AuthError):
        verifier.verify(mutate(_mint()), now=NOW)


@pytest.mark.parametrize(
    ("sub", "roles"),
    [
        ("agency:tax-office", ["citizen"]),
        (COMPANY, ["citizen"]),
        ("ir-nid:0499370898", ["citizen"]),  # wrong check digit
        ("ir-nid:1111111111", ["citizen"]),  # one repeated digit
        (CITIZEN, ["agency"]),
        ("agency:tax-office", ["business"]),
        ("alice", ["citizen"]),
        (COMPANY, ["citizen", "business"]),  # every role must fit
        ("", ["admin"]),
        ("x" * 129, ["auditor"]),
        ("bad\nname", ["admin"]),
    ],
)
def test_sub_not_matching_role(verifier: TokenVerifier, sub: str, roles: list[str]) -> None:
    _refused(verifier, _mint(sub=sub, roles=roles), "sub")


@pytest.mark.parametrize("roles", [["root"], ["citizen", "Citizen"], [], "citizen", None, [1]])
def test_unknown_role(verifier: TokenVerifier, roles: object) -> None:
    _refused(verifier, _mint(roles=roles), "roles")


def test_jti_not_a_string(verifier: TokenVerifier) -> None:
    with pytest.raises(AuthError):
        verifier.verify(_mint(jti=7), now=NOW)


# --- the JWKS: only pinnable asymmetric keys -----------------------------------------------------


def test_oct_keys_ignored() -> None:
    document = {"keys": [{"kty": "oct", "k": _b64(b"secret"), "kid": "h"}, JWKS["keys"][1]]}
    assert list(parse_jwks(json.dumps(document).encode(), source="t")) == ["ec-1"]
    only_oct = {"keys": [{"kty": "oct", "k": _b64(b"secret"), "kid": "h"}]}
    with pytest.raises(JwksError, match="no usable key"):
        parse_jwks(json.dumps(only_oct).encode(), source="t")


def test_unpinnable_keys_ignored() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    private = Keys.ec_key.private_numbers()
    document = {
        "keys": [
            _jwk(RSAAlgorithm, small, "small"),
            _jwk(ECAlgorithm, p384, "p384"),
            {**_jwk(ECAlgorithm, Keys.ec_key, "mislabelled"), "alg": "RS256"},
            {
                **_jwk(ECAlgorithm, Keys.ec_key, "private"),
                "d": _b64(private.private_value.to_bytes(32)),
            },
            {**_jwk(ECAlgorithm, Keys.ec_key, "enc"), "use": "enc"},
            {**_jwk(ECAlgorithm, Keys.ec_key, "no-verify"), "key_ops": ["encrypt"]},
            {k: v for k, v in _jwk(ECAlgorithm, Keys.ec_key, "x").items() if k != "kid"},
            _jwk(OKPAlgorithm, Keys.ed_key, "ed-1"),
        ]
    }
    assert list(parse_jwks(json.dumps(document).encode(), source="t")) == ["ed-1"]


def test_ambiguous_kid_ignored() -> None:
    document = {"keys": [_jwk(ECAlgorithm, Keys.ec_key, "k"), _jwk(OKPAlgorithm, Keys.ed_key, "k")]}
    with pytest.raises(JwksError, match="no usable key"):
        parse_jwks(json.dumps(document).encode(), source="t")


# --- the FastAPI dependency ----------------------------------------------------------------------


Caller = Annotated[Principal, Depends(require_principal)]


class _Unavailable(JwksSource):
    def get_key(self, kid: str) -> None:
        raise JwksUnavailableError("down", source="test")


def _app(verifier: TokenVerifier) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.token_verifier = verifier

    @app.get("/me")
    def me(principal: Caller) -> dict[str, object]:
        return {"subject": principal.subject, "roles": sorted(principal.roles)}

    @app.get("/admin")
    def admin(principal: Caller) -> dict[str, object]:
        require_role(principal, Role.ADMIN)
        return {}

    return TestClient(app)


@pytest.fixture
def live_verifier() -> TokenVerifier:
    jwks = JwksSource.from_document(json.dumps(JWKS).encode())
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, leeway_s=LEEWAY_S)


def _live(**changes: Any) -> str:
    now = int(datetime.now(UTC).timestamp())
    return _mint(**{"iat": now - 10, "exp": now + 600, **changes})


def test_dependency_accepts_bearer_any_case(live_verifier: TokenVerifier) -> None:
    client = _app(live_verifier)
    for scheme in ("Bearer", "bearer", "BEARER"):
        answer = client.get("/me", headers={"Authorization": f"{scheme} {_live()}"})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"subject": CITIZEN, "roles": ["citizen"]}


def test_dependency_without_header(live_verifier: TokenVerifier) -> None:
    answer = _app(live_verifier).get("/me")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["type"] == problem_type("unauthenticated")


def test_dependency_identical_bodies_for_different_failures(
    live_verifier: TokenVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    client = _app(live_verifier)
    expired = _live(iat=T - 3600, exp=T - 600)
    failures = {
        "expired": {"Authorization": f"Bearer {expired}"},
        "wrong-aud": {"Authorization": f"Bearer {_live(aud='other')}"},
        "unknown-kid": {"Authorization": f"Bearer {_live(kid='nope')}"},
        "garbage": {"Authorization": "Bearer abc"},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "no-token": {"Authorization": "Bearer "},
    }
    bodies = set()
    with caplog.at_level(logging.INFO, logger="pishkhan.auth"):
        for headers in failures.values():
            answer = client.get("/me", headers=headers)
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            bodies.add(answer.content)
    assert len(bodies) == 1
    assert json.loads(bodies.pop())["status"] == 401
    log = caplog.text
    assert "expired" in log and "kid not in the JWKS" in log
    assert expired not in log and expired.split(".")[2] not in log


def test_dependency_refuses_two_authorization_headers(live_verifier: TokenVerifier) -> None:
    token = _live()
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    answer = _app(live_verifier).get("/me", headers=headers)
    assert answer.status_code == 401


def test_dependency_jwks_unavailable_is_503() -> None:
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks=_Unavailable(keys={}), leeway_s=LEEWAY_S
    )
    answer = _app(verifier).get("/me", headers={"Authorization": f"Bearer {_live()}"})
    assert answer.status_code == 503
    assert answer.json()["type"] == problem_type("identity-provider-unavailable")
    assert "retry-after" in answer.headers


def test_require_role_forbidden(live_verifier: TokenVerifier) -> None:
    client = _app(live_verifier)
    answer = client.get("/admin", headers={"Authorization": f"Bearer {_live()}"})
    assert answer.status_code == 403
    assert answer.json()["type"] == problem_type("forbidden")
    admin = _live(sub="ops", roles=["admin"])
    assert client.get("/admin", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
