"""`make bench`: every chapter against two yardsticks, measured in one run.

The yardsticks: real Redis, and tools/ceiling_server.py, a minimal poll()
server in plain Python (about what Python itself allows). Each server is
started in turn on a free port and given the same load with
redis-benchmark: 50 clients, random keys (-r 100000), SET and GET one
request at a time per client (-P 1), then 16 pipelined (-P 16); chapters
before 07 only have PING. Chapter 04 serves one client at a time, so it
gets one client, which the table says.

Every server is started first; then each test runs --rounds times (3),
the servers taking turns, and each server's best round counts: a moment
when the shared machine is busy then costs every server alike, instead of
whichever was being measured.

Reported: requests per second, as a ratio to the ceiling and to Redis in
the same run; latency (p50, p99, max) of GET at -P 16, from the best round;
RSS per million keys after --keys SETs of distinct keys, on a fresh
server; and the server's CPU per request of SET and GET (from
/proc/<pid>/stat, the lowest round), steadier than requests per second on
a machine whose other load moves both a server and its yardstick. Only
ratios within one run mean anything: the machine is shared and noisy.

Chapter 20 on, and Redis, also get redis-benchmark's own tests of lists,
sets and hashes (LPUSH, LPOP, SADD, HSET, LRANGE_100) and the RSS of a
million list elements, hash fields and set members (chapter 20's
memory_bench.py), in two more tables.

    make bench                      # every chapter from 04
    make bench CHAPTERS=14          # one chapter (and the two yardsticks)
    .venv/bin/python tools/bench.py --chapters 7-9 --requests 50000

Any other RESP server can join the run as one more row, a peer measured
the same way (PEERS='name=command with {port}', or name@port=command for
a server that listens on a port of its own; several separated by ";"),
e.g. boramalper/pydis (uvloop and hiredis, both C, under ~250 lines of
Python), which listens on 7878:

    make bench CHAPTERS=22 PEERS='pydis@7878=/path/to/venv/bin/python /path/to/pydis/pydis/__main__.py'
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.table import Table  # noqa: E402

from common.chapters import load_chapter_module  # noqa: E402
from tests.support import ServerProcess, discover_chapters, server_command  # noqa: E402
from tools.report import wide_console  # noqa: E402

FIRST_KV_CHAPTER = 7
FIRST_TYPES_CHAPTER = 20  # lists, hashes and sets: their tests run on it, its successors and Redis
TYPE_TESTS = "lpush,lpop,sadd,hset,lrange_100"  # redis-benchmark's own tests of those types
FIRST_PERSISTENT_CHAPTER = 16
ONE_CLIENT_CHAPTERS = {4}
CLIENTS = 50
RANDOM_KEYS = 100_000
PIPELINES = (1, 16)
CEILING, REDIS = "ceiling (tools/)", "real Redis"


@dataclass
class Target:
    name: str
    command: list[str] | str  # a string: a peer's command line, {port} filled in
    kv: bool = True
    clients: int = CLIENTS
    rps: dict[tuple[str, int], float] = field(default_factory=dict)  # (test, pipeline) -> requests/s
    latency: dict[str, float] = field(default_factory=dict)  # GET -P 16: p50, p99, max in ms
    cpu_us: dict[int, float] = field(default_factory=dict)  # pipeline -> server CPU per request of SET and GET, in us
    rss_per_million: float | None = None  # bytes
    port: int | None = None  # a peer that listens on a port of its own
    types: bool = False  # has lists, hashes and sets
    type_rps: dict[tuple[str, int], float] = field(default_factory=dict)  # (test, pipeline) -> requests/s
    type_rss: dict[str, float] = field(default_factory=dict)  # load -> bytes per million elements


def run_benchmark(port: int, tests: str, clients: int, pipeline: int, requests: int, keys: int = 0) -> list[list[str]]:
    """redis-benchmark's CSV rows: test, rps, avg, min, p50, p95, p99, max (ms); random keys with `keys`."""
    command = [
        "redis-benchmark", "-p", str(port), "-c", str(clients), "-P", str(pipeline), "-n", str(requests),
        "-t", tests, "--csv", *(["-r", str(keys)] if keys else []),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)
    rows = list(csv.reader(io.StringIO(result.stdout)))
    return [row for row in rows[1:] if row]


def load_keys(port: int, count: int, batch: int = 10_000) -> None:
    """SET key:0 .. key:count-1 to a 3-byte value (redis-benchmark's default size), pipelined."""
    load_pipelined(port, count, lambda i: b"*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$3\r\nxxx\r\n" % (len(b"key:%d" % i), i),
                   b"+OK\r\n", batch)  # fmt: skip


