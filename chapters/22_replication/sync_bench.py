"""How long a full copy takes: a fresh replica copies a master holding N
keys, from its start until its link is up; ours and real Redis on either
side.

    python chapters/22_replication/sync_bench.py              # 1,000,000 keys
    python chapters/22_replication/sync_bench.py --keys 20000

Measured for the chapter README. Keys are strings of 16 bytes, one in
four with a TTL, written pipelined before the replica starts. The copy
goes diskless (Redis 7's default) without the 5 s wait for more replicas
(repl-diskless-sync-delay 0), and through a snapshot on disk
(repl-diskless-sync no), the way chapter 22 first did it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import ServerProcess, server_command  # noqa: E402


def fill(client: redis.Redis, keys: int) -> None:
    pipe = client.pipeline(transaction=False)
    for n in range(keys):
        pipe.set(f"key:{n}", f"value:{n:010d}", ex=3600 if n % 4 == 0 else None)
        if n % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()


def full_copy_seconds(master: ServerProcess, replica_command: list[str], directory: Path) -> float:
    """Seconds from a new replica's start to its link up."""
    replica = ServerProcess([*replica_command, "--dir", str(directory), "--save", "",
                             "--replicaof", "127.0.0.1", str(master.port)], own_server=False)  # fmt: skip
    started = time.monotonic()
    try:
        with replica.redis() as client:
            while client.info("replication").get("master_link_status") != "up":
                time.sleep(0.01)
            seconds = time.monotonic() - started
            with master.redis() as ours:
                assert client.dbsize() == ours.dbsize()
        return seconds
    finally:
        replica.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    options = parser.parse_args()
    table = Table(title=f"A full copy of {options.keys:,} keys to a new replica")
    for column in ("master", "replica", "copy", "link up after (s)"):
        table.add_column(column)
    servers = {"chapter 22": server_command(ROOT / "chapters/22_replication/server.py"),
               "real Redis 7.0": [shutil.which("redis-server")]}  # fmt: skip
    runs = [(master, replica, "diskless") for master in servers for replica in servers]
    runs += [(master, "real Redis 7.0", "on disk") for master in servers]
    for master_name, replica_name, way in runs:
        settings = ("--repl-diskless-sync", "no") if way == "on disk" else ("--repl-diskless-sync-delay", "0")
        with tempfile.TemporaryDirectory() as master_dir, tempfile.TemporaryDirectory() as replica_dir:
            master = ServerProcess(servers[master_name], ("--dir", master_dir, "--save", "", *settings),
                                   own_server=master_name.startswith("chapter"))  # fmt: skip
            try:
                with master.redis() as client:
                    fill(client, options.keys)
                seconds = full_copy_seconds(master, servers[replica_name], Path(replica_dir))
            finally:
                master.stop()
        table.add_row(master_name, replica_name, way, f"{seconds:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
