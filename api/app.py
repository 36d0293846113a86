"""The FastAPI application: wiring of settings, engine, keys, problem handlers and routes.

create_app does not migrate: `pishkhan serve` migrates before it starts the server, and /readyz
answers 503 while the schema is behind. Run with `uvicorn --factory api.app:app_factory`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, Request
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from api.auth import TokenVerifier, token_verifier_from_settings
from api.certificate_trust import load_certificate_trust
from api.database import is_schema_current, make_engine, read_only
from api.keys import CheckpointKeyring, checkpoint_sign_note, load_checkpoint_keyring
from api.licences.issuer_keys import IssuerKeys, PipelineRegistrar
from api.limits import RateLimiter, enforce_rate_limit, install_limits
from api.logs import configure_logging, install_request_ids
from api.metrics import install_metrics
from api.payments.runtime import PaymentsRuntime
from api.payments.setup import payments_runtime
from api.problems import Problem, install_problem_handlers, problem_responses, problem_type
from api.routes import (
    agency_payments,
    keys,
    ledger,
    licence_credentials,
    licences,
    payments,
    public_keys,
    tax,
    tax_invoices,
    transactions,
)
from api.settings import Settings, get_settings
from api.transactions.registry import TypeRegistry, default_registry
from api.transactions.service import TransactionService
from ledger import store
from ledger.note import NoteSigner
from licences.types import LicenceTypeBook, default_licence_types

logger = logging.getLogger("pishkhan.api")


def _version() -> str:
    try:
        return version("pishkhan")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    checkpoint_signer: NoteSigner | None = None,
    checkpoint_keyring: CheckpointKeyring | None = None,
    token_verifier: TokenVerifier | None = None,
    registry: TypeRegistry | None = None,
    payments_runtime_: PaymentsRuntime | None = None,
    licence_types: LicenceTypeBook | None = None,
    issuer_keys: IssuerKeys | None = None,
) -> FastAPI:
    """Build the application; engine and keyring come from settings unless given.

    A checkpoint_signer alone stands for a keyring of that one key. An engine built here is
    disposed of at shutdown; one passed in belongs to the caller. `licence_types` defaults to
    the packaged licence types (used by the default registry and the licence routes alike);
    `issuer_keys`, the agencies' credential keys, to the ones under
    settings.licence_issuer_key_dir (nothing is read before a credential is asked for). Raises
    ServiceKeyError when the checkpoint keyring cannot be loaded (or generated) or no key of it
    is valid now.
    """
    settings = settings or get_settings()
    owns_engine = engine is None
    engine = engine or make_engine(settings.database_url)
    if checkpoint_keyring is None and checkpoint_signer is not None:
        checkpoint_keyring = CheckpointKeyring.single(checkpoint_signer)
    keyring = checkpoint_keyring or load_checkpoint_keyring(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_engine:
            engine.dispose()

    app = FastAPI(title="Pishkhan", version=_version(), lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    # Today's date for read-only views that depend on it (tax obligations); tests replace it.
    app.state.clock = _utc_now
    # Configuration loaded at start, shared by every request: not request state.
    app.state.checkpoint_keyring = keyring
    app.state.token_verifier = token_verifier or token_verifier_from_settings(settings)
    limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.check_rate = lambda subject: enforce_rate_limit(limiter, subject)
    # Middleware order: the last installed is outermost, so the access log and the metrics see
    # every final status, the limits' 413/415 and the last-resort 500 included.
    install_problem_handlers(app)
    install_limits(app)
    metrics = install_metrics(app)
    metrics.set_ledger_size_reader(lambda: _tree_size(engine))
    install_request_ids(app)
    runtime = payments_runtime_ or payments_runtime(settings, engine, clock=_utc_now)
    app.state.payments = runtime
    book = licence_types or default_licence_types()
    app.state.licence_types = book
    service = TransactionService(
        engine,
        registry=registry
        or default_registry(
            certificate_trust=load_certificate_trust(settings), payments=runtime, licences=book
        ),
        origin=settings.ledger_origin,
        sign_note=checkpoint_sign_note(keyring),
        on_outcome=metrics.transaction_outcome,
        on_batch=metrics.batch_written,
    )
    app.state.transactions = service
    # Licence credentials: the agencies' keys, registered through this app's own pipeline.
    app.state.issuer_keys = issuer_keys or IssuerKeys.from_settings(settings)
    app.state.issuer_registrar = PipelineRegistrar(service)
    app.include_router(transactions.router)
    app.include_router(keys.router)
    app.include_router(ledger.router)
    app.include_router(public_keys.router)
    app.include_router(payments.router)
    app.include_router(agency_payments.router)
    app.include_router(tax.router)
    app.include_router(tax_invoices.router)
    # Before licences.router: its /v1/licences/{licence_id} would take /verify, /issuer-keys.
    app.include_router(licence_credentials.router)
    app.include_router(licences.router)
    app.add_api_route(
        "/healthz", healthz, methods=["GET"], tags=["health"], responses=problem_responses()
    )
    app.add_api_route(
        "/readyz", readyz, methods=["GET"], tags=["health"], responses=problem_responses(503)
    )
    return app


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _tree_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return store.current_tree_size(read_only(conn))


# A served worker's GIL switch interval (CPython's default is 5 ms). The group-commit thread
# holds the ledger lock, which every worker waits on, across its round trips to the database;
# after each answer it needs the GIL back from the request threads, and waits up to this long.
WORKER_SWITCH_INTERVAL_S = 0.0005


def app_factory() -> FastAPI:
    """For `uvicorn --factory api.app:app_factory`: everything from the environment, logging
    as JSON lines (api/logs.py), and the worker's GIL switch interval."""
    configure_logging("INFO")
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL_S)
    return create_app()


def healthz() -> dict[str, str]:
    """Liveness: the process answers. Touches nothing else."""
    return {"status": "ok"}


def _not_ready_reason(engine: Engine, keyring: object) -> str | None:
    try:
        with engine.connect() as conn:
            read_only(conn).execute(text("SELECT 1"))
        if not is_schema_current(engine):
            return "the database schema is not at the newest migration"
    except SQLAlchemyError as exc:
        # The driver's message may name hosts and users: log the type only.
        logger.warning("readiness: database unreachable (%s)", type(exc).__name__)
        return "the database is not reachable"
    if not isinstance(keyring, CheckpointKeyring):
        return "the checkpoint keyring is not loaded"
    if not keyring.signers_at(datetime.now(UTC)):
        return "no checkpoint key is valid now"
    return None


def readyz(request: Request) -> dict[str, str]:
    """Readiness: database reachable, schema current, a checkpoint key valid now; else 503."""
    state = request.app.state
    reason = _not_ready_reason(state.engine, getattr(state, "checkpoint_keyring", None))
    if reason is not None:
        raise Problem(503, problem_type("not-ready"), "Service not ready", reason)
    return {"status": "ok"}
