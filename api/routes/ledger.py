"""Read-only ledger resources: the signed checkpoint, entries, proofs and verifier keys.

No authentication: leaves hold hashes and signatures, never personal data in clear, and auditors
must be able to check the log without an account. Hashes are standard base64 with padding, as in
C2SP checkpoints. Proofs are served for the sizes the client names; the signed checkpoint, not the
root hashes returned beside the proofs, is what a client trusts.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from sqlalchemy import Connection, Engine

from api.database import read_only
from api.keys import CheckpointKeyring
from api.problems import problem_responses
from ledger import store
from ledger.merkle import MAX_TREE_SIZE

# Sizes and indices are signed 64-bit integers in storage; more digits can never be in range.
MAX_DECIMAL_DIGITS = len(str(MAX_TREE_SIZE))
_CANONICAL_DECIMAL = re.compile("0|[1-9][0-9]*")
_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])


def _canonical_decimal(value: object) -> object:
    """Accept only plain decimal digits without leading zeros: no sign, space, '.', 'e' or '_'.

    Runs before pydantic's int parsing, which would accept "1.0", " 1" or "1_000".
    """
    if not isinstance(value, str):
        return value
    if not _CANONICAL_DECIMAL.fullmatch(value):
        raise PydanticCustomError(
            "uint_parsing", "Input should be a non-negative integer in canonical decimal form"
        )
    if len(value) > MAX_DECIMAL_DIGITS:  # reject before converting arbitrarily long input
        raise PydanticCustomError(
            "less_than_equal", "Input should be less than or equal to {le}", {"le": MAX_TREE_SIZE}
        )
    return value


_Strict = BeforeValidator(_canonical_decimal)  # last, so it runs first
PathIndex = Annotated[int, Path(ge=0, le=MAX_TREE_SIZE, description="Leaf index"), _Strict]
QueryIndex = Annotated[int, Query(ge=0, le=MAX_TREE_SIZE, description="Leaf index"), _Strict]
TreeSize = Annotated[int, Query(ge=1, le=MAX_TREE_SIZE, description="Tree size"), _Strict]
FirstSize = Annotated[int, Query(ge=1, le=MAX_TREE_SIZE, description="Older tree size"), _Strict]
SecondSize = Annotated[int, Query(ge=1, le=MAX_TREE_SIZE, description="Newer tree size"), _Strict]


_B64 = "standard base64 with padding"


class LedgerEntry(BaseModel):
    index: int
    leaf: str = Field(description=f"The leaf bytes, {_B64}")
    leaf_hash: str = Field(description=f"SHA-256(0x00 ‖ leaf), {_B64}")


class InclusionProof(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str = Field(description=f"SHA-256(0x00 ‖ leaf), {_B64}")
    proof: list[str] = Field(description=f"RFC 9162 inclusion path, {_B64}, leaf first")
    root_hash: str = Field(description=f"Root of the tree of tree_size leaves, {_B64}")


class ConsistencyProof(BaseModel):
    first: int
    second: int
    first_root_hash: str = Field(description=f"Root of the tree of first leaves, {_B64}")
    second_root_hash: str = Field(description=f"Root of the tree of second leaves, {_B64}")
    proof: list[str] = Field(description=f"RFC 9162 consistency proof, {_B64}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(_engine)]


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction for the whole request."""
    with engine.connect() as conn:
        conn = read_only(conn)
        if conn.dialect.name == "postgresql":
            # One snapshot for every statement of the request, so two reads never straddle a
            # concurrent append. Read-only transactions never fail to serialise here.
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        yield conn


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses={200: _TEXT, **problem_responses(404, 500)},
)
def get_checkpoint(engine: EngineDep) -> PlainTextResponse:
    """The newest signed checkpoint (C2SP tlog-checkpoint signed note), exactly as stored.

    404 while the ledger is empty.
    """
    with read_snapshot(engine) as conn:
        store.current_tree_size(conn)  # fail closed: the head must agree with the entries
        note = store.latest_checkpoint(conn).note
    return PlainTextResponse(note, media_type="text/plain; charset=utf-8")


@router.get("/entries/{index}", responses=problem_responses(400, 404, 500))
def get_entry(index: PathIndex, engine: EngineDep) -> LedgerEntry:
    """The leaf at `index` and its RFC 6962 leaf hash. 404 when no entry is there (yet)."""
    with read_snapshot(engine) as conn:
        # Fail closed, and never serve a stray row beyond the newest checkpoint.
        store.current_tree_size(conn)
        entry = store.get_entry(conn, index)
    return LedgerEntry(
        index=entry.leaf_index, leaf=_b64(entry.leaf), leaf_hash=_b64(entry.leaf_hash)
    )


@router.get("/proofs/inclusion", responses=problem_responses(400, 500))
def get_inclusion_proof(
    index: QueryIndex, tree_size: TreeSize, engine: EngineDep
) -> InclusionProof:
    """PATH(index, D[0:tree_size]), with the leaf hash and the root of that size.

    tree_size is required, never "the current size": a client asks for a proof against the
    checkpoint it already holds, which a default would race with concurrent appends.
    400 when index ≥ tree_size or tree_size is beyond the current tree.
    """
    with read_snapshot(engine) as conn:
        bundle = store.inclusion_bundle(conn, leaf_index=index, tree_size=tree_size)
    return InclusionProof(
        index=index,
        tree_size=tree_size,
        leaf_hash=_b64(bundle.leaf_hash),
        proof=[_b64(h) for h in bundle.proof],
        root_hash=_b64(bundle.root_hash),
    )


@router.get("/proofs/consistency", responses=problem_responses(400, 500))
def get_consistency_proof(
    first: FirstSize, second: SecondSize, engine: EngineDep
) -> ConsistencyProof:
    """PROOF(first, D[0:second]) and the roots of both sizes.

    400 when first > second or second is beyond the current tree; first == second gives an
    empty proof.
    """
    with read_snapshot(engine) as conn:
        bundle = store.consistency_bundle(conn, first_size=first, second_size=second)
    return ConsistencyProof(
        first=first,
        second=second,
        first_root_hash=_b64(bundle.first_root),
        second_root_hash=_b64(bundle.second_root),
        proof=[_b64(h) for h in bundle.proof],
    )


@router.get(
    "/keys", response_class=PlainTextResponse, responses={200: _TEXT, **problem_responses()}
)
def get_keys(request: Request) -> PlainTextResponse:
    """The C2SP verifier keys (vkeys) of the checkpoint signatures, one per line.

    Every key of the keyring: current, overlapping and retired.
    """
    keyring: CheckpointKeyring = request.app.state.checkpoint_keyring
    verifiers = keyring.verifiers()  # retired keys too: old checkpoints stay verifiable
    lines = "".join(f"{v.vkey}\n" for v in verifiers)
    return PlainTextResponse(lines, media_type="text/plain; charset=utf-8")
