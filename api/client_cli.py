"""`pishkhan keys …` and `pishkhan tx …`: the client side of signing, for people and scripts.

A thin shell over signatures.client: this module reads and writes files, takes the clock, finds
the passphrase, and turns every refusal into one line on stderr naming the field and the rule.
Exit status: 0 success; 1 from `tx verify` when the signature is not valid, and from
`keys register` when the server refuses or cannot be reached; 2 for unusable input (unreadable or
bad files, bad JSON, a refused envelope, key, passphrase or token).

Passphrases never come from the command line: from --passphrase-file, else from the environment
variable PISHKHAN_CLIENT_KEY_PASSPHRASE. docs/CLIENT.md is the user's guide.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from api.cli_input import STDIN, InputProblem, read_limited
from api.client_http import (
    ClientHttpError,
    check_server_url,
    request_challenge,
    submit_transaction,
)
from signatures.canonical import MAX_JSON_BYTES, JsonValue, parse_json
from signatures.client import (
    MAX_PASSPHRASE_BYTES,
    MAX_PEM_BYTES,
    RULE_PASSPHRASE_REQUIRED,
    build_envelope,
    build_key_registration,
    export_jwk,
    generate_private_key,
    load_private_key_pem,
    parse_jwk_json,
    private_key_to_pem,
    public_jwk,
    sign_envelope,
    transaction_body,
    verify_transaction,
)
from signatures.envelope import is_valid_subject
from signatures.errors import (
    CanonicalFormError,
    ClientKeyError,
    EnvelopeError,
    FieldError,
    JwkError,
    JwsError,
    JwsHeaderError,
)
from signatures.jws import MAX_JWS_CHARS, MAX_PAYLOAD_BYTES, PrivateKey

EXIT_OK = 0
EXIT_INVALID_SIGNATURE = 1
EXIT_REFUSED = 1  # keys register: the server refused, or could not be reached
EXIT_UNUSABLE_INPUT = 2

PASSPHRASE_ENV = "PISHKHAN_CLIENT_KEY_PASSPHRASE"  # noqa: S105 (a variable name)
# Files read whole are bounded; each limit is one line ending above its content's own limit.
MAX_PASSPHRASE_FILE_BYTES = MAX_PASSPHRASE_BYTES + len("\r\n")
MAX_JWS_FILE_BYTES = MAX_JWS_CHARS + len("\r\n")
PRIVATE_KEY_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644  # less the umask
# The server's limit on bearer tokens (api.auth.MAX_TOKEN_CHARS; not imported: no web framework).
MAX_BEARER_TOKEN_CHARS = 8 * 1024
MAX_TOKEN_FILE_BYTES = MAX_BEARER_TOKEN_CHARS + len("\r\n")
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750 b64token
_UNLOCK_HELP = "file holding the key passphrase (else $PISHKHAN_CLIENT_KEY_PASSPHRASE)"

# Where the envelope members come from on the `tx envelope` command line.
_OPTION_OF_POINTER = {
    "/type": "--type",
    "/version": "--version",
    "/signer": "--signer",
    "/on_behalf_of": "--on-behalf-of",
    "/payload": "--payload",
}


def run_client(args: argparse.Namespace) -> int:
    """Run one `keys` or `tx` subcommand; returns the exit status (never raises for bad input)."""
    handler = _HANDLERS[args.client_command]
    try:
        return handler(args)
    except InputProblem as exc:
        _error(str(exc))
        return EXIT_UNUSABLE_INPUT
    except ClientHttpError as exc:  # keys register: the server refused or was not reached
        _error(str(exc))
        return EXIT_REFUSED


def _error(message: str, *, prefix: str = "error") -> None:
    one_line = " ".join(message.split())
    print(f"pishkhan: {prefix}: {one_line}", file=sys.stderr)


def _print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


# --- reading and writing files -------------------------------------------------------------------


def _field_errors(errors: tuple[FieldError, ...]) -> str:
    return "; ".join(f"{e.pointer or '(root)'}: {e.message} ({e.rule})" for e in errors)


def _read_json(path: str, *, field: str) -> JsonValue:
    # A payload may be a batch (up to the JWS payload limit); the service holds each type to its
    # own envelope limit.
    data = read_limited(path, what=field, limit=MAX_PAYLOAD_BYTES)
    try:
        return parse_json(data, max_bytes=MAX_PAYLOAD_BYTES)
    except CanonicalFormError as exc:
        raise InputProblem(f"{field} {path}: {_field_errors(exc.errors)}") from None


def _write_new(path: str, data: bytes, *, field: str, mode: int) -> None:
    """Create path with data; an existing file (or symbolic link) is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InputProblem(f"{field} {path}: already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise InputProblem(f"{field} {path}: cannot create it ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as file:
            if mode == PRIVATE_KEY_FILE_MODE:
                os.fchmod(file.fileno(), mode)  # exactly owner-only, whatever the umask
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:  # a full disk, say: leave no partial file behind
        os.unlink(path)
        raise InputProblem(f"{field} {path}: cannot write it ({exc.strerror})") from None


def _refuse_existing(path: str | None, *, field: str) -> None:
    if path is not None and os.path.lexists(path):
        raise InputProblem(f"{field} {path}: already exists; refusing to overwrite it")


# --- passphrases and keys ------------------------------------------------------------------------


def _passphrase(args: argparse.Namespace) -> bytes | None:
    """From --passphrase-file (less one trailing line ending), else the environment, else None."""
    if args.passphrase_file is not None:
        path = args.passphrase_file
        raw = read_limited(path, what="--passphrase-file", limit=MAX_PASSPHRASE_FILE_BYTES)
        passphrase = raw.removesuffix(b"\n").removesuffix(b"\r")
        if not passphrase:
            raise InputProblem(f"--passphrase-file {path}: the file is empty (passphrase_required)")
        return passphrase
    value = os.environ.get(PASSPHRASE_ENV)
    if value is None:
        return None
    if not value:
        raise InputProblem(f"{PASSPHRASE_ENV}: set but empty (passphrase_required)")
    return value.encode("utf-8", "surrogateescape")  # the bytes the environment holds


def _key_problem(field: str, path: str, exc: ClientKeyError) -> InputProblem:
    hint = ""
    if exc.rule == RULE_PASSPHRASE_REQUIRED:
        hint = f": give --passphrase-file or set {PASSPHRASE_ENV}"
    return InputProblem(f"{field} {path}: {exc} ({exc.rule}){hint}")


def _load_key(path: str, args: argparse.Namespace) -> PrivateKey:
    passphrase = _passphrase(args)
    data = read_limited(path, what="--key", limit=MAX_PEM_BYTES)
    try:
        return load_private_key_pem(data, passphrase=passphrase)
    except ClientKeyError as exc:
        raise _key_problem("--key", path, exc) from None


def _keys_generate(args: argparse.Namespace) -> int:
    passphrase = None if args.unencrypted else _passphrase(args)
    if passphrase is None and not args.unencrypted:
        raise InputProblem(
            f"--passphrase-file: a passphrase protects the new key: give --passphrase-file or "
            f"set {PASSPHRASE_ENV} (or choose --unencrypted) (passphrase_required)"
        )
    _refuse_existing(args.out, field="--out")
    _refuse_existing(args.public_out, field="--public-out")
    key = generate_private_key(args.alg)
    try:
        pem = private_key_to_pem(key, passphrase=passphrase)
    except ClientKeyError as exc:
        field = "--passphrase-file" if args.passphrase_file is not None else PASSPHRASE_ENV
        raise InputProblem(f"{field}: {exc} ({exc.rule})") from None
    exported = export_jwk(public_jwk(key))
    _write_new(args.out, pem, field="--out", mode=PRIVATE_KEY_FILE_MODE)
    if args.public_out is not None:
        text = json.dumps(exported, indent=2) + "\n"
        _write_new(args.public_out, text.encode(), field="--public-out", mode=PUBLIC_FILE_MODE)
    _print_json(exported)
    return EXIT_OK


def _keys_public(args: argparse.Namespace) -> int:
    key = _load_key(args.key, args)
    _print_json(export_jwk(public_jwk(key)))
    return EXIT_OK


# --- transactions --------------------------------------------------------------------------------


def _tx_envelope(args: argparse.Namespace) -> int:
    payload = _read_json(args.payload, field="--payload")
    if not isinstance(payload, dict):
        raise InputProblem(f"--payload {args.payload}: must be a JSON object (wrong_type)")
    # Whole seconds: easier to read, and ample for the server's freshness window.
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        envelope = build_envelope(
            type=args.type,
            version=args.version,
            signer=args.signer,
            on_behalf_of=args.on_behalf_of,
            payload=payload,
            created_at=now,
        )
    except EnvelopeError as exc:
        raise InputProblem(
            "; ".join(
                f"{_OPTION_OF_POINTER.get(e.pointer, e.pointer)}: {e.message} ({e.rule})"
                for e in exc.errors
            )
        ) from None
    _print_json(envelope)
    return EXIT_OK


def _read_envelope(path: str) -> JsonValue:
    return _read_json(path, field="envelope")


def _tx_sign(args: argparse.Namespace) -> int:
    if args.envelope == STDIN and args.passphrase_file == STDIN:
        raise InputProblem("--passphrase-file -: standard input already holds the envelope")
    envelope = _read_envelope(args.envelope)
    key = _load_key(args.key, args)
    iat = int(time.time()) if args.iat is None else args.iat
    try:
        signed = sign_envelope(envelope, key, iat=iat)
    except EnvelopeError as exc:
        raise InputProblem(f"envelope {args.envelope}: {_field_errors(exc.errors)}") from None
    except JwsHeaderError as exc:
        raise InputProblem(f"--iat: {exc} (out_of_range)") from None
    if args.body:
        _print_json(transaction_body(signed))
    else:
        print(signed.jws)
    return EXIT_OK


def _read_jws(argument: str) -> str:
    if not argument.startswith("@"):
        return argument
    path = argument[1:]
    data = read_limited(path, what="--jws", limit=MAX_JWS_FILE_BYTES)
    try:
        return data.decode("ascii").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise InputProblem(f"--jws {path}: a JWS is ASCII text (invalid_format)") from None


def _tx_verify(args: argparse.Namespace) -> int:
    if args.envelope == STDIN and args.jws == "@" + STDIN:
        raise InputProblem("--jws @-: standard input already holds the envelope")
    envelope = _read_envelope(args.envelope)
    jws = _read_jws(args.jws)
    jwk_data = read_limited(args.jwk, what="--jwk", limit=MAX_JSON_BYTES)
    try:
        jwk = parse_jwk_json(jwk_data)
    except CanonicalFormError as exc:
        raise InputProblem(f"--jwk {args.jwk}: {_field_errors(exc.errors)}") from None
    except JwkError as exc:
        raise InputProblem(f"--jwk {args.jwk}: {exc} ({exc.rule})") from None
    try:
        header = verify_transaction(envelope, jws, jwk)
    except EnvelopeError as exc:
        raise InputProblem(f"envelope {args.envelope}: {_field_errors(exc.errors)}") from None
    except JwsError as exc:
        _error(f"{exc} ({type(exc).__name__})", prefix="invalid signature")
        return EXIT_INVALID_SIGNATURE
    signed_at = datetime.fromtimestamp(header.iat, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"valid: kid={header.kid} alg={header.alg} iat={header.iat} ({signed_at})")
    return EXIT_OK


# --- key registration ----------------------------------------------------------------------------


def add_keys_register_parser(
    keys: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    run: Callable[[argparse.Namespace], int] | None = None,
) -> None:
    """Register `keys register` under `pishkhan keys`; it runs through `args.run(args)`."""
    register = keys.add_parser(
        "register",
        allow_abbrev=False,
        help="register a public key with the service (a signed key.register transaction)",
        description="Exit 0: registered, the receipt is printed. 1: the server refused or "
        "could not be reached. 2: unusable input.",
    )
    register.add_argument("--key", required=True, help="private key file (PEM)")
    register.add_argument("--passphrase-file", help=_UNLOCK_HELP)
    register.add_argument("--server", required=True, help="API base URL, e.g. https://host")
    token = register.add_mutually_exclusive_group(required=True)
    token.add_argument("--token-file", help="file holding the bearer token")
    token.add_argument("--token-env", metavar="VAR", help="environment variable holding it")
    register.add_argument("--not-after", help="end of the key's validity, RFC 3339 with a zone")
    register.set_defaults(run=run or run_client, client_command="keys register")


def _bearer_token(args: argparse.Namespace) -> str:
    if args.token_file is not None:
        field = f"--token-file {args.token_file}"
        raw = read_limited(args.token_file, what="--token-file", limit=MAX_TOKEN_FILE_BYTES)
        text = raw.decode("ascii", "replace").removesuffix("\n").removesuffix("\r")
    else:
        field = f"--token-env {args.token_env}"
        text = os.environ.get(args.token_env, "")
    if not text:
        raise InputProblem(f"{field}: no token there (required)")
    if len(text) > MAX_BEARER_TOKEN_CHARS or not _TOKEN.fullmatch(text):
        raise InputProblem(f"{field}: not a bearer token (invalid_format)")
    return text


def _not_after(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InputProblem("--not-after: not an RFC 3339 date-time (invalid_timestamp)") from None
    if at.tzinfo is None:
        raise InputProblem("--not-after: give a time zone, e.g. Z (timezone_required)")
    return at


def _keys_register(args: argparse.Namespace) -> int:
    try:
        server = check_server_url(args.server)
    except ClientHttpError as exc:
        raise InputProblem(f"--server: {exc} (invalid_url)") from None
    token = _bearer_token(args)
    not_after = _not_after(args.not_after)
    key = _load_key(args.key, args)
    challenge, subject = request_challenge(server, token=token)
    if not is_valid_subject(subject):
        raise ClientHttpError("challenge: the answer's subject is not a valid subject")
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        envelope = build_key_registration(
            key, subject=subject, challenge=challenge, created_at=now, not_after=not_after
        )
        signed = sign_envelope(envelope, key, iat=int(time.time()))
    except EnvelopeError as exc:
        raise ClientHttpError(f"challenge: unusable: {_field_errors(exc.errors)}") from None
    # A fresh random key: a registration repeated by hand is a new request (with a new
    # challenge), never the replay of an old one.
    receipt = submit_transaction(
        server, transaction_body(signed), token=token, idempotency_key=str(uuid.uuid4())
    )
    _print_json(receipt)
    return EXIT_OK


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "keys generate": _keys_generate,
    "keys public": _keys_public,
    "keys register": _keys_register,
    "tx envelope": _tx_envelope,
    "tx sign": _tx_sign,
    "tx verify": _tx_verify,
}
