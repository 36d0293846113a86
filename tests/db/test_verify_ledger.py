"""`pishkhan audit verify-ledger` finds tampering done behind the triggers' back.

Each test drops the append-only triggers, as an attacker with database access could, changes
stored rows with raw SQL, and expects the verifier to name the first bad index (or checkpoint).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from api import verify_ledger
from api.cli import main
from ledger.note import NoteSigner
from tests.db.conftest import ORIGIN, append_leaves

SINGLE_APPENDS = 20  # one leaf per transaction: a checkpoint at every size


def _build(engine: Engine, signer: NoteSigner) -> None:
    for i in range(SINGLE_APPENDS):
        append_leaves(engine, signer, [f"tx-{i}".encode()])
    for start in range(SINGLE_APPENDS, SINGLE_APPENDS + 64, 16):
        append_leaves(engine, signer, [f"tx-{i}".encode() for i in range(start, start + 16)])


def _drop_triggers(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in ("ledger_entries", "ledger_nodes", "ledger_checkpoints"):
            if engine.dialect.name == "postgresql":
                conn.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
            else:
                conn.execute(text(f"DROP TRIGGER {table}_no_update"))
                conn.execute(text(f"DROP TRIGGER {table}_no_delete"))


def _sql(engine: Engine, *statements: str, **params: object) -> None:
    _drop_triggers(engine)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def _cli(db_url: str, tmp_path: Path, signer: NoteSigner, *extra: str) -> int:
    """Run `pishkhan audit verify-ledger` trusting the signer's key."""
    keys = tmp_path / "trusted.vkeys"
    keys.write_text(f"# the test log's key\n{signer.verifier.vkey}\n")
    args = ["--database", db_url, "--trusted-keys", str(keys), "--origin", ORIGIN, *extra]
    return main(["audit", "verify-ledger", *args])


def _verify(
    db_url: str, tmp_path: Path, signer: NoteSigner, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, object]]:
    code = _cli(db_url, tmp_path, signer, "--json")
    return code, json.loads(capsys.readouterr().out)


