"""Validation of a detached JWS at a point in time, modelled on ETSI EN 319 102-1.

The verdict is a report, never an exception: a main indication (TOTAL_PASSED, TOTAL_FAILED,
INDETERMINATE), an ETSI sub-indication and the facts behind them. Only programmer errors raise
(a naive datetime, a malformed policy or proof of existence, a proof dated after ``at``).

Sources:

* ETSI EN 319 102-1 V1.4.1, clause 5.1.3: Table 5 (main indications) and Table 6 (each
  sub-indication and the main indication it belongs to); clause 5.2.3 (identification of the
  signing certificate), 5.2.6 (X.509 validation: a certificate on hold gives TRY_LATER).
* ETSI TS 119 102-2 V1.4.1, clause 4.3.4: the ``urn:etsi:019102:...`` identifiers of
  ``as_dict()``.
* Cross-checked against two implementations of those tables: EU DSS (esig/dss,
  dss-enumerations SubIndication.java; its check "is the certificate not on hold?" fails with
  INDETERMINATE/TRY_LATER) and pyHanko (pyhanko/sign/validation/report, AdESFailure and
  AdESIndeterminate).

Each sub-indication is emitted under the main indication Table 6 gives it, whatever the issue's
wording: SIG_CONSTRAINTS_FAILURE is INDETERMINATE, never TOTAL_FAILED; EXPIRED and NOT_YET_VALID
are TOTAL_FAILED (V1.1.1 also listed them under INDETERMINATE). docs/SIGNATURES.md section 6
gives every decision where ETSI or the issue left room (e.g. REVOKED from a ledger proof).

The algorithm, in order (the first rule that applies decides; docs/SIGNATURES.md has the table):

1. The header is unparsable or breaks the JWS profile, including ``alg`` none, HS* or any other
   algorithm outside the profile -> TOTAL_FAILED/FORMAT_FAILURE.
2. No key (the kid is unknown to the registry) -> INDETERMINATE/NO_SIGNING_CERTIFICATE_FOUND.
3. The header ``kid`` is not the key's -> INDETERMINATE/NO_SIGNING_CERTIFICATE_FOUND (ETSI
   5.2.3: the signature names another signing key than the one supplied).
4. The header ``alg`` is not the one pinned to the key -> TOTAL_FAILED/FORMAT_FAILURE: no policy
   or later information can make it verify (RFC 8725 section 2.1 algorithm confusion).
5. ``alg`` not allowed by the policy, or an RSA key below ``policy.min_rsa_bits`` ->
   INDETERMINATE/CRYPTO_CONSTRAINTS_FAILURE. Checked before verifying: a disallowed algorithm
   is never run.
6. The signature does not verify -> TOTAL_FAILED/SIG_CRYPTO_FAILURE (the payload is part of
   the signing input, so a changed payload fails here; HASH_FAILURE is never emitted). Any other
   refusal by signatures.jws.verify_detached -> TOTAL_FAILED/FORMAT_FAILURE.
7. The decisive time is the proof of existence's time when there is one, else ``at``: the
   signature provably existed then. The key's status at that instant:
   revoked -> with a PoE TOTAL_FAILED/REVOKED, without INDETERMINATE/REVOKED_NO_POE;
   expired -> with a PoE TOTAL_FAILED/EXPIRED, without INDETERMINATE/OUT_OF_BOUNDS_NO_POE;
   not yet valid -> TOTAL_FAILED/NOT_YET_VALID (existing before not_before proves it was made
   before not_before).
8. The claimed ``iat`` is later than the decisive time plus ``policy.max_clock_skew_s`` (the
   signer claims a time after the signature provably existed) ->
   INDETERMINATE/SIG_CONSTRAINTS_FAILURE.
9. Suspended at the decisive time -> INDETERMINATE/TRY_LATER while that suspension is still
   in effect at ``at`` (it may end either way); once it has ended (reinstated, revoked or
   expired), INDETERMINATE/SIG_CONSTRAINTS_FAILURE: retrying will not change the answer.
10. Active at the decisive time: without a PoE when ``policy.require_poe`` ->
    INDETERMINATE/NO_POE; else TOTAL_PASSED.

A PoE before the revocation therefore keeps a signature TOTAL_PASSED at every later ``at``.
The claimed ``iat`` is never decisive: it is the signer's word, and a stolen key signs any iat.

Pure code: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric import rsa

from signatures.canonical import JsonValue
from signatures.errors import JwsError, JwsSignatureError, ValidationInputError
from signatures.jwk import MAX_RSA_BITS, MIN_RSA_BITS
from signatures.jws import SUPPORTED_ALGS, ProtectedHeader, parse_protected_header, verify_detached
from signatures.keys import KeyRecord, KeyStatus, require_aware

# A signer's clock may run this far ahead of the ledger's before its iat is called impossible.
DEFAULT_MAX_CLOCK_SKEW_S = 300
MAX_CLOCK_SKEW_S = 3600
# A report quotes at most this much of an error message (which may quote a signed header value).
MAX_DETAIL_CHARS = 200
# Ledger sizes are uint64, as in ledger.checkpoint (not imported: signatures imports no ledger).
MAX_TREE_SIZE = 2**64 - 1

_MAIN_URI = "urn:etsi:019102:mainindication:"
_SUB_URI = "urn:etsi:019102:subindication:"


class Indication(StrEnum):
    """ETSI EN 319 102-1 Table 5 main indications."""

    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"

    @property
    def uri(self) -> str:
        """The ETSI TS 119 102-2 identifier, e.g. urn:etsi:019102:mainindication:total-passed."""
        return _MAIN_URI + self.value.lower().replace("_", "-")


class SubIndication(StrEnum):
    """The ETSI EN 319 102-1 Table 6 sub-indications this service uses."""

    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    TRY_LATER = "TRY_LATER"
    NO_POE = "NO_POE"

    @property
    def indication(self) -> Indication:
        """The main indication Table 6 files this sub-indication under."""
        return _PARENT[self]

    @property
    def uri(self) -> str:
        """The ETSI TS 119 102-2 identifier, e.g. urn:etsi:019102:subindication:REVOKED."""
        return _SUB_URI + self.value


# Table 6 files these under TOTAL_FAILED, and every other one we use under INDETERMINATE.
_TOTAL_FAILED = "FORMAT_FAILURE HASH_FAILURE SIG_CRYPTO_FAILURE REVOKED EXPIRED NOT_YET_VALID"
_PARENT: dict[SubIndication, Indication] = {
    sub: Indication.TOTAL_FAILED if sub in _TOTAL_FAILED.split() else Indication.INDETERMINATE
    for sub in SubIndication
}


class PoeSource(StrEnum):
    """Where a proof of existence comes from. Only the audit ledger, for now."""

    LEDGER = "ledger"


class TimeSource(StrEnum):
    """What the decisive time is: a proof of existence, or the validation time itself."""

    PROOF_OF_EXISTENCE = "proof_of_existence"
    VALIDATION_TIME = "validation_time"


def _is_int_in(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


@dataclass(frozen=True, kw_only=True)
class ProofOfExistence:
    """Proof that the signature existed at ``time``: the ledger leaf at ``ledger_index``
    recorded this JWS over this payload at ``time``, and is included in the signed checkpoint of
    ``tree_size``.

    The caller verifies the inclusion proof, the checkpoint signature and that the leaf holds
    this JWS and the SHA-256 of this payload before building one (docs/SIGNATURES.md).
    Raises NaiveDatetimeError for a naive time, ValidationInputError for a bad index or size.
    """

    time: datetime
    source: PoeSource
    ledger_index: int
    tree_size: int

    def __post_init__(self) -> None:
        require_aware(self.time, field="time")
        if not isinstance(self.source, PoeSource):
            raise ValidationInputError(f"unknown PoE source {self.source!r}", field="source")
        if not _is_int_in(self.ledger_index, 0, MAX_TREE_SIZE - 1):
            raise ValidationInputError("ledger_index must be an int >= 0", field="ledger_index")
        if not _is_int_in(self.tree_size, self.ledger_index + 1, MAX_TREE_SIZE):
            raise ValidationInputError("tree_size must exceed ledger_index", field="tree_size")

    @classmethod
    def from_ledger(cls, *, time: datetime, ledger_index: int, tree_size: int) -> ProofOfExistence:
        """A proof from the audit ledger. Raises as the constructor does."""
        return cls(
            time=time, source=PoeSource.LEDGER, ledger_index=ledger_index, tree_size=tree_size
        )

    def as_dict(self) -> dict[str, JsonValue]:
        return {
            "time": _iso(self.time),
            "source": self.source.value,
            "ledger_index": self.ledger_index,
            "tree_size": self.tree_size,
        }


@dataclass(frozen=True, kw_only=True)
class ValidationPolicy:
    """What a validation accepts.

    Raises ValidationInputError for an algorithm outside the JWS profile, an RSA floor outside
    [MIN_RSA_BITS, MAX_RSA_BITS] of signatures.jwk, or a skew outside [0, MAX_CLOCK_SKEW_S].
    """

    allowed_algs: frozenset[str] = SUPPORTED_ALGS
    min_rsa_bits: int = MIN_RSA_BITS
    max_clock_skew_s: int = DEFAULT_MAX_CLOCK_SKEW_S
    require_poe: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.allowed_algs, frozenset) or not self.allowed_algs <= SUPPORTED_ALGS:
            raise ValidationInputError(
                f"allowed_algs must be a frozenset within {sorted(SUPPORTED_ALGS)}",
                field="allowed_algs",
            )
        if not _is_int_in(self.min_rsa_bits, MIN_RSA_BITS, MAX_RSA_BITS):
            message = f"min_rsa_bits must be in [{MIN_RSA_BITS}, {MAX_RSA_BITS}]"
            raise ValidationInputError(message, field="min_rsa_bits")
        if not _is_int_in(self.max_clock_skew_s, 0, MAX_CLOCK_SKEW_S):
            message = f"max_clock_skew_s must be in [0, {MAX_CLOCK_SKEW_S}]"
            raise ValidationInputError(message, field="max_clock_skew_s")
        if not isinstance(self.require_poe, bool):
            raise ValidationInputError("require_poe must be a bool", field="require_poe")


DEFAULT_POLICY = ValidationPolicy()


def _iso(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, e.g. 2025-03-21T08:30:00Z (microseconds only when non-zero)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else _iso(value)


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    """The verdict on one signature at one point in time, and the facts behind it.

    ``key_status`` is the key's state at ``decisive_time`` (None when no key was matched);
    ``claimed_iat`` is the signer's claim, reported but never trusted. Raises
    ValidationInputError when the sub-indication does not fit the main indication.
    """

    indication: Indication
    sub_indication: SubIndication | None
    detail: str
    validation_time: datetime
    decisive_time: datetime
    decisive_time_source: TimeSource
    kid: str | None = None
    subject: str | None = None
    alg: str | None = None
    key_status: KeyStatus | None = None
    key_revoked_at: datetime | None = None
    poe: ProofOfExistence | None = None
    claimed_iat: datetime | None = None

    def __post_init__(self) -> None:
        if self.sub_indication is None:
            fits = self.indication is Indication.TOTAL_PASSED
        else:
            fits = self.sub_indication.indication is self.indication
        if not fits:
            raise ValidationInputError(
                f"{self.sub_indication} does not belong under {self.indication}",
                field="sub_indication",
            )

    @property
    def passed(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED

    def as_dict(self) -> dict[str, JsonValue]:
        """The report as JSON-ready values; times are ISO 8601 UTC strings ending in Z."""
        sub = self.sub_indication
        return {
            "indication": self.indication.value,
            "indication_uri": self.indication.uri,
            "sub_indication": None if sub is None else sub.value,
            "sub_indication_uri": None if sub is None else sub.uri,
            "detail": self.detail,
            "kid": self.kid,
            "subject": self.subject,
            "alg": self.alg,
            "key_status": None if self.key_status is None else self.key_status.value,
            "key_revoked_at": _iso_or_none(self.key_revoked_at),
            "decisive_time": _iso(self.decisive_time),
            "decisive_time_source": self.decisive_time_source.value,
            "proof_of_existence": None if self.poe is None else self.poe.as_dict(),
            "claimed_iat": _iso_or_none(self.claimed_iat),
            "validation_time": _iso(self.validation_time),
        }


@dataclass(frozen=True)
class _Facts:
    """What is known so far; each step adds to it and any step may conclude."""

    at: datetime
    poe: ProofOfExistence | None
    header: ProtectedHeader | None = None
    key: KeyRecord | None = None  # only once the header's kid names it

    @property
    def decisive_time(self) -> datetime:
        return self.at if self.poe is None else self.poe.time

    def report(self, sub: SubIndication | None, detail: str) -> ValidationReport:
        indication = Indication.TOTAL_PASSED if sub is None else sub.indication
        header, key = self.header, self.key
        return ValidationReport(
            indication=indication,
            sub_indication=sub,
            detail=detail,
            validation_time=self.at,
            decisive_time=self.decisive_time,
            decisive_time_source=(
                TimeSource.VALIDATION_TIME if self.poe is None else TimeSource.PROOF_OF_EXISTENCE
            ),
            kid=None if header is None else header.kid,
            subject=None if key is None else key.subject,
            alg=None if header is None else header.alg,
            key_status=None if key is None else key.status_at(self.decisive_time),
            key_revoked_at=None if key is None else key.revoked_at,
            poe=self.poe,
            claimed_iat=None if header is None else datetime.fromtimestamp(header.iat, UTC),
        )


def _brief(exc: Exception) -> str:
    """The error's message, cut to MAX_DETAIL_CHARS: it may quote a header value."""
    text = str(exc)
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def validate_at(
    *,
    jws: str,
    payload: bytes,
    key: KeyRecord | None,
    poe: ProofOfExistence | None,
    at: datetime,
    policy: ValidationPolicy = DEFAULT_POLICY,
) -> ValidationReport:
    """Validate the detached JWS over payload as of ``at`` (see the module docstring's rules).

    ``key`` is the registry's record for the header's kid (None when the registry has none);
    ``poe`` is a verified proof of existence from the ledger, or None. Never raises for a bad
    signature. Raises NaiveDatetimeError for a naive ``at`` and ValidationInputError for a PoE
    dated after ``at`` (evidence from the future of the validation time).
    """
    require_aware(at, field="at")
    if poe is not None and poe.time > at:
        raise ValidationInputError("the proof of existence is dated after `at`", field="poe")
    facts = _Facts(at=at, poe=poe)
    try:
        header = parse_protected_header(jws)
    except JwsError as exc:
        return facts.report(SubIndication.FORMAT_FAILURE, f"not a profile JWS: {_brief(exc)}")
    facts = _Facts(at=at, poe=poe, header=header)
    if key is None:
        return facts.report(
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND, "no registered key has this kid"
        )
    if header.kid != key.kid:
        return facts.report(
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
            f"the signature names key {header.kid}, not the key supplied ({key.kid})",
        )
    facts = _Facts(at=at, poe=poe, header=header, key=key)
    failed = _check_crypto(facts, jws=jws, payload=payload, header=header, key=key, policy=policy)
    return failed or _check_time(facts, key=key, header=header, policy=policy)


