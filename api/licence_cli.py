"""`pishkhan licences verify-credential`: check a licence credential offline, with nothing but
the published issuer keys (the document GET /v1/licences/issuer-keys serves, saved to a file).

Offline verification proves authenticity: the issuing agency's key signed exactly these claims.
It also says whether the credential's own term covers the present moment. Whether the licence
has since been suspended or revoked only the online check (GET /v1/licences/verify) can say.

Exit 0: authentic and within its term. 1: not authentic. 2: authentic but outside its term, or
the input could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EXIT_OK = 0
EXIT_NOT_AUTHENTIC = 1
EXIT_UNDECIDED = 2
MAX_KEYS_FILE_BYTES = 1 << 20  # a published document of MAX_ISSUER_KEYS keys fits easily


def add_licence_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `licences verify-credential`; it runs through `args.run(args)`."""
    licences = commands.add_parser("licences", help="licence credentials").add_subparsers(
        dest="licences_command", required=True
    )
    verify = licences.add_parser(
        "verify-credential",
        allow_abbrev=False,
        help="verify a licence credential offline with the published issuer keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("credential", help="the credential, or - to read it from stdin")
    verify.add_argument(
        "--issuer-keys", required=True, help="file: the JSON of GET /v1/licences/issuer-keys"
    )
    verify.add_argument("--json", action="store_true", help="print a machine-readable report")
    verify.set_defaults(run=run_verify_credential)


def run_verify_credential(args: argparse.Namespace) -> int:
    from licences.credential import issuer_keys_from_jwks, verify_credential
    from licences.errors import CredentialError
    from signatures.canonical import parse_json
    from signatures.errors import CanonicalFormError

    token = sys.stdin.read() if args.credential == "-" else str(args.credential)
    path = Path(args.issuer_keys)
    try:
        data = path.read_bytes()[: MAX_KEYS_FILE_BYTES + 1]
        if len(data) > MAX_KEYS_FILE_BYTES:
            return _fail(args, f"{path}: larger than {MAX_KEYS_FILE_BYTES} bytes")
        keys = issuer_keys_from_jwks(parse_json(data))
    except (OSError, CanonicalFormError, CredentialError) as error:
        return _fail(args, f"{path}: {error}")
    try:
        claims = verify_credential(token.strip(), keys=keys)
    except CredentialError as error:
        _report(args, {"authentic": False, "reason": error.reason, "detail": str(error)})
        return EXIT_NOT_AUTHENTIC
    now_s = int(time.time())
    in_term = claims.not_before <= now_s < claims.expires_at
    _report(
        args,
        {
            "authentic": True,
            "within_term": in_term,
            "issuer": claims.issuer,
            "holder": claims.holder,
            "licence_type": claims.licence_type,
            "number": claims.number,
            "valid_from": claims.valid_from.isoformat(),
            "valid_until": claims.valid_until.isoformat(),
            "licence_id": claims.licence_id,
            "note": "suspension or revocation since issue: ask GET /v1/licences/verify",
        },
    )
    return EXIT_OK if in_term else EXIT_UNDECIDED


def _fail(args: argparse.Namespace, detail: str) -> int:
    _report(args, {"authentic": None, "reason": "unreadable_input", "detail": detail})
    return EXIT_UNDECIDED


def _report(args: argparse.Namespace, report: dict[str, object]) -> None:
    if args.json:
        print(json.dumps(report, ensure_ascii=False, sort_keys=True))
        return
    for name, value in report.items():
        print(f"{name}: {value}")
