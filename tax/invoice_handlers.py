"""The electronic-invoice transaction types: tax.invoice.submit (a batch of invoices, by their
seller or its representative) and tax.invoice.respond (the buyer accepts or rejects one).

`parse_*` raise signatures.errors.EnvelopeError naming /payload/… fields (the pipeline runs them
before the write); they are pure but for parse_submit_envelope leaving its check of each invoice
for the handler (PrecheckedBatches). The handlers run inside the batch's write transaction,
under the ledger lock: what they read first (which tax IDs exist, who holds a memory ID, an
original's status, a decision) cannot change before they write.

A batch is judged invoice by invoice. An invoice that fails tax.invoices.check_invoice or a rule
below is `rejected` with every error found, the others are recorded, and the transaction is
recorded even when every invoice fails: the seller signed the batch and follows each invoice's
outcome in the result. The rules that need the database, per invoice, in batch order:
- duplicate_tax_id: the tax ID is recorded already, or appears earlier in the same batch
  (whatever became of that earlier one, so the outcome never depends on which copy was valid);
- memory_id_of_another_seller: the tax ID's memory ID is bound to another seller (the first
  seller that records an invoice under a memory ID holds it: trust on first use);
- a corrective, cancellation or sales_return: its reference is recorded (reference_not_found,
  earlier in the same batch counts), is an original (reference_not_original), of the same
  seller (not_the_original_seller) and not cancelled (original_cancelled). A cancellation marks
  the original `cancelled`;
- late_submission: recorded more than invoice.submission_window_days after its issue day (pack
  time zone, the value in force on the issue day); issued_in_future: issued more than
  ISSUE_CLOCK_SKEW_S after the moment it is recorded; no_invoice_rules: the pack has no window
  in force on the issue day.
A malformed batch (tax.invoices.parse_batch) or a seller who does not file VAT in the
jurisdiction is refused whole and not recorded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import Connection

from signatures.canonical import JsonValue, join_pointer
from signatures.envelope import Envelope, check_members
from signatures.errors import EnvelopeError, FieldError
from tax import invoice_store
from tax.errors import InvoiceResponseError, RuleNotInForceError, TaxFieldError
from tax.handlers import require_filer, taxpayer_of
from tax.invoice_store import Decision, InvoiceHead, InvoiceStatus, MemoryIdBinding, StoredInvoice
from tax.invoices import (
    INVOICES,
    MAX_BATCH_INVOICES,
    ORIGINAL,
    RULE_NO_INVOICE_RULES,
    TYPE_BUYER_IDENTIFIED,
    Invoice,
    check_invoice,
    parse_batch,
)
from tax.rulepack import RulePack, pack_for
from tax.tax_ids import TAX_ID_CHARS, parse_tax_id
from tax.vat import VAT

SUBMIT_TYPE = "tax.invoice.submit"
RESPOND_TYPE = "tax.invoice.respond"
CORRECTIVE = "corrective"
CANCELLATION = "cancellation"
# The subtypes a buyer answers: a cancellation or a sales return only undoes what was answered.
ANSWERABLE_SUBTYPES = (ORIGINAL, CORRECTIVE)
SUBMISSION_WINDOW = "invoice.submission_window_days"
RESPONSE_WINDOW = "invoice.response_window_days"
# An invoice may be dated this far after the moment it is recorded: the seller's clock may run
# ahead of ours as much as the pipeline lets created_at (api.transactions.checks) do.
ISSUE_CLOCK_SKEW_S = 300
DECISIONS_BY_ANSWER = {"accept": Decision.ACCEPTED, "reject": Decision.REJECTED}

RULE_DUPLICATE_TAX_ID = "duplicate_tax_id"
RULE_MEMORY_ID_OF_ANOTHER_SELLER = "memory_id_of_another_seller"
RULE_REFERENCE_NOT_FOUND = "reference_not_found"
RULE_REFERENCE_NOT_ORIGINAL = "reference_not_original"
RULE_NOT_THE_ORIGINAL_SELLER = "not_the_original_seller"
RULE_ORIGINAL_CANCELLED = "original_cancelled"
RULE_LATE_SUBMISSION = "late_submission"
RULE_ISSUED_IN_FUTURE = "issued_in_future"
RULE_INVOICE_NOT_FOUND = "invoice_not_found"
RULE_NOT_ANSWERABLE = "not_answerable"
RULE_INVOICE_CANCELLED = "invoice_cancelled"
RULE_ALREADY_DECIDED = "already_decided"
RULE_RESPONSE_WINDOW_CLOSED = "response_window_closed"
RULE_INVALID_CHOICE = "invalid_choice"
RULE_WRONG_TYPE = "wrong_type"

ACCEPTED = "accepted"
REJECTED = "rejected"


# --- tax.invoice.submit ---------------------------------------------------------------------------


def parse_submit(payload: JsonValue, *, seller: str) -> tuple[RulePack, list[JsonValue]]:
    """The batch's pack and raw invoices.

    Raises TaxFieldError: parse_batch's envelope-level errors, or /payload/jurisdiction with rule
    not_a_taxpayer_of_jurisdiction when the seller's kind of subject files no VAT return there."""
    jurisdiction, raws = parse_batch(payload)
    pack = pack_for(jurisdiction)
    require_filer(pack, VAT, seller)  # a seller is a subject that files VAT returns there
    return pack, raws


