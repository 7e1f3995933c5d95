"""`make bench`: requests per second of each chapter's server and of real
Redis, measured side by side in one run with redis-benchmark.

Each server is started in turn on a free port and given the same load:
50 clients, first one request at a time per client (-P 1), then 16
pipelined (-P 16). Chapters before 07 have no SET or GET and are measured
with PING only. Chapter 04 serves one client at a time: with 50 clients
redis-benchmark would wait forever for the 49 it never serves, so it gets
one client, which the table says.

Figures are only comparable within one run: the machine is shared.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.table import Table  # noqa: E402

from tests.support import ServerProcess, discover_chapters, server_command  # noqa: E402
from tools.report import wide_console  # noqa: E402

TESTS = ["PING_MBULK", "SET", "GET"]
FIRST_KV_CHAPTER = 7
ONE_CLIENT_CHAPTERS = {4}


def run_benchmark(port: int, tests: list[str], clients: int, pipeline: int, requests: int) -> dict[str, float]:
    """requests per second for each test, from redis-benchmark's CSV output."""
    command = [
        "redis-benchmark", "-p", str(port), "-c", str(clients), "-P", str(pipeline),
        "-n", str(requests), "-t", ",".join(tests), "--csv",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    rows = csv.reader(io.StringIO(result.stdout))
    next(rows)  # header
    return {row[0]: float(row[1]) for row in rows if row}


def measure(server: ServerProcess, kv: bool, clients: int, requests: int) -> dict[tuple[str, int], float]:
    tests = TESTS if kv else TESTS[:1]
    figures = {}
    for pipeline in (1, 16):
        results = run_benchmark(server.port, [t.split("_")[0].lower() for t in tests], clients, pipeline,
                                requests * pipeline)  # fmt: skip
        for test in tests:
            figures[(test, pipeline)] = results[test]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", default="4-99", help="range of chapters, e.g. 4-7 (default: all from 04)")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per test at -P 1 (x16 at -P 16)")
    options = parser.parse_args()
    for tool in ("redis-benchmark", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install redis-server redis-tools)")
    low, _, high = options.chapters.partition("-")
    chapters = {n: path for n, path in discover_chapters().items() if int(low) <= n <= int(high or low)}

    console = wide_console(110)
    table = Table(title="requests per second (redis-benchmark, 50 clients)")
    table.add_column("server")
    for test in TESTS:
        for pipeline in (1, 16):
            table.add_column(f"{test.split('_')[0]} -P {pipeline}", justify="right")

    targets: list[tuple[str, list[str], bool, int]] = [
        (f"chapter {n:02d}" + (" (1 client)" if n in ONE_CLIENT_CHAPTERS else ""),
         server_command(path), n >= FIRST_KV_CHAPTER, 1 if n in ONE_CLIENT_CHAPTERS else 50)
        for n, path in chapters.items() if n >= 4
    ]  # fmt: skip
    targets.append(("real Redis", ["redis-server", "--save", "", "--appendonly", "no"], True, 50))
    for name, command, kv, clients in targets:
        console.print(f"measuring {name} ...")
        server = ServerProcess(command, own_server=False)
        try:
            figures = measure(server, kv, clients, options.requests)
        finally:
            server.stop()
        cells = [f"{figures[(t, p)]:,.0f}" if (t, p) in figures else "-" for t in TESTS for p in (1, 16)]
        table.add_row(name, *cells)
    console.print(table)


if __name__ == "__main__":
    main()
