"""What WATCH costs a write, measured in one run.

SET requests per second (redis-benchmark, 50 clients, -P 16, random keys
of a 100,000-key space), to chapter 18 and to real Redis, twice each:
with nobody watching, and with --watched other keys watched (by 100 idle
clients, --watched / 100 each). Every SET looks its key up among the
watched ones: the ratio is what that lookup costs.

    make demo-chapter 18            # .venv/bin/python chapters/18_transactions/watch_bench.py
    .venv/bin/python chapters/18_transactions/watch_bench.py --watched 100000

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

from tests.support import ServerProcess, server_command  # noqa: E402
from tools.report import wide_console  # noqa: E402

SERVER = Path(__file__).resolve().parent / "server.py"
KEY_SPACE = 100_000
WATCHERS = 100


def sets_per_second(port: int, key_prefix: str) -> float:
    result = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "50", "-P", "16", "-n", "300000", "-r", str(KEY_SPACE), "--csv",
         "SET", f"{key_prefix}__rand_int__", "v"],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    rows = [row for row in csv.reader(io.StringIO(result.stdout)) if row]
    return float(rows[1][1])


def watch_keys(port: int, watched: int, key_prefix: str) -> list[redis.Redis]:
    """WATCHERS connections, each watching its share of `watched` keys of
    the benchmark's key space (redis-benchmark writes <prefix>%012d)."""
    watchers = []
    per_client = watched // WATCHERS
    for number in range(WATCHERS):
        client = redis.Redis(port=port)
        keys = [f"{key_prefix}{number * per_client + i:012d}" for i in range(per_client)]
        assert client.execute_command("WATCH", *keys)
        watchers.append(client)
    return watchers


def measure(ours: bool, watched: int) -> list[str]:
    command = server_command(SERVER) if ours else [shutil.which("redis-server") or "redis-server"]
    server = ServerProcess(command, ("--save", "", "--appendonly", "no"), own_server=ours)
    try:
        unwatched = sets_per_second(server.port, "key:")
        watchers = watch_keys(server.port, watched, "watched:")
        beside = sets_per_second(server.port, "key:")  # other keys than the watched ones
        for client in watchers:
            client.close()
    finally:
        server.stop()
    name = "chapter 18" if ours else "Redis"
    return [name, f"{unwatched:,.0f}", f"{beside:,.0f}", f"{beside / unwatched:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watched", type=int, default=10_000, help="keys watched (a multiple of 100)")
    options = parser.parse_args()
    table = Table(title=f"SET/s (-P 16, 50 clients) with {options.watched:,} keys watched by {WATCHERS} clients, one run")
    for column in ("server", "nobody watching", f"{options.watched:,} keys watched", "ratio"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for ours in (True, False):
        table.add_row(*measure(ours, options.watched))
    wide_console().print(table)


if __name__ == "__main__":
    main()
