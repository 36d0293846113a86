"""Whole-ledger verification, pure: streams of stored rows in, a report of what disagrees out.

The auditor trusts nothing stored but the checkpoint signatures of keys it was given. It
recomputes every leaf hash and the whole tree from the leaf bytes, in index order, and checks:

- each stored leaf hash against SHA-256(0x00 ‖ leaf), and that indices run 0, 1, 2, … with no gap;
- each stored tree node against the recomputed one (both streams in completion order);
- each checkpoint: its signature by a trusted key, its origin, that its row matches its signed
  text, and that its root is the recomputed root at its size.

All checkpoints are compared with prefixes of one recomputed leaf sequence, so when every root
matches, each checkpoint is consistent with the next by construction: a stronger statement than
an RFC 9162 consistency proof between them, which would only show the same thing for two trees.

The first bad index is exact for a leaf whose bytes or hash were edited and for a removed row; a
reordered or rewritten row whose hashes were recomputed is placed between the last checkpoint
that still matches and the first that does not ("bad_range").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledger import merkle
from ledger.checkpoint import open_checkpoint
from ledger.errors import NoteError
from ledger.merkle import NodeId
from ledger.note import NoteVerifier


class CheckpointRow(Protocol):
    """A stored checkpoint as read from storage (the signed note and the columns beside it)."""

    @property
    def tree_size(self) -> int: ...
    @property
    def root_hash(self) -> bytes: ...
    @property
    def note(self) -> str: ...


EntryRow = tuple[int, bytes, bytes]  # (index, leaf, stored leaf hash), in index order
NodeRow = tuple[NodeId, bytes]  # stored node, in completion order (end leaf, then level)

# Findings that pinpoint one entry row, and findings that place damage among a range of them.
EXACT_ENTRY_KINDS = frozenset(
    {"leaf_hash_mismatch", "missing_entry", "extra_entry", "checkpoint_beyond_entries"}
)
RANGE_ENTRY_KINDS = frozenset({"checkpoint_root_mismatch", "unsigned_entries"})
NODE_KINDS = frozenset({"node_mismatch", "missing_node", "extra_node"})


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str
    index: int | None = None  # first leaf index concerned
    tree_size: int | None = None  # the checkpoint concerned
    range_end: int | None = None  # with index: the damage lies in [index, range_end)

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class LedgerReport:
    entries: int = 0
    nodes: int = 0
    checkpoints: int = 0
    tree_size: int = 0
    root_hash: bytes = merkle.EMPTY_ROOT
    findings: list[Finding] = field(default_factory=list)
    # True when the digest fast path proved the ledger intact (audit.ledger_digest).
    fast_path: bool = False

    @property
    def consistent(self) -> bool:
        return not self.findings

    @property
    def first_bad_index(self) -> int | None:
        """The lowest leaf index that storage disagrees about, or None.

        Entries first: an exact finding names its row; a checkpoint mismatch says only that
        something in [good_size, size) changed, unless an exact finding lies inside it. A stored
        node that disagrees counts only when every entry it covers lies before the first bad
        entry: then its leaves are authentic and the node row itself was changed; otherwise it
        is a consequence of the bad entry.
        """
        exact = [
            f.index for f in self.findings if f.kind in EXACT_ENTRY_KINDS and f.index is not None
        ]
        entry_candidates = list(exact)
        for f in self.findings:
            if f.kind in RANGE_ENTRY_KINDS and f.index is not None:
                end = f.range_end if f.range_end is not None else f.index + 1
                if not any(f.index <= i < end for i in exact):
                    entry_candidates.append(f.index)
        first_entry = min(entry_candidates) if entry_candidates else None
        node_candidates = [
            f.index
            for f in self.findings
            if f.kind in NODE_KINDS
            and f.index is not None
            and f.range_end is not None
            and (first_entry is None or f.range_end <= first_entry)
        ]
        candidates = entry_candidates + node_candidates
        return min(candidates) if candidates else None

    @property
    def first_bad_checkpoint(self) -> int | None:
        sizes = [f.tree_size for f in self.findings if f.tree_size is not None]
        return min(sizes) if sizes else None

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "consistent" if self.consistent else "tampered",
            "entries_checked": self.entries,
            "nodes_checked": self.nodes,
            "checkpoints_checked": self.checkpoints,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "first_bad_index": self.first_bad_index,
            "first_bad_checkpoint": self.first_bad_checkpoint,
            "fast_path": self.fast_path,
            "findings": [f.as_dict() for f in self.findings],
        }


class _NodeComparer:
    """Merges recomputed nodes with stored ones; both arrive in completion order."""

    def __init__(self, stored: Iterable[NodeRow], report: LedgerReport) -> None:
        self._stored: Iterator[NodeRow] = iter(stored)
        self._next: NodeRow | None = next(self._stored, None)
        self._report = report

    @staticmethod
    def _key(node: NodeId) -> tuple[int, int]:
        return node.end, node.level

    def _flag(self, kind: str, detail: str, node: NodeId) -> None:
        self._report.findings.append(Finding(kind, detail, index=node.start, range_end=node.end))

    def compare(self, node: NodeId, computed: bytes) -> None:
        while self._next is not None and self._key(self._next[0]) < self._key(node):
            self._flag(
                "extra_node", f"stored node {self._next[0]} is not in the tree", self._next[0]
            )
            self._advance()
        if self._next is None or self._next[0] != node:
            self._flag("missing_node", f"node {node} is not stored", node)
            return
        if self._next[1] != computed:
            self._flag("node_mismatch", f"stored node {node} has another hash", node)
        self._advance()

    def _advance(self) -> None:
        self._report.nodes += 1
        self._next = next(self._stored, None)

    def finish(self) -> None:
        while self._next is not None:
            extra = self._next[0]
            self._flag("extra_node", f"stored node {extra} lies beyond the entries", extra)
            self._advance()


def checkpoint_findings(
    row: CheckpointRow,
    computed_root: bytes,
    *,
    verifiers: Sequence[NoteVerifier],
    origin: str,
    good_size: int,
) -> list[Finding]:
    size = row.tree_size
    try:
        signed = open_checkpoint(row.note, verifiers, origin=origin)
    except NoteError as exc:
        return [Finding("checkpoint_signature", f"checkpoint {size}: {exc}", tree_size=size)]
    if (signed.tree_size, signed.root_hash) != (size, row.root_hash):
        return [
            Finding(
                "checkpoint_row_mismatch",
                f"checkpoint {size}: stored columns differ from the signed note",
                tree_size=size,
            )
        ]
    if signed.root_hash != computed_root:
        return [
            Finding(
                "checkpoint_root_mismatch",
                f"checkpoint {size}: signed root differs from the root recomputed from "
                f"the entries; the change lies in [{good_size}, {size})",
                index=good_size,
                tree_size=size,
                range_end=size,
            )
        ]
    return []


def verify_ledger(
    entries: Iterable[EntryRow],
    nodes: Iterable[NodeRow],
    checkpoints: Iterable[CheckpointRow],
    *,
    verifiers: Sequence[NoteVerifier],
    origin: str,
) -> LedgerReport:
    """Recompute the ledger from its stored rows and report every disagreement.

    Never raises for tampered data: that is what the report is for. The caller decides what an
    inconsistent report means (exit status 1 for the CLI).
    """
    report = LedgerReport()
    builder = merkle.TreeBuilder()
    comparer = _NodeComparer(nodes, report)
    pending = iter(checkpoints)
    checkpoint = next(pending, None)
    good_size = last_size = 0
    leaf_hash, push, findings = merkle.leaf_hash, builder.push, report.findings
    expected = 0  # the index that should follow the previous row
    for index, leaf, stored_hash in entries:
        if index != expected:
            kind = "missing_entry" if index > expected else "extra_entry"
            findings.append(
                Finding(
                    kind, f"expected index {expected}, found {index}", index=min(index, expected)
                )
            )
        expected = index + 1
        computed = leaf_hash(leaf)
        if computed != stored_hash:
            findings.append(
                Finding(
                    "leaf_hash_mismatch",
                    f"entry {index}: stored leaf hash is not SHA-256(0x00 || leaf)",
                    index=index,
                )
            )
        for node, h in push(computed):
            comparer.compare(node, h)
        size = builder.tree_size
        while checkpoint is not None and checkpoint.tree_size <= size:
            report.checkpoints += 1
            found = checkpoint_findings(
                checkpoint,
                builder.root if checkpoint.tree_size == size else b"",
                verifiers=verifiers,
                origin=origin,
                good_size=good_size,
            )
            findings.extend(found)
            if not found:
                good_size = checkpoint.tree_size
            last_size = checkpoint.tree_size
            checkpoint = next(pending, None)
    report.entries = builder.tree_size
    comparer.finish()
    _finish(report, checkpoint, pending, last_size)
    report.tree_size, report.root_hash = builder.tree_size, builder.root
    return report


def _finish(
    report: LedgerReport,
    checkpoint: CheckpointRow | None,
    pending: Iterator[CheckpointRow],
    last_size: int,
) -> None:
    """Checkpoints beyond the last entry, and entries beyond the last checkpoint."""
    while checkpoint is not None:
        report.checkpoints += 1
        report.findings.append(
            Finding(
                "checkpoint_beyond_entries",
                f"checkpoint {checkpoint.tree_size} covers entries that are not stored "
                f"(only {report.entries})",
                index=report.entries,
                tree_size=checkpoint.tree_size,
            )
        )
        last_size = checkpoint.tree_size
        checkpoint = next(pending, None)
    if report.entries > last_size:
        report.findings.append(
            Finding(
                "unsigned_entries",
                f"entries [{last_size}, {report.entries}) are covered by no checkpoint",
                index=last_size,
                range_end=report.entries,
            )
        )
