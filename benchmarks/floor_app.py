"""The floor of this stack: a bare FastAPI app that does the least a write API can do.

    python -m benchmarks.floor_app --database-url URL [--host H] [--port P] [--workers 2]

One endpoint, ``POST /floor``: validate a small JSON body with pydantic, insert one row in one
committed transaction, answer 201 with the row's id. No authentication, no signature, no ledger,
no logging. It runs on the same uvicorn, FastAPI, SQLAlchemy engine settings (api.database
.make_engine) and PostgreSQL as the service, so benchmarks/bench_api.py can say how close the
signed-transaction pipeline comes to what the stack itself allows.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, insert, text

from api.database import make_engine

DATABASE_URL_ENV = "PISHKHAN_FLOOR_DATABASE_URL"
MAX_TEXT_CHARS = 64
MAX_WORKERS = 64
DEFAULT_WORKERS = 2

metadata = MetaData()
floor_rows = Table(
    "floor_rows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(MAX_TEXT_CHARS), nullable=False),
    Column("ref", String(MAX_TEXT_CHARS), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
)


class FloorIn(BaseModel):
    """The body: a few small, validated members; anything else is refused (422)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    ref: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    amount_minor: int = Field(ge=0)


class FloorOut(BaseModel):
    id: int


def create_app(engine: Engine) -> FastAPI:
    """The floor app over engine (disposed of at shutdown)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="floor", lifespan=lifespan)

    # A plain def runs in FastAPI's thread pool, as the service's blocking database work does.
    @app.post("/floor", status_code=201)
    def post_floor(body: FloorIn) -> FloorOut:
        with engine.begin() as conn:
            row_id = conn.execute(
                insert(floor_rows).values(**body.model_dump()).returning(floor_rows.c.id)
            ).scalar_one()
        return FloorOut(id=row_id)

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app


def app_factory() -> FastAPI:
    """For uvicorn's workers: the database URL comes from PISHKHAN_FLOOR_DATABASE_URL."""
    return create_app(make_engine(os.environ[DATABASE_URL_ENV]))


def prepare(database_url: str) -> None:
    """Create the table once, before the workers start."""
    engine = make_engine(database_url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.floor_app", description=__doc__)
    p.add_argument("--database-url", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    args = p.parse_args(argv)
    if not 1 <= args.workers <= MAX_WORKERS:
        p.error(f"--workers must be between 1 and {MAX_WORKERS}")
    prepare(args.database_url)
    os.environ[DATABASE_URL_ENV] = args.database_url  # inherited by the workers
    uvicorn.run(
        "benchmarks.floor_app:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        server_header=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
