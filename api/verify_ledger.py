"""`pishkhan audit verify-ledger`: read the stored ledger and hand it to the pure auditor."""

from __future__ import annotations

import base64
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from api.database import make_engine, normalise_url, read_only
from api.settings import Settings, get_settings
from audit.ledger_check import LedgerReport, verify_ledger
from audit.ledger_digest import (
    NodeDigests,
    check_intact,
    intact_report,
    node_digests,
    recompute,
    signed_checkpoints,
)
from ledger import store
from ledger.errors import LedgerError
from ledger.note import NoteVerifier
from signatures.errors import SignaturesError

EXIT_OK, EXIT_TAMPERED, EXIT_UNDECIDED = 0, 1, 2
MAX_FINDINGS_SHOWN = 20
# Below this many leaves a second process costs more to start than it saves.
PARALLEL_MIN_LEAVES = 100_000


class Undecided(Exception):
    """The ledger could not be read or the trust anchors are missing: no verdict."""


def load_vkeys(path: Path) -> list[NoteVerifier]:
    """Verifier keys from a file of C2SP vkey lines (blank lines and # comments ignored).

    Raises Undecided when the file cannot be read or holds no key; NoteFormatError on a bad line.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise Undecided(f"cannot read trusted keys from {path}: {exc}") from None
    keys = [NoteVerifier.from_vkey(s.strip()) for s in lines if s.strip() and s[0] != "#"]
    if not keys:
        raise Undecided(f"{path} holds no vkey line")
    return keys


def _verifiers(trusted_keys: str | None, settings: Settings) -> list[NoteVerifier]:
    if trusted_keys:
        return load_vkeys(Path(trusted_keys))
    from api.keys import load_checkpoint_keyring

    # Every keyring key, retired ones included: old checkpoints are signed by old keys. Never
    # generate a key here, and do not require one valid now: auditing needs no signer.
    keyring = load_checkpoint_keyring(
        settings.model_copy(update={"generate_keys": False, "env": "prod"}),
        require_current=False,
    )
    return keyring.verifiers()


def _nodes_and_signatures(
    url: str, tree_size: int, vkeys: list[str], origin: str
) -> tuple[NodeDigests | None, int | None]:
    """In a worker process: digest the stored nodes and check the checkpoint signatures of the
    tree of tree_size, from a snapshot of its own (rows of that tree never change)."""
    verifiers = [NoteVerifier.from_vkey(v) for v in vkeys]
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn = read_only(conn)
            nodes = node_digests(store.scan_nodes_by_level(conn, tree_size=tree_size))
            rows = (c for c in store.iter_checkpoints(conn) if c.tree_size <= tree_size)
            return nodes, signed_checkpoints(rows, verifiers=verifiers, origin=origin)
    finally:
        engine.dispose()


def _snapshot(conn: Connection) -> Connection:
    conn = read_only(conn)
    if conn.dialect.name == "postgresql":
        # One snapshot for all the streams, even while appends go on.
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def _fast_path(
    conn: Connection, url: str | None, verifiers: list[NoteVerifier], origin: str
) -> LedgerReport | None:
    """Prove the ledger intact, or None.

    On large ledgers a second process digests the stored nodes and checks the checkpoint
    signatures while this one rebuilds the tree: two cores. The worker reads its own snapshot,
    bounded to the tree size of ours, and ours checks that no node lies beyond that tree.
    """
    size = store.newest_checkpoint_size(conn)  # the first read fixes our snapshot
    if url is None or size < PARALLEL_MIN_LEAVES:
        return check_intact(
            store.scan_entries(conn),
            store.scan_nodes_by_level(conn),
            lambda: store.iter_checkpoints(conn),
            verifiers=verifiers,
            origin=origin,
        )
    vkeys = [v.vkey for v in verifiers]
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        future = pool.submit(_nodes_and_signatures, url, size, vkeys, origin)
        recomputed = recompute(store.scan_entries(conn), store.iter_checkpoints(conn))
        try:
            nodes, signed = future.result()
        except Exception:  # the worker's trouble costs speed, never the verdict:
            return None  # the detailed path re-reads everything from our snapshot
    if store.count_nodes_beyond(conn, size):
        return None
    return intact_report(recomputed, nodes, signed)


def check_ledger(
    conn: Connection, *, verifiers: list[NoteVerifier], origin: str, url: str | None = None
) -> LedgerReport:
    """Verify the stored ledger over one connection (the CLI and the benchmark share this).

    The fast path proves an intact ledger (with `url`, large ledgers use a second process for
    the stored nodes); anything else is re-read in detail, from the same snapshot, to name what
    disagrees.
    """
    conn = _snapshot(conn)
    quick = _fast_path(conn, url, verifiers, origin)
    if quick is not None:
        return quick
    return verify_ledger(
        store.iter_entries(conn),
        store.iter_nodes_by_completion(conn),
        store.iter_checkpoints(conn),
        verifiers=verifiers,
        origin=origin,
    )


def _read_and_check(url: str, verifiers: list[NoteVerifier], origin: str) -> LedgerReport:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise Undecided(f"no SQLite database at {parsed.database}")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return check_ledger(conn, verifiers=verifiers, origin=origin, url=url)
    finally:
        engine.dispose()


def run_verify_ledger(
    *, database: str | None, trusted_keys: str | None, origin: str | None, as_json: bool
) -> int:
    """Verify the whole ledger; print a report; return the exit status (0, 1 or 2)."""
    settings = get_settings()
    url = normalise_url(database or settings.database_url)
    started = time.perf_counter()
    try:
        verifiers = _verifiers(trusted_keys, settings)
        report = _read_and_check(url, verifiers, origin or settings.ledger_origin)
    except (Undecided, SQLAlchemyError, LedgerError, SignaturesError, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _print_undecided(detail, as_json=as_json)
        return EXIT_UNDECIDED
    elapsed_s = time.perf_counter() - started
    _print_report(report, elapsed_s, as_json=as_json)
    return EXIT_OK if report.consistent else EXIT_TAMPERED


def _print_undecided(detail: str, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"status": "undecided", "detail": detail}))
    else:
        print(f"ledger: UNDECIDED: {detail}", file=sys.stderr)


def _print_report(report: LedgerReport, elapsed_s: float, *, as_json: bool) -> None:
    if as_json:
        body = report.as_dict()
        body["root_hash"] = base64.b64encode(report.root_hash).decode()
        body["elapsed_s"] = round(elapsed_s, 3)
        print(json.dumps(body, indent=2))
        return
    root = base64.b64encode(report.root_hash).decode()
    counts = (
        f"{report.entries} entries, {report.nodes} nodes, {report.checkpoints} "
        f"checkpoints in {elapsed_s:.2f} s"
    )
    if report.consistent:
        print(f"ledger: consistent: tree size {report.tree_size}, root {root} ({counts})")
        return
    print(
        f"ledger: TAMPERED: first bad index {report.first_bad_index}, first bad checkpoint "
        f"{report.first_bad_checkpoint} ({counts})"
    )
    for finding in report.findings[:MAX_FINDINGS_SHOWN]:
        print(f"  {finding.kind}: {finding.detail}")
    if len(report.findings) > MAX_FINDINGS_SHOWN:
        print(f"  … and {len(report.findings) - MAX_FINDINGS_SHOWN} more findings (see --json)")
