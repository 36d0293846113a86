"""Payloads of the key registry's transactions, parsed strictly into frozen values.

Envelope ``version`` 1 for all six types. Every member below is required unless marked
optional; any other member is refused (``unknown_member``), and so is ``null`` (``wrong_type``:
absence is the one spelling of "none").

=====================  =======================================  ===============================
type                   payload members                          who signs
=====================  =======================================  ===============================
``key.register``       ``jwk``: public JWK, private members     the key's own subject, never
                       refused; ``challenge``: 43 base64url     ``on_behalf_of``; the JWS is
                       chars, as issued; ``not_after``:         made with the key registered
                       optional timestamp; ``x5c``: optional    (proof of possession)
                       list of standard-base64 DER, leaf first
``key.revoke``         ``kid``; ``reason``: one of              the key's subject, or a delegate
                       ``key_compromise``, ``superseded``,      acting ``on_behalf_of`` it
                       ``cessation_of_operation``
``key.suspend``        ``kid``                                  as ``key.revoke``
``key.reinstate``      ``kid``                                  as ``key.revoke``
``delegation.grant``   ``delegate``: a person, ``ir-nid:…`` or  a legal entity (``ir-lid:`` or
                       ``ee-ik:…``; ``types``: 1 to 64          ``ee-rg:``) itself, never
                       concrete types or ``ns.*`` wildcards,    ``on_behalf_of``
                       no duplicates; ``not_after``
``delegation.revoke``  ``delegation_id``: the grant's           the grantor itself
                       transaction ID (a lowercase UUID)
=====================  =======================================  ===============================

Timestamps have the envelope ``created_at`` syntax (RFC 3339, UTC, ending in ``Z``, up to nine
fraction digits, kept to the microsecond). Refusals are EnvelopeError with one FieldError per
field, pointers under ``/payload`` (or ``/signer``, ``/on_behalf_of``, ``/version`` for the
envelope rules above), rules from signatures.envelope and the RULE_* of
signatures.registry_fields (re-exported here with the field limits).

Pure code: no I/O, no clock. Checks that need the clock or storage (``not_after`` in the future,
the challenge, the key's owner) are the handlers' (signatures.registry_handlers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from signatures.envelope import (
    RULE_REQUIRED,
    RULE_UNKNOWN_MEMBER,
    RULE_WRONG_TYPE,
    Envelope,
)
from signatures.errors import EnvelopeError, FieldError
from signatures.jwk import PublicJwk
from signatures.keys import RevocationReason
from signatures.registry_fields import (
    CHALLENGE_BYTES,
    CHALLENGE_CHARS,
    KID_CHARS,
    MAX_X5C_CERTIFICATES,
    MAX_X5C_CHARS,
    RULE_AFTER_CERTIFICATE_EXPIRY,
    RULE_DUPLICATE,
    RULE_EMPTY,
    RULE_INVALID_JWK,
    RULE_NOT_ALLOWED,
    RULE_NOT_CONFIGURED,
    RULE_NOT_IN_FUTURE,
    RULE_PRIVATE_KEY_MATERIAL,
    RULE_TOO_MANY,
    RULE_UNKNOWN_TYPE,
    RULE_UNKNOWN_VALUE,
    RULE_UNSUPPORTED_VERSION,
    RULE_WRONG_SUBJECT_KIND,
    add_error,
    payload_pointer,
    read_challenge,
    read_delegate,
    read_delegation_id,
    read_jwk,
    read_kid,
    read_reason,
    read_timestamp,
    read_types,
    read_x5c,
)

# The field constants and rules are part of this module's interface.
__all__ = [
    "CHALLENGE_BYTES",
    "CHALLENGE_CHARS",
    "DELEGATION_GRANT",
    "DELEGATION_REVOKE",
    "KEY_REGISTER",
    "KEY_REINSTATE",
    "KEY_REVOKE",
    "KEY_SUSPEND",
    "KID_CHARS",
    "MAX_X5C_CERTIFICATES",
    "MAX_X5C_CHARS",
    "PAYLOAD_PARSERS",
    "PAYLOAD_VERSION",
    "REGISTRY_TYPES",
    "RULE_AFTER_CERTIFICATE_EXPIRY",
    "RULE_DUPLICATE",
    "RULE_EMPTY",
    "RULE_INVALID_JWK",
    "RULE_NOT_ALLOWED",
    "RULE_NOT_CONFIGURED",
    "RULE_NOT_IN_FUTURE",
    "RULE_PRIVATE_KEY_MATERIAL",
    "RULE_TOO_MANY",
    "RULE_UNKNOWN_TYPE",
    "RULE_UNKNOWN_VALUE",
    "RULE_UNSUPPORTED_VERSION",
    "RULE_WRONG_SUBJECT_KIND",
    "DelegationGrantPayload",
    "DelegationRevokePayload",
    "KeyRegisterPayload",
    "KeyReinstatePayload",
    "KeyRevokePayload",
    "KeySuspendPayload",
    "RegistryPayload",
    "parse_delegation_grant",
    "parse_delegation_revoke",
    "parse_key_register",
    "parse_key_reinstate",
    "parse_key_revoke",
    "parse_key_suspend",
    "registration_jwk",
    "validate_payload",
]

KEY_REGISTER = "key.register"
KEY_REVOKE = "key.revoke"
KEY_SUSPEND = "key.suspend"
KEY_REINSTATE = "key.reinstate"
DELEGATION_GRANT = "delegation.grant"
DELEGATION_REVOKE = "delegation.revoke"
PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class KeyRegisterPayload:
    jwk: PublicJwk
    challenge: str
    not_after: datetime | None
    x5c: tuple[bytes, ...]  # DER, leaf first; empty when none was presented


@dataclass(frozen=True)
class KeyRevokePayload:
    kid: str
    reason: RevocationReason


@dataclass(frozen=True)
class KeySuspendPayload:
    kid: str


@dataclass(frozen=True)
class KeyReinstatePayload:
    kid: str


@dataclass(frozen=True)
class DelegationGrantPayload:
    delegate: str
    types: frozenset[str]
    not_after: datetime


@dataclass(frozen=True)
class DelegationRevokePayload:
    delegation_id: str


RegistryPayload = (
    KeyRegisterPayload
    | KeyRevokePayload
    | KeySuspendPayload
    | KeyReinstatePayload
    | DelegationGrantPayload
    | DelegationRevokePayload
)


# --- helpers -------------------------------------------------------------------------------------


def _start(
    envelope: Envelope, type_name: str, *, required: tuple[str, ...], optional: tuple[str, ...]
) -> list[FieldError]:
    """The errors of the envelope's version and the payload's members (missing, unknown, null).

    Raises ValueError when the envelope is of another type: a programmer error.
    """
    if envelope.type != type_name:
        raise ValueError(f"a {envelope.type} envelope is not a {type_name} transaction")
    errors: list[FieldError] = []
    if envelope.version != PAYLOAD_VERSION:
        add_error(errors, "/version", RULE_UNSUPPORTED_VERSION, f"{type_name} has version 1 only")
    payload = envelope.payload
    for name in required:
        if name not in payload:
            add_error(errors, payload_pointer(name), RULE_REQUIRED, f"{name} is required")
    for name, value in payload.items():
        if name not in required and name not in optional:
            add_error(errors, payload_pointer(name), RULE_UNKNOWN_MEMBER, "not a known member")
        elif value is None:
            add_error(errors, payload_pointer(name), RULE_WRONG_TYPE, f"{name} must not be null")
    return errors


def _raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise EnvelopeError(tuple(errors))


# --- key.register --------------------------------------------------------------------------------


def parse_key_register(envelope: Envelope) -> KeyRegisterPayload:
    """The key.register payload. Raises EnvelopeError listing every refused field (including an
    ``on_behalf_of``: a key is registered by its own subject); ValueError for another type."""
    errors = _start(
        envelope, KEY_REGISTER, required=("jwk", "challenge"), optional=("not_after", "x5c")
    )
    if envelope.on_behalf_of is not None:
        message = "a key is registered by its own subject, not on behalf of another"
        add_error(errors, "/on_behalf_of", RULE_NOT_ALLOWED, message)
    payload = envelope.payload
    jwk = read_jwk(payload.get("jwk"), errors)
    challenge = read_challenge(payload.get("challenge"), errors)
    not_after = read_timestamp(payload.get("not_after"), payload_pointer("not_after"), errors)
    x5c = read_x5c(payload.get("x5c"), errors)
    _raise_if(errors)
    assert jwk is not None and challenge is not None
    return KeyRegisterPayload(jwk=jwk, challenge=challenge, not_after=not_after, x5c=x5c)


def registration_jwk(envelope: Envelope) -> PublicJwk:
    """The key a key.register envelope registers, whose signature is its proof of possession.

    Raises EnvelopeError when the payload is refused, ValueError for another type.
    """
    return parse_key_register(envelope).jwk


# --- key.revoke, key.suspend, key.reinstate ------------------------------------------------------


def parse_key_revoke(envelope: Envelope) -> KeyRevokePayload:
    """The key.revoke payload. Raises EnvelopeError (every refused field); ValueError for
    another type."""
    errors = _start(envelope, KEY_REVOKE, required=("kid", "reason"), optional=())
    kid = read_kid(envelope.payload.get("kid"), errors)
    reason = read_reason(envelope.payload.get("reason"), errors)
    _raise_if(errors)
    assert kid is not None and reason is not None
    return KeyRevokePayload(kid=kid, reason=reason)


def _kid_only(envelope: Envelope, type_name: str) -> str:
    errors = _start(envelope, type_name, required=("kid",), optional=())
    kid = read_kid(envelope.payload.get("kid"), errors)
    _raise_if(errors)
    assert kid is not None
    return kid


def parse_key_suspend(envelope: Envelope) -> KeySuspendPayload:
    """The key.suspend payload. Raises EnvelopeError; ValueError for another type."""
    return KeySuspendPayload(kid=_kid_only(envelope, KEY_SUSPEND))


def parse_key_reinstate(envelope: Envelope) -> KeyReinstatePayload:
    """The key.reinstate payload. Raises EnvelopeError; ValueError for another type."""
    return KeyReinstatePayload(kid=_kid_only(envelope, KEY_REINSTATE))


# --- delegation.grant, delegation.revoke ---------------------------------------------------------


def parse_delegation_grant(envelope: Envelope) -> DelegationGrantPayload:
    """The delegation.grant payload. Raises EnvelopeError (every refused field, including a
    signer who is not a legal entity and any ``on_behalf_of``: a delegate never grants);
    ValueError for another type."""
    errors = _start(
        envelope, DELEGATION_GRANT, required=("delegate", "types", "not_after"), optional=()
    )
    if not envelope.signer.kind.is_entity():
        message = "only a legal entity (ir-lid: or ee-rg:) grants"
        add_error(errors, "/signer", RULE_WRONG_SUBJECT_KIND, message)
    if envelope.on_behalf_of is not None:
        message = "a delegation is granted by the legal entity itself, not by a delegate"
        add_error(errors, "/on_behalf_of", RULE_NOT_ALLOWED, message)
    payload = envelope.payload
    delegate = read_delegate(payload.get("delegate"), errors)
    types = read_types(payload.get("types"), errors)
    not_after = read_timestamp(payload.get("not_after"), payload_pointer("not_after"), errors)
    _raise_if(errors)
    assert delegate is not None and types is not None and not_after is not None
    return DelegationGrantPayload(delegate=delegate, types=types, not_after=not_after)


def parse_delegation_revoke(envelope: Envelope) -> DelegationRevokePayload:
    """The delegation.revoke payload. Raises EnvelopeError; ValueError for another type."""
    errors = _start(envelope, DELEGATION_REVOKE, required=("delegation_id",), optional=())
    delegation_id = read_delegation_id(envelope.payload.get("delegation_id"), errors)
    _raise_if(errors)
    assert delegation_id is not None
    return DelegationRevokePayload(delegation_id=delegation_id)


# --- dispatch ------------------------------------------------------------------------------------

PAYLOAD_PARSERS: Mapping[str, Callable[[Envelope], RegistryPayload]] = MappingProxyType(
    {
        KEY_REGISTER: parse_key_register,
        KEY_REVOKE: parse_key_revoke,
        KEY_SUSPEND: parse_key_suspend,
        KEY_REINSTATE: parse_key_reinstate,
        DELEGATION_GRANT: parse_delegation_grant,
        DELEGATION_REVOKE: parse_delegation_revoke,
    }
)
REGISTRY_TYPES = frozenset(PAYLOAD_PARSERS)


def validate_payload(envelope: Envelope) -> None:
    """Check a key registry envelope's payload (and the envelope rules of its type) before its
    signature is verified.

    Raises EnvelopeError listing every refused field; rule ``unknown_type`` at ``/type`` when
    the envelope is not one of REGISTRY_TYPES.
    """
    parser = PAYLOAD_PARSERS.get(envelope.type)
    if parser is None:
        message = "not a key registry transaction type"
        raise EnvelopeError((FieldError("/type", RULE_UNKNOWN_TYPE, message),))
    parser(envelope)