def load_pipelined(port: int, count: int, request: Callable[[int], bytes], reply: bytes, batch: int) -> None:
    """Send request(0) .. request(count - 1), `batch` at a time, each to be answered `reply`."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for start in range(0, count, batch):
            stop = min(start + batch, count)
            sock.sendall(b"".join(request(i) for i in range(start, stop)))
            expected = reply * (stop - start)
            received = bytearray()
            while len(received) < len(expected):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("the server closed the connection while loading")
                received += chunk
            if received != expected:
                raise RuntimeError(f"unexpected replies while loading: {bytes(received[:100])!r}")


def measure_round(target: Target, server: ServerProcess, requests: int) -> None:
    """One round of the tests; keep each one's best requests per second."""
    tests = "set,get" if target.kv else "ping_mbulk"
    for pipeline in PIPELINES:
        cpu_before = server.cpu_seconds()
        rows = run_benchmark(server.port, tests, target.clients, pipeline, requests * pipeline, RANDOM_KEYS)
        cpu_us = (server.cpu_seconds() - cpu_before) / (len(rows) * requests * pipeline) * 1e6
        target.cpu_us[pipeline] = min(cpu_us, target.cpu_us.get(pipeline, cpu_us))
        for row in rows:
            rps = float(row[1])
            if rps <= target.rps.get((row[0], pipeline), 0.0):
                continue
            target.rps[(row[0], pipeline)] = rps
            if row[0] in ("GET", "PING_MBULK") and pipeline == 16:
                target.latency = {"p50": float(row[4]), "p99": float(row[6]), "max": float(row[7])}


def measure_types_round(target: Target, server: ServerProcess, requests: int) -> None:
    """One round of redis-benchmark's list, set and hash tests; keep each one's best."""
    for pipeline in PIPELINES:
        for row in run_benchmark(server.port, TYPE_TESTS, target.clients, pipeline, requests * pipeline, RANDOM_KEYS):
            name = row[0].split(" (")[0]
            if "needed to benchmark" in row[0]:
                continue
            target.type_rps[(name, pipeline)] = max(float(row[1]), target.type_rps.get((name, pipeline), 0.0))


def measure_memory(target: Target, server: ServerProcess, keys: int) -> None:
    before = server.memory()
    load_keys(server.port, keys)
    target.rss_per_million = (server.memory() - before) / keys * 1_000_000


def parse_peers(text: str) -> list[Target]:
    """--peers: NAME=COMMAND or NAME@PORT=COMMAND, separated by ';'."""
    peers = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        name, equals, command = entry.partition("=")
        name, _, port = name.partition("@")
        if not equals or not command.strip() or (port and not port.isdigit()):
            sys.exit(f"--peers: {entry!r} is not NAME=COMMAND or NAME@PORT=COMMAND")
        peers.append(Target(name.strip(), command.strip(), port=int(port) if port else None))
    return peers


def start(target: Target) -> ServerProcess:
    # A peer (its command a string) may print what it likes: pydis prints a
    # traceback for each command it lacks (redis-benchmark's CONFIG GET).
    return ServerProcess(target.command, own_server=False, port=target.port,
                         tracebacks_allowed=isinstance(target.command, str))  # fmt: skip


def ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}" if value and base else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--chapters", default="4-99", help="a chapter or a range, e.g. 14 or 7-9 (default: all from 04)"
    )
    parser.add_argument("--requests", type=int, default=20_000, help="requests per test at -P 1 (x16 at -P 16)")
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys SET before measuring RSS (0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every test; the best counts (default: 3)")
    parser.add_argument("--peers", default="", help="other servers, NAME=COMMAND ({port} in it) or "
                        "NAME@PORT=COMMAND, separated by ';'")  # fmt: skip
    options = parser.parse_args()
    for tool in ("redis-benchmark", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install redis-server redis-tools)")
    low, _, high = options.chapters.partition("-")
    chapters = {n: path for n, path in discover_chapters().items() if int(low) <= n <= int(high or low) and n >= 4}
    targets = [Target(CEILING, [sys.executable, str(ROOT / "tools" / "ceiling_server.py")])]
    for number, path in chapters.items():
        one_client = number in ONE_CLIENT_CHAPTERS
        name = f"chapter {number:02d}" + (" (1 client)" if one_client else "")
        # Persistence off, as for real Redis below: a BGSAVE in the middle of a test would measure the fork.
        command = server_command(path) + (["--save", ""] if number >= FIRST_PERSISTENT_CHAPTER else [])
        targets.append(Target(name, command, number >= FIRST_KV_CHAPTER, 1 if one_client else CLIENTS,
                              types=number >= FIRST_TYPES_CHAPTER))  # fmt: skip
    targets += parse_peers(options.peers)
    targets.append(Target(REDIS, ["redis-server", "--save", "", "--appendonly", "no"], types=True))
    with_types = [target for target in targets if target.types] if any(t.types for t in targets[1:-1]) else []

    console = wide_console(150)
    servers = {target.name: start(target) for target in targets}
    try:
        for number in range(1, options.rounds + 1):
            for target in targets:
                console.print(f"[dim]round {number}/{options.rounds}: {target.name} ...[/dim]")
                measure_round(target, servers[target.name], options.requests)
                if target in with_types:
                    measure_types_round(target, servers[target.name], options.requests)
        for target in targets:
            servers.pop(target.name).stop()
        # Memory on a fresh server each: after the rounds a keyspace holds their
        # 100,000 random keys, and 1M more would catch our hashtable halfway
        # through a resize (both tables held: 8 MB more, for a while).
        for target in targets:
            if target.kv and options.keys:
                console.print(f"[dim]memory: {target.name} ...[/dim]")
                servers[target.name] = start(target)
                measure_memory(target, servers[target.name], options.keys)
                servers.pop(target.name).stop()
        if with_types and options.keys:  # a million list elements, hash fields, set members (chapter 20's loads)
            memory_bench = load_chapter_module(FIRST_TYPES_CHAPTER, "memory_bench")
            for target in with_types:
                for load in memory_bench.loads(options.keys):
                    console.print(f"[dim]memory: {target.name}, {load} ...[/dim]")
                    target.type_rss[load] = memory_bench.measure_command(target.command, load, options.keys)
    finally:
        for server in servers.values():
            server.stop()

    ceiling, redis_ = targets[0], targets[-1]
    table = Table(title=f"requests per second (redis-benchmark, {CLIENTS} clients, -r {RANDOM_KEYS:,}): "
                  "figure, then x ceiling / x Redis, same run")  # fmt: skip
    table.add_column("server", no_wrap=True)
    columns = [(test, pipeline) for pipeline in PIPELINES for test in ("SET", "GET")]
    for test, pipeline in columns:
        table.add_column(f"{test} -P {pipeline}", justify="right", no_wrap=True)
    table.add_column("GET -P 16 ms\np50/p99/max", justify="right", no_wrap=True)
    table.add_column("RSS / 1M keys", justify="right", no_wrap=True)
    table.add_column("CPU us / request\n-P 1 / -P 16", justify="right", no_wrap=True)
    for target in targets:
        cells = []
        for test, pipeline in columns:
            key = (test, pipeline) if target.kv else ("PING_MBULK", pipeline)
            value = target.rps.get(key)
            if value is None or (not target.kv and test == "GET"):
                cells.append("-")
                continue
            base = (test, pipeline)
            label = "PING " if not target.kv else ""
            cells.append(
                f"{label}{value:,.0f}\n{ratio(value, ceiling.rps.get(base))} / {ratio(value, redis_.rps.get(base))}"
            )
        latency = target.latency
        cells.append(f"{latency['p50']:.2f} / {latency['p99']:.2f} / {latency['max']:.2f}" if latency else "-")
        rss = target.rss_per_million
        rss_cell = "-" if rss is None else f"{rss / 2**20:.0f} MB\n{ratio(rss, redis_.rss_per_million)} x Redis"
        cells.append(rss_cell)
        cells.append(" / ".join(f"{target.cpu_us[p]:.1f}" if p in target.cpu_us else "-" for p in PIPELINES)
                     + "\n" + " / ".join(ratio(target.cpu_us.get(p), ceiling.cpu_us.get(p)) for p in PIPELINES)
                     + " x ceiling")  # fmt: skip
        table.add_row(target.name, *cells)
    console.print(table)
    if with_types:
        print_types_table(console, with_types, options.keys)


def print_types_table(console: Any, targets: list[Target], elements: int) -> None:
    """Lists, hashes and sets: requests per second next to Redis's, then RSS per million elements."""
    redis_ = targets[-1]
    table = Table(title=f"lists, hashes and sets (redis-benchmark, {CLIENTS} clients): figure, then x Redis, same run")
    table.add_column("server", no_wrap=True)
    columns = [(test, pipeline) for pipeline in PIPELINES for test in ("LPUSH", "LPOP", "SADD", "HSET", "LRANGE_100")]
    for test, pipeline in columns:
        table.add_column(f"{test}\n-P {pipeline}", justify="right", no_wrap=True)
    for target in targets:
        table.add_row(target.name, *[f"{target.type_rps[column]:,.0f}\n{ratio(target.type_rps[column], redis_.type_rps.get(column))}"
                                     if column in target.type_rps else "-" for column in columns])  # fmt: skip
    console.print(table)
    memory = Table(title=f"RSS per million elements ({elements:,} written; chapter 20's memory_bench.py): x Redis")
    memory.add_column("load", no_wrap=True)
    for target in targets:
        memory.add_column(target.name, justify="right", no_wrap=True)
    for load in redis_.type_rss:
        memory.add_row(load, *[f"{target.type_rss[load] / 2**20:.0f} MB ({ratio(target.type_rss[load], redis_.type_rss[load])})"
                               if load in target.type_rss else "-" for target in targets])  # fmt: skip
    console.print(memory)

if __name__ == "__main__":
    main()
