"""Service settings, from environment variables prefixed PISHKHAN_ (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/pishkhan.db"


class Settings(BaseSettings):
    """Every setting of the service. Secrets are SecretStr so they never print."""

    model_config = SettingsConfigDict(env_prefix="PISHKHAN_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "prod"
    database_url: str = DEFAULT_DATABASE_URL
    # C2SP tlog-checkpoint origin: a schema-less URL naming this log.
    ledger_origin: str = "pishkhan.example/ledger"
    # The checkpoint key's C2SP key name; the origin when empty (the usual convention).
    checkpoint_key_name: str = ""
    checkpoint_key_file: Path = Path("var/keys/checkpoint-ed25519.pem")
    # The keyring manifest (rotation with overlap); without it checkpoint_key_file is the keyring.
    checkpoint_keyring: Path = Path("var/keys/checkpoint-keyring.json")
    # The passphrase of the encrypted service keys: from a secret file, or the environment.
    key_passphrase_file: Path | None = None
    key_passphrase: SecretStr | None = None
    # Generate the service keys on first start when missing (the embedded default).
    generate_keys: bool = False

    # Bearer tokens from an OpenID Connect provider (api/auth.py). In dev, when neither a JWKS file
    # nor a URL is set, the development issuer (`pishkhan dev token`) is the provider.
    oidc_issuer: str = "https://pishkhan.example/dev-issuer"
    oidc_audience: str = "pishkhan"
    oidc_jwks_file: Path | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks_ttl_s: int = 300
    oidc_leeway_s: int = 30
    dev_issuer_key_file: Path = Path("var/keys/dev-issuer-ed25519.pem")
    # X.509 chains presented at key registration: trust anchors (a PEM bundle) and the CRLs in
    # hand (a directory of .crl/.pem files, PEM or DER; nothing is fetched). Without anchors a
    # registration carrying x5c is refused.
    certificate_trust_anchors: Path | None = None
    certificate_crl_dir: Path | None = None
    # Requests per subject per minute, per worker process (api/limits.py).
    rate_limit_per_minute: int = 600

    @field_validator("ledger_origin")
    @classmethod
    def _origin_is_one_line(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError("ledger_origin must be non-empty and contain no white space")
        return value

    @property
    def key_name(self) -> str:
        return self.checkpoint_key_name or self.ledger_origin

    @property
    def may_generate_keys(self) -> bool:
        return self.generate_keys or self.env == "dev"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
