"""Smoke test of the payments benchmark: its arguments, bills and signed bodies, the checks of
the work it times, the report, and one quick run against a real server on PostgreSQL (the
`pg_admin_url` fixture: `make test` provides the server). No timing is asserted: the figures
depend on the machine.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks import bench_api, bench_payments
from benchmarks.bench_api import Stack, Stats
from benchmarks.bench_payments import Bill, BillCursor, Books
from payments.bill_ids import DEFAULT_BILL_SERVICE_TYPES, verify_bill_payment
from signatures.client import generate_private_key, public_jwk, verify_transaction
from tests.e2e.client import national_id

# --- arguments -----------------------------------------------------------------------------------


def test_defaults_are_modest_enough_for_a_two_core_machine() -> None:
    args = bench_payments.parse_args([])
    assert (args.concurrency, args.count, args.clients, args.driver) == (32, 2000, 16, "raw")


def test_quick_overrides_the_counts() -> None:
    args = bench_payments.parse_args(["--quick", "--count", "99999"])
    for key, value in bench_payments.QUICK.items():
        assert getattr(args, key) == value


@pytest.mark.parametrize(
    "argv",
    [
        ["--concurrency", "0"],
        ["--count", "0"],
        ["--clients", "0"],
        ["--count", str(bench_payments.MAX_BILLS)],
        ["--driver", "curl"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_payments.parse_args(argv)
    assert exc.value.code == 2


# --- bills and bodies ----------------------------------------------------------------------------


def _bills(counts: list[int]) -> tuple[list[str], list[list[Bill]]]:
    rng = random.Random(3)
    debtors = [national_id(rng) for _ in counts]
    return debtors, bench_payments.plan_bills(debtors, counts, rng)


def test_planned_bills_are_distinct_valid_and_owed_by_their_lanes_citizen() -> None:
    debtors, lanes = _bills([3, 0, 5])
    assert [len(bills) for bills in lanes] == [3, 0, 5]
    flat = [bill for bills in lanes for bill in bills]
    assert len({(b.bill_id, b.payment_id) for b in flat}) == 8
    for debtor, bills in zip(debtors, lanes, strict=True):
        assert all(bill.debtor == debtor for bill in bills)
    for bill in flat:
        assert bill.amount_minor % 1000 == 0 and bill.amount_minor > 0
        checked = verify_bill_payment(
            bill.bill_id,
            bill.payment_id,
            service_types=DEFAULT_BILL_SERVICE_TYPES,
            expected_amount_minor=bill.amount_minor,
        )
        assert checked.bill.service_name == "water" and checked.bill.company_code == "317"


def test_too_many_bills_are_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        bench_payments.plan_bills(["x"], [bench_payments.MAX_BILLS + 1], random.Random(1))


def test_a_bill_is_split_in_two_transfers_that_add_up_to_its_amount() -> None:
    _, lanes = _bills([4])
    for bill in lanes[0]:
        payload = json.loads(json.dumps(bench_payments.bill_payload(bill)))  # as sent
        amounts = [t["amount_minor"] for t in payload["transfers"]]
        assert sum(amounts) == bill.amount_minor and min(amounts) > 0
        assert (payload["reference"], payload["payment_id"]) == (bill.bill_id, bill.payment_id)
        assert payload["debtor"] == bill.debtor and payload["allows_instalments"] is False
        paying = bench_payments.payment_payload(bill)
        assert (paying["bill_id"], paying["payment_id"]) == (bill.bill_id, bill.payment_id)
        assert paying["amount"] == {"amount_minor": bill.amount_minor, "currency": "IRR"}
        assert paying["provider"] == "sandbox"


def test_bodies_are_signed_by_the_agency_and_by_the_debtor() -> None:
    _, lanes = _bills([1])
    bill = lanes[0][0]
    agency_key, citizen_key = generate_private_key("EdDSA"), generate_private_key("EdDSA")
    for key, body, signer, kind in (
        (agency_key, bench_payments.issue_body(agency_key, bill), "agency:water-tehran", "bill"),
        (citizen_key, bench_payments.payment_body(citizen_key, bill), bill.debtor, "payment"),
    ):
        parsed = json.loads(body)
        envelope = parsed["envelope"]
        assert envelope["signer"] == signer and envelope["type"].startswith(kind)
        jwk = public_jwk(key)
        assert verify_transaction(envelope, parsed["signature"], jwk).kid == jwk.kid


def test_the_bill_cursor_hands_out_each_lanes_bills_once_in_order() -> None:
    _, lanes = _bills([5, 2])
    cursor = BillCursor(lanes)
    assert cursor.next(0, 2) + cursor.next(0, 3) == lanes[0]
    assert cursor.next(1, 0) == [] and cursor.next(1, 2) == lanes[1]
    with pytest.raises(ValueError, match="0 bills left"):
        cursor.next(0, 1)


# --- checks --------------------------------------------------------------------------------------

GOOD = Books({"succeeded": 10}, paid_payables=10, sandbox_charges=10, totals_by_currency={"IRR": 0})
SAMPLED = {"p1": "succeeded", "p2": "succeeded"}


def test_work_done_right_has_no_problem() -> None:
    assert bench_payments.payment_problems(GOOD, 10, SAMPLED) == []


@pytest.mark.parametrize(
    ("books", "accepted", "sampled", "found"),
    [
        (GOOD, 11, SAMPLED, "not 11 succeeded"),
        (Books({"succeeded": 9, "failed": 1}, 10, 10, {"IRR": 0}), 10, SAMPLED, "by state"),
        (Books({"succeeded": 10}, 9, 10, {"IRR": 0}), 10, SAMPLED, "9 payables paid"),
        (Books({"succeeded": 10}, 10, 11, {"IRR": 0}), 10, SAMPLED, "11 sandbox charges"),
        (Books({"succeeded": 10}, 10, 10, {"IRR": 5}), 10, SAMPLED, "does not balance"),
        (GOOD, 10, {"p1": "succeeded", "p2": "HTTP 404"}, "1 of 2 sampled"),
        (GOOD, 10, {}, "0 of 0 sampled"),
        (Books({}, 0, 0, {}), 0, SAMPLED, "no payment accepted"),
    ],
)
def test_each_fault_in_the_work_is_a_problem(
    books: Books, accepted: int, sampled: dict[str, str], found: str
) -> None:
    problems = bench_payments.payment_problems(books, accepted, sampled)
    assert any(found in problem for problem in problems), problems


def test_report_has_a_row_per_transaction_type() -> None:
    paid = Stack("payment.create", "b", "/p", [])
    issued = Stack("bill.issue", "b", "/p", [])
    paid.results["closed"] = Stats(200, 199, 4.0, 49.75, 120.0, 300.0, 0.02, 0)
    issued.results["issue"] = Stats(264, 264, 2.0, 132.0, 50.0, 90.0, 0.03, 0)
    run = bench_payments.Run(issued, paid, [])
    lines = bench_payments.report(run, bench_payments.parse_args(["--concurrency", "8"]))
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert "8 in flight" in lines[0]
    assert rows[0][0].startswith("payment.create") and rows[0][1:5] == [
        "50",
        "120.0 ms",
        "300.0 ms",
        "199/200",
    ]
    assert rows[1][0].startswith("bill.issue") and rows[1][1] == "132"


# --- a quick run against a real server -----------------------------------------------------------


@pytest.mark.slow
def test_a_quick_run_pays_every_bill_and_checks_its_work(
    pg_admin_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(bench_api.PG_URL_ENV, pg_admin_url.render_as_string(False))
    status = bench_payments.main(["--quick", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "NOT correct" not in out
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
        for line in out.splitlines()
        if line.startswith("| payment.create") or line.startswith("| bill.issue")
    }
    quick = bench_payments.QUICK
    timed = rows["payment.create, paid by the sandbox (timed)"]
    assert timed[4] == f"{quick['count']}/{quick['count']}"
    issued = quick["count"] + bench_api.WARMUP_PER_CLIENT * quick["concurrency"]
    assert rows["bill.issue (setup)"][4] == f"{issued}/{issued}"
