"""Single-use challenges for key registration (re-exported by signatures.registry_store).

A subject asks for a challenge (over its authenticated API session), then signs a key.register
transaction quoting it with the key it registers. The challenge binds the registration to that
session's subject and to a recent moment, and cannot be used twice: it is consumed by a
conditional UPDATE, which exactly one of any number of concurrent transactions wins.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from signatures.errors import ChallengeError
from signatures.jwk import b64url_encode
from signatures.keys import require_aware
from signatures.registry_fields import CHALLENGE_BYTES
from signatures.registry_schema import count_rows, key_challenges, limit_error, lock_subject

CHALLENGE_TTL_S = 300
MAX_OPEN_CHALLENGES_PER_SUBJECT = 16


@dataclass(frozen=True)
class Challenge:
    """A single-use key registration challenge: ``value`` is CHALLENGE_BYTES random bytes,
    base64url without padding; usable by ``subject`` until ``expires_at`` (exclusive)."""

    value: str
    subject: str
    expires_at: datetime


def issue_challenge(conn: Connection, *, subject: str, now: datetime) -> Challenge:
    """A fresh challenge for subject, valid CHALLENGE_TTL_S seconds from now.

    Deletes the subject's expired challenges. Raises RegistryLimitError when the subject already
    holds MAX_OPEN_CHALLENGES_PER_SUBJECT unexpired, unconsumed ones; NaiveDatetimeError for a
    naive ``now``.
    """
    require_aware(now, field="now")
    lock_subject(conn, "key_challenges", subject)
    table = key_challenges.c
    conn.execute(delete(key_challenges).where(table.subject == subject, table.expires_at <= now))
    open_count = count_rows(
        conn, table.subject == subject, table.consumed_at.is_(None), table.expires_at > now
    )
    if open_count >= MAX_OPEN_CHALLENGES_PER_SUBJECT:
        name = "MAX_OPEN_CHALLENGES_PER_SUBJECT"
        raise limit_error(name, MAX_OPEN_CHALLENGES_PER_SUBJECT, open_count)
    challenge = Challenge(
        value=b64url_encode(secrets.token_bytes(CHALLENGE_BYTES)),
        subject=subject,
        expires_at=now + timedelta(seconds=CHALLENGE_TTL_S),
    )
    conn.execute(
        insert(key_challenges).values(
            challenge=challenge.value, subject=subject, expires_at=challenge.expires_at
        )
    )
    return challenge


def consume_challenge(conn: Connection, *, value: str, subject: str, now: datetime) -> None:
    """Use challenge ``value`` for subject, once.

    Race-safe across processes: the conditional UPDATE changes the row for exactly one of any
    number of concurrent callers. Raises ChallengeError with reason "unknown", "other_subject"
    (the same message as "unknown"), "consumed" or "expired"; NaiveDatetimeError for a naive
    ``now``.
    """
    require_aware(now, field="now")
    table = key_challenges.c
    result = conn.execute(
        update(key_challenges)
        .where(
            table.challenge == value,
            table.subject == subject,
            table.consumed_at.is_(None),
            table.expires_at > now,
        )
        .values(consumed_at=now)
    )
    if result.rowcount == 1:
        return
    row = conn.execute(
        select(table.subject, table.consumed_at).where(table.challenge == value)
    ).first()
    if row is None:
        raise ChallengeError("unknown")
    if row.subject != subject:
        raise ChallengeError("other_subject")
    raise ChallengeError("consumed" if row.consumed_at is not None else "expired")
