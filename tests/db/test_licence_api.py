"""The licence routes (api/routes/licences.py, api/routes/licence_credentials.py) on SQLite and
PostgreSQL: who sees which licence, the credential and its QR code, the published issuer keys,
and the public online check as the agency changes the licence's status after issuance."""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine

from api.app import create_app
from api.licences.issuer_keys import IssuerKeys
from api.limits import RateLimiter, enforce_rate_limit
from api.routes.licence_credentials import credential_claims
from api.settings import Settings
from ledger.note import NoteSigner
from licences.credential import (
    MAX_CREDENTIAL_CHARS,
    CredentialClaims,
    encode_credential,
    verify_credential,
)
from licences.credential import issuer_key as make_issuer_key
from signatures.client import generate_private_key
from tests.db.conftest import ORIGIN
from tests.db.test_transactions_pipeline import Party, new_party, problem, register, signed
from tests.idp import bearer, verifier

RAHVAR = "agency:rahvar"  # issues ir.driving
ASNAF = "agency:asnaf"  # issues ir.business
PASSPHRASE = b"licence-issuer-test-passphrase"


@dataclass
class World:
    client: TestClient
    engine: Engine
    keys: IssuerKeys
    rahvar: Party
    asnaf: Party
    rng: random.Random

    def set_clock(self, at: datetime) -> None:
        self.client.app.state.clock = lambda: at  # type: ignore[attr-defined]


