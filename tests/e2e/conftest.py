"""End-to-end fixtures: a real `pishkhan serve --workers 2` process, over HTTP.

- `server` (per test, on the `db_url` backends) and `shared_server` (per module and backend,
  for tests that need only a few requests each) start a development server whose files live
  in a temporary directory.
- `make_server(**env)` starts one with extra settings (a small rate limit, say).

Every response a `Server` client receives is recorded; when the server stops, the fixture fails
the test if any answer was a 5xx, or if the server's own access log records one (that also
covers requests made without the recording clients).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import DB_BACKENDS
from tests.e2e.client import ApiClient, ServerInfo, logged_server_errors, pishkhan_server

HTTP_TIMEOUT_S = 60.0
SERVER_ERROR_STATUS = 500


@dataclass(frozen=True)
class Seen:
    """One response: what was asked and what came back."""

    method: str
    path: str
    status: int
    content_type: str


@dataclass
class Server:
    """A running server, and the clients that talked to it."""

    info: ServerInfo
    seen: list[Seen] = field(default_factory=list)
    _clients: list[httpx.Client] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return self.info.base

    @property
    def env(self) -> dict[str, str]:
        return self.info.env

    def _record(self, response: httpx.Response) -> None:
        request = response.request
        seen = Seen(
            request.method,
            request.url.path,
            response.status_code,
            response.headers.get("content-type", ""),
        )
        with self._lock:
            self.seen.append(seen)

    def http(self) -> httpx.Client:
        """A new recorded client with base_url set (closed with the server)."""
        client = httpx.Client(
            base_url=self.base,
            timeout=HTTP_TIMEOUT_S,
            event_hooks={"response": [self._record]},
        )
        with self._lock:
            self._clients.append(client)
        return client

    def token(self, subject: str, roles: Iterable[str] = ("citizen",)) -> str:
        return self.info.token(subject, roles)

    def client(self, subject: str, roles: Iterable[str] = ("citizen",)) -> ApiClient:
        """A subject's API client, with a development token for roles, on its own connection."""
        return ApiClient(self.http(), subject=subject, token=self.token(subject, roles))

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()

    def server_errors(self) -> list[str]:
        """Every 5xx: recorded by the clients, and in the server's access log."""
        recorded = [f"{s.method} {s.path} -> {s.status}" for s in self.seen if s.status >= 500]
        text = self.info.log_path.read_text(errors="replace")
        return recorded + logged_server_errors(text)


def _run(db_url: str, workdir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    with pishkhan_server(db_url, workdir, extra_env=extra_env) as info:
        server = Server(info)
        try:
            yield server
        finally:
            server.close_clients()
    errors = server.server_errors()  # after the stop: the log is complete
    assert not errors, f"the server answered 5xx: {errors[:5]}"


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A fresh server on an empty database (SQLite, then PostgreSQL)."""
    yield from _run(db_url, tmp_path)


@pytest.fixture
def make_server(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with extra PISHKHAN_* settings: make_server(PISHKHAN_X="1")."""
    with ExitStack() as stack:

        def start(**extra_env: str) -> Server:
            workdir = tmp_path / f"server-{uuid.uuid4().hex[:8]}"
            workdir.mkdir()
            runs = _run(db_url, workdir, extra_env)
            stack.callback(lambda: next(runs, None))  # stop it, and check it, at teardown
            return next(runs)

        yield start


# --- a server per module and backend -------------------------------------------------------------


def _create_pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    import psycopg
    from psycopg import sql

    admin = make_url(admin_url)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"pishkhan_e2e_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    url = admin.set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), drop


@pytest.fixture(scope="module", params=DB_BACKENDS, ids=DB_BACKENDS)
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database shared by one module's tests, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'ledger.db'}"
        return
    admin_url = request.getfixturevalue("pg_admin_url")
    url, drop = _create_pg_database(admin_url.render_as_string(hide_password=False))
    try:
        yield url
    finally:
        drop()


@pytest.fixture(scope="module")
def shared_server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a whole module on each backend (tests must not depend on each other)."""
    yield from _run(module_db_url, tmp_path_factory.mktemp("server"))
