"""The `pishkhan` command: serve the API, and audit the ledger.

Subcommands import what they need when they run, so that `pishkhan audit …` on an auditor's
machine loads no web framework.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
        help="file of C2SP vkey lines to trust (default: the configured checkpoint key)",
    )
    verify.add_argument("--origin", help="expected checkpoint origin (default: configured)")
    verify.add_argument("--json", action="store_true", help="print a machine-readable report")
    verify.set_defaults(run=_verify_ledger)
    return parser


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


if __name__ == "__main__":
    sys.exit(main())
