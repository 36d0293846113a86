"""Errors raised by licences/: they carry data and know nothing of HTTP (api/problems.py maps them).

Messages never contain personal data: no subject ids, no licence numbers, no payable ids. The
data a caller may show to the right person (a holder's own payables) travels in attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from signatures.canonical import JsonValue


class LicencesError(Exception):
    """Base class of every licences error."""


class LicenceTypeFileError(LicencesError):
    """The licence types file (licence_types.toml) is malformed.

    `key` is the dotted place in the file ("types[2].validity", "" for the file as a whole),
    `rule` the rule it breaks ("invalid_duration", "unknown_member", …); the message names both.
    """

    def __init__(self, message: str, *, key: str, rule: str) -> None:
        super().__init__(f"{key or '(file)'}: {message} ({rule})")
        self.key = key
        self.rule = rule


class LicenceNotFoundError(LicencesError):
    """No licence `licence_id` exists, or the caller may not know of it (the same answer)."""

    def __init__(self, licence_id: str) -> None:
        super().__init__("no such licence")
        self.licence_id = licence_id


class NotIssuingAgencyError(LicencesError):
    """`agency` is not the agency that issues licences of `licence_type` (a type code)."""

    def __init__(self, *, agency: str, licence_type: str) -> None:
        super().__init__(f"only the issuing agency acts on {licence_type} licences")
        self.agency = agency
        self.licence_type = licence_type


class LicenceStateError(LicencesError):
    """`action` does not apply to a licence whose stored status is `status` (e.g. reinstating a
    valid licence, anything on a revoked one).

    `action` is "concurrent_change" (and `status` None) when the licence row changed between
    its read and its compare-and-set update.
    """

    def __init__(self, action: str, *, status: str | None = None) -> None:
        if status is None:
            message = f"licence state conflict: {action}"
        else:
            message = f"cannot {action} a licence that is {status}"
        super().__init__(message)
        self.action = action
        self.status = status


class DuplicateLicenceNumberError(LicencesError):
    """A licence of type `licence_type` (a type code) already has this number."""

    def __init__(self, licence_type: str) -> None:
        super().__init__(f"the number is already taken for {licence_type}")
        self.licence_type = licence_type


class RenewalPendingError(LicencesError):
    """A renewal of the licence is already waiting for its fee: pay `payable_id` by `pay_by`
    (the payable's due day), after which a new renewal may be asked for."""

    def __init__(
        self, *, renewal_id: str, payable_id: str, pay_by: date, pay_by_jalali: str | None = None
    ) -> None:
        super().__init__(f"a renewal is waiting for its fee, payable by {pay_by.isoformat()}")
        # The same day in the Solar Hijri calendar, for a jurisdiction that uses it.
        self.pay_by_jalali = pay_by_jalali
        self.renewal_id = renewal_id
        self.payable_id = payable_id
        self.pay_by = pay_by


@dataclass(frozen=True)
class RuleFailure:
    """One renewal rule that failed: `rule` (one of licences.eligibility.RULES), what failed
    (`message`), what would satisfy it (`remedy`) and machine-readable `details`."""

    rule: str
    message: str
    remedy: str
    details: dict[str, JsonValue] = field(default_factory=dict)


class RenewalRefusedError(LicencesError):
    """A renewal is refused; `failures` lists every rule that failed, in RULES order.

    Raises ValueError when `failures` is empty."""

    def __init__(self, failures: tuple[RuleFailure, ...]) -> None:
        if not failures:
            raise ValueError("RenewalRefusedError needs at least one RuleFailure")
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        super().__init__(f"renewal refused: {failures[0].message}{more}")
        self.failures = failures


class CredentialError(LicencesError):
    """A licence credential is refused. `reason` is one of licences.credential.CREDENTIAL_REASONS
    ("malformed", "too_large", "unsupported_algorithm", "wrong_type", "unknown_key",
    "wrong_issuer", "bad_signature", "invalid_claims")."""

    def __init__(self, message: str | None = None, *, reason: str) -> None:
        super().__init__(message or f"credential refused: {reason}")
        self.reason = reason
