"""Smoke test of the API benchmark's parts that need no Pishkhan server: arguments, pre-signing,
the open-loop schedule, the statistics, the HTTP driver (against a tiny in-process HTTP server)
and the report. No timing is asserted: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
from collections.abc import Callable

import pytest

from benchmarks import bench_api
from benchmarks.bench_api import Job, Outcome, RawPool, Stack, Stats
from signatures.client import generate_private_key, public_jwk, verify_transaction
from signatures.envelope import is_valid_subject
from signatures.jwk import PublicJwk
from tests.e2e.client import KEY_REINSTATE, KEY_SUSPEND, Lane, kid_of, legal_id, national_id

SUBJECT = "ir-nid:0499370899"


# --- arguments -----------------------------------------------------------------------------------


def test_defaults_are_the_issue_targets() -> None:
    args = bench_api.parse_args([])
    assert (args.concurrency, args.rate, args.rate_seconds) == (64, 500.0, 10.0)
    assert args.driver == "raw" and args.count >= 10_000


def test_quick_overrides_the_counts() -> None:
    args = bench_api.parse_args(["--quick", "--count", "99999"])
    for key, value in bench_api.QUICK.items():
        assert getattr(args, key) == value


@pytest.mark.parametrize(
    "argv",
    [
        ["--concurrency", "0"],
        ["--count", "0"],
        ["--b-keys", "0"],
        ["--rate", "0"],
        ["--rate-seconds", "-1"],
        ["--driver", "curl"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_api.parse_args(argv)
    assert exc.value.code == 2


# --- pre-signing ---------------------------------------------------------------------------------


def _lane(b_keys: int) -> tuple[Lane, PublicJwk]:
    key = generate_private_key("EdDSA")
    b_kids = [kid_of(generate_private_key("EdDSA")) for _ in range(b_keys)]
    return Lane(SUBJECT, "token", key, b_kids), public_jwk(key)


def test_presigned_bodies_follow_the_key_cycle_and_verify() -> None:
    lane, jwk = _lane(b_keys=2)
    first, second = lane.bodies(3), lane.bodies(5)  # the second call goes on from the first
    bodies = [json.loads(b) for b in first + second]
    got = [(b["envelope"]["type"], b["envelope"]["payload"]["kid"]) for b in bodies]
    b1, b2 = lane.b_kids
    suspend, reinstate = KEY_SUSPEND, KEY_REINSTATE
    assert got == [
        (suspend, b1),
        (suspend, b2),
        (reinstate, b1),
        (reinstate, b2),
        (suspend, b1),
        (suspend, b2),
        (reinstate, b1),
        (reinstate, b2),
    ]
    assert lane.position == 8
    assert len({b["envelope"]["nonce"] for b in bodies}) == 8
    for body in bodies:
        assert set(body) == {"envelope", "signature"}
        assert body["envelope"]["signer"] == SUBJECT
        assert verify_transaction(body["envelope"], body["signature"], jwk).kid == jwk.kid


def test_floor_bodies_are_small_valid_and_distinct() -> None:
    sent = [0, 0]
    bodies = bench_api.floor_bodies(1, 3, sent) + bench_api.floor_bodies(1, 2, sent)
    refs = [json.loads(b)["ref"] for b in bodies]
    assert refs == ["c1-0", "c1-1", "c1-2", "c1-3", "c1-4"] and sent == [0, 5]
    assert set(json.loads(bodies[0])) == {"kind", "ref", "amount_minor"}


@pytest.mark.parametrize(("total", "lanes"), [(10, 3), (3, 8), (64, 64), (20_000, 64)])
def test_lane_counts_split_evenly(total: int, lanes: int) -> None:
    counts = bench_api.lane_counts(total, lanes)
    assert len(counts) == lanes and sum(counts) == total
    assert max(counts) - min(counts) <= 1


# --- schedule and statistics ---------------------------------------------------------------------


def _job(counts: list[int], *, rate: float | None = None, depends: int = 0) -> Job:
    lanes: list[tuple[dict[str, str], list[bytes]]] = [
        ({}, [f"{i}-{j}".encode() for j in range(n)]) for i, n in enumerate(counts)
    ]
    return Job("http://127.0.0.1:1", "/x", lanes, rate, 4, depends)


def test_open_schedule_is_a_fixed_rate_round_robin() -> None:
    schedule = bench_api.open_schedule(_job([3, 3, 2], rate=100.0))
    assert [round(t, 6) for t, _, _ in schedule] == [k / 100 for k in range(8)]
    assert [(lane, j) for _, lane, j in schedule] == [
        (0, 0),
        (1, 0),
        (2, 0),
        (0, 1),
        (1, 1),
        (2, 1),
        (0, 2),
        (1, 2),
    ]


def test_summarize_rates_and_nearest_rank_percentiles() -> None:
    out = Outcome(start_s=100.0, cpu_s=0.5)
    for i in range(100):  # latencies 1..100 ms, answers until t = 102 s
        out.scheduled_s.append(101.0 + i / 100)
        out.done_s.append(101.0 + i / 100 + (i + 1) / 1000)
    out.statuses = [201] * 90 + [409] * 10
    stats = bench_api.summarize(out)
    assert (stats.sent, stats.accepted) == (100, 90)
    assert stats.wall_s == pytest.approx(2.09)
    assert stats.accepted_per_s == pytest.approx(90 / 2.09)
    assert stats.p50_ms == pytest.approx(50.0) and stats.p99_ms == pytest.approx(99.0)
    assert stats.driver_cpu == pytest.approx(0.5 / 2.09)


def test_summarize_of_nothing_is_not_a_number() -> None:
    stats = bench_api.summarize(Outcome(start_s=1.0))
    assert stats.sent == stats.accepted == 0 and math.isnan(stats.p99_ms)


# --- the HTTP driver, against a tiny HTTP/1.1 server ---------------------------------------------


class _FakeServer:
    """Answers each POST, after delay_s, with 201 and the body echoed (409 for a body starting
    with b"x"); closes the connection after `close_after` answers. Records what it received."""

    def __init__(self, close_after: int = 1000, delay_s: float = 0.0) -> None:
        self.received: list[bytes] = []
        self.connections = 0
        self.close_after = close_after
        self.delay_s = delay_s

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        for n in range(1, self.close_after + 1):
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            self.received.append(body)
            await asyncio.sleep(self.delay_s)
            status = b"409 Conflict" if body.startswith(b"x") else b"201 Created"
            close = b"Connection: close\r\n" if n == self.close_after else b""
            writer.write(
                b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), close, body)
            )
            await writer.drain()
        writer.close()


def _with_server(fake: _FakeServer, job: Job) -> Outcome:
    async def run() -> Outcome:
        server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        job.base = f"http://127.0.0.1:{port}"
        async with server:
            return await bench_api.drive(job, time.monotonic())

    return asyncio.run(run())


def test_raw_pool_keeps_connections_alive_and_reconnects_after_close() -> None:
    fake = _FakeServer(close_after=3)

    async def run() -> list[tuple[int, bytes]]:
        server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
        pool = RawPool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", 1)
        async with server:
            got = [await pool.post("/p", {"A": "b"}, f"{i}".encode()) for i in range(7)]
            got.append(await pool.post("/p", {}, b"x"))
        await pool.aclose()
        return got

    got = asyncio.run(run())
    assert got[:7] == [(201, f"{i}".encode()) for i in range(7)]
    assert got[7] == (409, b"x")
    assert fake.connections == 3  # 3 answers per connection, then a new one


def test_raw_pool_never_reuses_a_connection_idle_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_api, "MAX_IDLE_S", 0.0)  # every idle connection is too old
    fake = _FakeServer()

    async def run() -> list[tuple[int, bytes]]:
        server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
        pool = RawPool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", 1)
        async with server:
            got = [await pool.post("/p", {}, b"%d" % i) for i in range(3)]
        await pool.aclose()
        return got

    assert asyncio.run(run()) == [(201, b"0"), (201, b"1"), (201, b"2")]
    assert fake.connections == 3


def test_closed_loop_sends_each_clients_bodies_in_order() -> None:
    fake = _FakeServer()
    out = _with_server(fake, _job([4, 4, 4]))
    assert len(out.statuses) == 12 and set(out.statuses) == {201}
    for lane in range(3):
        assert [b for b in fake.received if b.startswith(f"{lane}-".encode())] == [
            f"{lane}-{j}".encode() for j in range(4)
        ]
    assert sorted(out.samples) == [b"0-3", b"1-3", b"2-3"]  # each client's last answer


def test_open_loop_counts_refusals_and_waits_for_what_a_request_depends_on() -> None:
    # Requests 20 ms apart per client, depending on the one two before (40 ms earlier), on a
    # server that answers 60 ms after a request arrives: every dependency is still unanswered
    # at its dependant's scheduled time, so the dependants are held, never sent early.
    fake = _FakeServer(delay_s=0.06)
    job = _job([5, 5], rate=100.0, depends=2)
    job.lanes[1][1][4] = b"x-refused"
    out = _with_server(fake, job)
    stats = bench_api.summarize(out)
    assert (stats.sent, stats.accepted) == (10, 9)
    assert out.errors and out.errors[0].startswith("409")
    assert out.held == 6  # j = 2, 3, 4 of each client
    for lane in range(2):
        order = [b for b in fake.received if b.startswith(f"{lane}-".encode())]
        for j in range(2, 4):
            assert order.index(f"{lane}-{j - 2}".encode()) < order.index(f"{lane}-{j}".encode())
    assert all(d >= s for s, d in zip(out.scheduled_s, out.done_s, strict=True))


# --- report --------------------------------------------------------------------------------------


def _stats(rate: float, p99_ms: float) -> Stats:
    return Stats(100, 100, 1.0, rate, p99_ms / 2, p99_ms, 0.1, 0)


def test_report_states_the_ratio_and_judges_every_target() -> None:
    args = argparse.Namespace(rate=500.0, concurrency=64)
    pishkhan = Stack("pishkhan", "b", "/p", [])
    floor = Stack("floor", "b", "/f", [])
    pishkhan.results = {"closed": _stats(1200.0, 40.0), "open": _stats(500.0, 40.0)}
    floor.results = {"closed": _stats(2000.0, 10.0), "open": _stats(500.0, 10.0)}
    lines = bench_api.report(pishkhan, floor, args)
    rows = [line for line in lines if line.startswith("| pishkhan") or line.startswith("| floor")]
    assert rows[0].split("|")[2].strip() == "1,200" and rows[0].split("|")[6].strip() == "0.60"
    assert rows[1].split("|")[6].strip() == "1.00"
    targets = "\n".join(lines)
    assert "1,200/s, target ≥ 1,000: met" in targets
    assert "ratio to the floor: 0.60, target ≥ 0.5: met" in targets
    assert "40.0 ms, target ≤ 50 ms: met" in targets
    pishkhan.results["open"] = _stats(500.0, 80.0)
    assert "80.0 ms, target ≤ 50 ms: **missed**" in "\n".join(
        bench_api.report(pishkhan, floor, args)
    )


# --- test subjects -------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "kind"), [(national_id, "ir-nid:"), (legal_id, "ir-lid:")])
def test_generated_subjects_are_valid_and_their_check_digit_matters(
    make: Callable[[random.Random], str], kind: str
) -> None:
    rng = random.Random(7)
    for _ in range(200):
        subject = make(rng)
        assert subject.startswith(kind) and is_valid_subject(subject)
        wrong = subject[:-1] + str((int(subject[-1]) + 1) % 10)
        assert not is_valid_subject(wrong)
