"""Replication lag under a write load: how far behind its master a replica runs.

A writer SETs as fast as it can (pipelines of 100) for some seconds. Every
100 ms a probe writes the time on the master and waits until the replica
returns it: the probe's delay is the lag a reader of the replica sees.
Every 50 ms the master's and the replica's offsets are read: how many
bytes of stream the replica has not applied yet. Ours and real Redis on
either side.

    python chapters/22_replication/lag_bench.py
    python chapters/22_replication/lag_bench.py --seconds 10
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import ServerProcess, server_command  # noqa: E402


def load(port: int, stop: threading.Event, written: list[int]) -> None:
    with redis.Redis(port=port) as client:
        n = 0
        while not stop.is_set():
            pipe = client.pipeline(transaction=False)
            for _ in range(100):
                pipe.set(f"load:{n % 100_000}", n)
                n += 1
            pipe.execute()
        written.append(n)


def measure(master_port: int, replica_port: int, seconds: float) -> dict[str, float]:
    stop, written = threading.Event(), []
    writer = threading.Thread(target=load, args=(master_port, stop, written))
    master, replica = redis.Redis(port=master_port), redis.Redis(port=replica_port)
    delays, behind = [], []
    started = time.monotonic()
    writer.start()
    next_probe = started
    while time.monotonic() - started < seconds:
        offsets = master.info("replication")["master_repl_offset"], replica.info("replication")["slave_repl_offset"]
        behind.append(offsets[0] - offsets[1])
        if time.monotonic() >= next_probe:
            next_probe += 0.1
            token = str(time.monotonic())
            sent = time.monotonic()
            master.set("probe", token)
            while replica.get("probe") != token.encode():
                time.sleep(0.0005)
            delays.append(time.monotonic() - sent)
        time.sleep(0.05)
    stop.set()
    writer.join()
    elapsed = time.monotonic() - started
    master.close()
    replica.close()
    return {"writes/s": written[0] / elapsed, "median lag (ms)": statistics.median(delays) * 1000,
            "max lag (ms)": max(delays) * 1000, "max behind (kB)": max(behind) / 1024}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    options = parser.parse_args()
    servers = {"chapter 22": server_command(ROOT / "chapters/22_replication/server.py"),
               "real Redis 7.0": [shutil.which("redis-server")]}  # fmt: skip
    table = Table(title=f"Replication lag under {options.seconds:.0f} s of pipelined SETs")
    columns = ("master", "replica", "writes/s", "median lag (ms)", "max lag (ms)", "max behind (kB)")
    for column in columns:
        table.add_column(column)
    for master_name, master_command in servers.items():
        for replica_name, replica_command in servers.items():
            with tempfile.TemporaryDirectory() as master_dir, tempfile.TemporaryDirectory() as replica_dir:
                master = ServerProcess(master_command, ("--dir", master_dir, "--save", "",
                                                        "--repl-diskless-sync-delay", "0"), own_server=False)  # fmt: skip
                replica = ServerProcess(replica_command, ("--dir", replica_dir, "--save", "", "--replicaof",
                                                          "127.0.0.1", str(master.port)), own_server=False)  # fmt: skip
                try:
                    with replica.redis() as client:
                        while client.info("replication").get("master_link_status") != "up":
                            time.sleep(0.01)
                    result = measure(master.port, replica.port, options.seconds)
                finally:
                    replica.stop()
                    master.stop()
            table.add_row(master_name, replica_name, *(f"{result[column]:,.1f}" for column in columns[2:]))
    Console().print(table)


if __name__ == "__main__":
    main()
