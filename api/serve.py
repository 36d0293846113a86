"""`pishkhan serve`: migrate, make sure the service keys exist, then run uvicorn."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import uvicorn

from api.auth import AuthConfigError, token_verifier_from_settings
from api.certificate_trust import CertificateTrustError, load_certificate_trust
from api.database import make_engine, migrate
from api.dev_issuer import dev_issuer_key
from api.keys import load_checkpoint_keyring
from api.settings import get_settings
from signatures.errors import ServiceKeyError

MAX_WORKERS = 64


def serve(*, host: str, port: int, workers: int) -> int:
    """Prepare storage and keys once, in this process, then start the workers.

    Returns an exit status; 2 when the keys or the database are not usable (fail closed).
    """
    if not 1 <= workers <= MAX_WORKERS:
        print(f"pishkhan serve: --workers must be between 1 and {MAX_WORKERS}", file=sys.stderr)
        return 2
    settings = get_settings()
    try:
        keyring = load_checkpoint_keyring(settings)  # refuses when no key is valid now
    except ServiceKeyError as exc:
        print(f"pishkhan serve: checkpoint key unusable: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    dev_hint = ""
    if settings.env == "dev" and not (settings.oidc_jwks_file or settings.oidc_jwks_url):
        # Created here, once, before the workers start (they would race to create it).
        dev_issuer_key(settings)
        dev_hint = (
            "  development token: pishkhan dev token --subject ir-nid:0499370899 --role citizen\n"
        )
    try:
        token_verifier_from_settings(settings)  # fail closed before any worker starts
        load_certificate_trust(settings)
    except AuthConfigError as exc:
        print(f"pishkhan serve: identity provider not configured: {exc}", file=sys.stderr)
        return 2
    except CertificateTrustError as exc:
        print(f"pishkhan serve: {exc.setting}: {exc}", file=sys.stderr)
        return 2
    vkeys = "".join(
        f"  checkpoint key:  {s.verifier.vkey}\n" for s in keyring.signers_at(datetime.now(UTC))
    )
    print(
        f"Pishkhan ({settings.env}) on http://{host}:{port}\n"
        f"  API docs:        http://{host}:{port}/docs\n"
        f"{vkeys}"
        f"{dev_hint}"
        f"  ledger checkpoint: http://{host}:{port}/v1/ledger/checkpoint",
        flush=True,
    )
    uvicorn.run(
        "api.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        server_header=False,
        log_level="info",
        log_config=None,  # each worker logs JSON lines (api.app.app_factory)
        access_log=False,  # api/logs.py writes the access lines, without query strings
    )
    return 0
