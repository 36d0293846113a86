"""The pure auditor on in-memory ledgers: the fast path and the detailed path agree.

check_intact must return a report exactly when verify_ledger finds nothing, for an intact ledger
and for every kind of damage; the detailed path must name the damage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.ledger_check import verify_ledger
from audit.ledger_digest import check_intact
from ledger import merkle
from ledger.checkpoint import format_checkpoint
from ledger.merkle import NodeId
from ledger.note import NoteSigner, sign_note

ORIGIN = "audit.test/log"
SIGNER = NoteSigner.generate(ORIGIN)


@dataclass(frozen=True)
class Cp:
    tree_size: int
    root_hash: bytes
    note: str


@dataclass
class Ledger:
    entries: list[tuple[int, bytes, bytes]]
    nodes: list[tuple[NodeId, bytes]]  # completion order
    checkpoints: list[Cp]

    def by_level(self) -> list[tuple[int, int, bytes]]:
        return sorted((n.level, n.index, h) for n, h in self.nodes)

    def fast(self):  # type: ignore[no-untyped-def]
        return check_intact(
            self.entries,
            self.by_level(),
            lambda: self.checkpoints,
            verifiers=[SIGNER.verifier],
            origin=ORIGIN,
        )

    def detailed(self):  # type: ignore[no-untyped-def]
        return verify_ledger(
            self.entries, self.nodes, self.checkpoints, verifiers=[SIGNER.verifier], origin=ORIGIN
        )


def build(batches: list[int]) -> Ledger:
    builder = merkle.TreeBuilder()
    ledger = Ledger([], [], [])
    for batch in batches:
        for _ in range(batch):
            leaf = f"leaf {builder.tree_size}".encode()
            ledger.entries.append((builder.tree_size, leaf, merkle.leaf_hash(leaf)))
            ledger.nodes.extend(builder.push(merkle.leaf_hash(leaf)))
        root = builder.root
        note = sign_note(format_checkpoint(ORIGIN, builder.tree_size, root), [SIGNER])
        ledger.checkpoints.append(Cp(builder.tree_size, root, note))
    return ledger


def _agree(ledger: Ledger) -> bool:
    fast, detailed = ledger.fast(), ledger.detailed()
    assert (fast is not None) == detailed.consistent, detailed.findings
    if fast is not None:
        assert (fast.entries, fast.nodes, fast.checkpoints, fast.root_hash) == (
            detailed.entries,
            detailed.nodes,
            detailed.checkpoints,
            detailed.root_hash,
        )
    return detailed.consistent


def test_intact_ledger_passes_both_paths() -> None:
    ledger = build([1, 1, 3, 8, 1, 20])
    assert _agree(ledger)
    report = ledger.fast()
    assert report is not None and report.tree_size == 34 and report.checkpoints == 6
    assert report.fast_path and not ledger.detailed().fast_path


def test_empty_ledger_is_intact() -> None:
    assert _agree(Ledger([], [], []))


def _swap_entry(ledger: Ledger, i: int, leaf: bytes, h: bytes) -> None:
    ledger.entries[i] = (ledger.entries[i][0], leaf, h)


DAMAGE = {
    "leaf_edited": lambda lg: _swap_entry(lg, 5, b"forged", lg.entries[5][2]),
    "leaf_and_hash_edited": lambda lg: _swap_entry(lg, 5, b"f", merkle.leaf_hash(b"f")),
    "entry_removed": lambda lg: lg.entries.pop(5),
    "last_entry_removed": lambda lg: lg.entries.pop(),
    "entry_duplicated": lambda lg: lg.entries.insert(6, lg.entries[5]),
    "unsigned_entry_added": lambda lg: lg.entries.append(
        (len(lg.entries), b"x", merkle.leaf_hash(b"x"))
    ),
    "node_edited": lambda lg: lg.nodes.__setitem__(3, (lg.nodes[3][0], b"\x07" * 32)),
    "node_removed": lambda lg: lg.nodes.pop(3),
    "node_added": lambda lg: lg.nodes.append((NodeId(9, 0), b"\x07" * 32)),
    "checkpoint_note_forged": lambda lg: lg.checkpoints.__setitem__(
        2, replace(lg.checkpoints[2], note=lg.checkpoints[2].note.replace("\n5\n", "\n6\n"))
    ),
    "checkpoint_root_column_edited": lambda lg: lg.checkpoints.__setitem__(
        2, replace(lg.checkpoints[2], root_hash=b"\x00" * 32)
    ),
    "checkpoint_removed_at_end": lambda lg: lg.checkpoints.pop(),
    "checkpoint_from_other_key": lambda lg: lg.checkpoints.__setitem__(
        0,
        replace(
            lg.checkpoints[0],
            note=sign_note(
                format_checkpoint(ORIGIN, 1, lg.checkpoints[0].root_hash),
                [NoteSigner.generate(ORIGIN)],
            ),
        ),
    ),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_every_damage_fails_the_fast_path_and_is_named(damage) -> None:  # type: ignore[no-untyped-def]
    ledger = build([1, 1, 3, 8, 1, 20])
    damage(ledger)
    assert not _agree(ledger)
    assert ledger.detailed().findings


@given(st.lists(st.integers(1, 20), min_size=1, max_size=8), st.data())
def test_fast_and_detailed_paths_agree_on_random_single_byte_damage(
    batches: list[int], data: st.DataObject
) -> None:
    ledger = build(batches)
    target = data.draw(st.sampled_from(["leaf", "stored_hash", "node", "note", "none"]))
    if target == "leaf":
        i = data.draw(st.integers(0, len(ledger.entries) - 1))
        idx, leaf, h = ledger.entries[i]
        ledger.entries[i] = (idx, leaf + b"!", h)
    elif target == "stored_hash":
        i = data.draw(st.integers(0, len(ledger.entries) - 1))
        idx, leaf, h = ledger.entries[i]
        ledger.entries[i] = (idx, leaf, bytes([h[0] ^ 1]) + h[1:])
    elif target == "node" and ledger.nodes:
        i = data.draw(st.integers(0, len(ledger.nodes) - 1))
        node, h = ledger.nodes[i]
        ledger.nodes[i] = (node, bytes([h[0] ^ 1]) + h[1:])
    elif target == "note":
        i = data.draw(st.integers(0, len(ledger.checkpoints) - 1))
        cp = ledger.checkpoints[i]
        ledger.checkpoints[i] = replace(cp, note=cp.note.replace(ORIGIN, ORIGIN + "x", 1))
    damaged = target != "none" and not (target == "node" and not ledger.nodes)
    assert _agree(ledger) is not damaged