def parse_submit_envelope(envelope: Envelope) -> tuple[RulePack, list[JsonValue]]:
    """The pipeline's payload check, which also checks each invoice for the handler (PRECHECKED).
    Raises EnvelopeError naming /payload/… fields."""
    seller = taxpayer_of(envelope)
    try:
        pack, raws = parse_submit(envelope.payload, seller=seller)
    except TaxFieldError as error:
        raise EnvelopeError(error.errors) from None
    PRECHECKED.put(envelope.sha256, _checked(pack, raws, seller=seller))
    return pack, raws


Checked = list[Invoice | TaxFieldError]  # check_invoice's outcome for each invoice, in order


class PrecheckedBatches:
    """check_invoice's outcomes by envelope hash, at most `limit` invoices in all (the oldest
    batches are dropped first). Thread-safe: the pipeline's checks and its committer run in
    different threads of one process.

    check_invoice is pure and most of a batch's cost (about 0.8 ms an invoice): run in the
    pipeline's check before the write, it runs outside the ledger lock and in parallel across
    requests, where the handler would repeat it under the lock. An entry is taken once; a
    handler that finds none (dropped, or its batch run a second time) checks again."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held = 0
        self._entries: OrderedDict[bytes, Checked] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: bytes, checked: Checked) -> None:
        with self._lock:
            self._drop(key)
            self._entries[key] = checked
            self._held += len(checked)
            while self._held > self._limit:
                self._drop(next(iter(self._entries)))

    def take(self, key: bytes) -> Checked | None:
        with self._lock:
            return self._drop(key)

    def _drop(self, key: bytes) -> Checked | None:
        found = self._entries.pop(key, None)
        self._held -= len(found or ())
        return found


# Eight full batches in flight in one worker; a checked batch of 1,000 two-line invoices holds
# about 2 MB.
MAX_PRECHECKED_INVOICES = 8 * MAX_BATCH_INVOICES
PRECHECKED = PrecheckedBatches(MAX_PRECHECKED_INVOICES)


@dataclass
class _Batch:
    """What the rules of one batch read and what it will write, kept as it goes."""

    pack: RulePack
    seller: str
    signer: str
    tx_id: str
    accepted_at: datetime
    ledger_index: int
    known: dict[str, InvoiceHead]  # recorded invoices, from the database and this batch
    owners: dict[str, str]  # memory ID → seller
    seen: set[str] = field(default_factory=set)  # tax IDs met earlier in this batch
    records: dict[str, StoredInvoice] = field(default_factory=dict)  # in batch order
    bindings: list[MemoryIdBinding] = field(default_factory=list)
    cancel_recorded: set[str] = field(default_factory=set)  # originals recorded before


def _checked(pack: RulePack, raws: list[JsonValue], *, seller: str) -> Checked:
    out: Checked = []
    for index, raw in enumerate(raws):
        try:
            out.append(check_invoice(pack, raw, seller=seller, index=index))
        except TaxFieldError as error:
            out.append(error)
    return out


def _recorded(
    conn: Connection, invoices: list[Invoice]
) -> tuple[dict[str, InvoiceHead], dict[str, str]]:
    """What the database holds of a batch's tax IDs, references and memory IDs: two statements
    for the whole batch."""
    ids = {i.tax_id.text for i in invoices}
    ids |= {i.reference_tax_id for i in invoices if i.reference_tax_id is not None}
    known = invoice_store.heads_of(conn, ids)
    owners = invoice_store.memory_id_owners(conn, {i.tax_id.memory_id for i in invoices})
    return known, owners


def handle_invoice_submit(
    conn: Connection,
    envelope: Envelope,
    *,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
) -> dict[str, JsonValue]:
    """Record a batch's valid invoices; every other one is rejected with its errors.

    Result: {"accepted": n, "rejected": m, "invoices": [{"tax_id", "status", "errors"}, …]} in
    batch order (tax_id null when the invoice carries no 22-character string there).
    Raises EnvelopeError (the batch's shape, the seller's jurisdiction)."""
    seller = taxpayer_of(envelope)
    try:
        pack, raws = parse_submit(envelope.payload, seller=seller)
    except TaxFieldError as error:
        raise EnvelopeError(error.errors) from None
    checked = PRECHECKED.take(envelope.sha256)
    if checked is None:
        checked = _checked(pack, raws, seller=seller)
    known, owners = _recorded(conn, [c for c in checked if isinstance(c, Invoice)])
    signer = str(envelope.signer)
    batch = _Batch(pack, seller, signer, tx_id, accepted_at, ledger_index, known, owners)
    outcomes: list[JsonValue] = []
    for index, (raw, item) in enumerate(zip(raws, checked, strict=True)):
        if isinstance(item, Invoice):
            errors = _database_rules(batch, item, index=index)
            if not errors:
                _record(batch, item, raw)
        else:
            errors = list(item.errors)
        tax_id = _raw_tax_id(raw)
        if tax_id is not None:
            batch.seen.add(tax_id)
        outcomes.append(_outcome(tax_id, errors))
    invoice_store.insert_invoices(conn, list(batch.records.values()))
    invoice_store.bind_memory_ids(conn, batch.bindings)
    invoice_store.mark_cancelled(conn, batch.cancel_recorded)
    accepted = len(batch.records)
    return {"accepted": accepted, "rejected": len(raws) - accepted, "invoices": outcomes}


def _raw_tax_id(raw: JsonValue) -> str | None:
    value = raw.get("tax_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and len(value) == TAX_ID_CHARS else None


# Errors one invoice's outcome lists: a batch's result stays far below
# signatures.canonical.MAX_DOCUMENT_BYTES however malformed its 1,000 invoices are.
MAX_ERRORS_PER_INVOICE = 8


def _outcome(tax_id: str | None, errors: list[FieldError]) -> JsonValue:
    shown: list[JsonValue] = [
        {"pointer": e.pointer, "rule": e.rule, "message": e.message[:200]}
        for e in errors[:MAX_ERRORS_PER_INVOICE]
    ]
    return {
        "tax_id": tax_id,
        "status": REJECTED if errors else ACCEPTED,
        "errors": shown,
        "more_errors": max(len(errors) - MAX_ERRORS_PER_INVOICE, 0),
    }


def _database_rules(batch: _Batch, invoice: Invoice, *, index: int) -> list[FieldError]:
    """Every rule of the module docstring that `invoice` (number `index`) breaks."""
    here = join_pointer(INVOICES, index)
    errors: list[FieldError] = []
    text = invoice.tax_id.text
    if text in batch.known or text in batch.seen:
        errors.append(
            FieldError(f"{here}/tax_id", RULE_DUPLICATE_TAX_ID, "this tax ID was used already")
        )
    owner = batch.owners.get(invoice.tax_id.memory_id)
    if owner is not None and owner != batch.seller:
        message = "the tax ID's memory ID belongs to another seller"
        errors.append(FieldError(f"{here}/tax_id", RULE_MEMORY_ID_OF_ANOTHER_SELLER, message))
    if invoice.subtype != ORIGINAL:
        errors.extend(_reference_rules(batch, invoice, here))
    errors.extend(_day_rules(batch, invoice, here))
    return errors


def _reference_rules(batch: _Batch, invoice: Invoice, here: str) -> list[FieldError]:
    pointer = f"{here}/reference_tax_id"
    reference = batch.known.get(invoice.reference_tax_id or "")
    if reference is None:
        rule, message = RULE_REFERENCE_NOT_FOUND, "no invoice with this tax ID is recorded"
    elif reference.subtype != ORIGINAL:
        rule, message = RULE_REFERENCE_NOT_ORIGINAL, "the reference is the original's tax ID"
    elif reference.seller != batch.seller:
        rule, message = RULE_NOT_THE_ORIGINAL_SELLER, "only the original's seller may refer to it"
    elif reference.status == InvoiceStatus.CANCELLED:
        rule, message = RULE_ORIGINAL_CANCELLED, "the original was cancelled"
    else:
        return []
    return [FieldError(pointer, rule, message)]


def _window_days(pack: RulePack, name: str, *, on: date) -> int:
    """The count `name` in force on `on`. Raises RuleNotInForceError when there is none."""
    value = pack.count_at(name, on=on).value
    if not isinstance(value, int):
        raise TypeError(f"{name} holds no count")  # count_at already checked the kind
    return value


def _day_rules(batch: _Batch, invoice: Invoice, here: str) -> list[FieldError]:
    pointer = f"{here}/issued_at"
    if invoice.issued_at > batch.accepted_at + timedelta(seconds=ISSUE_CLOCK_SKEW_S):
        return [FieldError(pointer, RULE_ISSUED_IN_FUTURE, "the invoice is dated in the future")]
    try:
        window_days = _window_days(batch.pack, SUBMISSION_WINDOW, on=invoice.issued_on)
        _window_days(batch.pack, RESPONSE_WINDOW, on=invoice.issued_on)
    except RuleNotInForceError:
        message = "the rule pack has no submission or response window in force on the issue day"
        return [FieldError(pointer, RULE_NO_INVOICE_RULES, message)]
    late_days = (batch.pack.local_date(batch.accepted_at) - invoice.issued_on).days
    if late_days > window_days:
        message = f"an invoice is submitted within {window_days} days of its issue day"
        return [FieldError(pointer, RULE_LATE_SUBMISSION, message)]
    return []


def _record(batch: _Batch, invoice: Invoice, raw: JsonValue) -> None:
    """Keep `invoice` for the batch's insert, and what later invoices of the batch must see."""
    text, pack = invoice.tax_id.text, batch.pack
    answered = invoice.type == TYPE_BUYER_IDENTIFIED and invoice.subtype in ANSWERABLE_SUBTYPES
    respond_by = None
    if answered:
        window_days = _window_days(pack, RESPONSE_WINDOW, on=invoice.issued_on)
        respond_by = invoice.issued_on + timedelta(days=window_days)
    t = invoice.totals
    batch.records[text] = StoredInvoice(
        tax_id=text,
        jurisdiction=pack.jurisdiction,
        seller=batch.seller,
        signer=batch.signer,
        buyer=invoice.buyer,
        invoice_type=invoice.type,
        pattern=invoice.pattern,
        subtype=invoice.subtype,
        reference_tax_id=invoice.reference_tax_id,
        issued_at=invoice.issued_at,
        issued_on=invoice.issued_on,
        status=InvoiceStatus.ISSUED,
        decision=Decision.PENDING if answered else None,
        respond_by=respond_by,
        decided_at=None,
        decision_tx_id=None,
        currency=pack.currency,
        before_discount_minor=t.before_discount_minor,
        discount_minor=t.discount_minor,
        after_discount_minor=t.after_discount_minor,
        vat_minor=t.vat_minor,
        total_minor=t.total_minor,
        submitted_at=batch.accepted_at,
        ledger_index=batch.ledger_index,
        tx_id=batch.tx_id,
        body=_as_object(raw),
    )
    batch.known[text] = InvoiceHead(text, batch.seller, invoice.subtype, InvoiceStatus.ISSUED)
    memory_id = invoice.tax_id.memory_id
    if memory_id not in batch.owners:
        batch.owners[memory_id] = batch.seller
        batch.bindings.append(
            MemoryIdBinding(memory_id, batch.seller, batch.accepted_at, batch.tx_id)
        )
    if invoice.subtype == CANCELLATION and invoice.reference_tax_id is not None:
        _cancel(batch, invoice.reference_tax_id)


