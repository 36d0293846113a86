"""`pishkhan keys …` and `pishkhan tx …`, driven in process through api.cli.main.

Every refusal must be one line on stderr naming the field and the rule, with exit status 2 (1 only
for a signature that does not verify), and never a traceback. The JWS printed by `tx sign` is
checked with jwcrypto, an independent implementation, over the canonical envelope bytes.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from api.cli import main
from api.client_cli import EXIT_INVALID_SIGNATURE, EXIT_OK, EXIT_UNUSABLE_INPUT, PASSPHRASE_ENV
from signatures.canonical import JsonValue, canonicalize, parse_json
from signatures.client import verify_transaction
from signatures.envelope import parse_envelope
from signatures.jwk import PublicJwk
from signatures.jws import MAX_PAYLOAD_BYTES, parse_protected_header

ALGS = ("EdDSA", "ES256", "PS256")
PASSPHRASE = "correct horse battery staple"
SIGNER = "ir-nid:0499370899"
COMPANY = "ir-lid:10380284790"
PAYLOAD = {
    "bill_id": "1234567890123",
    "payment_id": "12345678",
    "amount": {"amount_minor": 125000, "currency": "IRR"},
}
IAT = 1_700_000_000
DOC = Path(__file__).resolve().parents[3] / "docs" / "CLIENT.md"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


Cli = Callable[..., Run]


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> Run:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Run(code, captured.out, captured.err)

    return run


def _one_line_error(run: Run, *fragments: str) -> None:
    assert run.code == EXIT_UNUSABLE_INPUT, run
    assert run.out == ""
    assert run.err.startswith("pishkhan: error: ") and run.err.count("\n") == 1, run.err
    for fragment in fragments:
        assert fragment in run.err, (fragment, run.err)


def _write(path: str, data: str | bytes) -> str:
    Path(path).write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _passphrase_file() -> str:
    return _write("pass.txt", PASSPHRASE + "\n")


def _generate(cli: Cli, alg: str = "EdDSA", out: str = "key.pem") -> dict[str, str]:
    run = cli(
        "keys", "generate", "--alg", alg, "--out", out, "--passphrase-file", _passphrase_file()
    )
    assert run.code == EXIT_OK, run
    jwk: dict[str, str] = json.loads(run.out)
    return jwk


def _envelope(cli: Cli) -> dict[str, JsonValue]:
    _write("payload.json", json.dumps(PAYLOAD))
    run = cli(
        "tx", "envelope", "--type", "bill.pay", "--signer", SIGNER, "--payload", "payload.json"
    )
    assert run.code == EXIT_OK, run
    envelope = json.loads(run.out)
    _write("envelope.json", run.out)
    assert isinstance(envelope, dict)
    return envelope


def _signed(cli: Cli) -> str:
    _generate(cli)
    _envelope(cli)
    run = cli("tx", "sign", "envelope.json", "--key", "key.pem", "--passphrase-file", "pass.txt")
    assert run.code == EXIT_OK, run
    return _write("tx.jws", run.out)


# --- the whole path --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_generate_public_envelope_sign_verify(cli: Cli, alg: str) -> None:
    run = cli(
        "keys", "generate", "--alg", alg, "--out", "key.pem",
        "--passphrase-file", _passphrase_file(), "--public-out", "pub.jwk.json",
    )  # fmt: skip
    assert run.code == EXIT_OK and run.err == ""
    printed = json.loads(run.out)
    jwk = PublicJwk.from_dict(printed)
    assert printed["kid"] == jwk.thumbprint() and printed["alg"] == alg
    assert json.loads(Path("pub.jwk.json").read_text()) == printed
    assert Path("key.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")

    public = cli("keys", "public", "key.pem", "--passphrase-file", "pass.txt")
    assert public.code == EXIT_OK and json.loads(public.out) == printed

    envelope = _envelope(cli)
    sign = cli("tx", "sign", "envelope.json", "--key", "key.pem", "--passphrase-file", "pass.txt")
    assert sign.code == EXIT_OK and sign.err == ""
    jws = sign.out.removesuffix("\n")
    assert "\n" not in jws and jws.count(".") == 2 and ".." in jws

    # An independent implementation verifies it over the canonical envelope bytes.
    theirs = jwcrypto_jwk.JWK.from_json(Path("pub.jwk.json").read_text())
    assert theirs.thumbprint() == printed["kid"]
    token = jwcrypto_jws.JWS()
    token.deserialize(jws)
    token.verify(theirs, alg=alg, detached_payload=canonicalize(envelope))

    verify = cli("tx", "verify", "envelope.json", "--jws", jws, "--jwk", "pub.jwk.json")
    assert verify.code == EXIT_OK and verify.err == ""
    assert re.fullmatch(rf"valid: kid={printed['kid']} alg={alg} iat=\d+ \(\S+Z\)\n", verify.out)


def test_sign_with_iat_and_body(cli: Cli) -> None:
    jwk = PublicJwk.from_dict(_generate(cli))
    _envelope(cli)
    run = cli(
        "tx", "sign", "envelope.json", "--key", "key.pem", "--passphrase-file", "pass.txt",
        "--iat", str(IAT), "--body",
    )  # fmt: skip
    assert run.code == EXIT_OK
    body = parse_json(run.out.encode())
    assert isinstance(body, dict) and set(body) == {"envelope", "signature"}
    assert isinstance(body["signature"], str)
    header = verify_transaction(body["envelope"], body["signature"], jwk)
    assert header.iat == IAT


def test_default_iat_is_now(cli: Cli) -> None:
    before = int(time.time())
    header = parse_protected_header(Path(_signed(cli)).read_text().strip())
    assert before <= header.iat <= int(time.time())


def test_envelope_and_signing_read_standard_input(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _generate(cli)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(PAYLOAD).encode())))
    run = cli("tx", "envelope", "--type", "bill.pay", "--signer", SIGNER, "--payload", "-")
    assert run.code == EXIT_OK
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(run.out.encode())))
    sign = cli("tx", "sign", "-", "--key", "key.pem", "--passphrase-file", "pass.txt")
    assert sign.code == EXIT_OK and sign.out.startswith("eyJ")


def test_passphrase_from_standard_input(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    _generate(cli)
    _envelope(cli)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(PASSPHRASE.encode() + b"\n")))
    assert cli("keys", "public", "key.pem", "--passphrase-file", "-").code == EXIT_OK
    run = cli("tx", "sign", "-", "--key", "key.pem", "--passphrase-file", "-")
    _one_line_error(run, "--passphrase-file -", "standard input")


# --- tx envelope -------------------------------------------------------------------------------


def test_tx_envelope_is_fresh_and_valid(cli: Cli) -> None:
    _write("payload.json", json.dumps(PAYLOAD))
    args = ("tx", "envelope", "--type", "bill.pay", "--signer", SIGNER, "--payload", "payload.json")
    first, second = cli(*args), cli(*args, "--on-behalf-of", COMPANY, "--version", "2")
    one, two = json.loads(first.out), json.loads(second.out)
    assert one["nonce"] != two["nonce"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", one["created_at"])
    checked = parse_envelope(two)
    assert abs((checked.created_at - datetime.now(UTC)).total_seconds()) < 5
    assert (str(checked.on_behalf_of), checked.version, checked.payload) == (COMPANY, 2, PAYLOAD)
    assert "on_behalf_of" not in one


def test_tx_envelope_names_the_option_and_the_rule(cli: Cli) -> None:
    _write("payload.json", json.dumps(PAYLOAD))
    base = ("tx", "envelope", "--payload", "payload.json")
    run = cli(*base, "--type", "bill.pay", "--signer", "ir-nid:0499370898")
    _one_line_error(run, "--signer", "invalid_check_digit")
    run = cli(*base, "--type", "bill", "--signer", SIGNER, "--version", "0")
    _one_line_error(run, "--type", "invalid_format", "--version", "out_of_range")
    run = cli(*base, "--type", "bill.pay", "--signer", SIGNER, "--on-behalf-of", SIGNER)
    _one_line_error(run, "--on-behalf-of", "same_as_signer")
    _write("payload.json", "[1]")
    run = cli(*base, "--type", "bill.pay", "--signer", SIGNER)
    _one_line_error(run, "--payload payload.json", "wrong_type")
    _write("payload.json", '{"amount": 1e3}')
    run = cli(*base, "--type", "bill.pay", "--signer", SIGNER)
    _one_line_error(run, "--payload payload.json", "/amount", "float_not_allowed")


# --- exit codes of tx verify -------------------------------------------------------------------


def test_verify_says_1_for_a_signature_that_does_not_verify(cli: Cli) -> None:
    _signed(cli)
    _write("pub.jwk.json", cli("keys", "public", "key.pem", "--passphrase-file", "pass.txt").out)
    envelope = json.loads(Path("envelope.json").read_text())
    envelope["payload"]["amount"]["amount_minor"] += 1
    _write("changed.json", json.dumps(envelope))
    for args, reason in (
        (("changed.json", "--jws", "@tx.jws", "--jwk", "pub.jwk.json"), "JwsSignatureError"),
        (("envelope.json", "--jws", "not-a-jws", "--jwk", "pub.jwk.json"), "JwsFormatError"),
    ):
        run = cli("tx", "verify", *args)
        assert run.code == EXIT_INVALID_SIGNATURE and run.out == ""
        assert run.err.startswith("pishkhan: invalid signature: ") and reason in run.err
        assert run.err.count("\n") == 1
    _generate(cli, "EdDSA", out="other.pem")
    _write(
        "other.jwk.json", cli("keys", "public", "other.pem", "--passphrase-file", "pass.txt").out
    )
    run = cli("tx", "verify", "envelope.json", "--jws", "@tx.jws", "--jwk", "other.jwk.json")
    assert run.code == EXIT_INVALID_SIGNATURE and "JwsKeyMismatchError" in run.err
    assert (
        cli("tx", "verify", "envelope.json", "--jws", "@tx.jws", "--jwk", "pub.jwk.json").code == 0
    )


def test_verify_says_2_for_unusable_input(cli: Cli) -> None:
    _signed(cli)
    _write("pub.jwk.json", cli("keys", "public", "key.pem", "--passphrase-file", "pass.txt").out)
    jwk = json.loads(Path("pub.jwk.json").read_text())
    _write("private.jwk.json", json.dumps({**jwk, "d": "AAAA"}))
    _write("bad.jwk.json", "{")
    good = ("envelope.json", "--jws", "@tx.jws", "--jwk", "pub.jwk.json")
    cases = {
        ("missing.json", *good[1:]): ("envelope missing.json", "cannot read"),
        (*good[:2], "@missing.jws", *good[3:]): ("--jws missing.jws", "cannot read"),
        (*good[:4], "missing.jwk.json"): ("--jwk missing.jwk.json", "cannot read"),
        (*good[:4], "bad.jwk.json"): ("--jwk bad.jwk.json", "invalid_json"),
        (*good[:4], "private.jwk.json"): ("--jwk private.jwk.json", "private member"),
        ("-", "--jws", "@-", *good[3:]): ("--jws @-", "standard input"),
    }
    for args, fragments in cases.items():
        _one_line_error(cli("tx", "verify", *args), *fragments)


BAD_ENVELOPES = {
    "not_json": (b"{", "invalid_json"),
    "float": (b'{"version": 1.5}', "float_not_allowed"),
    "not_utf8": (b'{"type": "\xff"}', "invalid_utf8"),
    "duplicate": (b'{"a": 1, "a": 2}', "duplicate_key"),
    "not_an_object": (b"[]", "wrong_type"),
    "too_large": (b" " * (MAX_PAYLOAD_BYTES + 1), "too_large"),  # a batch payload may be 1 MiB
}


@pytest.mark.parametrize("name", sorted(BAD_ENVELOPES))
def test_bad_json_is_one_line_and_exit_2(cli: Cli, name: str) -> None:
    _signed(cli)
    _write("pub.jwk.json", cli("keys", "public", "key.pem", "--passphrase-file", "pass.txt").out)
    data, rule = BAD_ENVELOPES[name]
    _write("bad.json", data)
    run = cli("tx", "sign", "bad.json", "--key", "key.pem", "--passphrase-file", "pass.txt")
    _one_line_error(run, "envelope bad.json", rule)
    run = cli("tx", "verify", "bad.json", "--jws", "@tx.jws", "--jwk", "pub.jwk.json")
    _one_line_error(run, "envelope bad.json", rule)


def test_bad_envelope_names_every_field(cli: Cli) -> None:
    _signed(cli)
    envelope = json.loads(Path("envelope.json").read_text())
    del envelope["nonce"]
    envelope["signer"] = "ir-nid:0000000000"
    _write("bad.json", json.dumps(envelope))
    run = cli("tx", "sign", "bad.json", "--key", "key.pem", "--passphrase-file", "pass.txt")
    _one_line_error(run, "/nonce", "required", "/signer", "invalid_identifier")
    assert "0000000000" not in run.err  # messages never repeat the refused value


def test_iat_out_of_range_is_refused(cli: Cli) -> None:
    _signed(cli)
    run = cli(
        "tx", "sign", "envelope.json", "--key", "key.pem", "--passphrase-file", "pass.txt",
        "--iat", "-1",
    )  # fmt: skip
    _one_line_error(run, "--iat", "out_of_range")


# --- key files and passphrases -----------------------------------------------------------------


def test_key_file_is_owner_only_even_with_a_permissive_umask(cli: Cli) -> None:
    old = os.umask(0)
    try:
        _generate(cli)
    finally:
        os.umask(old)
    assert stat.S_IMODE(Path("key.pem").stat().st_mode) == 0o600


def test_generate_refuses_to_overwrite(cli: Cli) -> None:
    _write("key.pem", "precious")
    run = cli("keys", "generate", "--alg", "EdDSA", "--out", "key.pem", "--unencrypted")
    _one_line_error(run, "--out key.pem", "already exists")
    assert Path("key.pem").read_text() == "precious"
    os.symlink("nowhere", "link.pem")
    run = cli("keys", "generate", "--alg", "EdDSA", "--out", "link.pem", "--unencrypted")
    _one_line_error(run, "--out link.pem", "already exists")
    _write("pub.json", "{}")
    run = cli(
        "keys", "generate", "--alg", "EdDSA", "--out", "new.pem", "--unencrypted",
        "--public-out", "pub.json",
    )  # fmt: skip
    _one_line_error(run, "--public-out pub.json", "already exists")
    assert not Path("new.pem").exists()  # nothing is written when any output exists


def test_generate_needs_a_passphrase_unless_told_otherwise(cli: Cli) -> None:
    run = cli("keys", "generate", "--alg", "ES256", "--out", "key.pem")
    _one_line_error(run, "passphrase_required", PASSPHRASE_ENV)
    assert not Path("key.pem").exists()
    run = cli("keys", "generate", "--alg", "ES256", "--out", "key.pem", "--unencrypted")
    assert run.code == EXIT_OK
    assert Path("key.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert cli("keys", "public", "key.pem").code == EXIT_OK


def test_passphrase_from_the_environment(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    run = cli("keys", "generate", "--alg", "EdDSA", "--out", "key.pem")
    assert run.code == EXIT_OK
    assert Path("key.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert json.loads(cli("keys", "public", "key.pem").out) == json.loads(run.out)
    _write("pass.txt", PASSPHRASE)  # no line ending: also fine
    assert cli("keys", "public", "key.pem", "--passphrase-file", "pass.txt").code == EXIT_OK
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong horse battery staple")
    _one_line_error(cli("keys", "public", "key.pem"), "--key key.pem", "wrong_passphrase")
    monkeypatch.setenv(PASSPHRASE_ENV, "")
    _one_line_error(cli("keys", "public", "key.pem"), PASSPHRASE_ENV, "empty")


def test_passphrase_file_wins_and_mistakes_are_named(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _generate(cli)
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong horse battery staple")
    assert cli("keys", "public", "key.pem", "--passphrase-file", "pass.txt").code == EXIT_OK
    monkeypatch.delenv(PASSPHRASE_ENV)
    run = cli("keys", "public", "key.pem")
    _one_line_error(
        run, "--key key.pem", "passphrase_required", "--passphrase-file", PASSPHRASE_ENV
    )
    _write("empty.txt", "\n")
    run = cli("keys", "public", "key.pem", "--passphrase-file", "empty.txt")
    _one_line_error(run, "--passphrase-file empty.txt", "empty")
    run = cli("keys", "public", "key.pem", "--passphrase-file", "absent.txt")
    _one_line_error(run, "--passphrase-file absent.txt", "cannot read")
    _write("short.txt", "short\n")
    run = cli(
        "keys", "generate", "--alg", "EdDSA", "--out", "k2.pem", "--passphrase-file", "short.txt"
    )
    _one_line_error(run, "--passphrase-file", "passphrase_too_short")
    assert not Path("k2.pem").exists()


@pytest.mark.parametrize(
    "command",
    [
        ("keys", "generate", "--alg", "EdDSA", "--out", "key.pem"),
        ("keys", "public", "key.pem"),
        ("tx", "sign", "envelope.json", "--key", "key.pem"),
    ],
)
@pytest.mark.parametrize("spelling", [("--passphrase", "s3cret-s3cret-s3cret"),
                                      ("--passphrase=s3cret-s3cret-s3cret",),
                                      ("--pass", "s3cret-s3cret-s3cret"),
                                      ("--passphrase-fil", "s3cret-s3cret-s3cret")])  # fmt: skip
def test_a_passphrase_on_the_command_line_is_impossible(
    cli: Cli, command: tuple[str, ...], spelling: tuple[str, ...]
) -> None:
    _generate(cli)
    _envelope(cli)
    run = cli(*command, *spelling)
    assert run.code == 2 and run.out == ""
    assert "unrecognized arguments" in run.err
    assert "cannot read" not in run.err  # never taken as --passphrase-file's abbreviation


def test_key_file_problems_are_named(cli: Cli) -> None:
    _write("public.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    _one_line_error(cli("keys", "public", "public.pem"), "--key public.pem", "invalid_pem")
    _write("huge.pem", b"#" * (16 * 1024 + 1))
    _one_line_error(cli("keys", "public", "huge.pem"), "--key huge.pem", "too_large")
    _one_line_error(cli("keys", "public", "."), "--key .", "cannot read")


# --- the worked example of docs/CLIENT.md ----------------------------------------------------


def _doc_block(marker: str) -> str:
    found = re.search(rf"<!-- {marker} -->\n```[a-z]*\n(.*?)\n```", DOC.read_text("utf-8"), re.S)
    assert found, f"docs/CLIENT.md has no block after <!-- {marker} -->"
    return found.group(1)


def test_the_worked_example_of_the_doc(cli: Cli) -> None:
    _write("rfc8037.pem", _doc_block("example:key") + "\n")
    _write("envelope.json", _doc_block("example:envelope") + "\n")
    public = cli("keys", "public", "rfc8037.pem")
    assert public.out == _doc_block("example:jwk") + "\n"
    _write("rfc8037.jwk.json", public.out)
    sign = cli("tx", "sign", "envelope.json", "--key", "rfc8037.pem", "--iat", str(IAT))
    assert sign.out == _doc_block("example:jws") + "\n"
    _write("tx.jws", sign.out)
    verify = cli("tx", "verify", "envelope.json", "--jws", "@tx.jws", "--jwk", "rfc8037.jwk.json")
    assert verify.out == _doc_block("example:verify") + "\n"
    body = cli("tx", "sign", "envelope.json", "--key", "rfc8037.pem", "--iat", str(IAT), "--body")
    assert body.out == _doc_block("example:body") + "\n"