def _check_crypto(
    facts: _Facts,
    *,
    jws: str,
    payload: bytes,
    header: ProtectedHeader,
    key: KeyRecord,
    policy: ValidationPolicy,
) -> ValidationReport | None:
    """Rules 4 to 6: the algorithm, the policy's constraints, the signature itself."""
    alg = header.alg
    if alg != key.jwk.alg:
        return facts.report(
            SubIndication.FORMAT_FAILURE,
            f"the header says {alg!r} but the key is pinned to {key.jwk.alg!r}",
        )
    if alg not in policy.allowed_algs:
        return facts.report(
            SubIndication.CRYPTO_CONSTRAINTS_FAILURE, f"{alg} is not allowed by the policy"
        )
    public_key = key.jwk.public_key
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < policy.min_rsa_bits:
        return facts.report(
            SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
            f"an RSA key of {public_key.key_size} bits is below the policy's {policy.min_rsa_bits}",
        )
    try:
        verify_detached(jws, payload, key.jwk)
    except JwsSignatureError:
        return facts.report(
            SubIndication.SIG_CRYPTO_FAILURE,
            "the signature does not verify over this payload with this key",
        )
    except JwsError as exc:
        return facts.report(SubIndication.FORMAT_FAILURE, f"refused: {_brief(exc)}")
    return None


