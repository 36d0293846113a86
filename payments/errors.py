"""Errors raised by payments/. They carry data and know nothing of HTTP; api/problems.py maps them.

Helpers working in parallel append their own sections to this file (one section per module).
"""

from __future__ import annotations

from signatures.errors import FieldError


class PaymentsError(Exception):
    """Base class of every payments error."""


class PaymentFieldError(PaymentsError):
    """Input to a payments rule is refused; `errors` lists every field (JSON Pointer, rule, why).

    Messages never repeat the refused value.
    """

    def __init__(self, errors: tuple[FieldError, ...]) -> None:
        if not errors:
            raise ValueError("PaymentFieldError needs at least one FieldError")
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first.pointer or '(root)'}: {first.message} ({first.rule}){more}")
        self.errors = errors


class ProviderError(PaymentsError):
    """A payment provider could not be reached or answered with an error we cannot act on.

    `provider` names it ("sandbox", "stripe"); `retryable` says whether the same call (with the
    same idempotency key) may be tried again; `code` is the provider's code when it gave one.
    """

    def __init__(
        self, message: str, *, provider: str, retryable: bool, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.retryable = retryable
        self.code = code


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time: the outcome is unknown until the charge is retrieved."""


class WebhookSignatureError(PaymentsError):
    """An inbound or outbound webhook signature header is missing, malformed, stale or wrong.

    `rule` names what failed, e.g. "missing_header", "malformed_header", "timestamp_out_of_window",
    "no_matching_signature".
    """

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule
