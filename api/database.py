"""Engines, migrations and transaction retries for SQLite and PostgreSQL.

SQLite runs in WAL mode with synchronous=FULL. Write transactions begin with BEGIN IMMEDIATE so
that the write lock is taken up front: a deferred transaction that reads, then writes, fails with
SQLITE_BUSY instead of waiting when another writer committed in between. Read-only work opts out
with `read_only(conn)` and starts a plain deferred transaction, which never blocks on writers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

SQLITE_BUSY_TIMEOUT_S = 30.0
# Proof reads touch ~40 random B-tree pages; keep hot pages in SQLite's own cache and map the
# file, instead of a read() system call per page.
SQLITE_CACHE_KIB = 64 * 1024
SQLITE_MMAP_BYTES = 256 * 1024 * 1024
# Enough for the request threads a worker runs at once (anyio's default limiter is 40, and a
# request holds a connection only briefly): past pool_size, connections are opened and closed
# per checkout, and each costs PostgreSQL a new backend process.
PG_POOL_SIZE = 20
PG_MAX_OVERFLOW = 20
TRANSACTION_ATTEMPTS = 8
RETRY_BASE_DELAY_S = 0.005
_READ_ONLY = "pishkhan_read_only"
# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock detected.
_PG_RETRY_STATES = {"40001", "40P01"}

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    """An engine with the pragmas, locking and pool this service relies on."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    return create_engine(
        url, pool_size=PG_POOL_SIZE, max_overflow=PG_MAX_OVERFLOW, pool_pre_ping=True
    )


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cur.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def read_only(conn: Connection) -> Connection:
    """Mark a connection read-only before its first statement (SQLite: deferred BEGIN)."""
    return conn.execution_options(**{_READ_ONLY: True})


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
        return True
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None)
        return state in _PG_RETRY_STATES
    return False


def run_in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work` in one transaction, committing on success; retry when the database is busy.

    SQLite "database is locked" and PostgreSQL serialization failures and deadlocks are retried
    with jittered backoff up to TRANSACTION_ATTEMPTS times; anything else propagates.
    """
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            with engine.begin() as conn:
                return work(conn)
        except DBAPIError as exc:
            if attempt == TRANSACTION_ATTEMPTS or not _is_retryable(exc):
                raise
            time.sleep(RETRY_BASE_DELAY_S * 2**attempt * random.random())  # noqa: S311
    raise AssertionError("unreachable")


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision."""
    command.upgrade(_alembic_config(engine), "head")


def is_schema_current(engine: Engine) -> bool:
    """True when the database is at the newest migration."""
    heads = set(ScriptDirectory.from_config(_alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(read_only(conn)).get_current_heads())
    return current == heads
