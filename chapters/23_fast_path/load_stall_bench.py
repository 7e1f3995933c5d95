"""The longest stall while a million keys load: chapters 22 and 23 against Redis.

A probe client sends PING after PING and times each round trip while
another client, in a process of its own (so that building its requests
does not hold this one's GIL), loads --keys keys with pipelined SETs
(10,000 per write, as make bench loads them), at the lowest CPU priority. The longest round trip is the longest time the
event loop served nobody else: one read's worth of SETs (the server reads
16 KB at a time, about 400 SETs), and whatever else the load sets off:
the keyspace's table doubling (its new table is allocated at once, then
filled a step at a time: chapter 22's one table of 8 bytes a bucket,
chapter 23's segment of 16 bytes a slot), the garbage collector (frozen
after each collection: common/net.py's freeze_survivors).

    .venv/bin/python chapters/23_fast_path/load_stall_bench.py [--keys 1000000]

Figures are from one run on whatever machine you have: compare the rows
with each other, not with other runs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rich.table import Table  # noqa: E402

from common.chapters import load_chapter_module  # noqa: E402
from tests.support import ServerProcess, discover_chapters, server_command  # noqa: E402
from tools.bench import load_keys  # noqa: E402
from tools.report import wide_console  # noqa: E402

stall_bench = load_chapter_module(14, "stall_bench")  # its Probe PINGs back to back, timing each


def load_niced(port: int, keys: int) -> None:
    """load_keys at the lowest CPU priority: on a machine of two cores, the
    loader, the server and the probe compete, and the probe should time
    the server's stalls, not the loader's turns."""
    os.nice(19)
    load_keys(port, keys)


def measure(command: list[str], keys: int) -> dict[str, float]:
    server = ServerProcess(command, own_server=command[0] != "redis-server")
    try:
        probe = stall_bench.Probe(server.port)
        probe.start()
        time.sleep(0.3)  # a baseline of ordinary round trips
        started = time.perf_counter()
        loader = multiprocessing.Process(target=load_niced, args=(server.port, keys))
        loader.start()
        loader.join()
        load_seconds = time.perf_counter() - started
        if loader.exitcode != 0:
            raise RuntimeError(f"the loader failed (exit status {loader.exitcode})")
        probe.stop.set()
        probe.join()
    finally:
        server.stop()
    return {"load": load_seconds, **stall_bench.summarize(probe.latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--chapters", default="22,23", help="chapters to measure, comma-separated (default: 22,23)")
    options = parser.parse_args()
    chapters = discover_chapters()
    targets = [(f"chapter {number}", server_command(chapters[int(number)]) + ["--save", ""])
               for number in options.chapters.split(",")]  # fmt: skip
    targets.append(("real Redis", ["redis-server", "--save", "", "--appendonly", "no"]))
    console = wide_console(110)
    table = Table(title=f"{options.keys:,} keys loaded with pipelined SETs: the event loop's stalls")
    for column in ("server", "load", *stall_bench.PING_COLUMNS):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, command in targets:
        console.print(f"measuring: {name} ...")
        figures = measure(command, options.keys)
        table.add_row(name, f"{figures['load']:,.1f} s", *stall_bench.ping_cells(figures))
    console.print(table)


if __name__ == "__main__":
    main()
