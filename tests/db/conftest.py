"""Storage fixtures: a migrated engine on each database (db_url comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from api.database import make_engine, migrate
from ledger import store
from ledger.note import NoteSigner, sign_note

ORIGIN = "pishkhan.test/ledger"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


def append_leaves(engine: Engine, signer: NoteSigner, leaves: list[bytes]) -> store.AppendResult:
    """Append in one committed transaction, the way the service does."""
    with engine.begin() as conn:
        return store.append(
            conn,
            leaves,
            origin=ORIGIN,
            sign_note=lambda body: sign_note(body, [signer]),
            now=datetime.now(UTC),
        )


# The payments world (tests/db/payments_world.py), a fixture for the payments tests.
from tests.db.payments_world import world  # noqa: E402, F401
