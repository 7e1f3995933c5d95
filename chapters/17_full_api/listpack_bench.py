"""What the flat encoding of small sorted sets saves, and what it costs, in one run.

--sets sorted sets of --members members each (member:0, member:1, ...)
are written with pipelined ZADDs, to chapter 17 and to real Redis, each
twice: with the default zset-max-listpack-entries (128), so every set is
flat, and with 0, so every set is indexed (chapter 11's hashtable and AVL
tree here, a skiplist and a dict in Redis). Reported: the resident memory
the sets added, per set, and ZSCORE and ZADD (a score update) requests per
second on random sets (redis-benchmark, 50 clients, -P 16).

    make demo-chapter 17            # .venv/bin/python chapters/17_full_api/listpack_bench.py
    .venv/bin/python chapters/17_full_api/listpack_bench.py --sets 20000 --members 50

Compare the rows of one run with each other, not with other runs.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis  # noqa: E402
from rich.table import Table  # noqa: E402

from common.resp import encode_command  # noqa: E402
from tests.support import ServerProcess, server_command  # noqa: E402
from tools.bench import load_pipelined  # noqa: E402
from tools.report import wide_console  # noqa: E402

SERVER = Path(__file__).resolve().parent / "server.py"


def load_sets(port: int, sets: int, members: int) -> None:
    """ZADD set:<12 digits> with `members` members each, pipelined: the
    key names redis-benchmark's __rand_int__ produces."""
    pairs = [part for i in range(members) for part in (str(i), f"member:{i}")]
    load_pipelined(port, sets, lambda i: encode_command("ZADD", "set:%012d" % i, *pairs), b":%d\r\n" % members, 1000)


def requests_per_second(port: int, sets: int, *command: str) -> float:
    result = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "50", "-P", "16", "-n", "200000", "-r", str(sets), "--csv", *command],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    rows = [row for row in csv.reader(io.StringIO(result.stdout)) if row]
    return float(rows[1][1])


def measure(ours: bool, entries: int, sets: int, members: int) -> list[str]:
    command = server_command(SERVER) if ours else [shutil.which("redis-server") or "redis-server"]
    server = ServerProcess(command, ("--save", "", "--appendonly", "no"), own_server=ours)
    try:
        with redis.Redis(port=server.port) as client:
            client.config_set("zset-max-listpack-entries", entries)
        before = server.memory()
        load_sets(server.port, sets, members)
        per_set = (server.memory() - before) / sets
        member = f"member:{members // 2}"
        zscore = requests_per_second(server.port, sets, "ZSCORE", "set:__rand_int__", member)
        zadd = requests_per_second(server.port, sets, "ZADD", "set:__rand_int__", "7", member)
    finally:
        server.stop()
    encoding = "flat (listpack)" if entries else "indexed (skiplist)"
    return ["chapter 17" if ours else "Redis", encoding, f"{per_set:,.0f} B", f"{zscore:,.0f}", f"{zadd:,.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=10, help="members per set (at most 128 to stay flat)")
    options = parser.parse_args()
    table = Table(title=f"{options.sets:,} sorted sets of {options.members} members: memory and speed, one run")
    for column in ("server", "encoding", "RSS per set", "ZSCORE/s -P16", "ZADD/s -P16"):
        table.add_column(column, justify="left" if column in ("server", "encoding") else "right")
    for ours in (True, False):
        for entries in (128, 0):
            table.add_row(*measure(ours, entries, options.sets, options.members))
    wide_console().print(table)


if __name__ == "__main__":
    main()
