"""Receipts from storage: the transaction, its leaf and inclusion proof, the signer's key with its
registration and later state changes (each with its own proof), all against one checkpoint.

Every proof of a set of receipts comes from one query (ledger.store.inclusion_proofs). The format
is ledger/receipt.py's, specified in docs/FORMATS.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, select

from api.transactions import store as tx_store
from ledger import store
from ledger.receipt import ProvenEntry, SignerKeyEvidence, build_receipt
from ledger.schema import entries
from signatures import registry_store
from signatures.canonical import MAX_DOCUMENT_BYTES, JsonValue, parse_json
from signatures.keys import KeyEventKind, KeyRecord


def _json_object(text: str) -> dict[str, JsonValue]:
    value = parse_json(text.encode("utf-8"), max_bytes=MAX_DOCUMENT_BYTES)
    assert isinstance(value, dict)
    return value


def _leaves(conn: Connection, indices: set[int]) -> dict[int, bytes]:
    if not indices:
        return {}
    query = select(entries.c.idx, entries.c.leaf).where(entries.c.idx.in_(sorted(indices)))
    return {int(i): bytes(leaf) for i, leaf in conn.execute(query)}


def _event_indices(record: KeyRecord, tree_size: int) -> list[int]:
    return [
        e.ledger_index
        for e in record.events
        if e.kind is not KeyEventKind.REGISTERED
        and e.ledger_index is not None
        and e.ledger_index < tree_size
    ]


def _registration_index(record: KeyRecord) -> int:
    index = record.events[0].ledger_index
    assert index is not None, "every stored key has its registration's ledger index"
    return index


def build_receipts(
    conn: Connection,
    rows: Sequence[tx_store.TxRow],
    *,
    checkpoint: store.StoredCheckpoint,
    known_keys: Mapping[str, KeyRecord] | None = None,
) -> dict[str, dict[str, JsonValue]]:
    """A receipt per transaction row, all proving against checkpoint (whose tree must contain
    every row). known_keys are key records already read as of that checkpoint; the others are
    loaded. Raises StorageInconsistentError when the ledger lacks a node or entry."""
    tree_size = checkpoint.tree_size
    known = known_keys or {}
    keys = {kid: known[kid] for kid in {r.kid for r in rows} if kid in known}
    keys.update(registry_store.load_keys(conn, {r.kid for r in rows} - set(keys)))
    key_indices: set[int] = set()
    for record in keys.values():
        key_indices.add(_registration_index(record))
        key_indices.update(_event_indices(record, tree_size))
    key_rows = tx_store.by_leaf_indices(conn, key_indices)
    wanted = key_indices | {r.leaf_index for r in rows}
    leaves = _leaves(conn, wanted)
    proofs = store.inclusion_proofs(conn, sorted(wanted), tree_size=tree_size)

    def proven(index: int) -> ProvenEntry:
        row = key_rows[index]
        return ProvenEntry(
            leaf_index=index,
            leaf=leaves[index],
            inclusion_proof=tuple(proofs[index]),
            envelope=_json_object(row.envelope),
            jws=row.jws,
        )

    evidence = {
        kid: SignerKeyEvidence(
            kid=record.kid,
            subject=record.subject,
            jwk=dict(record.jwk.to_dict()),
            assurance=record.assurance.value,
            registration=proven(_registration_index(record)),
            events=tuple(proven(i) for i in _event_indices(record, tree_size)),
        )
        for kid, record in keys.items()
    }
    out: dict[str, dict[str, JsonValue]] = {}
    for row in rows:
        out[row.id] = build_receipt(
            transaction_id=row.id,
            envelope=_json_object(row.envelope),
            jws=row.jws,
            result=_json_object(row.result),
            leaf=leaves[row.leaf_index],
            leaf_index=row.leaf_index,
            inclusion_proof=proofs[row.leaf_index],
            checkpoint_note=checkpoint.note,
            signer_key=evidence[row.kid],
            self_check=False,
        )
    return out
