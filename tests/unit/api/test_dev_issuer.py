"""The development issuer (api/dev_issuer.py), `pishkhan dev token` (api/dev_cli.py), and how
token_verifier_from_settings picks the identity provider."""

from __future__ import annotations

import argparse
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import jwt
import pytest

from api.auth import (
    AuthConfigError,
    AuthError,
    Principal,
    Role,
    token_verifier_from_settings,
)
from api.dev_cli import EXIT_OK, EXIT_REFUSED, ROLE_NAMES, add_dev_commands, run_dev
from api.dev_issuer import DevIssuerError, dev_jwks, mint_token
from api.settings import Settings
from signatures.jwk import PublicJwk

CITIZEN = "ir-nid:0499370899"
Env = Literal["dev", "test", "prod"]


def _settings(tmp_path: Path, env: Env = "dev", **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "env": env,
        "dev_issuer_key_file": tmp_path / "keys" / "dev-issuer.pem",
        "oidc_jwks_file": None,
        "oidc_jwks_url": None,
        **changes,
    }
    return Settings(**values)


@pytest.mark.parametrize("env", ["prod", "test"])
def test_refused_outside_dev(tmp_path: Path, env: Env) -> None:
    settings = _settings(tmp_path, env)
    with pytest.raises(DevIssuerError, match="PISHKHAN_ENV=dev"):
        mint_token(settings, subject=CITIZEN, roles=["citizen"])
    with pytest.raises(DevIssuerError):
        dev_jwks(settings)
    assert not settings.dev_issuer_key_file.exists()
    assert not settings.dev_issuer_key_file.parent.exists()


@pytest.mark.parametrize("env", ["prod", "test"])
def test_no_identity_provider_outside_dev_is_a_configuration_error(
    tmp_path: Path, env: Env
) -> None:
    with pytest.raises(AuthConfigError, match="PISHKHAN_OIDC_JWKS_URL") as caught:
        token_verifier_from_settings(_settings(tmp_path, env))
    assert caught.value.setting == "oidc_jwks_url"