def _cancel(batch: _Batch, original: str) -> None:
    """Mark `original` cancelled: in this batch's insert when it is recorded in this batch, else
    by an update of the recorded row."""
    batch.known[original] = replace(batch.known[original], status=InvoiceStatus.CANCELLED)
    in_batch = batch.records.get(original)
    if in_batch is not None:
        batch.records[original] = replace(in_batch, status=InvoiceStatus.CANCELLED)
    else:
        batch.cancel_recorded.add(original)


def _as_object(raw: JsonValue) -> dict[str, JsonValue]:
    # The invoice exactly as signed (stored canonical); check_invoice accepted it: an object.
    if not isinstance(raw, dict):
        raise TypeError("a checked invoice is a JSON object")
    return raw


# --- tax.invoice.respond --------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceAnswer:
    jurisdiction: str
    tax_id: str
    decision: str  # Decision.ACCEPTED | Decision.REJECTED


def parse_respond(payload: JsonValue) -> InvoiceAnswer:
    """{"jurisdiction", "tax_id", "decision": "accept" | "reject"}, nothing else.

    Raises TaxFieldError listing every problem: wrong_type, required, unknown_member,
    unknown_jurisdiction, the tax ID's rules (invalid_format, invalid_check_digit), and
    invalid_choice for the decision."""
    if not isinstance(payload, dict):
        raise TaxFieldError((FieldError("/payload", RULE_WRONG_TYPE, "the payload is an object"),))
    errors: list[FieldError] = []
    members = ("jurisdiction", "tax_id", "decision")
    check_members(payload, required=members, optional=(), pointer="/payload", errors=errors)
    jurisdiction = _read_text(payload, "jurisdiction", errors)
    tax_id = _read_text(payload, "tax_id", errors)
    answer = _read_text(payload, "decision", errors)
    try:
        if jurisdiction is not None:
            pack_for(jurisdiction)
    except TaxFieldError as error:
        errors.extend(error.errors)
    try:
        if tax_id is not None:
            parse_tax_id(tax_id, pointer="/payload/tax_id")
    except TaxFieldError as error:
        errors.extend(error.errors)
    if answer is not None and answer not in DECISIONS_BY_ANSWER:
        choices = " or ".join(DECISIONS_BY_ANSWER)
        errors.append(FieldError("/payload/decision", RULE_INVALID_CHOICE, f"one of {choices}"))
    if errors or jurisdiction is None or tax_id is None or answer is None:
        raise TaxFieldError(tuple(errors))
    return InvoiceAnswer(jurisdiction, tax_id, DECISIONS_BY_ANSWER[answer])


