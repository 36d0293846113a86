"""Smoke test of the ledger benchmark: it runs, reports every row, and verifies what it built.

No timing is asserted: the figures depend on the machine.
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from benchmarks import bench_ledger

QUICK_SIZES = (1000, 5000)
QUICK_SINGLE = 50


def _table_rows(output: str) -> list[list[str]]:
    rows = []
    for line in output.splitlines():
        if line.startswith("| ") and not line.startswith("| backend "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _size(cell: str) -> int:
    return int(cell.replace(",", ""))


@pytest.fixture(scope="module")
def quick_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    """One quick SQLite run shared by the tests below: (exit status, stdout)."""
    workdir = tmp_path_factory.mktemp("bench")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = bench_ledger.main(["--quick", "--backends", "sqlite", "--workdir", str(workdir)])
    return status, out.getvalue()


def test_quick_sqlite_run_reports_every_metric(quick_output: tuple[int, str]) -> None:
    status, out = quick_output
    assert status == 0, out
    rows = _table_rows(out)
    assert rows and all(r[0] == "sqlite" for r in rows)
    got = {(r[1], _size(r[2])) for r in rows}
    phase = f"append, batches of {bench_ledger.BATCH_LEAVES}, phase to size"
    for size in QUICK_SIZES:
        assert (phase, size) in got
        for kind in ("inclusion", "consistency"):
            for q in ("p50", "p99"):
                assert (f"{kind} proof {q}", size) in got
    final = QUICK_SIZES[-1] + QUICK_SINGLE
    whole = f"append, batches of {bench_ledger.BATCH_LEAVES}, whole build"
    assert (whole, QUICK_SIZES[-1]) in got
    assert ("append, 1 leaf per transaction", final) in got
    assert ("verify whole ledger", final) in got
    assert len(rows) == len(QUICK_SIZES) * 5 + 4


def test_quick_sqlite_run_verification_is_consistent(quick_output: tuple[int, str]) -> None:
    _, out = quick_output
    report = [r for r in _table_rows(out) if r[1] == "verify report"]
    assert len(report) == 1
    assert report[0][3] == "consistent"
    assert "NOT consistent" not in out


def test_quick_sqlite_run_states_targets_and_machine(quick_output: tuple[int, str]) -> None:
    _, out = quick_output
    whole = next(r for r in _table_rows(out) if "whole build" in r[1])
    assert whole[5] == "≥ 20,000" and whole[6] in ("met", "**missed**")
    verify = next(r for r in _table_rows(out) if r[1] == "verify whole ledger")
    assert verify[5] == "≥ 200,000" and verify[6] in ("met", "**missed**")
    assert re.search(r"^- Machine: .+, \d+ CPUs, [\d.]+ GiB RAM", out, re.MULTILINE)
    assert re.search(r"^- Date \(UTC\): \d{4}-\d\d-\d\d \d\d:\d\d$", out, re.MULTILINE)
    assert "SQLite 3." in out
    assert "PostgreSQL" not in out  # only the SQLite backend was asked for
    assert "sqlite inclusion p99 at 1,000,000: not measured in this run" in out
