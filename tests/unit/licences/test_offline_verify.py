"""`pishkhan licences verify-credential` and issuer_keys_from_jwks: a credential checked offline
with nothing but the published issuer-key document."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.cli import main
from api.licence_cli import EXIT_NOT_AUTHENTIC, EXIT_OK, EXIT_UNDECIDED
from licences.credential import (
    CredentialClaims,
    encode_credential,
    issuer_key,
    issuer_key_json,
    issuer_keys_from_jwks,
)
from licences.errors import CredentialError

RAHVAR = "agency:rahvar"
KEY = Ed25519PrivateKey.generate()
PUBLISHED = issuer_key_json(issuer_key(KEY.public_key(), issuer=RAHVAR))
DAY_S = 86_400


def _claims(*, start_s: int, end_s: int) -> CredentialClaims:
    return CredentialClaims(
        issuer=RAHVAR,
        holder="ir-nid:0013542419",
        licence_type="ir.driving",
        number="1234567890",
        valid_from=date(2025, 3, 21),
        valid_until=date(2035, 3, 20),
        not_before=start_s,
        expires_at=end_s,
        issued_at=start_s,
        licence_id="0b3c1f2e-1234-4abc-8def-0123456789ab",
    )


def _keys_file(tmp_path: Path, keys: list[dict[str, object]]) -> str:
    path = tmp_path / "issuer-keys.json"
    path.write_text(json.dumps({"keys": keys}))
    return str(path)


def _run(token: str, keys_file: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["licences", "verify-credential", token, "--issuer-keys", keys_file, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_current_credential_is_authentic_and_within_term(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(time.time())
    token = encode_credential(_claims(start_s=now - DAY_S, end_s=now + DAY_S), private_key=KEY)
    code, report = _run(token, _keys_file(tmp_path, [PUBLISHED]), capsys)
    assert (code, report["authentic"], report["within_term"]) == (EXIT_OK, True, True)
    assert report["licence_type"] == "ir.driving"


def test_expired_credential_is_authentic_but_outside_its_term(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(time.time())
    token = encode_credential(_claims(start_s=now - 9 * DAY_S, end_s=now - DAY_S), private_key=KEY)
    code, report = _run(token, _keys_file(tmp_path, [PUBLISHED]), capsys)
    assert (code, report["authentic"], report["within_term"]) == (EXIT_UNDECIDED, True, False)


def test_tampered_credential_is_not_authentic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(time.time())
    token = encode_credential(_claims(start_s=now - DAY_S, end_s=now + DAY_S), private_key=KEY)
    header, payload, signature = token.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    code, report = _run(f"{header}.{payload}.{flipped}", _keys_file(tmp_path, [PUBLISHED]), capsys)
    assert (code, report["authentic"], report["reason"]) == (
        EXIT_NOT_AUTHENTIC,
        False,
        "bad_signature",
    )


def test_another_agencys_key_cannot_sign_for_this_issuer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Ed25519PrivateKey.generate()
    other_published = issuer_key_json(issuer_key(other.public_key(), issuer="agency:asnaf"))
    now = int(time.time())
    token = encode_credential(_claims(start_s=now - DAY_S, end_s=now + DAY_S), private_key=other)
    keys = _keys_file(tmp_path, [PUBLISHED, other_published])
    code, report = _run(token, keys, capsys)
    assert (code, report["reason"]) == (EXIT_NOT_AUTHENTIC, "wrong_issuer")


def test_a_published_kid_that_is_not_the_thumbprint_is_refused() -> None:
    lying = {**PUBLISHED, "kid": "A" * 43}
    with pytest.raises(CredentialError) as caught:
        issuer_keys_from_jwks({"keys": [lying]})
    assert caught.value.reason == "malformed"
    assert "/keys/0" in str(caught.value)


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"keys": "none"},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        {"keys": [{**PUBLISHED, "alg": "HS256"}]},
        {"keys": [{k: v for k, v in PUBLISHED.items() if k != "iss"}]},
        {"keys": [{**PUBLISHED, "d": "private"}]},
    ],
    ids=["not_an_object", "keys_not_a_list", "symmetric", "other_alg", "no_iss", "private"],
)
def test_bad_key_documents_are_refused(document: object) -> None:
    with pytest.raises(CredentialError) as caught:
        issuer_keys_from_jwks(document)  # type: ignore[arg-type]
    assert caught.value.reason == "malformed"


def test_the_published_form_reads_back_to_the_same_key() -> None:
    keys = issuer_keys_from_jwks({"keys": [{**PUBLISHED, "registered_index": 7}]})
    (kid,) = keys
    assert kid == PUBLISHED["kid"] and keys[kid].issuer == RAHVAR


def test_unreadable_keys_file_is_undecided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    now = int(time.time())
    token = encode_credential(_claims(start_s=now, end_s=now + DAY_S), private_key=KEY)
    code, report = _run(token, str(path), capsys)
    assert (code, report["reason"]) == (EXIT_UNDECIDED, "unreadable_input")


def test_encode_refuses_instants_that_end_before_they_start() -> None:
    with pytest.raises(CredentialError) as caught:
        encode_credential(_claims(start_s=10, end_s=5), private_key=KEY)
    assert caught.value.reason == "invalid_claims"