def _check_time(
    facts: _Facts, *, key: KeyRecord, header: ProtectedHeader, policy: ValidationPolicy
) -> ValidationReport:
    """Rules 7 to 10: the key's state at the decisive time, and the claimed iat."""
    decisive, poe = facts.decisive_time, facts.poe
    when = "recorded in the ledger" if poe is not None else "validated"
    status = key.status_at(decisive)
    if status is KeyStatus.REVOKED:
        if poe is not None:
            return facts.report(SubIndication.REVOKED, f"the key was revoked before it was {when}")
        return facts.report(
            SubIndication.REVOKED_NO_POE,
            "the key is revoked and no proof shows the signature existed before the revocation",
        )
    if status is KeyStatus.EXPIRED:
        if poe is not None:
            return facts.report(SubIndication.EXPIRED, f"the key had expired before it was {when}")
        return facts.report(
            SubIndication.OUT_OF_BOUNDS_NO_POE,
            "the key has expired and no proof shows the signature existed while it was valid",
        )
    if status is KeyStatus.NOT_YET_VALID:
        return facts.report(
            SubIndication.NOT_YET_VALID, "the signature existed before the key's not_before"
        )
    claimed = datetime.fromtimestamp(header.iat, UTC)
    if claimed - timedelta(seconds=policy.max_clock_skew_s) > decisive:
        return facts.report(
            SubIndication.SIG_CONSTRAINTS_FAILURE,
            "the claimed iat is later than the time the signature provably existed",
        )
    if status is KeyStatus.SUSPENDED:
        return _suspended(facts, key=key)
    if poe is None and policy.require_poe:
        return facts.report(SubIndication.NO_POE, "the policy requires a proof of existence")
    return facts.report(None, f"the signature verifies and the key was active when {when}")


def _suspended(facts: _Facts, *, key: KeyRecord) -> ValidationReport:
    decisive, at = facts.decisive_time, facts.at
    # The suspension in effect at the decisive time is still open iff no event came after it
    # (up to `at`) and the key is still suspended (not expired) at `at`.
    later = any(decisive < event.at <= at for event in key.events)
    if not later and key.status_at(at) is KeyStatus.SUSPENDED:
        return facts.report(
            SubIndication.TRY_LATER, "the key is suspended; it may yet be reinstated or revoked"
        )
    return facts.report(
        SubIndication.SIG_CONSTRAINTS_FAILURE,
        "the key was suspended when the signature provably existed, and that suspension has ended",
    )
