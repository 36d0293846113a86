"""A small client of the transaction API: test subjects, key registration, signed bodies.

Used by the e2e tests (tests/e2e) and by the API benchmark (benchmarks/bench_api.py), which
pre-signs with the pure helpers here and posts the bytes itself. Everything is signed with the
client library (signatures.client), exactly as a client app would.

The key-state alternation (`key_cycle_step`, `Lane`): a client registers a signing key A and
keys B1..Bm, then signs with A `key.suspend` B1..Bm, `key.reinstate` B1..Bm, and again, for as
long as it needs transactions. Each is valid only after the one m places before it (the same
B key), so a client's transactions must be committed in order; m > 1 only lengthens that
dependency.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from api.dev_issuer import mint_token
from api.settings import Settings
from signatures.canonical import JsonValue
from signatures.client import (
    build_envelope,
    build_key_registration,
    generate_private_key,
    public_jwk,
    sign_envelope,
    transaction_body,
)
from signatures.jwk import Alg
from signatures.jws import PrivateKey

TRANSACTIONS = "/v1/transactions"
CHALLENGES = "/v1/keys/challenges"
KEY_SUSPEND = "key.suspend"
KEY_REINSTATE = "key.reinstate"
NATIONAL_ID_PREFIX = "ir-nid:"
LEGAL_ID_PREFIX = "ir-lid:"
_LEGAL_ID_WEIGHTS = (29, 27, 23, 19, 17)
_UVICORN_ACCESS_STATUS = re.compile(r'HTTP/[0-9.]+" ([0-9]{3})')
HTTP_CREATED = 201
HTTP_OK = 200

STARTUP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
READY_POLL_S = 0.2
READY_REQUEST_TIMEOUT_S = 2.0
LOG_TAIL_CHARS = 4000
E2E_ORIGIN = "e2e.pishkhan.test/ledger"
ENV_PREFIX = "PISHKHAN_"


# --- test subjects -------------------------------------------------------------------------------


def national_id(rng: random.Random) -> str:
    """A valid national-ID subject (``ir-nid:`` + 10 digits, correct check digit)."""
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        remainder = sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        check = remainder if remainder < 2 else 11 - remainder
        text = "".join(map(str, digits)) + str(check)
        if len(set(text)) > 1:  # one repeated digit passes the check but is refused
            return NATIONAL_ID_PREFIX + text


def legal_id(rng: random.Random) -> str:
    """A valid legal-entity subject (``ir-lid:`` + 11 digits, correct check digit)."""
    while True:
        digits = [rng.randrange(10) for _ in range(10)]
        if not any(digits[3:9]):
            continue  # an all-zero serial is refused
        offset = digits[9] + 2
        total = sum((offset + d) * _LEGAL_ID_WEIGHTS[i % 5] for i, d in enumerate(digits))
        return LEGAL_ID_PREFIX + "".join(map(str, digits)) + str(total % 11 % 10)


# --- bodies (pure: no I/O) -----------------------------------------------------------------------


def encode(body: dict[str, JsonValue]) -> bytes:
    """The request bytes of a JSON body (strict JSON, ASCII)."""
    return json.dumps(body, separators=(",", ":")).encode("ascii")


def kid_of(key: PrivateKey) -> str:
    return public_jwk(key).kid


def signed_body(
    key: PrivateKey,
    *,
    type_name: str,
    signer: str,
    payload: dict[str, JsonValue],
    created_at: datetime | None = None,
    on_behalf_of: str | None = None,
) -> bytes:
    """A POST /v1/transactions body: a fresh envelope signed now (iat) with key."""
    now = datetime.now(UTC)
    envelope = build_envelope(
        type=type_name,
        version=1,
        signer=signer,
        payload=payload,
        on_behalf_of=on_behalf_of,
        created_at=created_at or now,
    )
    return encode(transaction_body(sign_envelope(envelope, key, iat=int(now.timestamp()))))


def registration_body(key: PrivateKey, *, subject: str, challenge: str) -> bytes:
    """The key.register body for key, signed by key itself (proof of possession)."""
    now = datetime.now(UTC)
    envelope = build_key_registration(key, subject=subject, challenge=challenge, created_at=now)
    return encode(transaction_body(sign_envelope(envelope, key, iat=int(now.timestamp()))))


def key_cycle_step(b_kids: list[str], position: int) -> tuple[str, dict[str, JsonValue]]:
    """The (type, payload) at `position` of the key cycle: suspend every B key in turn, then
    reinstate each, and again. Raises ValueError without B keys."""
    if not b_kids:
        raise ValueError("the key cycle needs at least one key to suspend and reinstate")
    rounds, which = divmod(position, len(b_kids))
    kind = KEY_SUSPEND if rounds % 2 == 0 else KEY_REINSTATE
    return kind, {"kid": b_kids[which]}


@dataclass
class Lane:
    """One client's keys: A signs, the B keys are suspended and reinstated in turn.

    `position` counts the cycle's transactions already signed: bodies() goes on from there.
    """

    subject: str
    token: str
    signing_key: PrivateKey
    b_kids: list[str]
    position: int = 0

    def bodies(self, count: int) -> list[bytes]:
        """The next `count` bodies of the key cycle, signed now, in the order they must go."""
        out = []
        for _ in range(count):
            type_name, payload = key_cycle_step(self.b_kids, self.position)
            out.append(
                signed_body(
                    self.signing_key, type_name=type_name, signer=self.subject, payload=payload
                )
            )
            self.position += 1
        return out


# --- HTTP ----------------------------------------------------------------------------------------


class ApiError(AssertionError):
    """The server refused a request the client expected to succeed (status and body kept)."""

    def __init__(self, what: str, response: httpx.Response) -> None:
        super().__init__(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
        self.status = response.status_code


class ApiClient:
    """One subject's calls over an httpx.Client (base_url set), with its bearer token."""

    def __init__(self, http: httpx.Client, *, subject: str, token: str) -> None:
        self.http = http
        self.subject = subject
        self.token = token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, body: bytes, *, idempotency_key: str | None = None) -> httpx.Response:
        headers = {**self.auth, "Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self.http.post(TRANSACTIONS, content=body, headers=headers)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path, headers=self.auth)

    def challenge(self) -> str:
        response = self.http.post(CHALLENGES, headers=self.auth)
        if response.status_code != HTTP_CREATED:
            raise ApiError("challenge", response)
        value: str = response.json()["challenge"]
        return value

    def register(self, key: PrivateKey) -> httpx.Response:
        """POST key.register for key; raises ApiError unless accepted (201, with a receipt)."""
        body = registration_body(key, subject=self.subject, challenge=self.challenge())
        response = self.post(body)
        if response.status_code != HTTP_CREATED:
            raise ApiError("key.register", response)
        return response

    def new_key(self, alg: Alg = "EdDSA") -> PrivateKey:
        """A new key, registered; raises ApiError when the registration is refused."""
        key = generate_private_key(alg)
        self.register(key)
        return key

    def lane(self, *, b_keys: int) -> tuple[Lane, list[httpx.Response]]:
        """Register A and b_keys B keys: the lane and the registrations' responses."""
        keys = [generate_private_key("EdDSA") for _ in range(1 + b_keys)]
        responses = [self.register(key) for key in keys]
        lane = Lane(self.subject, self.token, keys[0], [kid_of(k) for k in keys[1:]])
        return lane, responses

    def send(
        self,
        key: PrivateKey,
        type_name: str,
        payload: dict[str, JsonValue],
        *,
        signer: str | None = None,
        on_behalf_of: str | None = None,
        created_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Sign (as this subject unless signer is given) and post one transaction."""
        body = signed_body(
            key,
            type_name=type_name,
            signer=signer or self.subject,
            payload=payload,
            created_at=created_at,
            on_behalf_of=on_behalf_of,
        )
        return self.post(body, idempotency_key=idempotency_key)


# --- server processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return "(no log)"


@contextmanager
def running(
    cmd: list[str], *, env: Mapping[str, str], cwd: Path, ready_url: str, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start cmd with its output in log_path (a pipe nobody reads would fill and stall the
    server), wait until ready_url answers 200, and stop the process on exit.

    Raises RuntimeError with the log's tail when the process exits or is not ready in
    STARTUP_TIMEOUT_S.
    """
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[2:4]} exited {proc.returncode}:\n{_tail(log_path)}")
            try:
                if httpx.get(ready_url, timeout=READY_REQUEST_TIMEOUT_S).status_code == HTTP_OK:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready in {STARTUP_TIMEOUT_S} s:\n{_tail(log_path)}")
            time.sleep(READY_POLL_S)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class ServerInfo:
    """A running `pishkhan serve`: its base URL, environment, and log file."""

    base: str
    env: dict[str, str]
    log_path: Path

    def token(self, subject: str, roles: Iterable[str] = ("citizen",)) -> str:
        """A development bearer token the server accepts (same issuer key file)."""
        return dev_token(self.env, subject, roles)


def server_env(
    db_url: str, workdir: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a development server whose files all live under workdir.

    PISHKHAN_* variables of the calling process are dropped so that the run is hermetic.
    """
    keys = workdir / "keys"
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(
        {
            "PISHKHAN_ENV": "dev",
            "PISHKHAN_DATABASE_URL": db_url,
            "PISHKHAN_LEDGER_ORIGIN": E2E_ORIGIN,
            "PISHKHAN_CHECKPOINT_KEY_FILE": str(keys / "checkpoint.pem"),
            "PISHKHAN_CHECKPOINT_KEYRING": str(keys / "checkpoint-keyring.json"),
            "PISHKHAN_DEV_ISSUER_KEY_FILE": str(keys / "dev-issuer.pem"),
            **(extra or {}),
        }
    )
    return env


def dev_token(env: Mapping[str, str], subject: str, roles: Iterable[str]) -> str:
    settings = Settings(env="dev", dev_issuer_key_file=Path(env["PISHKHAN_DEV_ISSUER_KEY_FILE"]))
    return mint_token(settings, subject=subject, roles=list(roles))


@contextmanager
def pishkhan_server(
    db_url: str, workdir: Path, *, workers: int = 2, extra_env: Mapping[str, str] | None = None
) -> Iterator[ServerInfo]:
    """`python -m api.cli serve --workers N` on a free loopback port, ready on exit of the
    block's start. Raises RuntimeError when it does not start (see `running`)."""
    port = free_port()
    env = server_env(db_url, workdir, extra_env)
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers)]
    log_path = workdir / "server.log"
    with running(cmd, env=env, cwd=workdir, ready_url=f"{base}/readyz", log_path=log_path):
        yield ServerInfo(base, env, log_path)


def logged_server_errors(log_text: str) -> list[str]:
    """Log lines recording a 5xx answer: JSON access lines (`"status": 5xx`) and uvicorn's own
    access lines (`"GET /path HTTP/1.1" 5xx`)."""
    found = []
    for line in log_text.splitlines():
        status = None
        if line.startswith("{"):
            try:
                status = json.loads(line).get("status")
            except ValueError:
                continue
        elif match := _UVICORN_ACCESS_STATUS.search(line):
            status = int(match.group(1))
        if isinstance(status, int) and status >= 500:
            found.append(line)
    return found