@pytest.fixture
def world(engine: Engine, signer: NoteSigner, tmp_path: Path) -> Iterator[World]:
    settings = Settings.model_construct(ledger_origin=ORIGIN, rate_limit_per_minute=10_000)
    keys = IssuerKeys(tmp_path / "licence-issuers", passphrase=PASSPHRASE)
    app = create_app(
        settings,
        engine=engine,
        checkpoint_signer=signer,
        token_verifier=verifier(),
        issuer_keys=keys,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        agencies = []
        for subject in (RAHVAR, ASNAF):
            party = Party(subject, bearer(subject, "agency"), generate_private_key("EdDSA"))
            register(client, party)
            agencies.append(party)
        yield World(client, engine, keys, agencies[0], agencies[1], random.Random(81))


def _yesterday() -> date:
    # Yesterday in UTC is at most today in Tehran and Tallinn.
    return datetime.now(UTC).date() - timedelta(days=1)


def submit(world: World, party: Party, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    r = world.client.post(
        "/v1/transactions", json=signed(party, type_, payload), headers=party.headers
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()["result"]
    return result


def issue(
    world: World,
    holder: str,
    *,
    licence_type: str = "ir.driving",
    agency: Party | None = None,
    valid_from: date | None = None,
) -> str:
    number = "".join(str(world.rng.randrange(10)) for _ in range(10))
    payload = {
        "licence_type": licence_type,
        "holder": holder,
        "number": number,
        "valid_from": (valid_from or _yesterday()).isoformat(),
    }
    result = submit(world, agency or world.rahvar, "licence.issue", payload)
    licence_id: str = result["licence_id"]
    return licence_id


def act(world: World, action: str, licence_id: str, reason: str = "court_order") -> None:
    submit(world, world.rahvar, f"licence.{action}", {"licence_id": licence_id, "reason": reason})


def get(world: World, path: str, party: Party | None = None, headers: Any = None) -> Any:
    return world.client.get(path, headers=headers if party is None else party.headers)


def credential_of(world: World, licence_id: str, party: Party) -> dict[str, Any]:
    r = get(world, f"/v1/licences/{licence_id}/credential", party)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


def verify(world: World, credential: str) -> dict[str, Any]:
    r = world.client.get("/v1/licences/verify", params={"credential": credential})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- who sees what -------------------------------------------------------------------------------


def test_holder_and_issuer_see_a_licence_others_get_404_like_a_missing_one(world: World) -> None:
    holder = new_party(world.client, world.rng)
    stranger = new_party(world.client, world.rng)
    licence_id = issue(world, holder.subject)
    path = f"/v1/licences/{licence_id}"
    for party in (holder, world.rahvar):
        r = get(world, path, party)
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["holder"] == holder.subject and view["status"] == "valid"
        assert [e["kind"] for e in view["events"]] == ["issued"]
        assert view["renewals"] == [] and view["pending_renewal"] is None
        # ir is a Solar Hijri jurisdiction: both calendars.
        assert set(view["expires_on"]) == {"date", "jalali"}
    missing = get(world, "/v1/licences/8f14e45f-ceea-4e7a-9d3b-5b1f8e3c2a10", holder)
    other = get(world, path, stranger)
    other_agency = get(world, path, world.asnaf)
    admin = get(world, path, headers=bearer("ops-1", "admin"))
    not_a_uuid = get(world, "/v1/licences/not-a-licence", holder)
    bodies = [problem(r, 404, "licence-not-found") for r in (missing, other, other_agency, admin)]
    assert len({json.dumps(b, sort_keys=True) for b in bodies}) == 1
    problem(not_a_uuid, 404, "licence-not-found")
    # An auditor sees the ledger places only: no holder, no number, no term.
    audit = get(world, path, headers=bearer("auditor-1", "auditor")).json()
    assert audit["ledger_index"] > 0 and audit["events"][0]["kind"] == "issued"
    assert not {"holder", "number", "valid_from", "expires_on"} & set(audit)
    # Credentials follow the same rule; auditors get none.
    for route in ("credential", "credential.png"):
        for party_headers in (stranger.headers, world.asnaf.headers, bearer("a", "auditor")):
            r = get(world, f"{path}/{route}", headers=party_headers)
            problem(r, 404, "licence-not-found")
    assert get(world, path).status_code == 401


def test_lists_are_the_callers_own_newest_first_with_paging(world: World) -> None:
    holder = new_party(world.client, world.rng)
    other = new_party(world.client, world.rng)
    mine = [issue(world, holder.subject) for _ in range(3)]
    theirs = issue(world, other.subject)
    page = get(world, "/v1/licences?limit=2", holder).json()
    assert [i["licence_id"] for i in page["items"]] == mine[::-1][:2]
    rest = get(world, f"/v1/licences?limit=2&cursor={page['next_cursor']}", holder).json()
    assert [i["licence_id"] for i in rest["items"]] == [mine[0]] and rest["next_cursor"] is None
    issued = get(world, "/v1/licences?limit=100", world.rahvar).json()["items"]
    assert {i["licence_id"] for i in issued} == {*mine, theirs}
    assert get(world, "/v1/licences", world.asnaf).json()["items"] == []
    problem(get(world, "/v1/licences?cursor=bogus", holder), 400, "invalid-cursor")
    problem(get(world, "/v1/licences", headers=bearer("auditor-1", "auditor")), 403, "forbidden")


def test_a_delegated_representative_sees_the_entitys_licence(world: World) -> None:
    entity = new_party(world.client, world.rng, "business", entity=True)
    clerk = new_party(world.client, world.rng, "business")
    licence_id = issue(world, entity.subject, licence_type="ir.business", agency=world.asnaf)
    path = f"/v1/licences/{licence_id}"
    problem(get(world, path, clerk), 404, "licence-not-found")
    not_after = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    grant = {"delegate": clerk.subject, "types": ["licence.renew"], "not_after": not_after}
    delegation_id = submit(world, entity, "delegation.grant", grant)["delegation_id"]
    assert get(world, path, clerk).json()["holder"] == entity.subject
    assert credential_of(world, licence_id, clerk)["issuer"] == ASNAF
    submit(world, entity, "delegation.revoke", {"delegation_id": delegation_id})
    problem(get(world, path, clerk), 404, "licence-not-found")


# --- the credential ------------------------------------------------------------------------------


def test_credential_round_trip_keys_and_qr_code(world: World) -> None:
    holder = new_party(world.client, world.rng)
    licence_id = issue(world, holder.subject)
    # Before any credential, no key is published (nothing was ever signed).
    assert get(world, "/v1/licences/issuer-keys").json() == {"keys": []}
    first = credential_of(world, licence_id, holder)
    # Deterministic: the same licence state gives the same credential, for the issuer too.
    assert credential_of(world, licence_id, world.rahvar)["credential"] == first["credential"]
    token = first["credential"]
    assert len(token) <= MAX_CREDENTIAL_CHARS
    header = json.loads(_unb64(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": first["kid"], "typ": "pishkhan-licence+jwt"}
    claims = first["claims"]
    assert claims["holder"] == holder.subject and claims["licence_id"] == licence_id
    assert claims["issuer"] == RAHVAR and set(claims["valid_from"]) == {"date", "jalali"}
    # nbf is the start of valid_from in Tehran (UTC+03:30, no DST since 2022).
    valid_from = date.fromisoformat(claims["valid_from"]["date"])
    start = datetime(valid_from.year, valid_from.month, valid_from.day) - timedelta(hours=3.5)
    assert claims["not_before"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The published keys verify it offline: the key is in the registry, as the agency's.
    published = get(world, "/v1/licences/issuer-keys").json()["keys"]
    assert [(k["kid"], k["iss"]) for k in published] == [(first["kid"], RAHVAR)]
    key = world.client.get(f"/v1/keys/{first['kid']}", headers=world.rahvar.headers)
    assert key.status_code == 200 and key.json()["subject"] == RAHVAR
    offline = verify_credential(token, keys=_offline_keys(published))
    assert offline.licence_id == licence_id
    # The QR code holds exactly the credential.
    r = get(world, f"/v1/licences/{licence_id}/credential.png", holder)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(r.content))
    found = zxingcpp.read_barcodes(image)
    assert [f.text for f in found] == [token]


def _offline_keys(published: list[dict[str, Any]]) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = {}
    for jwk in published:
        public = Ed25519PublicKey.from_public_bytes(_unb64(jwk["x"]))
        keys[jwk["kid"]] = make_issuer_key(public, issuer=jwk["iss"])
    return keys


# --- the online check ----------------------------------------------------------------------------


def test_status_changes_after_issuance_are_visible_online(world: World) -> None:
    holder = new_party(world.client, world.rng)
    licence_id = issue(world, holder.subject)
    token = credential_of(world, licence_id, holder)["credential"]
    answer = verify(world, token)
    assert answer["status"] == "valid" and answer["reason"] is None
    assert answer["superseded"] is False and answer["claims"]["licence_id"] == licence_id
    act(world, "suspend", licence_id)
    assert verify(world, token)["status"] == "suspended"
    # A fresh download (iat is the licence's last change) says the same.
    suspended_token = credential_of(world, licence_id, holder)["credential"]
    assert verify(world, suspended_token)["status"] == "suspended"
    act(world, "reinstate", licence_id)
    assert verify(world, token)["status"] == "valid"
    act(world, "revoke", licence_id)
    assert verify(world, token)["status"] == "revoked"
    # No credential for a revoked licence.
    for route in ("credential", "credential.png"):
        r = get(world, f"/v1/licences/{licence_id}/{route}", holder)
        problem(r, 409, "licence-state-conflict")


def test_the_credentials_own_term_decides_expired_and_not_yet_valid(world: World) -> None:
    holder = new_party(world.client, world.rng)
    licence_id = issue(world, holder.subject)
    token = credential_of(world, licence_id, holder)["credential"]
    now = datetime.now(UTC)
    world.set_clock(now + timedelta(days=366 * 11))  # ir.driving runs ten years
    late = verify(world, token)
    assert late["status"] == "expired" and late["checked_at"].startswith(str(now.year + 11))
    assert get(world, f"/v1/licences/{licence_id}", holder).json()["status"] == "expired"
    world.set_clock(now - timedelta(days=3))  # before valid_from (yesterday)
    assert verify(world, token)["status"] == "not_yet_valid"
    # A licence issued with a term long over is expired today.
    old = issue(world, holder.subject, valid_from=date(2010, 1, 1))
    world.set_clock(now)
    old_token = credential_of(world, old, holder)["credential"]
    assert verify(world, old_token)["status"] == "expired"


def test_public_routes_need_no_token(world: World) -> None:
    types = world.client.get("/v1/licences/types")
    assert types.status_code == 200
    codes = {t["code"] for t in types.json()["items"]}
    assert {"ir.driving", "ir.business", "ir.engineering", "ee.taxi-driver"} <= codes
    assert world.client.get("/v1/licences/issuer-keys").status_code == 200


@pytest.mark.parametrize(
    ("credential", "rule"),
    [
        ("not-a-credential", "malformed"),
        ("a.b", "malformed"),
        ("e30.e30.e30=", "malformed"),
        ("A" * (MAX_CREDENTIAL_CHARS + 1), "string_too_long"),
    ],
)
def test_an_unreadable_credential_is_400_naming_the_parameter(
    world: World, credential: str, rule: str
) -> None:
    r = world.client.get("/v1/licences/verify", params={"credential": credential})
    slug = "invalid-request" if rule == "string_too_long" else "invalid-credential"
    errors: Any = problem(r, 400, slug)["errors"]
    assert [(e["field"], e["rule"]) for e in errors] == [("credential", rule)]
    problem(world.client.get("/v1/licences/verify"), 400, "invalid-request")


def test_verify_is_rate_limited_per_client_address(world: World) -> None:
    # Public, so no subject: the bucket is the client's address (TestClient's "testclient").
    limiter = RateLimiter(2)
    taken: list[str] = []

    def check(subject: str) -> None:
        taken.append(subject)
        enforce_rate_limit(limiter, subject)

    world.client.app.state.check_rate = check  # type: ignore[attr-defined]
    for _ in range(2):
        answer = world.client.get("/v1/licences/verify", params={"credential": "a.b"})
        assert answer.status_code == 400  # counted even when unreadable
    r = world.client.get("/v1/licences/verify", params={"credential": "a.b"})
    problem(r, 429, "rate-limited")
    assert int(r.headers["retry-after"]) >= 1
    assert taken == ["address:testclient"] * 3


# --- forgeries -----------------------------------------------------------------------------------


def _with_payload(token: str, change: dict[str, Any]) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(_unb64(payload))
    claims.update(change)
    body = json.dumps(claims, separators=(",", ":")).encode()
    return f"{header}.{_b64(body)}.{signature}"


@pytest.mark.parametrize(
    "change",
    [
        {"iss": ASNAF},
        {"sub": "ir-nid:0013542419"},
        {"lty": "ir.business"},
        {"lno": "0000000000"},
        {"vf": "2020-01-01"},
        {"vu": "2099-12-31"},
        {"nbf": 0},
        {"exp": 4_102_444_800},
        {"iat": 1},
        {"jti": "8f14e45f-ceea-4e7a-9d3b-5b1f8e3c2a10"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_each_changed_claim_breaks_the_signature(world: World, change: dict[str, Any]) -> None:
    holder = new_party(world.client, world.rng)
    token = credential_of(world, issue(world, holder.subject), holder)["credential"]
    answer = verify(world, _with_payload(token, change))
    assert answer == {**answer, "status": "not_authentic", "reason": "bad_signature"}
    assert answer["claims"] is None and answer["superseded"] is None


def test_forgeries_are_not_authentic_with_the_reason(world: World) -> None:
    holder = new_party(world.client, world.rng)
    licence_id = issue(world, holder.subject)
    token = credential_of(world, licence_id, holder)["credential"]
    header, payload, signature = token.split(".")
    # One payload character changed (re-encoded so the text stays canonical base64url).
    raw = bytearray(_unb64(payload))
    raw[raw.index(b'"lno":"') + 7] ^= 1  # a digit of the number becomes another digit
    assert verify(world, f"{header}.{_b64(bytes(raw))}.{signature}")["reason"] == "bad_signature"
    # The signature changed.
    sig = bytearray(_unb64(signature))
    sig[0] ^= 1
    assert verify(world, f"{header}.{payload}.{_b64(bytes(sig))}")["reason"] == "bad_signature"
    # Signed by another agency's registered key, claiming this issuer.
    business = issue(world, holder.subject, licence_type="ir.business", agency=world.asnaf)
    credential_of(world, business, holder)  # registers asnaf's key
    _, asnaf_key = world.keys.signing_key(ASNAF)
    claims = _claims_of(world, licence_id)
    forged = encode_credential(claims, private_key=asnaf_key)
    assert verify(world, forged)["reason"] == "wrong_issuer"
    # Signed by a key nobody published.
    stray = encode_credential(claims, private_key=Ed25519PrivateKey.generate())
    assert verify(world, stray)["reason"] == "unknown_key"


def _claims_of(world: World, licence_id: str) -> CredentialClaims:
    from licences import store
    from licences.types import default_licence_types

    with world.engine.connect() as conn:
        licence = store.get_licence(conn, licence_id)
    assert licence is not None
    licence_type = default_licence_types().get(licence.licence_type)
    assert licence_type is not None
    return credential_claims(licence, licence_type)


def test_the_issuers_own_key_cannot_vouch_for_what_the_licence_does_not_say(
    world: World,
) -> None:
    holder = new_party(world.client, world.rng)
    licence_id = issue(world, holder.subject)
    kid = credential_of(world, licence_id, holder)["kid"]
    _, key = world.keys.signing_key(RAHVAR)
    claims = _claims_of(world, licence_id)
    changes: list[tuple[dict[str, Any], str]] = [
        ({"number": "1111111111"}, "licence_mismatch"),
        ({"valid_until": claims.valid_until + timedelta(days=1)}, "licence_mismatch"),
        ({"licence_id": "8f14e45f-ceea-4e7a-9d3b-5b1f8e3c2a10"}, "unknown_licence"),
    ]
    for change, reason in changes:
        token = encode_credential(replace(claims, **change), private_key=key)
        assert verify(world, token)["reason"] == reason, change
    # A key revoked in the registry vouches for nothing signed after its revocation; what it
    # signed before stays authentic.
    genuine = encode_credential(claims, private_key=key)
    submit(world, world.rahvar, "key.revoke", {"kid": kid, "reason": "key_compromise"})
    assert verify(world, genuine)["status"] == "valid"
    later = replace(claims, issued_at=int(datetime.now(UTC).timestamp()) + 60)
    answer = verify(world, encode_credential(later, private_key=key))
    assert (answer["status"], answer["reason"]) == ("not_authentic", "key_revoked")


def test_a_gregorian_jurisdiction_has_one_calendar_and_its_own_midnight(world: World) -> None:
    agency = Party(
        "agency:transpordiamet",
        bearer("agency:transpordiamet", "agency"),
        generate_private_key("EdDSA"),
    )
    register(world.client, agency)
    subject = "ee-ik:37605030299"
    holder = Party(subject, bearer(subject, "citizen"), generate_private_key("EdDSA"))
    register(world.client, holder)
    licence_id = issue(
        world, subject, licence_type="ee.taxi-driver", agency=agency, valid_from=date(2025, 7, 1)
    )
    claims = credential_of(world, licence_id, holder)["claims"]
    assert claims["valid_from"] == {"date": "2025-07-01"}
    # Tallinn keeps summer time (UTC+3) in July; the term ends on 2030-06-30, also in summer.
    assert claims["not_before"] == "2025-06-30T21:00:00Z"
    assert claims["expires_at"] == "2030-06-30T21:00:00Z"
    assert claims["valid_until"] == {"date": "2030-06-30"}
