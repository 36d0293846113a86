"""`pishkhan dev token`: a bearer token from the development issuer (PISHKHAN_ENV=dev only).

Kept free of heavy imports: api/cli.py builds this parser for every command, and the issuer
(pyjwt, cryptography, the settings) is imported only when `dev token` runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.settings import Settings

EXIT_OK = 0
EXIT_REFUSED = 2
ROLE_NAMES = ("citizen", "business", "agency", "auditor", "admin")  # api.auth.Role


def add_dev_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `dev token` under the top-level subcommands; it runs through `args.run(args)`."""
    dev = commands.add_parser("dev", help="development helpers (PISHKHAN_ENV=dev only)")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True)
    token = dev_commands.add_parser(
        "token",
        allow_abbrev=False,
        help="print a bearer token from the development issuer",
        description="Exit 0: printed. 2: refused (not dev, bad subject or role).",
    )
    token.add_argument("--subject", required=True, help="ir-nid:…, ir-lid:…, agency:… or a name")
    token.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        choices=ROLE_NAMES,
        help="a role of the token (repeat for several)",
    )
    token.add_argument("--ttl-s", type=int, default=3600, help="lifetime in seconds (1..86400)")
    token.set_defaults(run=run_dev)


def run_dev(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    """Print a token for args.subject in args.roles; refusals are one line on stderr, exit 2."""
    from api.dev_issuer import DevIssuerError, mint_token
    from api.settings import get_settings

    settings = settings or get_settings()
    try:
        token = mint_token(settings, subject=args.subject, roles=args.roles, ttl_s=args.ttl_s)
    except DevIssuerError as exc:
        message = " ".join(str(exc).split())
        print(f"pishkhan: dev token: refused: {message}", file=sys.stderr)
        return EXIT_REFUSED
    print(token)
    return EXIT_OK
