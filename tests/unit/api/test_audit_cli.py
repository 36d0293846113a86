"""`pishkhan audit verify-receipt` and `verify-consistency` (api/audit_cli.py), run in process.

Files are written to tmp_path; --server is a tiny stdlib HTTP server on 127.0.0.1 serving canned
answers. Every unusable input must be exit 2 with one line on stderr naming the file, never a
traceback.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from api.audit_cli import add_receipt_commands
from ledger import merkle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import NoteSigner
from ledger.receipt import MAX_RECEIPT_BYTES
from tests.receipt_factory import AT, Scenario, scenario

ORIGIN = "pishkhan.test/ledger"
SIGNER = NoteSigner.generate(ORIGIN)
LEAVES = [merkle.leaf_hash(f"leaf {i}".encode()) for i in range(12)]
FORKED = [*LEAVES[:4], *(merkle.leaf_hash(f"fork {i}".encode()) for i in range(4, 12))]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    parser = argparse.ArgumentParser(prog="pishkhan audit")
    add_receipt_commands(parser.add_subparsers(dest="audit_command", required=True))
    args = parser.parse_args(argv)
    code = args.run(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return Run(code, captured.out, captured.err)


def note(leaves: list[bytes], size: int) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, merkle.root(leaves[:size])), [SIGNER])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "keys.txt").write_text(f"# ledger keys\n\n{SIGNER.verifier.vkey}\n")
    return tmp_path


@pytest.fixture(scope="module")
def valid() -> Scenario:
    return scenario()


def receipt_files(tmp_path: Path, s: Scenario, receipt: object = None) -> tuple[str, str]:
    path = tmp_path / "receipt.json"
    path.write_bytes(s.data(receipt))  # type: ignore[arg-type]
    keys = tmp_path / "ledger-keys.txt"
    keys.write_text("\n".join(s.vkeys) + "\n")
    return str(path), str(keys)


# --- verify-receipt ------------------------------------------------------------------------------


def test_valid_receipt_exit_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, valid: Scenario
) -> None:
    receipt, keys = receipt_files(tmp_path, valid)
    result = run(capsys, "verify-receipt", receipt, "--trusted-keys", keys)
    assert result.code == 0
    assert result.out.startswith("receipt: TOTAL_PASSED")
    assert valid.tx.tx_id in result.out
    assert result.out.count("[ok  ]") == 7


def test_valid_receipt_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, valid: Scenario
) -> None:
    receipt, keys = receipt_files(tmp_path, valid)
    result = run(capsys, "verify-receipt", receipt, "--trusted-keys", keys, "--json")
    body = json.loads(result.out)
    assert (result.code, body["indication"], body["transaction_id"]) == (
        0,
        "TOTAL_PASSED",
        valid.tx.tx_id,
    )


def test_receipt_from_stdin(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    valid: Scenario,
) -> None:
    _, keys = receipt_files(tmp_path, valid)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(valid.data())))
    assert run(capsys, "verify-receipt", "-", "--trusted-keys", keys).code == 0


def test_revoked_key_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    receipt, keys = receipt_files(tmp_path, scenario(before=["revoke"]))
    result = run(capsys, "verify-receipt", receipt, "--trusted-keys", keys)
    assert result.code == 1
    assert result.out.startswith("receipt: TOTAL_FAILED/REVOKED")
    assert "[FAIL] signature_validation" in result.out


def test_tampered_receipt_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, valid: Scenario
) -> None:
    tampered = valid.copy()
    tampered["result"] = {"status": "refunded"}
    receipt, keys = receipt_files(tmp_path, valid, tampered)
    result = run(capsys, "verify-receipt", receipt, "--trusted-keys", keys, "--json")
    assert (result.code, json.loads(result.out)["sub_indication"]) == (1, "HASH_FAILURE")


def test_untrusted_ledger_key_exit_2(
    capsys: pytest.CaptureFixture[str], files: Path, tmp_path: Path, valid: Scenario
) -> None:
    receipt, _ = receipt_files(tmp_path, valid)
    result = run(capsys, "verify-receipt", receipt, "--trusted-keys", str(files / "keys.txt"))
    assert result.code == 2
    assert "INDETERMINATE/NO_SIGNING_CERTIFICATE_FOUND" in result.out


def test_origin_of_another_log_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, valid: Scenario
) -> None:
    receipt, keys = receipt_files(tmp_path, valid)
    result = run(capsys, "verify-receipt", receipt, "--trusted-keys", keys, "--origin", "x.test")
    assert result.code == 2 and "not 'x.test'" in result.out
    same = run(capsys, "verify-receipt", receipt, "--trusted-keys", keys, "--origin", ORIGIN)
    assert same.code == 0


def test_at_before_the_transaction_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, valid: Scenario
) -> None:
    receipt, keys = receipt_files(tmp_path, valid)
    result = run(
        capsys, "verify-receipt", receipt, "--trusted-keys", keys, "--at", "2020-01-01T00:00:00Z"
    )
    assert result.code == 2
    assert "TRY_LATER" in result.out


def test_at_long_after_the_transaction(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, valid: Scenario
) -> None:
    receipt, keys = receipt_files(tmp_path, valid)
    at = AT.isoformat().replace("+00:00", "Z")
    assert run(capsys, "verify-receipt", receipt, "--trusted-keys", keys, "--at", at).code == 0


@pytest.mark.parametrize(
    ("at", "message"), [("yesterday", "RFC 3339"), ("2026-01-01T00:00:00", "zone")]
)
def test_bad_at_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, valid: Scenario, at: str, message: str
) -> None:
    receipt, keys = receipt_files(tmp_path, valid)
    result = run(capsys, "verify-receipt", receipt, "--trusted-keys", keys, "--at", at)
    assert (result.code, result.out) == (2, "")
    assert "--at" in result.err and message in result.err


def test_missing_receipt_file_exit_2(capsys: pytest.CaptureFixture[str], files: Path) -> None:
    missing = str(files / "nope.json")
    result = run(capsys, "verify-receipt", missing, "--trusted-keys", str(files / "keys.txt"))
    assert result.code == 2
    assert missing in result.err and len(result.err.splitlines()) == 1


def test_missing_trusted_keys_file_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, valid: Scenario
) -> None:
    receipt, _ = receipt_files(tmp_path, valid)
    missing = str(tmp_path / "none.txt")
    result = run(capsys, "verify-receipt", receipt, "--trusted-keys", missing)
    assert result.code == 2 and missing in result.err


@pytest.mark.parametrize(
    ("content", "message"), [("# only a comment\n\n", "no vkey"), ("bad+vkey\n", "line 1")]
)
def test_unusable_trusted_keys_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, valid: Scenario, content: str, message: str
) -> None:
    receipt, keys = receipt_files(tmp_path, valid)
    Path(keys).write_text(content)
    result = run(capsys, "verify-receipt", receipt, "--trusted-keys", keys)
    assert result.code == 2
    assert keys in result.err and message in result.err


def test_oversized_receipt_file_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, valid: Scenario
) -> None:
    receipt, keys = receipt_files(tmp_path, valid)
    Path(receipt).write_bytes(b" " * (MAX_RECEIPT_BYTES + 1))
    result = run(capsys, "verify-receipt", receipt, "--trusted-keys", keys)
    assert result.code == 2 and "larger than" in result.err


# --- verify-consistency with files ---------------------------------------------------------------


def consistency_files(tmp_path: Path, old: str, new: str, hashes: list[bytes]) -> list[str]:
    (tmp_path / "old.txt").write_text(old)
    (tmp_path / "new.txt").write_text(new)
    (tmp_path / "proof.json").write_text(json.dumps({"proof": [b64(h) for h in hashes]}))
    return [str(tmp_path / name) for name in ("old.txt", "new.txt", "proof.json")]


def test_consistent_files_exit_0(capsys: pytest.CaptureFixture[str], files: Path) -> None:
    old, new, proof = consistency_files(
        files, note(LEAVES, 4), note(LEAVES, 11), merkle.consistency_proof(4, LEAVES[:11])
    )
    keys = str(files / "keys.txt")
    result = run(capsys, "verify-consistency", "--trusted-keys", keys, old, new, "--proof", proof)
    assert result.code == 0
    assert result.out.startswith("consistency: CONSISTENT")


def test_fork_exit_1_json(capsys: pytest.CaptureFixture[str], files: Path) -> None:
    old, new, _ = consistency_files(files, note(LEAVES, 9), note(FORKED, 9), [])
    keys = str(files / "keys.txt")
    result = run(capsys, "verify-consistency", "--trusted-keys", keys, old, new, "--json")
    assert (result.code, json.loads(result.out)["status"]) == (1, "inconsistent")


def test_no_new_checkpoint_and_no_server_exit_2(
    capsys: pytest.CaptureFixture[str], files: Path
) -> None:
    old, _, _ = consistency_files(files, note(LEAVES, 4), note(LEAVES, 4), [])
    result = run(capsys, "verify-consistency", "--trusted-keys", str(files / "keys.txt"), old)
    assert result.code == 2 and "NEW_CHECKPOINT" in result.err


@pytest.mark.parametrize(
    "content", ["not json", '{"proof": "x"}', '{"proof": [1]}', '{"proof": ["!!"]}', "[]"]
)
def test_bad_proof_file_exit_2(
    capsys: pytest.CaptureFixture[str], files: Path, content: str
) -> None:
    old, new, proof = consistency_files(files, note(LEAVES, 4), note(LEAVES, 11), [])
    Path(proof).write_text(content)
    keys = str(files / "keys.txt")
    result = run(capsys, "verify-consistency", "--trusted-keys", keys, old, new, "--proof", proof)
    assert result.code == 2 and proof in result.err


def test_unreadable_checkpoint_file_exit_2(capsys: pytest.CaptureFixture[str], files: Path) -> None:
    missing = str(files / "missing-old.txt")
    result = run(
        capsys, "verify-consistency", "--trusted-keys", str(files / "keys.txt"), missing, missing
    )
    assert result.code == 2 and missing in result.err


# --- verify-consistency --server -----------------------------------------------------------------


@dataclass
class Canned:
    """Answers by path (query included): (status, body)."""

    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    url: str = ""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Canned]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # 127.0.0.1 must be reached directly
    canned = Canned()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = canned.routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    canned.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=lambda: httpd.serve_forever(poll_interval=0.05), daemon=True)
    thread.start()
    try:
        yield canned
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def serve_log(canned: Canned, leaves: list[bytes], *, old_size: int, new_size: int) -> None:
    answer = {
        "first": old_size,
        "second": new_size,
        "first_root_hash": b64(merkle.root(leaves[:old_size])),
        "second_root_hash": b64(merkle.root(leaves[:new_size])),
        "proof": [b64(h) for h in merkle.consistency_proof(old_size, leaves[:new_size])],
    }
    canned.routes["/v1/ledger/checkpoint"] = (200, note(leaves, new_size).encode())
    query = f"/v1/ledger/proofs/consistency?first={old_size}&second={new_size}"
    canned.routes[query] = (200, json.dumps(answer).encode())


def server_run(capsys: pytest.CaptureFixture[str], files: Path, url: str, *extra: str) -> Run:
    (files / "old.txt").write_text(note(LEAVES, 4))
    keys = str(files / "keys.txt")
    return run(
        capsys,
        "verify-consistency",
        "--trusted-keys",
        keys,
        str(files / "old.txt"),
        "--server",
        url,
        *extra,
    )


def test_server_consistent_exit_0(
    capsys: pytest.CaptureFixture[str], files: Path, server: Canned
) -> None:
    serve_log(server, LEAVES, old_size=4, new_size=11)
    result = server_run(capsys, files, server.url, "--json")
    body = json.loads(result.out)
    assert (result.code, body["status"], body["new_size"]) == (0, "consistent", 11)


def test_server_with_trailing_slash(
    capsys: pytest.CaptureFixture[str], files: Path, server: Canned
) -> None:
    serve_log(server, LEAVES, old_size=4, new_size=11)
    assert server_run(capsys, files, server.url + "/").code == 0


def test_server_forked_its_history_exit_1(
    capsys: pytest.CaptureFixture[str], files: Path, server: Canned
) -> None:
    (files / "old.txt").write_text(note(LEAVES, 6))
    serve_log(server, FORKED, old_size=6, new_size=11)
    keys = str(files / "keys.txt")
    result = run(
        capsys,
        "verify-consistency",
        "--trusted-keys",
        keys,
        str(files / "old.txt"),
        "--server",
        server.url,
    )
    assert result.code == 1
    assert "INCONSISTENT" in result.out


def test_server_error_exit_2(
    capsys: pytest.CaptureFixture[str], files: Path, server: Canned
) -> None:
    server.routes["/v1/ledger/checkpoint"] = (500, b"oops")
    result = server_run(capsys, files, server.url)
    assert result.code == 2 and "HTTP 500" in result.err


def test_server_proof_for_other_sizes_exit_2(
    capsys: pytest.CaptureFixture[str], files: Path, server: Canned
) -> None:
    serve_log(server, LEAVES, old_size=4, new_size=11)
    query = "/v1/ledger/proofs/consistency?first=4&second=11"
    status, body = server.routes[query]
    server.routes[query] = (status, body.replace(b'"second": 11', b'"second": 12'))
    result = server_run(capsys, files, server.url)
    assert result.code == 2 and "sizes" in result.err


def test_server_answer_too_large_exit_2(
    capsys: pytest.CaptureFixture[str], files: Path, server: Canned
) -> None:
    server.routes["/v1/ledger/checkpoint"] = (200, b"x" * (256 * 1024 + 1))
    result = server_run(capsys, files, server.url)
    assert result.code == 2 and "more than" in result.err


def test_server_unreachable_exit_2(capsys: pytest.CaptureFixture[str], files: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    result = server_run(capsys, files, f"http://127.0.0.1:{port}")
    assert result.code == 2 and "unreachable" in result.err


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org", "127.0.0.1:8000"])
def test_server_url_must_be_http(capsys: pytest.CaptureFixture[str], files: Path, url: str) -> None:
    result = server_run(capsys, files, url)
    assert result.code == 2 and "http(s)" in result.err
