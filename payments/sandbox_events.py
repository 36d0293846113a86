"""The sandbox's webhook body: canonical JSON naming one charge status, and its parser.

Pure: no I/O, no clock. payments.sandbox.SandboxProvider signs these bodies and verifies their
signature before calling parse_sandbox_event.
"""

from __future__ import annotations

from datetime import datetime

from payments.errors import PaymentFieldError
from payments.providers import ProviderEvent, ProviderStatus
from payments.sandbox_records import PROVIDER_NAME, SandboxCharge, hex_ref
from payments.webhook_schedule import format_utc, read_event_object
from signatures.canonical import JsonValue, canonicalize
from signatures.envelope import ISO_4217_CURRENCIES, add_field_error, read_utc_timestamp
from signatures.errors import FieldError

EVENT_ID_PREFIX = "sbx_evt_"
_STATUS_BY_TYPE = {f"charge.{status.value}": status for status in ProviderStatus}
_EVENT_MEMBERS = frozenset(
    {
        "id",
        "type",
        "occurred_at",
        "charge_ref",
        "intent_id",
        "amount_minor",
        "currency",
        "failure_code",
    }
)


def event_id_for(charge_ref: str, status: ProviderStatus) -> str:
    """The webhook event id: "sbx_evt_" + 24 hex of SHA-256("<charge_ref>:<status>")."""
    return hex_ref(EVENT_ID_PREFIX, f"{charge_ref}:{status.value}")


def event_body(charge: SandboxCharge, status: ProviderStatus, occurred_at: datetime) -> bytes:
    """Canonical JSON with exactly the members of _EVENT_MEMBERS; type is "charge.<status>"."""
    return canonicalize(
        {
            "id": event_id_for(charge.provider_ref, status),
            "type": f"charge.{status.value}",
            "occurred_at": format_utc(occurred_at),
            "charge_ref": charge.provider_ref,
            "intent_id": charge.intent_id,
            "amount_minor": charge.amount_minor,
            "currency": charge.currency,
            "failure_code": charge.failure_code if status is ProviderStatus.FAILED else None,
        }
    )


def parse_sandbox_event(body: bytes) -> ProviderEvent:
    """The ProviderEvent in a sandbox webhook body (verify the signature first).

    Raises PaymentFieldError listing every refused member, with JSON Pointers into the body.
    """
    value = read_event_object(body)
    errors: list[FieldError] = []
    for name in sorted(set(value) ^ _EVENT_MEMBERS):
        rule, why = ("unknown_member", "not a member") if name in value else ("required", "missing")
        add_field_error(errors, f"/{name}", rule, f"{why} of a sandbox event")
    status = _STATUS_BY_TYPE.get(_text(value, "type", errors))
    if status is None:
        add_field_error(errors, "/type", "unknown_type", "type is not a sandbox charge event")
    currency = _text(value, "currency", errors)
    if currency not in ISO_4217_CURRENCIES:
        add_field_error(errors, "/currency", "unknown_currency", "not an ISO 4217 code")
    amount = value.get("amount_minor")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        add_field_error(errors, "/amount_minor", "wrong_type", "a positive integer is required")
        amount = 0
    failure_code = value.get("failure_code")
    if failure_code is not None and not isinstance(failure_code, str):
        add_field_error(errors, "/failure_code", "wrong_type", "a string or null is required")
    occurred_at = read_utc_timestamp(value.get("occurred_at"), "/occurred_at", errors)
    event_id, charge_ref = _text(value, "id", errors), _text(value, "charge_ref", errors)
    intent_id = _text(value, "intent_id", errors)
    if errors or status is None or occurred_at is None or not isinstance(amount, int):
        raise PaymentFieldError(tuple(errors))
    return ProviderEvent(
        provider=PROVIDER_NAME,
        event_id=event_id,
        charge_ref=charge_ref,
        status=status,
        amount_minor=amount,
        currency=currency,
        occurred_at=occurred_at,
        failure_code=failure_code if isinstance(failure_code, str) else None,
        intent_id=intent_id,
    )


def _text(obj: dict[str, JsonValue], name: str, errors: list[FieldError]) -> str:
    """obj[name] when it is a non-empty string, else "" with an error added."""
    value = obj.get(name)
    if isinstance(value, str) and value:
        return value
    add_field_error(errors, f"/{name}", "wrong_type", f"{name} is a non-empty string")
    return ""
