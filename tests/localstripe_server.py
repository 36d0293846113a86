"""A local fake Stripe API for tests: `localstripe` in a child process, on 127.0.0.1 only.

localstripe (GPL-3.0) is used as a tool: it is imported only inside the child process this
module starts (`python -m tests.localstripe_server`), never by the pytest process or the service.
Its own command line binds `::` (every interface), so the child binds a loopback socket itself
and serves localstripe's aiohttp application on it, with nothing written to /tmp.

localstripe models Stripe's 2017 API. The child adds four shims so that today's SDK and the
adapter's real-API calls work against it, each behaving as Stripe documents:

1. Idempotency-Key: a POST repeated with the same key and the same body gets the first answer
   again (header `Idempotent-Replayed: true`); the same key with another body gets 400
   `idempotency_error`.
2. Card errors (402) on PaymentIntents carry `error.payment_intent`, the PaymentIntent object.
3. `allowed_payment_method_types` (which replaced `payment_method_types`) is accepted.
4. GET /v1/balance_transactions honours `created[gt|gte|lt|lte]`, `limit`, `starting_after`
   and `expand[]=data.source` (localstripe refuses any filter there).

Use `running_localstripe()` (a context manager) or `start_localstripe()` / `LocalStripe.stop()`.
"""

from __future__ import annotations

import json
import operator
import select
import socket
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web  # localstripe's own web framework (Apache-2.0), not localstripe

LOOPBACK_HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
READY_PREFIX = "LOCALSTRIPE_PORT "
TEST_API_KEY = "sk_test_pishkhan_localstripe"  # localstripe accepts any sk_… key
DEFAULT_LIST_LIMIT = 10
MAX_LIST_LIMIT = 100
_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LocalStripe:
    """A running child process serving the fake Stripe API on 127.0.0.1:`port`."""

    process: subprocess.Popen[str]
    port: int

    @property
    def api_base(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}"

    def stop(self) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after STOP_TIMEOUT_S) and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_localstripe() -> LocalStripe:
    """Start the child and wait until it listens; raises RuntimeError (with its stderr) if it
    exits or says nothing within STARTUP_TIMEOUT_S."""
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.localstripe_server"],
            cwd=_REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_S)
        line = process.stdout.readline() if ready else ""
        if not line.startswith(READY_PREFIX):
            LocalStripe(process, 0).stop()
            stderr.seek(0)
            raise RuntimeError(f"localstripe did not start: {line!r}\n{stderr.read()[-4000:]}")
    return LocalStripe(process, int(line.removeprefix(READY_PREFIX)))


@contextmanager
def running_localstripe() -> Iterator[LocalStripe]:
    server = start_localstripe()
    try:
        yield server
    finally:
        server.stop()


# --- the child process -------------------------------------------------------------------------


def _serve() -> None:
    """Child: shim localstripe, bind 127.0.0.1 on a free port, print it, serve until SIGTERM."""
    from localstripe import resources, server

    # Never write the store to /tmp/localstripe.pickle (shared by every run on the machine).
    resources.Store.dump_to_disk = lambda self: None
    _accept_allowed_payment_method_types(resources)
    app = server.app
    app.middlewares.insert(0, _card_errors_name_their_payment_intent(resources.store))
    app.middlewares.insert(0, _idempotency_keys())
    app.middlewares.append(_balance_transactions_list(resources))  # inside auth
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK_HOST, 0))
    sock.listen()  # before telling the port: from then on, connections wait in the backlog
    print(f"{READY_PREFIX}{sock.getsockname()[1]}", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None)


def _accept_allowed_payment_method_types(resources: Any) -> None:
    create = resources.PaymentIntent._api_create.__func__

    def _api_create(cls: Any, /, allowed_payment_method_types: Any = None, **data: Any) -> Any:
        if allowed_payment_method_types is not None:
            data["payment_method_types"] = allowed_payment_method_types
        return create(cls, **data)

    resources.PaymentIntent._api_create = classmethod(_api_create)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def _json_error(status: int, error: dict[str, Any]) -> web.Response:
    return web.json_response({"error": error}, status=status)


def _body(response: web.StreamResponse) -> bytes | None:
    """The bytes of a complete (non-streamed) response."""
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        return response.body
    return None


def _idempotency_keys() -> Middleware:
    seen: dict[str, tuple[tuple[str, bytes], int, bytes]] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        fingerprint = (request.path, await request.read())
        if key in seen:
            first, status, first_body = seen[key]
            if first != fingerprint:
                message = "Keys for idempotent requests can only be used with the same parameters"
                return _json_error(400, {"type": "idempotency_error", "message": message})
            headers = {"Idempotent-Replayed": "true"}
            return web.Response(
                status=status, body=first_body, headers=headers, content_type="application/json"
            )
        response = await handler(request)
        body = _body(response)
        if body is not None and response.status < 500:  # Stripe does not keep 5xx answers
            seen[key] = (fingerprint, response.status, body)
        return response

    return middleware


def _card_errors_name_their_payment_intent(store: Any) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        raw = _body(response)
        if raw is None or response.status != 402 or not request.path.startswith("/v1/payment_i"):
            return response
        body = json.loads(raw)
        error = body.get("error", {})
        charge = store.get(f"charge:{error.get('charge')}")
        if charge is not None and charge.payment_intent and "payment_intent" not in error:
            error["payment_intent"] = store[f"payment_intent:{charge.payment_intent}"]._export()
        return web.json_response(body, status=402)

    return middleware


_CREATED_FILTERS = {
    "created[gt]": operator.gt,
    "created[gte]": operator.ge,
    "created[lt]": operator.lt,
    "created[lte]": operator.le,
}


def _balance_transactions_list(resources: Any) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "GET" or request.path != "/v1/balance_transactions":
            return await handler(request)
        query = request.query
        unknown = [k for k in query if k not in _CREATED_FILTERS and not _is_list_param(k)]
        if unknown:
            return _json_error(400, {"type": "invalid_request_error", "param": unknown[0]})
        txns = sorted(
            (v for k, v in resources.store.items() if k.startswith("balance_transaction:")),
            key=lambda txn: (-txn.created, txn.id),
        )
        for name, compare in _CREATED_FILTERS.items():
            if name in query:
                bound = int(query[name])
                txns = [txn for txn in txns if compare(txn.created, bound)]
        if "starting_after" in query:
            ids = [txn.id for txn in txns]
            txns = txns[ids.index(query["starting_after"]) + 1 :]
        limit = min(int(query.get("limit", DEFAULT_LIST_LIMIT)), MAX_LIST_LIMIT)
        expand = [v.removeprefix("data.") for k, v in query.items() if k.startswith("expand[")]
        return web.json_response(
            {
                "object": "list",
                "url": "/v1/balance_transactions",
                "has_more": len(txns) > limit,
                "data": [txn._export(expand=expand) for txn in txns[:limit]],
            }
        )

    return middleware


def _is_list_param(name: str) -> bool:
    return name in ("limit", "starting_after") or name.startswith("expand[")


if __name__ == "__main__":
    _serve()
