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

    # Payments (docs/PAYMENTS.md). Providers offered to payers, comma-separated: "sandbox" (the
    # embedded, offline one; refused in prod unless payments_allow_sandbox) and "stripe".
    # Unset: the sandbox in dev and test, none in prod.
    payment_providers: str | None = None
    payments_allow_sandbox: bool = False
    # The sandbox signs its webhooks with this secret (generated under var/keys in dev).
    sandbox_webhook_secret_file: Path = Path("var/keys/sandbox-webhook.secret")
    stripe_api_key: SecretStr | None = None
    # Comma-separated whsec_… secrets (several during rotation).
    stripe_webhook_secrets: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    # Where Stripe sends the payer back after a 3-D Secure redirect (an https URL of the app).
    stripe_return_url: str | None = None
    # The fee schedules (pishkhan.fee_schedules/1); the packaged illustrative file when unset.
    fee_schedules_file: Path | None = None
    # Outbound webhooks to agencies: the Ed25519 key of Pishkhan-Signature-Ed25519, and whether
    # agencies may register http:// endpoints on loopback (tests and local development only).
    webhook_key_file: Path = Path("var/keys/webhook-ed25519.pem")
    webhook_allow_loopback_http: bool = False
    # Licence credentials (issue 8): one Ed25519 key per licensing agency, <agency id>.pem,
    # encrypted with the key passphrase and created on first use (api/licences/issuer_keys.py).
    # Every worker on every machine must see the same directory, as with the checkpoint key.
    licence_issuer_key_dir: Path = Path("var/keys/licence-issuers")

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

    @property
    def payment_provider_names(self) -> frozenset[str]:
        if self.payment_providers is None:
            return frozenset() if self.env == "prod" else frozenset({"sandbox"})
        return frozenset(n.strip() for n in self.payment_providers.split(",") if n.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