def test_minted_token_verifies_in_dev(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    verifier = token_verifier_from_settings(settings)
    token = mint_token(settings, subject=CITIZEN, roles=[Role.CITIZEN, "business"])
    principal = verifier.verify(token)
    assert principal.subject == CITIZEN
    assert principal.roles == {Role.CITIZEN, Role.BUSINESS}
    assert principal.token_id is not None


def test_token_contents(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    token = mint_token(settings, subject="agency:tax-office", roles=["agency"], ttl_s=600, now=now)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = PublicJwk.from_dict({**dev_jwks(settings)["keys"][0]}).thumbprint()
    assert header == {"alg": "EdDSA", "kid": kid, "typ": "JWT"}
    t = int(now.timestamp())
    assert claims["iss"] == settings.oidc_issuer and claims["aud"] == settings.oidc_audience
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (t, t, t + 600)
    assert claims["roles"] == ["agency"] and len(claims["jti"]) >= 22
    verifier = token_verifier_from_settings(settings)
    assert verifier.verify(token, now=now + timedelta(seconds=599)).subject == "agency:tax-office"
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(token, now=now + timedelta(seconds=600 + verifier.leeway_s))


def test_key_created_once_owner_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = dev_jwks(settings)
    path = settings.dev_issuer_key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert dev_jwks(settings) == first
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    assert first["keys"][0]["kty"] == "OKP" and "d" not in first["keys"][0]


def test_key_file_readable_by_others_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    dev_jwks(settings)
    settings.dev_issuer_key_file.chmod(0o644)
    with pytest.raises(DevIssuerError, match="0600"):
        mint_token(settings, subject=CITIZEN, roles=["citizen"])
    with pytest.raises(AuthConfigError) as caught:
        token_verifier_from_settings(settings)
    assert caught.value.setting == "dev_issuer_key_file"


@pytest.mark.parametrize(
    ("subject", "roles", "ttl_s", "message"),
    [
        ("agency:tax-office", ["citizen"], 60, "role citizen"),
        (CITIZEN, ["root"], 60, "unknown role"),
        (CITIZEN, [], 60, "at least one role"),
        (CITIZEN, ["citizen"], 0, "lifetime"),
        (CITIZEN, ["citizen"], 24 * 3600 + 1, "lifetime"),
    ],
)
def test_mint_refuses_what_the_verifier_would(
    tmp_path: Path, subject: str, roles: list[str], ttl_s: int, message: str
) -> None:
    with pytest.raises(DevIssuerError, match=message):
        mint_token(_settings(tmp_path), subject=subject, roles=roles, ttl_s=ttl_s)


def test_jwks_file_and_url_both_set_refused(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, oidc_jwks_file=tmp_path / "jwks.json", oidc_jwks_url="https://id.example/jwks"
    )
    with pytest.raises(AuthConfigError, match="not both"):
        token_verifier_from_settings(settings)


def test_configured_jwks_file_wins_over_the_dev_issuer(tmp_path: Path) -> None:
    dev = _settings(tmp_path)
    document = tmp_path / "jwks.json"
    document.write_text(json.dumps(dev_jwks(dev)))
    token = mint_token(dev, subject=CITIZEN, roles=["citizen"])
    prod = _settings(tmp_path / "elsewhere", "prod", oidc_jwks_file=document)
    assert token_verifier_from_settings(prod).verify(token).subject == CITIZEN
    missing = _settings(tmp_path, "prod", oidc_jwks_file=tmp_path / "missing.json")
    with pytest.raises(AuthConfigError) as caught:
        token_verifier_from_settings(missing)
    assert caught.value.setting == "oidc_jwks_file"


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"oidc_jwks_url": "http://id.example/jwks"}, "oidc_jwks_url"),
        ({"oidc_jwks_url": "https://id.example/jwks", "oidc_jwks_ttl_s": 0}, "oidc_jwks_url"),
        ({"oidc_leeway_s": 3600}, "oidc_leeway_s"),
        ({"oidc_audience": ""}, "oidc_audience"),
    ],
)
def test_bad_identity_settings(tmp_path: Path, changes: dict[str, Any], setting: str) -> None:
    with pytest.raises(AuthConfigError) as caught:
        token_verifier_from_settings(_settings(tmp_path, **changes))
    assert caught.value.setting == setting


# --- pishkhan dev token --------------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pishkhan")
    add_dev_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_role_names_are_the_roles() -> None:
    assert tuple(role.value for role in Role) == ROLE_NAMES


def test_dev_token_prints_a_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(tmp_path)
    args = _parse("dev", "token", "--subject", CITIZEN, "--role", "citizen", "--role", "business")
    assert args.run is run_dev
    assert run_dev(args, settings=settings) == EXIT_OK
    out, err = capsys.readouterr()
    assert err == "" and out.count("\n") == 1
    principal = token_verifier_from_settings(settings).verify(out.strip())
    assert principal == Principal(
        CITIZEN, frozenset({Role.CITIZEN, Role.BUSINESS}), principal.token_id
    )


def test_dev_token_ttl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse("dev", "token", "--subject", "ops", "--role", "admin", "--ttl-s", "90")
    assert run_dev(args, settings=_settings(tmp_path)) == EXIT_OK
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 90


@pytest.mark.parametrize(
    ("env", "argv", "fragment"),
    [
        ("prod", ("--subject", CITIZEN, "--role", "citizen"), "PISHKHAN_ENV=dev"),
        ("test", ("--subject", CITIZEN, "--role", "citizen"), "PISHKHAN_ENV=dev"),
        ("dev", ("--subject", "agency:x-y", "--role", "citizen"), "role citizen"),
        ("dev", ("--subject", CITIZEN, "--role", "citizen", "--ttl-s", "0"), "lifetime"),
    ],
)
def test_dev_token_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    env: Env,
    argv: tuple[str, ...],
    fragment: str,
) -> None:
    code = run_dev(_parse("dev", "token", *argv), settings=_settings(tmp_path, env))
    out, err = capsys.readouterr()
    assert code == EXIT_REFUSED and out == ""
    assert err.startswith("pishkhan: dev token: refused: ") and err.count("\n") == 1
    assert fragment in err


def test_dev_token_unknown_role_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        _parse("dev", "token", "--subject", CITIZEN, "--role", "root")
