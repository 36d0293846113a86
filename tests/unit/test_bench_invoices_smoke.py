"""Smoke test of the invoice benchmark: its arguments, invoices and signed batches (each checked
by the real tax.invoices.check_invoice), the checks of the work it times, the report, and one
quick run against a real server on PostgreSQL (the `pg_admin_url` fixture: `make test` provides
the server). No timing is asserted: the figures depend on the machine.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks import bench_api, bench_invoices
from benchmarks.bench_api import Stack, Stats
from benchmarks.bench_invoices import Books, Seller
from signatures.canonical import MAX_DOCUMENT_BYTES, JsonValue, canonicalize
from signatures.client import generate_private_key, public_jwk, verify_transaction
from signatures.jws import MAX_PAYLOAD_BYTES
from tax.invoices import check_invoice
from tax.rulepack import pack_for
from tax.tax_ids import parse_tax_id

# --- arguments -----------------------------------------------------------------------------------


def test_defaults_time_batches_of_1000() -> None:
    args = bench_invoices.parse_args([])
    assert (args.concurrency, args.count, args.batch, args.sellers, args.lines) == (
        4,
        40,
        1000,
        4,
        2,
    )
    assert args.driver == "raw"


def test_quick_overrides_the_counts() -> None:
    args = bench_invoices.parse_args(["--quick", "--count", "99999", "--batch", "7"])
    for key, value in bench_invoices.QUICK.items():
        assert getattr(args, key) == value


@pytest.mark.parametrize(
    "argv",
    [
        ["--concurrency", "0"],
        ["--count", "0"],
        ["--batch", "0"],
        ["--batch", "1001"],
        ["--sellers", "0"],
        ["--sellers", str(bench_invoices.MAX_SELLERS + 1)],
        ["--lines", "0"],
        ["--lines", str(bench_invoices.MAX_LINES + 1)],
        ["--driver", "curl"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_invoices.parse_args(argv)
    assert exc.value.code == 2


# --- invoices and bodies -------------------------------------------------------------------------


def _seller(index: int = 0) -> Seller:
    return Seller("ir-lid:10380284790", "token", generate_private_key("EdDSA"), "BN0000")


def test_memory_ids_are_distinct_and_bounded() -> None:
    ids = {bench_invoices.memory_id_of(i) for i in range(bench_invoices.MAX_SELLERS)}
    assert len(ids) == bench_invoices.MAX_SELLERS and all(len(i) == 6 for i in ids)
    with pytest.raises(ValueError, match="at most"):
        bench_invoices.memory_id_of(bench_invoices.MAX_SELLERS)


def test_every_invoice_of_a_batch_passes_check_invoice_and_serials_advance() -> None:
    seller, rng = _seller(), random.Random(5)
    buyers = bench_invoices.distinct_subjects(3, rng, taken={seller.subject})
    assert len(set(buyers)) == 3 and seller.subject not in buyers
    pack = pack_for("ir")
    first = bench_invoices.batch_payload(seller, 40, buyers=buyers, lines=3, rng=rng)
    second = bench_invoices.batch_payload(seller, 2, buyers=buyers, lines=1, rng=rng)
    assert seller.next_serial == 43
    invoices = [*first["invoices"], *second["invoices"]]  # type: ignore[misc]
    serials = []
    for index, raw in enumerate(invoices):
        checked = check_invoice(pack, raw, seller=seller.subject, index=index)  # raises if wrong
        assert checked.buyer in buyers and checked.tax_id.memory_id == "BN0000"
        serials.append(parse_tax_id(checked.tax_id.text, pointer="").serial)
    assert serials == list(range(1, 43))
    assert [len(i["lines"]) for i in invoices] == [3] * 40 + [1] * 2


def test_a_full_batch_fits_the_envelope_with_the_most_lines() -> None:
    payload = bench_invoices.batch_payload(
        _seller(),
        1000,
        buyers=["ir-lid:14007650912"],
        lines=bench_invoices.MAX_LINES,
        rng=random.Random(1),
    )
    size = len(canonicalize(payload, max_bytes=MAX_DOCUMENT_BYTES))
    assert 500_000 < size < MAX_PAYLOAD_BYTES - 4096  # room for the envelope's other members


def test_a_batch_is_signed_by_its_seller() -> None:
    seller = _seller()
    payload = bench_invoices.batch_payload(
        seller, 2, buyers=["ir-lid:14007650912"], lines=1, rng=random.Random(2)
    )
    parsed = json.loads(bench_invoices.batch_body(seller, payload))
    envelope = parsed["envelope"]
    assert envelope["signer"] == seller.subject and envelope["type"] == "tax.invoice.submit"
    assert envelope["payload"] == payload
    jwk = public_jwk(seller.key)
    assert verify_transaction(envelope, parsed["signature"], jwk).kid == jwk.kid


# --- checks --------------------------------------------------------------------------------------

GOOD = Books(invoices=3000, memory_ids=2)
WHOLE: list[dict[str, JsonValue]] = [{"accepted": 1000, "rejected": 0}]
VIEWED = {"t1": 200, "t2": 200}


def _problems(
    books: Books, accepted: int, results: list[dict[str, JsonValue]], viewed: dict[str, int]
) -> list[str]:
    return bench_invoices.invoice_problems(
        books, accepted_batches=accepted, batch=1000, sellers=2, results=results, viewed=viewed
    )


def test_work_done_right_has_no_problem() -> None:
    assert _problems(GOOD, 3, WHOLE, VIEWED) == []


@pytest.mark.parametrize(
    ("books", "accepted", "results", "viewed", "found"),
    [
        (GOOD, 4, WHOLE, VIEWED, "3000 invoices recorded, not 4"),
        (Books(2999, 2), 3, WHOLE, VIEWED, "2999 invoices recorded"),
        (Books(3000, 3), 3, WHOLE, VIEWED, "3 memory IDs"),
        (GOOD, 3, [{"accepted": 999, "rejected": 1}], VIEWED, "1 of 1 sampled batches"),
        (GOOD, 3, [], VIEWED, "0 of 0 sampled batches"),
        (GOOD, 3, WHOLE, {"t1": 200, "t2": 404}, "1 of 2 sampled invoices"),
        (GOOD, 3, WHOLE, {}, "0 of 0 sampled invoices"),
        (Books(0, 0), 0, WHOLE, VIEWED, "no batch accepted"),
    ],
)
def test_each_fault_in_the_work_is_a_problem(
    books: Books,
    accepted: int,
    results: list[dict[str, JsonValue]],
    viewed: dict[str, int],
    found: str,
) -> None:
    problems = _problems(books, accepted, results, viewed)
    assert any(found in problem for problem in problems), problems


def test_report_counts_invoices_per_second() -> None:
    stack = Stack("tax.invoice.submit", "b", "/p", [])
    stack.results["closed"] = Stats(40, 39, 20.0, 1.95, 1800.0, 2500.0, 0.02, 0)
    stack.results["warmup"] = Stats(20, 20, 12.0, 1.6667, 1500.0, 2000.0, 0.03, 0)
    args = bench_invoices.parse_args(["--concurrency", "3"])
    lines = bench_invoices.report(bench_invoices.Run(stack, []), args)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert "3 in flight" in lines[0]
    assert rows[0][0].endswith("timed (closed loop)")
    assert rows[0][1:6] == ["1,950", "1.95", "1,800 ms", "2,500 ms", "39/40"]
    assert rows[1][0].endswith("warm-up") and rows[1][1] == "1,667"


# --- a quick run against a real server -----------------------------------------------------------


@pytest.mark.slow
def test_a_quick_run_records_every_invoice_and_checks_its_work(
    pg_admin_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(bench_api.PG_URL_ENV, pg_admin_url.render_as_string(False))
    status = bench_invoices.main(["--quick", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "NOT correct" not in out
    timed = next(line for line in out.splitlines() if "timed (closed loop)" in line)
    quick = bench_invoices.QUICK
    assert timed.strip("|").split("|")[5].strip() == f"{quick['count']}/{quick['count']}"
