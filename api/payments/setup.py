"""Wiring of the payment providers and the outbound webhook key from the settings."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from api.keys import service_key_passphrase
from api.payments.runtime import PaymentsRuntime
from api.settings import Settings
from payments.bill_ids import DEFAULT_BILL_SERVICE_TYPES
from payments.fees import load_default_fee_schedules, load_fee_schedules
from payments.handlers import PaymentsConfig
from payments.providers import PaymentProvider
from payments.sandbox import SandboxProvider
from payments.sandbox_sql import SqlSandboxRecords
from payments.stripe_provider import STRIPE_CURRENCIES, StripeProvider
from signatures.errors import ServiceKeyError
from signatures.service_keys import create_ed25519, load_ed25519

KNOWN_PROVIDERS = frozenset({"sandbox", "stripe"})
SANDBOX_SECRET_BYTES = 32


class PaymentsSetupError(ValueError):
    """The payment settings do not describe a usable configuration (the message says which)."""


def _sandbox_secret(settings: Settings) -> bytes:
    path = settings.sandbox_webhook_secret_file
    if not path.exists():
        if not settings.may_generate_keys:
            raise PaymentsSetupError(f"the sandbox webhook secret file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(SANDBOX_SECRET_BYTES) + "\n")
        path.chmod(0o600)
    return path.read_text().strip().encode()


def _stripe(settings: Settings) -> StripeProvider:
    if settings.stripe_api_key is None or settings.stripe_webhook_secrets is None:
        raise PaymentsSetupError("stripe needs PISHKHAN_STRIPE_API_KEY and _WEBHOOK_SECRETS")
    whsecs = settings.stripe_webhook_secrets.get_secret_value().split(",")
    return StripeProvider(
        api_key=settings.stripe_api_key.get_secret_value(),
        webhook_secrets=[w.strip() for w in whsecs if w.strip()],
        api_base=settings.stripe_api_base,
        return_url=settings.stripe_return_url,
    )


def build_providers(
    settings: Settings, engine: Engine, *, clock: Callable[[], datetime]
) -> dict[str, PaymentProvider]:
    """The providers PISHKHAN_PAYMENT_PROVIDERS names. Raises PaymentsSetupError for an unknown
    name, the sandbox in prod without payments_allow_sandbox, or a provider missing settings."""
    names = settings.payment_provider_names
    unknown = names - KNOWN_PROVIDERS
    if unknown:
        raise PaymentsSetupError(f"unknown payment providers: {', '.join(sorted(unknown))}")
    providers: dict[str, PaymentProvider] = {}
    if "sandbox" in names:
        if settings.env == "prod" and not settings.payments_allow_sandbox:
            raise PaymentsSetupError("the sandbox takes fake cards: not in prod without opt-in")
        providers["sandbox"] = SandboxProvider(
            records=SqlSandboxRecords(engine),
            now=clock,
            webhook_secrets=[_sandbox_secret(settings)],
        )
    if "stripe" in names:
        providers["stripe"] = _stripe(settings)
    return providers


def payments_runtime(
    settings: Settings,
    engine: Engine,
    *,
    clock: Callable[[], datetime],
    providers: dict[str, PaymentProvider] | None = None,
) -> PaymentsRuntime:
    """The runtime with the default bill service types and the fee schedules of the settings
    (the packaged illustrative ones when PISHKHAN_FEE_SCHEDULES_FILE is unset)."""
    chosen = build_providers(settings, engine, clock=clock) if providers is None else providers
    fees = settings.fee_schedules_file
    config = PaymentsConfig(
        service_types=DEFAULT_BILL_SERVICE_TYPES,
        fee_book=load_default_fee_schedules() if fees is None else load_fee_schedules(fees),
        providers=frozenset(chosen),
        currencies={"stripe": STRIPE_CURRENCIES} if "stripe" in chosen else {},
    )
    return PaymentsRuntime(engine, config=config, providers=chosen, clock=clock)


def webhook_signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    """The outbound webhooks' Ed25519 key: loaded, generated on first start when allowed, or
    None when there is none (deliveries then carry the HMAC header only)."""
    path = settings.webhook_key_file
    try:
        passphrase = service_key_passphrase(settings)
        if path.exists():
            return load_ed25519(path, passphrase=passphrase)
        if settings.may_generate_keys:
            return create_ed25519(path, passphrase=passphrase)
    except ServiceKeyError:
        return None
    return None
