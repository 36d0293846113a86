"""The payments work that talks to providers: charges and refunds after their signed transaction
committed, inbound provider webhooks, the payer's 3-D Secure confirmation and cancellation, and
the expiry sweep.

No database transaction is open while a provider is called (a provider can take seconds, and
on SQLite a write transaction excludes every other writer): read, call, then apply the answer in
one short transaction through payments.payment_flow. Every provider call carries our
deterministic idempotency key, so running any of this again (an idempotent retry of the
transaction, a crash before the answer was stored) makes no second charge or refund.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine

from api.database import read_only, run_in_transaction
from api.transactions import store as tx_store
from payments import intent_store, payment_flow
from payments.errors import (
    PaymentNotFoundError,
    PaymentStateError,
    ProviderError,
    ProviderTimeoutError,
)
from payments.handlers import PaymentsConfig, parse_payment_create
from payments.intents import Cause, IntentState
from payments.providers import ChargeRequest, ChargeResult, PaymentProvider
from payments.refund_store import RefundState, get_refund
from signatures.envelope import Envelope, parse_envelope_json

logger = logging.getLogger("pishkhan.payments")

Clock = Callable[[], datetime]
T = TypeVar("T")
EXPIRY_BATCH = 100  # intents expired per sweep transaction


def charge_key(intent_id: str) -> str:
    """Our idempotency key for the charge of an intent (one intent, one charge, ever)."""
    return f"pishkhan:charge:{intent_id}"


def refund_key(refund_id: str) -> str:
    return f"pishkhan:refund:{refund_id}"


def _action_key(intent_id: str, action: str) -> str:
    return f"pishkhan:{action}:{intent_id}"


class PaymentsRuntime:
    """Shared by every request of a worker; holds configuration, never request state."""

    def __init__(
        self,
        engine: Engine,
        *,
        config: PaymentsConfig,
        providers: Mapping[str, PaymentProvider],
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.config = config
        self.providers = dict(providers)
        self._clock = clock

    def _read(self, work: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            return work(read_only(conn))

    def _intent(self, intent_id: str) -> intent_store.StoredIntent | None:
        return self._read(lambda conn: intent_store.get_intent(conn, intent_id))

    # --- after the signed transactions commit ---------------------------------------------------

    def charge(self, intent_id: str, envelope: Envelope) -> None:
        """payment.create's after_commit: charge the intent at its provider and apply the answer.

        Does nothing for an intent already charged or ended. When the provider gives no answer
        (timeout, a retryable error), the intent stays created and is marked
        payment_flow.OUTCOME_UNKNOWN: a retry of the transaction, the payer's cancel and the
        expiry sweep all ask the provider again, with the same idempotency key, before anything
        else, so a charge that was made is never forgotten.
        """
        stored = self._intent(intent_id)
        if stored is None or stored.intent.provider_ref is not None:
            return
        if stored.intent.state is not IntentState.CREATED:
            return
        method = parse_payment_create(envelope, config=self.config).payment_method
        self._charge(stored, method)

    def _charge(
        self, stored: intent_store.StoredIntent, payment_method: str, *, asking_again: bool = False
    ) -> None:
        intent = stored.intent
        charge = ChargeRequest(
            intent_id=intent.intent_id,
            amount_minor=intent.amount_minor,
            currency=intent.currency,
            payment_method=payment_method,
            idempotency_key=charge_key(intent.intent_id),
        )
        try:
            result = self.providers[intent.provider].create_charge(charge)
        except ProviderError as error:
            self._charge_error(intent.intent_id, error, asking_again=asking_again)
            return
        run_in_transaction(
            self.engine,
            lambda conn: payment_flow.apply_charge_result(
                conn, intent.intent_id, result, at=self._clock()
            ),
        )

    def resolve_unknown(self, intent_id: str) -> intent_store.StoredIntent | None:
        """Ask the provider again about a charge whose answer was lost (same idempotency key,
        so it finds the charge that was made rather than making another); the intent after."""
        stored = self._intent(intent_id)
        return None if stored is None else self._resolve(stored)

    def _resolve(self, stored: intent_store.StoredIntent) -> intent_store.StoredIntent:
        if not payment_flow.is_outcome_unknown(stored):
            return stored
        intent_id = stored.intent.intent_id
        row = self._read(lambda conn: tx_store.get_transaction(conn, intent_id))
        assert row is not None, "an intent's id is its payment.create transaction's"
        envelope = parse_envelope_json(row.envelope.encode())
        method = parse_payment_create(envelope, config=self.config).payment_method
        self._charge(stored, method, asking_again=True)
        after = self._intent(intent_id)
        assert after is not None
        return after

    def _charge_error(
        self, intent_id: str, error: ProviderError, *, asking_again: bool = False
    ) -> None:
        code = error.code or "provider_error"
        if asking_again and not isinstance(error, ProviderTimeoutError):
            # Reached, and it answers our same key with an error: it holds no charge under it.
            run_in_transaction(
                self.engine,
                lambda conn: payment_flow.clear_outcome_unknown(
                    conn, intent_id, code=code, at=self._clock()
                ),
            )
            return
        if isinstance(error, ProviderTimeoutError) or error.retryable:
            logger.warning("charge outcome unknown (%s): asked again later", error.code)
            run_in_transaction(
                self.engine,
                lambda conn: payment_flow.mark_outcome_unknown(conn, intent_id, at=self._clock()),
            )
            return
        run_in_transaction(
            self.engine,
            lambda conn: payment_flow.fail_charge(conn, intent_id, code=code, at=self._clock()),
        )

    def refund(self, refund_id: str, _envelope: Envelope) -> None:
        """refund.create's after_commit: refund at the provider and record the outcome."""
        refund = self._read(lambda conn: get_refund(conn, refund_id))
        if refund is None or refund.state is not RefundState.PENDING:
            return
        stored = self._intent(refund.intent_id)
        assert stored is not None and stored.intent.provider_ref is not None
        provider = self.providers[stored.intent.provider]
        try:
            result = provider.refund(
                stored.intent.provider_ref,
                amount_minor=refund.amount_minor,
                currency=refund.currency,
                idempotency_key=refund_key(refund_id),
            )
        except ProviderError as error:
            if isinstance(error, ProviderTimeoutError) or error.retryable:
                logger.warning("refund outcome unknown (%s): it stays pending", error.code)
                return
            code = error.code or "provider_error"
            run_in_transaction(
                self.engine,
                lambda conn: payment_flow.complete_refund(
                    conn, refund_id, result=None, failure_code=code, at=self._clock()
                ),
            )
            return
        run_in_transaction(
            self.engine,
            lambda conn: payment_flow.complete_refund(
                conn, refund_id, result=result, failure_code=None, at=self._clock()
            ),
        )

    # --- the payer's actions --------------------------------------------------------------------

    def _payers_intent(self, intent_id: str, payer: str) -> intent_store.StoredIntent:
        stored = self._intent(intent_id)
        if stored is None or stored.payer != payer:
            raise PaymentNotFoundError()
        return stored

    def confirm(self, intent_id: str, *, payer: str) -> intent_store.StoredIntent:
        """The payer completed the provider's challenge (3-D Secure): ask the provider to go on.

        Raises PaymentNotFoundError (not the payer's), PaymentStateError (needs no action),
        ProviderError.
        """
        stored = self._payers_intent(intent_id, payer)
        ref = stored.intent.provider_ref
        if stored.intent.state is not IntentState.REQUIRES_ACTION or ref is None:
            raise PaymentStateError(
                intent_id=intent_id, state=stored.intent.state.value, action="confirmed"
            )
        # The payer's confirmation is recorded before the provider is asked (requires_action →
        # processing, cause payer.confirmed); the provider's answer then moves it on.
        run_in_transaction(
            self.engine,
            lambda conn: payment_flow.record_confirmation(conn, intent_id, at=self._clock()),
        )
        provider = self.providers[stored.intent.provider]
        result = provider.confirm_action(ref, idempotency_key=_action_key(intent_id, "confirm"))
        return self._apply(intent_id, result, None)

    def cancel(self, intent_id: str, *, payer: str) -> intent_store.StoredIntent:
        """The payer gives up a payment that has not been charged to the end.

        Raises PaymentNotFoundError, PaymentStateError (succeeded or ended), ProviderError.
        """
        stored = self._resolve(self._payers_intent(intent_id, payer))
        if payment_flow.is_outcome_unknown(stored):
            # The provider may hold the money: cancelling here could free the bill for a second
            # charge. The payer tries again once the provider answers.
            raise PaymentStateError(
                intent_id=intent_id, state="outcome_unknown", action="cancelled"
            )
        state = stored.intent.state
        if state not in (IntentState.CREATED, IntentState.REQUIRES_ACTION):
            raise PaymentStateError(intent_id=intent_id, state=state.value, action="cancelled")
        ref = stored.intent.provider_ref
        if ref is None:
            return self._cancel_uncharged(intent_id)
        provider = self.providers[stored.intent.provider]
        result = provider.cancel_charge(ref, idempotency_key=_action_key(intent_id, "cancel"))
        return self._apply(intent_id, result, Cause.PAYER_CANCELLED)

    def _cancel_uncharged(self, intent_id: str) -> intent_store.StoredIntent:
        def work(conn: Connection) -> intent_store.StoredIntent:
            return payment_flow.cancel_uncharged(conn, intent_id, at=self._clock())

        return run_in_transaction(self.engine, work)

    def _apply(
        self, intent_id: str, result: ChargeResult, cause: Cause | None
    ) -> intent_store.StoredIntent:
        def work(conn: Connection) -> intent_store.StoredIntent:
            return payment_flow.apply_charge_result(
                conn, intent_id, result, at=self._clock(), cause=cause
            )

        return run_in_transaction(self.engine, work)

    # --- provider webhooks and the sweep ---------------------------------------------------------

    def webhook(self, provider_name: str, body: bytes, headers: Mapping[str, str]) -> str:
        """Verify and apply one inbound provider webhook; returns its outcome.

        Raises KeyError for a provider this deployment does not have, WebhookSignatureError,
        UnsupportedWebhookEventError, UnknownChargeError, ProviderEventMismatchError.
        """
        provider = self.providers[provider_name]
        now = self._clock()
        event = provider.parse_webhook(body, headers, now=now)
        return run_in_transaction(
            self.engine,
            lambda conn: payment_flow.apply_webhook_event(conn, event, received_at=now),
        )

    def expire_due(self) -> int:
        """Expire the intents left created or requires_action for INTENT_TTL_S; how many.

        Intents whose charge got no answer are asked about first and expired only when the
        provider answers that it holds nothing; they are taken in their own batch, so those it
        cannot decide never crowd out the rest.
        """
        now = self._clock()

        def due(*, unknown: bool) -> list[str]:
            return self._read(
                lambda conn: intent_store.expirable_intent_ids(
                    conn,
                    now=now,
                    limit=EXPIRY_BATCH,
                    marker=payment_flow.OUTCOME_UNKNOWN,
                    marked=unknown,
                )
            )

        expired = 0
        for intent_id in due(unknown=False) + due(unknown=True):
            resolved = self.resolve_unknown(intent_id)
            if resolved is not None and payment_flow.is_outcome_unknown(resolved):
                continue  # the provider may hold the money: never expire it unasked

            def work(conn: Connection, chosen: str = intent_id) -> bool:
                return payment_flow.expire_intent(conn, chosen, now=now)

            if run_in_transaction(self.engine, work):
                expired += 1
                self._cancel_at_provider(resolved)
        return expired

    def _cancel_at_provider(self, before: intent_store.StoredIntent | None) -> None:
        """Best effort: an expired challenge is cancelled at the provider too, so the payer
        cannot finish it later. If the payer got there first, the provider's success still
        arrives as a correction and is booked (payment_flow), so nothing is lost either way."""
        if before is None or before.intent.provider_ref is None:
            return
        if before.intent.state is not IntentState.REQUIRES_ACTION:
            return
        provider = self.providers[before.intent.provider]
        key = _action_key(before.intent.intent_id, "expire")
        try:
            provider.cancel_charge(before.intent.provider_ref, idempotency_key=key)
        except ProviderError as error:
            logger.warning("cancelling an expired challenge failed (%s)", error.code)
