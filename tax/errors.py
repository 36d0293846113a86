"""Errors raised by tax/: they carry data and know nothing of HTTP (api/problems.py maps them)."""

from __future__ import annotations

from signatures.errors import FieldErrors


class TaxError(Exception):
    """Base class of every tax error."""


class TaxFieldError(TaxError, FieldErrors):
    """Input to a tax rule is refused; `errors` lists every field (JSON Pointer, rule, why).

    Messages never repeat the refused value (it may be personal data).
    """


class RulePackError(TaxError):
    """A rule pack file is malformed: `pack` names the file, `pointer` the place in it
    (a dotted path such as "params.corporate.rate.values[0].since"), `message` the rule broken."""

    def __init__(self, message: str, *, pack: str, pointer: str) -> None:
        super().__init__(f"{pack}: {pointer}: {message}")
        self.pack = pack
        self.pointer = pointer
        self.message = message


class RuleNotInForceError(TaxError):
    """A pack has no value of parameter `name` in force on `on` (an ISO date): the period is
    before the pack's first value, or the parameter is unknown to the pack."""

    def __init__(self, *, jurisdiction: str, name: str, on: str) -> None:
        super().__init__(f"{jurisdiction}: no value of {name} in force on {on}")
        self.jurisdiction = jurisdiction
        self.name = name
        self.on = on


# --- handlers ---


class FilingChainError(TaxError):
    """A return does not continue its obligation's chain of versions: `rule` is
    "amends_required" (a version was accepted already: an amendment names it in `amends`),
    "amends_not_head" (the filing named in `amends` was superseded since, or is not of this
    obligation), "nothing_to_amend" (`amends` is given but nothing was accepted yet) or
    "chain_too_long". `head` is the id of the current head, when there is one."""

    def __init__(self, message: str, *, rule: str, head: str | None) -> None:
        super().__init__(message)
        self.rule = rule
        self.head = head


# --- invoice_handlers ---


class InvoiceResponseError(TaxFieldError):
    """A buyer's answer to an invoice (tax.invoice.respond) is refused; `errors` holds one
    FieldError at /payload/tax_id whose rule is invoice_not_found (none, or not the caller's),
    not_answerable (a cancellation or a sales return), invoice_cancelled, already_decided or
    response_window_closed. A TaxFieldError, so it is answered as one unless mapped apart."""