def _h(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def test_untouched_ledger_is_consistent(
    parallel: str,
    engine: Engine,
    db_url: str,
    signer: NoteSigner,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _build(engine, signer)
    code, report = _verify(db_url, tmp_path, signer, capsys)
    assert code == 0
    assert report["status"] == "consistent"
    assert report["entries_checked"] == SINGLE_APPENDS + 64
    assert report["checkpoints_checked"] == SINGLE_APPENDS + 4
    assert report["findings"] == []
    assert report["fast_path"] is True  # proven by the digests, in one process or two


Tamper = Callable[[Engine], None]

TAMPERS: dict[str, tuple[Tamper, int | None, int | None, str]] = {
    # name: (tamper, first bad index, first bad checkpoint, a finding kind that must appear)
    "leaf_edited": (
        lambda e: _sql(e, "UPDATE ledger_entries SET leaf = :l WHERE idx = 7", l=b"forged"),
        7,
        8,
        "leaf_hash_mismatch",
    ),
    "leaf_and_hash_edited": (
        lambda e: _sql(
            e,
            "UPDATE ledger_entries SET leaf = :l, leaf_hash = :h WHERE idx = 7",
            l=b"forged",
            h=_h(b"forged"),
        ),
        7,
        8,
        "checkpoint_root_mismatch",
    ),
    "row_deleted": (
        lambda e: _sql(e, "DELETE FROM ledger_entries WHERE idx = 5"),
        5,
        6,
        "missing_entry",
    ),
    "rows_swapped": (
        lambda e: _sql(
            e,
            "UPDATE ledger_entries SET idx = 1000000 WHERE idx = 3",
            "UPDATE ledger_entries SET idx = 3 WHERE idx = 12",
            "UPDATE ledger_entries SET idx = 12 WHERE idx = 1000000",
        ),
        3,
        4,
        "checkpoint_root_mismatch",
    ),
    "row_inserted_at_end": (
        lambda e: _sql(
            e,
            "INSERT INTO ledger_entries (idx, leaf, leaf_hash) VALUES (84, :l, :h)",
            l=b"extra",
            h=_h(b"extra"),
        ),
        84,
        None,
        "unsigned_entries",
    ),
    "last_rows_deleted": (
        lambda e: _sql(e, "DELETE FROM ledger_entries WHERE idx >= 80"),
        80,
        84,
        "checkpoint_beyond_entries",
    ),
    "checkpoint_note_edited": (
        lambda e: _sql(
            e,
            "UPDATE ledger_checkpoints SET note = replace(note, '\n10\n', "
            "'\n11\n') WHERE tree_size = 10",
        ),
        None,
        10,
        "checkpoint_signature",
    ),
    "checkpoint_root_column_edited": (
        lambda e: _sql(
            e, "UPDATE ledger_checkpoints SET root_hash = :h WHERE tree_size = 12", h=b"\x00" * 32
        ),
        None,
        12,
        "checkpoint_row_mismatch",
    ),
    "node_inserted_beyond_the_tree": (
        lambda e: _sql(
            e,
            "INSERT INTO ledger_nodes (level, idx, hash) VALUES (1, 100, :h)",
            h=b"\x02" * 32,
        ),
        200,
        None,
        "extra_node",
    ),
    "node_edited": (
        lambda e: _sql(
            e, "UPDATE ledger_nodes SET hash = :h WHERE level = 2 AND idx = 1", h=b"\x01" * 32
        ),
        4,
        None,
        "node_mismatch",
    ),
}


@pytest.fixture(params=["one_process", "two_processes"])
def parallel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the verifier as it runs on small ledgers, and as on large ones (nodes digested in a
    second process)."""
    if request.param == "two_processes":
        monkeypatch.setattr(verify_ledger, "PARALLEL_MIN_LEAVES", 1)
    return str(request.param)


@pytest.mark.parametrize(
    ("tamper", "first_index", "first_checkpoint", "kind"), TAMPERS.values(), ids=TAMPERS.keys()
)
def test_tampering_is_detected_and_located(
    parallel: str,
    engine: Engine,
    db_url: str,
    signer: NoteSigner,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tamper: Tamper,
    first_index: int | None,
    first_checkpoint: int | None,
    kind: str,
) -> None:
    _build(engine, signer)
    tamper(engine)
    code, report = _verify(db_url, tmp_path, signer, capsys)
    assert code == 1
    assert report["status"] == "tampered"
    assert report["first_bad_index"] == first_index
    assert report["first_bad_checkpoint"] == first_checkpoint
    assert kind in {f["kind"] for f in report["findings"]}  # type: ignore[attr-defined]


def test_a_rewrite_inside_a_batch_is_placed_in_that_batch(
    engine: Engine,
    db_url: str,
    signer: NoteSigner,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Leaves 20..35 were appended in one batch: one checkpoint covers them all.
    _build(engine, signer)
    _sql(
        engine,
        "UPDATE ledger_entries SET leaf = :l, leaf_hash = :h WHERE idx = 27",
        l=b"forged",
        h=_h(b"forged"),
    )
    code, report = _verify(db_url, tmp_path, signer, capsys)
    assert code == 1
    mismatch = next(
        f
        for f in report["findings"]  # type: ignore[attr-defined]
        if f["kind"] == "checkpoint_root_mismatch"
    )
    assert (mismatch["index"], mismatch["range_end"]) == (20, 36)
    assert report["first_bad_index"] == 20


def test_a_key_we_do_not_trust_is_tampering_not_a_pass(
    engine: Engine,
    db_url: str,
    signer: NoteSigner,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    append_leaves(engine, signer, [b"one"])
    stranger = NoteSigner.generate(ORIGIN)
    code, report = _verify(db_url, tmp_path, stranger, capsys)
    assert code == 1
    assert report["first_bad_checkpoint"] == 1


def test_missing_database_is_undecided(
    tmp_path: Path, signer: NoteSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _verify(f"sqlite:///{tmp_path / 'absent.db'}", tmp_path, signer, capsys)
    assert code == 2
    assert report["status"] == "undecided"
    assert not (tmp_path / "absent.db").exists(), "the verifier must not create a database"


def test_unreadable_trusted_keys_is_undecided(
    engine: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "audit",
            "verify-ledger",
            "--database",
            db_url,
            "--trusted-keys",
            str(tmp_path / "none.vkeys"),
            "--json",
        ]
    )
    assert code == 2
    assert json.loads(capsys.readouterr().out)["status"] == "undecided"


def test_human_report_names_the_first_bad_index(
    engine: Engine,
    db_url: str,
    signer: NoteSigner,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _build(engine, signer)
    _sql(engine, "DELETE FROM ledger_entries WHERE idx = 9")
    code = _cli(db_url, tmp_path, signer)
    out = capsys.readouterr().out
    assert code == 1
    assert "TAMPERED: first bad index 9" in out