def _read_text(payload: dict[str, JsonValue], name: str, errors: list[FieldError]) -> str | None:
    value = payload.get(name)
    if value is None or isinstance(value, str):
        return value
    errors.append(FieldError(f"/payload/{name}", RULE_WRONG_TYPE, "a string"))
    return None


def parse_respond_envelope(envelope: Envelope) -> InvoiceAnswer:
    """The pipeline's payload check. Raises EnvelopeError naming /payload/… fields."""
    try:
        return parse_respond(envelope.payload)
    except TaxFieldError as error:
        raise EnvelopeError(error.errors) from None


def _refuse(rule: str, message: str) -> InvoiceResponseError:
    return InvoiceResponseError((FieldError("/payload/tax_id", rule, message),))


def check_answerable(
    invoice: StoredInvoice | None, *, buyer: str, jurisdiction: str, today: date
) -> StoredInvoice:
    """The invoice `buyer` may answer today (pack time zone).

    Raises InvoiceResponseError: invoice_not_found (none, or not this buyer's: the same answer,
    so that a tax ID reveals nothing to others), not_answerable (a cancellation or a sales
    return), invoice_cancelled, already_decided, response_window_closed."""
    if invoice is None or invoice.buyer != buyer or invoice.jurisdiction != jurisdiction:
        raise _refuse(RULE_INVOICE_NOT_FOUND, "no invoice with this tax ID was issued to you")
    if invoice.decision is None:
        raise _refuse(RULE_NOT_ANSWERABLE, "a buyer answers an original or a corrective invoice")
    if invoice.status == InvoiceStatus.CANCELLED:
        raise _refuse(RULE_INVOICE_CANCELLED, "the invoice was cancelled by its seller")
    if invoice.decision != Decision.PENDING:
        raise _refuse(RULE_ALREADY_DECIDED, "the invoice was answered already")
    if invoice.respond_by is None or today > invoice.respond_by:
        raise _refuse(RULE_RESPONSE_WINDOW_CLOSED, "the window to answer this invoice has closed")
    return invoice


def handle_invoice_respond(
    conn: Connection,
    envelope: Envelope,
    *,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
) -> dict[str, JsonValue]:
    """Record the buyer's acceptance or rejection of one invoice.

    Result: {"tax_id", "decision", "seller"}. Raises EnvelopeError (payload),
    InvoiceResponseError (check_answerable's rules)."""
    del ledger_index  # the decision is found by its transaction id
    try:
        answer = parse_respond(envelope.payload)
    except TaxFieldError as error:
        raise EnvelopeError(error.errors) from None
    pack = pack_for(answer.jurisdiction)
    invoice = check_answerable(
        invoice_store.get_invoice(conn, answer.tax_id),
        buyer=taxpayer_of(envelope),
        jurisdiction=answer.jurisdiction,
        today=pack.local_date(accepted_at),
    )
    invoice_store.record_decision(
        conn, tax_id=invoice.tax_id, decision=answer.decision, decided_at=accepted_at, tx_id=tx_id
    )
    return {"tax_id": invoice.tax_id, "decision": answer.decision, "seller": invoice.seller}
