"""`pishkhan keys register` against a fake server on 127.0.0.1 that checks what it receives.

The fake issues a challenge, then accepts the key.register transaction only if the envelope's
detached JWS verifies with the JWK posted in its payload, the payload carries the challenge, the
signer is the challenge's subject, and the request has a bearer token and an Idempotency-Key.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from api.client_cli import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNUSABLE_INPUT,
    MAX_BEARER_TOKEN_CHARS,
    PASSPHRASE_ENV,
    add_keys_register_parser,
)
from signatures.canonical import canonicalize
from signatures.client import generate_private_key, private_key_to_pem, verify_transaction
from signatures.jwk import PublicJwk

SIGNER = "ir-nid:0499370899"
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"
PASSPHRASE = "correct horse battery staple"
RECEIPT = {"tx_id": "tx-1", "leaf_index": 7}
PROBLEM: dict[str, Any] = {
    "type": "https://pishkhan.example/problems/challenge-invalid",
    "title": "The registration challenge is not usable",
    "status": 400,
    "detail": "the challenge has expired",
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Fake:
    """What the fake answers, and everything it received."""

    challenge: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    subject: str = SIGNER
    challenge_status: int = 201
    transaction_status: int = 201
    redirect_to: str | None = None
    received: list[Received] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    def answer(
        self, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        if self.redirect_to is not None:
            return 307, {"Location": self.redirect_to + path}, None
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {}, {**PROBLEM, "status": 401, "title": "Authentication required"}
        if path == "/v1/keys/challenges":
            if self.challenge_status != 201:
                return self.challenge_status, {}, {**PROBLEM, "status": self.challenge_status}
            out = {"challenge": self.challenge, "expires_at": "2030-01-01T00:00:00Z"}
            return 201, {}, {**out, "subject": self.subject}
        if path == "/v1/transactions":
            self.check_transaction(headers, body)
            if self.violations or self.transaction_status != 201:
                return 400 if self.violations else self.transaction_status, {}, PROBLEM
            return 201, {}, RECEIPT
        return 404, {}, None

    def check_transaction(self, headers: dict[str, str], body: Any) -> None:
        if not headers.get("idempotency-key"):
            self.violations.append("no Idempotency-Key")
        envelope, jws = body["envelope"], body["signature"]
        payload = envelope["payload"]
        if envelope["type"] != "key.register" or envelope["signer"] != self.subject:
            self.violations.append("type or signer")
        if payload.get("challenge") != self.challenge:
            self.violations.append("challenge")
        # Our verifier, and jwcrypto (an independent implementation) over the canonical bytes.
        verify_transaction(envelope, jws, PublicJwk.from_dict(payload["jwk"]))
        protected, _, signature = jws.split(".")
        checker = jwcrypto_jws.JWS()
        checker.deserialize(json.dumps({"protected": protected, "signature": signature}))
        checker.verify(jwcrypto_jwk.JWK(**payload["jwk"]), detached_payload=canonicalize(envelope))


def _serve(fake: Fake) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = json.loads(raw) if raw else None
            fake.received.append(Received(self.path, headers, body))
            try:
                status, extra, answer = fake.answer(self.path, headers, body)
            except Exception as exc:  # a check failed: refuse, and remember why
                fake.violations.append(repr(exc))
                status, extra, answer = 400, {}, PROBLEM
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def fake() -> Iterator[tuple[Fake, str]]:
    state = Fake()
    server, url = _serve(state)
    yield state, url
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    Path("pass.txt").write_text(PASSPHRASE + "\n")
    Path("token.txt").write_text(TOKEN + "\n")


def _key(alg: str = "EdDSA") -> str:
    key = generate_private_key(alg, rsa_bits=2048)  # type: ignore[arg-type]
    Path("key.pem").write_bytes(private_key_to_pem(key, passphrase=PASSPHRASE.encode()))
    return "key.pem"


def _register(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    parser = argparse.ArgumentParser(prog="pishkhan")
    keys = parser.add_subparsers(dest="command", required=True).add_parser("keys")
    add_keys_register_parser(keys.add_subparsers(dest="keys_command", required=True))
    try:
        args = parser.parse_args(["keys", "register", *argv])
        code = args.run(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return Run(code, captured.out, captured.err)


def _args(url: str, *extra: str) -> list[str]:
    key = "key.pem" if Path("key.pem").exists() else _key()
    return ["--key", key, "--passphrase-file", "pass.txt", "--server", url, *extra]


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "PS256"])
def test_register_signs_the_challenge_with_the_key(
    capsys: pytest.CaptureFixture[str], fake: tuple[Fake, str], alg: str
) -> None:
    state, url = fake
    _key(alg)
    run = _register(capsys, *_args(url, "--token-file", "token.txt"))
    assert run.code == EXIT_OK, (run, state.violations)
    assert json.loads(run.out) == RECEIPT and run.err == ""
    assert state.violations == []
    assert state.paths() == ["/v1/keys/challenges", "/v1/transactions"]
    posted = state.received[1]
    uuid.UUID(posted.headers["idempotency-key"])
    jwk = posted.body["envelope"]["payload"]["jwk"]
    assert jwk["alg"] == alg and jwk["kid"] == PublicJwk.from_dict(jwk).thumbprint()
    assert "not_after" not in posted.body["envelope"]["payload"]


def test_not_after_and_token_env(
    capsys: pytest.CaptureFixture[str], fake: tuple[Fake, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = fake
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    run = _register(
        capsys, *_args(url, "--token-env", "MY_TOKEN", "--not-after", "2030-06-01T04:30:00+03:30")
    )
    assert run.code == EXIT_OK, (run, state.violations)
    assert state.received[1].body["envelope"]["payload"]["not_after"] == "2030-06-01T01:00:00Z"


def test_each_run_has_its_own_idempotency_key(
    capsys: pytest.CaptureFixture[str], fake: tuple[Fake, str]
) -> None:
    state, url = fake
    for _ in range(2):
        assert _register(capsys, *_args(url, "--token-file", "token.txt")).code == EXIT_OK
    keys = {r.headers["idempotency-key"] for r in state.received if r.path == "/v1/transactions"}
    assert len(keys) == 2


def test_transaction_refused_prints_the_problem(
    capsys: pytest.CaptureFixture[str], fake: tuple[Fake, str]
) -> None:
    state, url = fake
    state.transaction_status = 400
    run = _register(capsys, *_args(url, "--token-file", "token.txt"))
    assert run.code == EXIT_REFUSED and run.out == ""
    assert run.err.count("\n") == 1 and run.err.startswith("pishkhan: error: ")
    assert PROBLEM["title"] in run.err and PROBLEM["detail"] in run.err and "400" in run.err


def test_challenge_refused(capsys: pytest.CaptureFixture[str], fake: tuple[Fake, str]) -> None:
    state, url = fake
    Path("token.txt").write_text("wrong.token.here\n")
    run = _register(capsys, *_args(url, "--token-file", "token.txt"))
    assert run.code == EXIT_REFUSED and "401" in run.err and "Authentication required" in run.err
    assert state.paths() == ["/v1/keys/challenges"]


def test_invalid_subject_in_challenge_answer(
    capsys: pytest.CaptureFixture[str], fake: tuple[Fake, str]
) -> None:
    state, url = fake
    state.subject = "ir-nid:0499370898"
    run = _register(capsys, *_args(url, "--token-file", "token.txt"))
    assert run.code == EXIT_REFUSED and "subject" in run.err
    assert state.paths() == ["/v1/keys/challenges"]


def test_redirect_not_followed(capsys: pytest.CaptureFixture[str], fake: tuple[Fake, str]) -> None:
    state, url = fake
    elsewhere = Fake()
    server, other_url = _serve(elsewhere)
    try:
        state.redirect_to = other_url
        run = _register(capsys, *_args(url, "--token-file", "token.txt"))
    finally:
        server.shutdown()
        server.server_close()
    assert run.code == EXIT_REFUSED and "307" in run.err
    assert elsewhere.received == []  # the token never went to the redirect's target


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    run = _register(capsys, *_args(f"http://127.0.0.1:{port}", "--token-file", "token.txt"))
    assert run.code == EXIT_REFUSED and "cannot reach" in run.err


@pytest.mark.parametrize(
    ("server", "fragment"),
    [
        ("http://pishkhan.example", "https"),
        ("https://user:pw@pishkhan.example", "credentials"),
        ("https://pishkhan.example/?a=1", "no query"),
        ("pishkhan.example", "scheme"),
    ],
)
def test_unusable_server_url(
    capsys: pytest.CaptureFixture[str], server: str, fragment: str
) -> None:
    run = _register(capsys, *_args(server, "--token-file", "token.txt"))
    assert run.code == EXIT_UNUSABLE_INPUT and fragment in run.err and "--server" in run.err


@pytest.mark.parametrize(
    ("token_args", "content", "fragment"),
    [
        (("--token-env", "UNSET_TOKEN_VAR"), None, "no token"),
        (("--token-file", "missing.txt"), None, "cannot read"),
        (("--token-file", "token.txt"), "two words\n", "invalid_format"),
        (("--token-file", "token.txt"), "x" * (MAX_BEARER_TOKEN_CHARS + 1), "invalid_format"),
        (("--token-file", "token.txt"), "\n", "no token"),
    ],
)
def test_unusable_token(
    capsys: pytest.CaptureFixture[str],
    fake: tuple[Fake, str],
    token_args: tuple[str, str],
    content: str | None,
    fragment: str,
) -> None:
    state, url = fake
    os.environ.pop("UNSET_TOKEN_VAR", None)
    if content is not None:
        Path("token.txt").write_text(content)
    run = _register(capsys, *_args(url, *token_args))
    assert run.code == EXIT_UNUSABLE_INPUT and fragment in run.err, run
    assert state.received == []


@pytest.mark.parametrize(
    ("value", "rule"),
    [("tomorrow", "invalid_timestamp"), ("2030-01-01T00:00:00", "timezone_required")],
)
def test_unusable_not_after(
    capsys: pytest.CaptureFixture[str], fake: tuple[Fake, str], value: str, rule: str
) -> None:
    state, url = fake
    run = _register(capsys, *_args(url, "--token-file", "token.txt", "--not-after", value))
    assert run.code == EXIT_UNUSABLE_INPUT and rule in run.err
    assert state.received == []


def test_token_source_required(capsys: pytest.CaptureFixture[str], fake: tuple[Fake, str]) -> None:
    _, url = fake
    assert _register(capsys, *_args(url)).code == EXIT_UNUSABLE_INPUT  # argparse usage error
    both = _args(url, "--token-file", "token.txt", "--token-env", "X")
    assert _register(capsys, *both).code == EXIT_UNUSABLE_INPUT


def test_max_bearer_token_chars_is_the_servers() -> None:
    from api.auth import MAX_TOKEN_CHARS

    assert MAX_BEARER_TOKEN_CHARS == MAX_TOKEN_CHARS
