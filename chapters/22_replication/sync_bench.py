"""How long a full copy takes: a fresh real redis-server replicates a master
holding N keys, from `replicaof` until its link is up, and the master's
share of it (the background save); ours as the master, then real Redis.

    python chapters/22_replication/sync_bench.py              # 1,000,000 keys
    python chapters/22_replication/sync_bench.py --keys 20000

Measured for the chapter README. Keys are strings of 16 bytes, one in
four with a TTL, written pipelined before the replica starts. Real Redis
as the master twice: sending a snapshot saved on disk, as ours does, and
with its defaults (diskless, after a 5 s wait for other replicas).
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


def full_copy_seconds(master: ServerProcess, directory: Path) -> tuple[float, int]:
    """Seconds from a new replica's start to its link up, and the snapshot's size."""
    replica = ServerProcess([shutil.which("redis-server"), "--dir", str(directory), "--save", "",
                             "--replicaof", "127.0.0.1", str(master.port)], own_server=False)  # fmt: skip
    started = time.monotonic()
    try:
        with replica.redis() as client:
            while client.info("replication").get("master_link_status") != "up":
                time.sleep(0.01)
            seconds = time.monotonic() - started
            with master.redis() as ours:
                assert client.dbsize() == ours.dbsize()
        return seconds, sum(f.stat().st_size for f in directory.glob("*.rdb"))
    finally:
        replica.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    options = parser.parse_args()
    table = Table(title=f"A full copy of {options.keys:,} keys to a new real Redis replica")
    for column in ("master", "link up after (s)", "snapshot (MB)"):
        table.add_column(column)
    redis_server = shutil.which("redis-server")
    masters = {
        "chapter 22 (a snapshot on disk)": (server_command(ROOT / "chapters/22_replication/server.py"), ()),
        "real Redis 7.0, repl-diskless-sync no": ([redis_server], ("--repl-diskless-sync", "no")),
        # Redis 7.0's default: the snapshot straight to the socket, after waiting 5 s for more replicas to share it.
        "real Redis 7.0, its defaults": ([redis_server], ()),
    }
    for name, (command, settings) in masters.items():
        with tempfile.TemporaryDirectory() as master_dir, tempfile.TemporaryDirectory() as replica_dir:
            master = ServerProcess(command, ("--dir", master_dir, "--save", "", *settings),
                                   own_server=name.startswith("chapter"))  # fmt: skip
            try:
                with master.redis() as client:
                    fill(client, options.keys)
                seconds, size = full_copy_seconds(master, Path(replica_dir))
            finally:
                master.stop()
        table.add_row(name, f"{seconds:.2f}", f"{size / 1e6:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
