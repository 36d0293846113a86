"""Errors raised by audit/. They carry data and know nothing of HTTP."""

from __future__ import annotations

from signatures.validation import SubIndication


class AuditError(Exception):
    """Base class of every audit error."""


class EvidenceError(AuditError):
    """A piece of a receipt's evidence fails a check.

    Raised between the steps of audit.receipt_check and turned into its report there: it never
    escapes check_receipt. ``sub_indication`` is the ETSI sub-indication the failure gives (its
    main indication follows from it) and ``detail`` says which rule failed, for people.
    """

    def __init__(self, sub_indication: SubIndication, detail: str) -> None:
        super().__init__(detail)
        self.sub_indication = sub_indication
        self.detail = detail


class FetchError(AuditError):
    """A ledger resource could not be fetched or is not what was asked for.

    ``url`` is the resource, ``reason`` a short machine-readable cause: "scheme", "network",
    "status", "too_large", "content".
    """

    def __init__(self, message: str, *, url: str, reason: str) -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason
