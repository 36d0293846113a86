"""`pishkhan payments worker`: the background work of payments, as its own process (the API
stays stateless): deliver due outbound webhooks to agencies, and expire abandoned intents.

Run one or several beside the API; they share nothing but the database (deliveries are leased,
so two workers never send the same attempt).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.database import make_engine
from api.payments.setup import payments_runtime, webhook_signing_key
from api.settings import get_settings
from payments.outbound_store import WebhookEndpoint
from payments.webhook_sender import WEBHOOK_TIMEOUT_S, deliver_due
from payments.webhook_signing import OutboundSigningKeys, ed25519_kid

logger = logging.getLogger("pishkhan.payments.worker")

DEFAULT_INTERVAL_S = 5.0
MIN_INTERVAL_S = 0.1


def _utc_now() -> datetime:
    return datetime.now(UTC)


def signing_keys_for(
    key: Ed25519PrivateKey | None,
) -> Callable[[WebhookEndpoint], OutboundSigningKeys | None]:
    """keys_for of deliver_due: the service's Ed25519 key beside the endpoint's HMAC secrets."""

    def keys_for(endpoint: WebhookEndpoint) -> OutboundSigningKeys | None:
        if key is None:
            return None
        return OutboundSigningKeys(
            hmac_secrets=endpoint.hmac_secrets,
            ed25519_private_key=key,
            ed25519_kid=ed25519_kid(key.public_key()),
        )

    return keys_for


def run_worker(*, once: bool, interval_s: float = DEFAULT_INTERVAL_S) -> int:
    """Loop (or one pass with once): deliver what is due, expire what is due. Exit code 0."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    runtime = payments_runtime(settings, engine, clock=_utc_now)
    keys_for = signing_keys_for(webhook_signing_key(settings))
    interval_s = max(interval_s, MIN_INTERVAL_S)
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
        while True:
            sent = deliver_due(engine=engine, client=client, keys_for=keys_for, now=_utc_now)
            expired = runtime.expire_due()
            if sent or expired:
                logger.info("payments worker: %d attempts, %d intents expired", sent, expired)
            if once:
                return 0
            time.sleep(interval_s)
