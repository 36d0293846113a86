"""RFC 9457 problem details: the one place where errors become HTTP answers.

Every error the API answers is `application/problem+json` with the members `type`, `title`,
`status`, optionally `detail`, `instance` and `errors` (a list of {field, rule, message}, one per
rejected input). Package errors carry no HTTP codes; `ERROR_TABLE` below maps them.

Choices made here, so clients can rely on them:
- Invalid request parameters (missing, not an integer, out of range) are **400**, never 422:
  RFC 9110 makes 400 the answer to a malformed request, and one status for "fix your request"
  keeps clients simple. `errors` names each field and the rule it broke.
- A tree size beyond the current tree (TreeSizeError) is **400**, not 404: the request is
  out of bounds for the log as it is, and `detail` says "beyond the current tree size". A missing
  *resource* (an entry index not yet written, a checkpoint on an empty ledger) is **404**.
- StorageInconsistentError is the one deliberate 5xx: the stored ledger contradicts itself, so the
  server fails closed with **500** `ledger-inconsistent`, an opaque `instance` to quote to the
  operator, and no internals in the body (they go to the log).
- Plain HTTP errors with no meaning beyond their status (unknown route 404, 405) use the RFC's
  `about:blank` type with the status phrase as title; a 405 keeps its `Allow` header.
- Anything else is a 500 `internal-error` problem; the log gets the exception's type and stack
  frames but not its message, which may quote stored values (personal data) in other packages.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import (
    LedgerLimitError,
    NoteFormatError,
    NoteSignatureError,
    NotFoundError,
    ProofLengthError,
    RootMismatchError,
    StorageInconsistentError,
    TreeSizeError,
)
from licences.errors import (
    CredentialError,
    DuplicateLicenceNumberError,
    LicenceNotFoundError,
    LicenceStateError,
    NotIssuingAgencyError,
    RenewalPendingError,
    RenewalRefusedError,
)
from payments.errors import (
    BillAlreadyIssuedError,
    DeliveryNotFoundError,
    DeliveryReplayLimitError,
    DeliveryStateError,
    FeeNotFoundError,
    IntentEventLimitError,
    PayableAlreadyPaidError,
    PayableAmountError,
    PayableNotFoundError,
    PayableStateError,
    PaymentFieldError,
    PaymentInProgressError,
    PaymentNotFoundError,
    PaymentStateError,
    ProviderError,
    ProviderEventMismatchError,
    ProviderTimeoutError,
    RefundLimitError,
    StaleRefundableAmountError,
    UnknownChargeError,
    UnknownCurrencyError,
    WebhookEndpointExistsError,
    WebhookEndpointLimitError,
    WebhookEndpointNotFoundError,
    WebhookSignatureError,
)
from signatures.errors import (
    CertificateError,
    ChallengeError,
    DelegationError,
    DelegationNotFoundError,
    EnvelopeError,
    KeyNotFoundError,
    KeyRecordError,
    KeyStateError,
    RegistryConflictError,
    RegistryLimitError,
    ServiceKeyError,
)
from tax.errors import FilingChainError, InvoiceResponseError, TaxFieldError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://pishkhan.example/problems/"
# RFC 9457 §4.2.1: the type of a problem that means no more than its HTTP status.
ABOUT_BLANK = "about:blank"
# Limits whose breach is a request below a minimum (400) rather than too large (413).
MINIMUM_LIMITS = frozenset({"min_batch_leaves"})
# Request-location prefixes FastAPI puts first in a validation error's `loc`.
_LOCATIONS = frozenset({"path", "query", "header", "cookie", "body"})
# The ledger names what our query parameters call index, first and second.
_FIELD_ALIASES = {"leaf_index": "index", "first_size": "first", "second_size": "second"}

logger = logging.getLogger("pishkhan.api")


def problem_type(slug: str) -> str:
    """The type URI of one of our problems."""
    return PROBLEM_TYPE_BASE + slug


class FieldError(BaseModel):
    """One rejected input: which field, which rule it broke, and a message for humans."""

    model_config = ConfigDict(frozen=True)

    field: str = Field(description="The parameter, as named in the request")
    rule: str = Field(description="The rule it broke, e.g. uint_parsing, less_than_equal, range")
    message: str


@dataclass(eq=False)
class Problem(Exception):
    """An RFC 9457 problem; raise it from a route, or build one to render."""

    status: int
    type: str
    title: str
    detail: str | None = None
    errors: tuple[FieldError, ...] = ()
    instance: str | None = None
    headers: dict[str, str] | None = None
    # RFC 9457 §3.2 extension members (e.g. an ETSI indication); never personal data.
    extensions: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__init__(self.title)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            out["detail"] = self.detail
        if self.instance is not None:
            out["instance"] = self.instance
        if self.errors:
            out["errors"] = [e.model_dump() for e in self.errors]
        for name, value in (self.extensions or {}).items():
            out.setdefault(name, value)
        return out

    def response(self) -> JSONResponse:
        return JSONResponse(
            self.body(),
            status_code=self.status,
            headers=self.headers,
            media_type=PROBLEM_MEDIA_TYPE,
        )


# --- The one table: package errors → (status, type slug, title) --------------------------------


@dataclass(frozen=True)
class ProblemKind:
    status: int
    slug: str
    title: str


ERROR_TABLE: dict[type[Exception], ProblemKind] = {
    TreeSizeError: ProblemKind(400, "tree-size-out-of-range", "Tree size or index out of range"),
    ProofLengthError: ProblemKind(400, "proof-length", "Proof has the wrong length"),
    RootMismatchError: ProblemKind(400, "root-mismatch", "Proof does not lead to the root"),
    NotFoundError: ProblemKind(404, "not-found", "Not found"),
    LedgerLimitError: ProblemKind(413, "limit-exceeded", "A size limit was exceeded"),
    NoteFormatError: ProblemKind(400, "malformed-note", "Malformed signed note"),
    NoteSignatureError: ProblemKind(400, "note-signature", "Signed note does not verify"),
    StorageInconsistentError: ProblemKind(
        500, "ledger-inconsistent", "The ledger failed an integrity check"
    ),
    # The key registry's transactions (signatures.registry_handlers).
    ChallengeError: ProblemKind(
        400, "challenge-invalid", "The registration challenge is not usable"
    ),
    KeyNotFoundError: ProblemKind(404, "key-not-found", "No such key"),
    DelegationNotFoundError: ProblemKind(404, "delegation-not-found", "No such delegation"),
    RegistryConflictError: ProblemKind(409, "already-exists", "It already exists"),
    KeyStateError: ProblemKind(409, "key-state-conflict", "The key's state does not allow this"),
    DelegationError: ProblemKind(400, "delegation-invalid", "The delegation is not valid"),
    KeyRecordError: ProblemKind(400, "key-invalid", "The key registration is not valid"),
    RegistryLimitError: ProblemKind(429, "registry-limit", "A registry limit was reached"),
    CertificateError: ProblemKind(400, "certificate-invalid", "The certificate chain is not valid"),
    EnvelopeError: ProblemKind(
        400, "payload-invalid", "The payload is not valid for this transaction type"
    ),
    # Payments (payments.handlers, payments.payment_flow, api.payments).
    PaymentFieldError: ProblemKind(400, "invalid-field", "A field is not valid"),
    UnknownCurrencyError: ProblemKind(400, "unknown-currency", "The currency is not accepted"),
    PayableNotFoundError: ProblemKind(404, "payable-not-found", "No such payable"),
    PaymentNotFoundError: ProblemKind(404, "payment-not-found", "No such payment"),
    BillAlreadyIssuedError: ProblemKind(409, "bill-already-issued", "The bill is already issued"),
    PaymentInProgressError: ProblemKind(
        409, "payment-in-progress", "Another payment of this payable is in progress"
    ),
    PayableAlreadyPaidError: ProblemKind(409, "payable-already-paid", "The payable is paid"),
    PayableStateError: ProblemKind(409, "payable-state-conflict", "The payable's state forbids it"),
    PayableAmountError: ProblemKind(
        409, "amount-refused", "The amount is refused for this payable"
    ),
    PaymentStateError: ProblemKind(409, "payment-state-conflict", "The payment's state forbids it"),
    StaleRefundableAmountError: ProblemKind(
        412, "refundable-amount-changed", "The refundable amount is not the one expected"
    ),
    FeeNotFoundError: ProblemKind(409, "fee-not-in-force", "No fee can be charged for it today"),
    IntentEventLimitError: ProblemKind(
        409, "payment-event-limit", "The payment has too many events"
    ),
    DeliveryStateError: ProblemKind(
        409, "delivery-state-conflict", "The delivery's state forbids it"
    ),
    DeliveryReplayLimitError: ProblemKind(429, "delivery-replay-limit", "Too many replays"),
    RefundLimitError: ProblemKind(409, "refund-limit", "The payment has the most refunds allowed"),
    DeliveryNotFoundError: ProblemKind(404, "delivery-not-found", "No such delivery"),
    WebhookEndpointNotFoundError: ProblemKind(404, "endpoint-not-found", "No such endpoint"),
    WebhookEndpointExistsError: ProblemKind(409, "already-exists", "It already exists"),
    WebhookEndpointLimitError: ProblemKind(
        429, "endpoint-limit", "The agency has the most webhook endpoints allowed"
    ),
    WebhookSignatureError: ProblemKind(
        400, "webhook-signature", "The webhook signature is refused"
    ),
    ProviderEventMismatchError: ProblemKind(
        400, "provider-event-mismatch", "The event does not match its payment"
    ),
    UnknownChargeError: ProblemKind(
        409, "unknown-charge", "No payment has this charge yet; deliver it again later"
    ),
    ProviderTimeoutError: ProblemKind(
        504, "provider-timeout", "The payment provider did not answer in time"
    ),
    ProviderError: ProblemKind(502, "provider-error", "The payment provider refused or failed"),
    # Tax (tax.handlers, api.routes.tax).
    TaxFieldError: ProblemKind(400, "invalid-field", "A field is not valid"),
    FilingChainError: ProblemKind(
        409, "filing-chain-conflict", "The return does not continue its chain of versions"
    ),
    InvoiceResponseError: ProblemKind(
        409, "invoice-response-refused", "The answer to the invoice is refused"
    ),
    # A service key the request needs (an agency's credential key) is missing or unreadable: the
    # operator's to fix (the detail stays generic; the log has the incident).
    ServiceKeyError: ProblemKind(
        503, "service-key-unavailable", "A signing key of the service is unavailable"
    ),
    # Licences (licences.handlers, licences.renewals, api.routes.licences).
    CredentialError: ProblemKind(400, "invalid-credential", "The credential is not readable"),
    LicenceNotFoundError: ProblemKind(404, "licence-not-found", "No such licence"),
    NotIssuingAgencyError: ProblemKind(
        403, "not-issuing-agency", "Only the issuing agency acts on this licence type"
    ),
    LicenceStateError: ProblemKind(
        409, "licence-state-conflict", "The licence's status forbids it"
    ),
    DuplicateLicenceNumberError: ProblemKind(
        409, "licence-number-taken", "The licence number is already taken"
    ),
    RenewalPendingError: ProblemKind(
        409, "licence-renewal-pending", "A renewal of this licence is waiting for its fee"
    ),
    RenewalRefusedError: ProblemKind(
        409, "licence-renewal-refused", "The licence cannot be renewed now"
    ),
}
_BELOW_MINIMUM = ProblemKind(400, "below-minimum", "A minimum was not met")
VALIDATION = ProblemKind(400, "invalid-request", "The request is not valid")
INTERNAL = ProblemKind(500, "internal-error", "Internal server error")
_INCONSISTENT_DETAIL = (
    "The stored ledger failed an integrity check; the server refuses to answer from it. "
    "Quote the instance to the operator."
)


def _kind(exc: Exception) -> ProblemKind:
    if isinstance(exc, LedgerLimitError) and exc.limit_name in MINIMUM_LIMITS:
        return _BELOW_MINIMUM
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return INTERNAL


def _incident_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def problem_from_error(exc: Exception) -> Problem:
    """The problem for a package error (INTERNAL when it is not in ERROR_TABLE)."""
    kind = _kind(exc)
    if kind.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        detail = _INCONSISTENT_DETAIL if isinstance(exc, StorageInconsistentError) else None
        return Problem(
            kind.status, problem_type(kind.slug), kind.title, detail, instance=_incident_id()
        )
    errors: tuple[FieldError, ...] = ()
    if isinstance(exc, TreeSizeError):
        field = _FIELD_ALIASES.get(exc.field, exc.field)
        errors = (FieldError(field=field, rule="range", message=str(exc)),)
    if isinstance(exc, PaymentFieldError | TaxFieldError):
        errors = tuple(
            FieldError(field=e.pointer, rule=e.rule, message=e.message) for e in exc.errors
        )
    if isinstance(exc, PayableAmountError):
        errors = (FieldError(field="amount", rule=exc.rule, message=str(exc)),)
    if isinstance(exc, FilingChainError):
        errors = (FieldError(field="amends", rule=exc.rule, message=str(exc)),)
    if isinstance(exc, WebhookSignatureError):
        errors = (FieldError(field="signature", rule=exc.rule, message=str(exc)),)
    if isinstance(exc, EnvelopeError):
        errors = tuple(
            FieldError(field="/envelope" + e.pointer, rule=e.rule, message=e.message)
            for e in exc.errors
        )
    extensions = _licence_extensions(exc)
    return Problem(
        kind.status, problem_type(kind.slug), kind.title, str(exc), errors, extensions=extensions
    )


def _licence_extensions(exc: Exception) -> dict[str, Any] | None:
    """What a holder needs to act on a refused renewal: every failed rule with its remedy, or
    the renewal already waiting and the payable to pay (the caller's own data)."""
    if isinstance(exc, RenewalRefusedError):
        return {
            "failed_rules": [
                {"rule": f.rule, "message": f.message, "remedy": f.remedy, "details": f.details}
                for f in exc.failures
            ]
        }
    if isinstance(exc, RenewalPendingError):
        return {
            "renewal_id": exc.renewal_id,
            "payable_id": exc.payable_id,
            "pay_by": exc.pay_by.isoformat(),
            **({"pay_by_jalali": exc.pay_by_jalali} if exc.pay_by_jalali is not None else {}),
        }
    return None


def problem_from_validation(exc: RequestValidationError) -> Problem:
    """400 with one FieldError per pydantic error; the rejected input is never echoed."""
    errors = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        if len(loc) > 1 and loc[0] in _LOCATIONS:
            loc = loc[1:]
        field = ".".join(loc) or "request"
        rule = str(err.get("type", "invalid"))
        errors.append(FieldError(field=field, rule=rule, message=str(err.get("msg", ""))))
    count = len(errors)
    detail = f"{count} request field{'s are' if count != 1 else ' is'} not valid"
    return Problem(
        VALIDATION.status, problem_type(VALIDATION.slug), VALIDATION.title, detail, tuple(errors)
    )


def problem_from_http(exc: StarletteHTTPException) -> Problem:
    """about:blank for plain HTTP errors; a string detail other than the phrase is kept."""
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:  # a status code without a registered phrase
        title = "Error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    headers = dict(exc.headers) if exc.headers else None
    return Problem(exc.status_code, ABOUT_BLANK, title, detail, headers=headers)


# --- Handlers ------------------------------------------------------------------------------------


def _route_path(scope: Scope) -> str:
    # The route template, never the raw path: future paths may carry identifiers.
    route = scope.get("route")
    return str(getattr(route, "path", "<no route>"))


def _log_internal(scope: Scope, exc: BaseException, instance: str | None) -> None:
    # Type and stack frames only: the message may quote stored values.
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error(
        "unhandled %s in %s %s (%s)\n%s",
        type(exc).__qualname__,
        scope.get("method", "?"),
        _route_path(scope),
        instance,
        frames,
    )


async def _on_package_error(request: Request, exc: Exception) -> JSONResponse:
    problem = problem_from_error(exc)
    if isinstance(exc, StorageInconsistentError):
        # Our own message: node levels and indices, no personal data. Operators need it.
        logger.error(
            "ledger inconsistent in %s %s (%s): %s",
            request.method,
            _route_path(request.scope),
            problem.instance,
            exc,
        )
    return problem.response()


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return exc.response()


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_from_validation(exc).response()


async def _on_http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_from_http(exc).response()


class LastResortMiddleware:
    """Turn any exception no handler took into a 500 problem, and stop it there.

    A plain `Exception` handler would not do: Starlette re-raises after it answers, and the
    server then logs the full exception message. Once the response has started nothing can be
    answered, and the exception propagates.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            problem = problem_from_error(exc)
            _log_internal(scope, exc, problem.instance)
            await problem.response()(scope, receive, send)


Handler = Callable[[Request, Exception], Any]


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of `app` as problem+json, and document the schema in its OpenAPI."""
    handlers: dict[type[Exception], Handler] = {
        Problem: _on_problem,
        RequestValidationError: _on_validation,
        StarletteHTTPException: _on_http,
    }
    handlers.update(dict.fromkeys(ERROR_TABLE, _on_package_error))
    for cls, handler in handlers.items():
        app.add_exception_handler(cls, handler)
    app.add_middleware(LastResortMiddleware)
    _document_problem_schema(app)


# --- OpenAPI -------------------------------------------------------------------------------------


class ProblemDetails(BaseModel):
    """RFC 9457 problem details (the schema of every error body)."""

    model_config = ConfigDict(title="Problem")

    type: str = Field(description=f"{PROBLEM_TYPE_BASE}<slug>, or about:blank")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(None, description="urn:uuid:… of a 5xx, to quote to operators")
    errors: list[FieldError] | None = Field(None, description="One per rejected input")


_SCHEMA_REF = "#/components/schemas/{model}"


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _SCHEMA_REF.format(model="Problem")}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: the given statuses and any other error, as problems."""
    responses: dict[int | str, dict[str, Any]] = {
        status: {"description": HTTPStatus(status).phrase, "content": _problem_content()}
        for status in statuses
    }
    responses["default"] = {"description": "Any other error", "content": _problem_content()}
    return responses


def _replace_422(spec: dict[str, Any]) -> None:
    """FastAPI advertises 422 for any route with parameters; we answer 400 problems instead."""
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault(
                    "400", {"description": "Bad Request", "content": _problem_content()}
                )
    schemas = spec.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        if f'"{_SCHEMA_REF.format(model=name)}"' not in json.dumps(spec):
            schemas.pop(name, None)


def _document_problem_schema(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        spec = build()  # FastAPI caches it: this runs once per document
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        if "Problem" not in components:
            schema = ProblemDetails.model_json_schema(ref_template=_SCHEMA_REF)
            components.update(schema.pop("$defs", {}))
            components["Problem"] = schema
            _replace_422(spec)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
