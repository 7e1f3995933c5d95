"""How long does the event loop stop answering while a 1M-member sorted set
is deleted? Chapter 14's server, measured without and with its thread pool.

For each mode, a server is started, a sorted set of --members members is
built, and then, while a probe client sends PING after PING and times each
round trip, another client sends DEL. The longest PING round trip is the
longest stall of the event loop. The probe goes on for a while after DEL's
reply, since with the pool the freeing continues in the background.

    .venv/bin/python chapters/14_thread_pool/stall_bench.py [--members 1000000]

Figures are from one run on whatever machine you have: compare the two
rows with each other, not with other runs.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.support import ServerProcess, server_command  # noqa: E402
from tools.report import wide_console  # noqa: E402

SERVER = Path(__file__).resolve().parent / "server.py"
BATCH = 1000  # members per ZADD while building the set
PROBE_AFTER_DEL = 3.0  # seconds of probing after DEL replies


def build_sorted_set(port: int, key: str, members: int) -> float:
    """ZADD `members` members in pipelined batches; returns the seconds it took."""
    started = time.perf_counter()
    with redis.Redis(port=port, protocol=2) as client:
        pipe = client.pipeline(transaction=False)
        for start in range(0, members, BATCH):
            pipe.zadd(key, {f"member:{i}": i for i in range(start, min(start + BATCH, members))})
            if len(pipe) >= 50:
                pipe.execute()
        pipe.execute()
        assert client.zcard(key) == members
    return time.perf_counter() - started


class Probe(threading.Thread):
    """PINGs the server back to back, recording each round trip in seconds."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self.sock:
            while not self.stop.is_set():
                started = time.perf_counter()
                self.sock.sendall(b"PING\r\n")
                reply = b""
                while not reply.endswith(b"\r\n"):
                    reply += self.sock.recv(64)
                self.latencies.append(time.perf_counter() - started)


def measure(members: int, extra_args: list[str]) -> dict[str, float]:
    server = ServerProcess(server_command(SERVER), tuple(extra_args))
    try:
        build_seconds = build_sorted_set(server.port, "big", members)
        probe = Probe(server.port)
        probe.start()
        time.sleep(0.5)  # a baseline of ordinary round trips
        with redis.Redis(port=server.port, protocol=2) as client:
            started = time.perf_counter()
            assert client.delete("big") == 1
            del_seconds = time.perf_counter() - started
        time.sleep(PROBE_AFTER_DEL)
        probe.stop.set()
        probe.join()
    finally:
        server.stop()
    return {"build": build_seconds, "del": del_seconds, **summarize(probe.latencies)}


PING_COLUMNS = ("longest PING", "p99 PING", "median PING", "PINGs > 10 ms", "PINGs")


def summarize(round_trips: list[float]) -> dict[str, float]:
    """The probe's round trips (seconds): the longest, p99, median, how many, how many over 10 ms."""
    latencies = sorted(round_trips)
    return {
        "max": latencies[-1],
        "p99": latencies[int(len(latencies) * 0.99)],
        "median": statistics.median(latencies),
        "pings": len(latencies),
        "over_10ms": sum(1 for latency in latencies if latency > 0.010),
    }


def ping_cells(figures: dict[str, float]) -> list[str]:
    """summarize()'s figures as the cells of PING_COLUMNS."""
    return [f"{figures['max'] * 1000:,.1f} ms", f"{figures['p99'] * 1000:,.2f} ms",
            f"{figures['median'] * 1000:,.3f} ms", f"{figures['over_10ms']:,}", f"{figures['pings']:,}"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    options = parser.parse_args()
    console = wide_console(110)
    table = Table(title=f"DEL of a {options.members:,}-member sorted set: the event loop's stalls")
    for column in ("mode", "DEL reply", *PING_COLUMNS):
        table.add_column(column, justify="left" if column == "mode" else "right")
    modes = [
        ("on the event loop (--lazy-free-threshold 0)", ["--lazy-free-threshold", "0"]),
        ("thread pool, one plain del (--free-slice 0)", ["--free-slice", "0"]),
        ("thread pool, freed in slices (default)", []),
    ]
    for name, extra_args in modes:
        console.print(f"measuring: {name} (building the set first) ...")
        figures = measure(options.members, extra_args)
        console.print(f"  built in {figures['build']:.1f} s")
        table.add_row(name, f"{figures['del'] * 1000:,.1f} ms", *ping_cells(figures))
    console.print(table)


if __name__ == "__main__":
    main()
