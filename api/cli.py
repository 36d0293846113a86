"""The `pishkhan` command: serve the API, audit the ledger, and sign as a client (keys, tx).

Subcommands import what they need when they run, so that `pishkhan audit …` on an auditor's
machine loads no web framework.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from api.audit_cli import add_receipt_commands
from api.client_cli import add_keys_register_parser
from api.dev_cli import add_dev_commands
from api.licence_cli import add_licence_commands

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_UNDECIDED = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pishkhan", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=_serve)

    audit = commands.add_parser("audit", help="verify the ledger").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser(
        "verify-ledger",
        help="recompute the whole ledger from storage and check every signed checkpoint",
        description="Exit 0: consistent. 1: tampering found. 2: could not decide.",
    )
    verify.add_argument("--database", help="database URL (default: PISHKHAN_DATABASE_URL)")
    verify.add_argument(
        "--trusted-keys",
        help="file of C2SP vkey lines to trust (default: every key of the checkpoint keyring)",
    )
    verify.add_argument("--origin", help="expected checkpoint origin (default: configured)")
    verify.add_argument("--json", action="store_true", help="print a machine-readable report")
    verify.set_defaults(run=_verify_ledger)
    add_receipt_commands(audit)
    payments = commands.add_parser("payments", help="payments background work").add_subparsers(
        dest="payments_command", required=True
    )
    worker = payments.add_parser(
        "worker", help="deliver due webhooks to agencies and expire abandoned payments"
    )
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    worker.add_argument("--interval-s", type=float, default=5.0, help="pause between passes")
    worker.set_defaults(run=_payments_worker)
    _add_client_commands(commands)
    add_dev_commands(commands)
    add_licence_commands(commands)
    return parser


# No option takes a passphrase: it comes from --passphrase-file or the environment variable
# PISHKHAN_CLIENT_KEY_PASSPHRASE. allow_abbrev=False on every client parser, so that nothing like
# `--passphrase SECRET` is ever taken as an abbreviation of --passphrase-file.
_UNLOCK_HELP = "file holding the key passphrase (else $PISHKHAN_CLIENT_KEY_PASSPHRASE)"


def _add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`keys` and `tx`: the client side (api/client_cli.py, docs/CLIENT.md)."""
    keys = commands.add_parser("keys", help="make and show client signing keys")
    _add_keys_commands(keys.add_subparsers(dest="keys_command", required=True))
    tx = commands.add_parser("tx", help="build, sign and verify transactions")
    _add_tx_commands(tx.add_subparsers(dest="tx_command", required=True))


def _add_keys_commands(keys: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    generate = keys.add_parser(
        "generate", allow_abbrev=False, help="generate a private key; print its public JWK"
    )
    generate.add_argument("--alg", required=True, choices=("EdDSA", "ES256", "PS256"))
    generate.add_argument("--out", required=True, help="new private key file (PKCS#8 PEM, 0600)")
    protection = generate.add_mutually_exclusive_group()
    protection.add_argument("--passphrase-file", help=_UNLOCK_HELP)
    protection.add_argument(
        "--unencrypted", action="store_true", help="write the key without a passphrase"
    )
    generate.add_argument("--public-out", help="also write the public JWK to this new file")
    generate.set_defaults(run=_client, client_command="keys generate")
    public = keys.add_parser(
        "public", allow_abbrev=False, help="print the public JWK (with kid) of a private key"
    )
    public.add_argument("key", help="private key file (PEM)")
    public.add_argument("--passphrase-file", help=_UNLOCK_HELP)
    public.set_defaults(run=_client, client_command="keys public")
    rotate = keys.add_parser(
        "rotate-checkpoint",
        allow_abbrev=False,
        help="(admin) add a new checkpoint-signing key; the current one signs beside it for "
        "--overlap-days, then retires (it stays published). Prints the new vkey.",
        description="The passphrase comes from PISHKHAN_KEY_PASSPHRASE_FILE or "
        "PISHKHAN_KEY_PASSPHRASE, never from the command line. Exit 0: rotated. 2: refused.",
    )
    rotate.add_argument(
        "--overlap-days",
        type=int,
        required=True,
        help="days during which the old and the new key both sign (0 to 90)",
    )
    rotate.set_defaults(run=_rotate_checkpoint)
    add_keys_register_parser(keys, run=_client)


def _add_tx_commands(tx: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    envelope = tx.add_parser(
        "envelope", allow_abbrev=False, help="print a new envelope (fresh nonce, created_at now)"
    )
    envelope.add_argument("--type", required=True, help="transaction type, e.g. bill.pay")
    envelope.add_argument("--signer", required=True, help="ir-nid:…, ir-lid:… or agency:…")
    envelope.add_argument("--on-behalf-of", help="the subject the signer represents")
    envelope.add_argument("--payload", required=True, help="payload JSON object file (- stdin)")
    envelope.add_argument("--version", type=int, default=1, help="payload version (default 1)")
    envelope.set_defaults(run=_client, client_command="tx envelope")
    sign = tx.add_parser("sign", allow_abbrev=False, help="sign an envelope; print the JWS")
    sign.add_argument("envelope", help="envelope JSON file (- for stdin)")
    sign.add_argument("--key", required=True, help="private key file (PEM)")
    sign.add_argument("--passphrase-file", help=_UNLOCK_HELP)
    sign.add_argument("--iat", type=int, help="claimed signing time, Unix seconds (default now)")
    sign.add_argument("--body", action="store_true", help="print the POST /v1/transactions body")
    sign.set_defaults(run=_client, client_command="tx sign")
    verify = tx.add_parser(
        "verify",
        allow_abbrev=False,
        help="verify a detached JWS over an envelope",
        description="Exit 0: valid. 1: the signature is not valid. 2: unusable input.",
    )
    verify.add_argument("envelope", help="envelope JSON file (- for stdin)")
    verify.add_argument("--jws", required=True, help="the detached JWS, or @FILE holding it")
    verify.add_argument("--jwk", required=True, help="the signer's public JWK file")
    verify.set_defaults(run=_client, client_command="tx verify")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


def _serve(args: argparse.Namespace) -> int:
    from api.serve import serve

    return serve(host=args.host, port=args.port, workers=args.workers)


def _verify_ledger(args: argparse.Namespace) -> int:
    from api.verify_ledger import run_verify_ledger

    return run_verify_ledger(
        database=args.database,
        trusted_keys=args.trusted_keys,
        origin=args.origin,
        as_json=args.json,
    )


def _payments_worker(args: argparse.Namespace) -> int:
    from api.payments.worker import run_worker

    return run_worker(once=args.once, interval_s=args.interval_s)


def _rotate_checkpoint(args: argparse.Namespace) -> int:
    from api.key_admin import run_rotate_checkpoint

    return run_rotate_checkpoint(overlap_days=args.overlap_days)


def _client(args: argparse.Namespace) -> int:
    from api.client_cli import run_client

    return run_client(args)


if __name__ == "__main__":
    sys.exit(main())
