"""`pishkhan audit verify-receipt` and `pishkhan audit verify-consistency`: the auditor's commands.

A thin shell over the pure verifiers (audit.receipt_check, audit.consistency_check): this module
reads files, takes the clock and, for --server, fetches over HTTP with the standard library
(audit.fetch). It loads no web framework and no database driver, so auditors run it offline
with few dependencies. Every file problem is one line on stderr naming the file, exit status 2,
never a traceback. docs/FORMATS.md specifies the receipt and the verdicts.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from api.cli_input import InputProblem, read_limited
from audit.consistency_check import ConsistencyReport, check_consistency
from audit.errors import FetchError
from audit.fetch import fetch_checkpoint, fetch_consistency_proof
from audit.receipt_check import ReceiptReport, check_receipt
from ledger.checkpoint import parse_checkpoint
from ledger.errors import NoteFormatError
from ledger.leaf import format_timestamp
from ledger.merkle import MAX_PROOF_HASHES
from ledger.note import MAX_NOTE_BYTES, NoteVerifier, split_note, strict_b64decode
from ledger.receipt import MAX_RECEIPT_BYTES

EXIT_UNUSABLE_INPUT = 2
# A trusted-keys file: one vkey per line; a few hundred keys is already far more than any log.
MAX_TRUSTED_KEYS_FILE_BYTES = 64 * 1024
MAX_PROOF_FILE_BYTES = 64 * 1024
MAX_AT_CHARS = 64

_SubParsers = argparse._SubParsersAction  # argparse has no public name for it


def add_receipt_commands(audit: _SubParsers[argparse.ArgumentParser]) -> None:
    """Register verify-receipt and verify-consistency under `pishkhan audit`.

    Each sets ``run`` to a function of the parsed arguments returning the exit status.
    """
    receipt = audit.add_parser(
        "verify-receipt",
        allow_abbrev=False,
        help="verify a transaction receipt offline against trusted ledger keys",
        description="Exit 0: TOTAL_PASSED. 1: TOTAL_FAILED. 2: INDETERMINATE, or unusable input.",
    )
    receipt.add_argument("receipt", help="receipt JSON file (- for stdin)")
    receipt.add_argument("--trusted-keys", required=True, help="file of C2SP vkey lines")
    receipt.add_argument("--json", action="store_true", help="print a machine-readable report")
    receipt.add_argument("--at", help="validation time, RFC 3339 with a zone (default: now)")
    receipt.add_argument("--origin", help="accept only checkpoints of the log of this origin")
    receipt.set_defaults(run=verify_receipt_command)
    consistency = audit.add_parser(
        "verify-consistency",
        allow_abbrev=False,
        help="check that a newer signed checkpoint extends an older one (RFC 9162)",
        description="Exit 0: consistent. 1: inconsistent (fork, rollback or rewrite). "
        "2: cannot tell (untrusted or malformed input, server unreachable).",
    )
    consistency.add_argument("old_checkpoint", help="the older signed checkpoint file")
    consistency.add_argument(
        "new_checkpoint",
        nargs="?",
        help="the newer checkpoint file (default with --server: the server's newest)",
    )
    consistency.add_argument("--trusted-keys", required=True, help="file of C2SP vkey lines")
    consistency.add_argument("--proof", help='JSON file {"proof": [base64, …]}')
    consistency.add_argument("--server", help="fetch the newest checkpoint and the proof here")
    consistency.add_argument("--json", action="store_true", help="print a machine-readable report")
    consistency.set_defaults(run=verify_consistency_command)


# --- files ---------------------------------------------------------------------------------------


def _error(message: str) -> None:
    print(f"pishkhan: error: {' '.join(message.split())}", file=sys.stderr)


def _text(path: str, *, what: str, limit: int) -> str:
    try:
        return read_limited(path, what=what, limit=limit).decode("utf-8")
    except UnicodeDecodeError:
        raise InputProblem(f"{what} {path}: not UTF-8") from None


def load_trusted_keys(path: str) -> list[str]:
    """The vkey lines of a trusted-keys file (blank lines and # comments ignored), each checked.

    Raises InputProblem naming the file (and line) when it cannot be read, a line is not a
    C2SP vkey, or it holds none.
    """
    text = _text(path, what="trusted keys", limit=MAX_TRUSTED_KEYS_FILE_BYTES)
    vkeys: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        vkey = line.strip()
        if not vkey or vkey.startswith("#"):
            continue
        try:
            NoteVerifier.from_vkey(vkey)
        except NoteFormatError as exc:
            raise InputProblem(f"trusted keys {path} line {number}: {exc}") from None
        vkeys.append(vkey)
    if not vkeys:
        raise InputProblem(f"trusted keys {path}: holds no vkey line")
    return vkeys


def _validation_time(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        if len(text) > MAX_AT_CHARS:
            raise ValueError
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InputProblem("--at: not an RFC 3339 date-time") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputProblem("--at: give a time zone, e.g. Z")
    return at


# --- verify-receipt ------------------------------------------------------------------------------


def verify_receipt_command(args: argparse.Namespace) -> int:
    """Run `verify-receipt` with parsed arguments; returns the exit status."""
    return run_verify_receipt(
        receipt=args.receipt,
        trusted_keys=args.trusted_keys,
        at=args.at,
        origin=args.origin,
        as_json=args.json,
    )


def run_verify_receipt(
    *, receipt: str, trusted_keys: str, at: str | None, origin: str | None = None, as_json: bool
) -> int:
    """Verify the receipt file against the trusted keys file; print the report.

    Returns 0 (TOTAL_PASSED), 1 (TOTAL_FAILED) or 2 (INDETERMINATE, or unusable input).
    """
    try:
        vkeys = load_trusted_keys(trusted_keys)
        when = _validation_time(at)
        data = read_limited(receipt, what="receipt", limit=MAX_RECEIPT_BYTES)
    except InputProblem as exc:
        _error(str(exc))
        return EXIT_UNUSABLE_INPUT
    report = check_receipt(data, trusted_vkeys=vkeys, at=when, origin=origin)
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_receipt_report(report)
    return report.exit_code


def _print_receipt_report(report: ReceiptReport) -> None:
    verdict = report.indication.value
    if report.sub_indication is not None:
        verdict += f"/{report.sub_indication.value}"
    print(f"receipt: {verdict}: {report.detail}")
    if report.transaction_id is not None:
        print(f"  transaction {report.transaction_id}, leaf {report.leaf_index}")
    if report.tree_size is not None:
        print(f"  checkpoint {report.origin}, tree size {report.tree_size}")
    if report.kid is not None and report.accepted_at is not None:
        print(f"  key {report.kid}, recorded {format_timestamp(report.accepted_at)}")
    for check in report.checks:
        mark = "ok  " if check.passed else "FAIL"
        print(f"  [{mark}] {check.name}: {check.detail}")


# --- verify-consistency --------------------------------------------------------------------------


def verify_consistency_command(args: argparse.Namespace) -> int:
    """Run `verify-consistency` with parsed arguments; returns the exit status."""
    return run_verify_consistency(
        old_checkpoint=args.old_checkpoint,
        new_checkpoint=args.new_checkpoint,
        trusted_keys=args.trusted_keys,
        proof=args.proof,
        server=args.server,
        as_json=args.json,
    )


def _read_proof(path: str) -> list[bytes]:
    data = _text(path, what="proof", limit=MAX_PROOF_FILE_BYTES)
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise InputProblem(f"proof {path}: not JSON") from None
    hashes = value.get("proof") if isinstance(value, dict) else None
    if (
        not isinstance(hashes, list)
        or len(hashes) > MAX_PROOF_HASHES
        or not all(isinstance(h, str) for h in hashes)
    ):
        shape = f'{{"proof": [base64, …]}} with at most {MAX_PROOF_HASHES} hashes'
        raise InputProblem(f"proof {path}: not {shape}")
    try:
        return [strict_b64decode(h, what="a proof hash") for h in hashes]
    except NoteFormatError as exc:
        raise InputProblem(f"proof {path}: {exc}") from None


def _size(note: str) -> int | None:
    """The tree size a note claims, unverified: only to know which proof to ask for."""
    try:
        return parse_checkpoint(split_note(note)[0]).tree_size
    except NoteFormatError:
        return None


def _fetched_proof(server: str, old_note: str, new_note: str) -> list[bytes]:
    first, second = _size(old_note), _size(new_note)
    if first is None or second is None or not 0 < first < second:
        return []  # nothing to fetch: the verifier says why these notes cannot be compared
    return fetch_consistency_proof(server, first_size=first, second_size=second)


def _inputs(
    *, old_checkpoint: str, new_checkpoint: str | None, proof: str | None, server: str | None
) -> tuple[str, str, list[bytes]]:
    old_note = _text(old_checkpoint, what="checkpoint", limit=MAX_NOTE_BYTES)
    if new_checkpoint is not None:
        new_note = _text(new_checkpoint, what="checkpoint", limit=MAX_NOTE_BYTES)
    elif server is not None:
        new_note = fetch_checkpoint(server)
    else:
        raise InputProblem("give NEW_CHECKPOINT or --server")
    if proof is not None:
        return old_note, new_note, _read_proof(proof)
    if server is not None:
        return old_note, new_note, _fetched_proof(server, old_note, new_note)
    return old_note, new_note, []


def run_verify_consistency(
    *,
    old_checkpoint: str,
    new_checkpoint: str | None,
    trusted_keys: str,
    proof: str | None,
    server: str | None,
    as_json: bool,
) -> int:
    """Check that the newer checkpoint extends the older; print the report.

    Returns 0 (consistent), 1 (inconsistent) or 2 (cannot tell, or unusable input).
    """
    try:
        vkeys = load_trusted_keys(trusted_keys)
        old_note, new_note, hashes = _inputs(
            old_checkpoint=old_checkpoint, new_checkpoint=new_checkpoint, proof=proof, server=server
        )
    except (InputProblem, FetchError) as exc:
        _error(str(exc))
        return EXIT_UNUSABLE_INPUT
    report = check_consistency(old_note, new_note, hashes, trusted_vkeys=vkeys)
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_consistency_report(report)
    return report.exit_code


def _print_consistency_report(report: ConsistencyReport) -> None:
    sizes = ""
    if report.old_size is not None and report.new_size is not None:
        sizes = f" ({report.origin}: {report.old_size} -> {report.new_size})"
    print(f"consistency: {report.status.value.upper()}{sizes}: {report.detail}")
