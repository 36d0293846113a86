"""Shared test fixtures.

Databases: tests that take ``db_url`` run once on SQLite and once on PostgreSQL.
The PostgreSQL run needs a server whose admin URL is in ``PISHKHAN_TEST_PG_URL``;
``make test`` starts a throwaway one (scripts/throwaway-postgres.sh) and sets it.
Without it the PostgreSQL runs fail: they are never skipped silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy.engine import URL, make_url

# --------------------------------------------------------------------------- Hypothesis

settings.register_profile("ci", deadline=None, derandomize=False, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(
    "ci" if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no") else "dev"
)

# --------------------------------------------------------------------------- databases

PG_URL_ENV = "PISHKHAN_TEST_PG_URL"
PG_URL_MISSING = f"PostgreSQL tests need {PG_URL_ENV}: run them through `make test`"

#: Backends ``db_url`` is parametrized over (also the test ids).
DB_BACKENDS = ("sqlite", "postgresql")


def _libpq_conninfo(url: URL) -> str:
    """The URL psycopg.connect() understands: SQLAlchemy's, minus the ``+psycopg`` driver."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlalchemy_url(url: URL) -> str:
    """The URL for SQLAlchemy, always with the psycopg 3 driver."""
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> URL:
    """URL of the PostgreSQL server's admin database, from ``PISHKHAN_TEST_PG_URL``.

    Fails (never skips) when the variable is not set.
    """
    raw = os.environ.get(PG_URL_ENV, "").strip()
    if not raw:
        pytest.fail(PG_URL_MISSING, pytrace=False)
    return make_url(raw)


@pytest.fixture
def pg_database_url(pg_admin_url: URL) -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped after the test.

    Yields its SQLAlchemy URL (``postgresql+psycopg://...``).
    """
    import psycopg
    from psycopg import sql

    name = f"pishkhan_test_{uuid.uuid4().hex[:16]}"
    admin = _libpq_conninfo(pg_admin_url)
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _sqlalchemy_url(pg_admin_url.set(database=name))
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(params=DB_BACKENDS, ids=DB_BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLAlchemy URL of an empty database, once per backend in ``DB_BACKENDS``.

    ``sqlite``: a file in the test's tmp_path. ``postgresql``: a fresh database on
    the server from ``PISHKHAN_TEST_PG_URL`` (see ``pg_database_url``). Tests may
    narrow it with ``@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)``.
    """
    backend = request.param
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    if backend == "postgresql":
        url: str = request.getfixturevalue("pg_database_url")
        return url
    raise ValueError(f"db_url: unknown backend {backend!r}, expected one of {DB_BACKENDS}")
