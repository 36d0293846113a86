"""Engine settings the ledger's guarantees rest on, and the busy-retry helper."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from api import database
from api.database import make_engine, normalise_url, read_only, run_in_transaction


def test_sqlite_runs_in_wal_with_full_sync(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    engine.dispose()


def test_write_transactions_take_the_lock_at_begin_and_reads_do_not(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock is now held
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        conn.rollback()
    with engine.connect() as conn:
        read_only(conn).execute(text("SELECT 1"))  # a deferred read holds no write lock
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    other.close()
    engine.dispose()


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_busy_database_is_retried_then_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "RETRY_BASE_DELAY_S", 0.0)
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    calls = []

    def work(conn):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))
        return "done"

    assert run_in_transaction(engine, work) == "done"
    assert len(calls) == 3
    engine.dispose()


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    calls = []

    def work(conn):  # type: ignore[no-untyped-def]
        calls.append(1)
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    with pytest.raises(IntegrityError):
        run_in_transaction(engine, work)
    assert len(calls) == 1
    engine.dispose()


def test_retries_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "RETRY_BASE_DELAY_S", 0.0)
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    calls = []

    def work(conn):  # type: ignore[no-untyped-def]
        calls.append(1)
        raise OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))

    with pytest.raises(OperationalError):
        run_in_transaction(engine, work)
    assert len(calls) == database.TRANSACTION_ATTEMPTS
    engine.dispose()
