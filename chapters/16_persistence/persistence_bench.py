"""What persistence costs, chapter 16 next to real Redis with the same settings, in one run.

1. Writes: redis-benchmark SET (50 clients, -r 100,000, -P 1 and -P 16)
   with no persistence, and with the AOF under appendfsync everysec and
   always.
2. Start-up: the time from launch until the server accepts connections,
   with --keys keys in a snapshot (RDB) and in an append-only file.
3. BGSAVE with --keys keys: how long fork() stood the parent still
   (INFO latest_fork_usec), the longest PING any client waited meanwhile,
   and how much memory the child copied (rdb_last_cow_size) against the
   parent's resident set.
4. Crashes: --rounds times, a writer counts acknowledged SETs and kill -9
   lands at a random moment; the restarted server must hold every one.

    make demo-chapter 16            # .venv/bin/python chapters/16_persistence/persistence_bench.py
    .venv/bin/python chapters/16_persistence/persistence_bench.py --keys 100000 --rounds 2

Compare the rows of one run with each other, not with other runs.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.support import AcknowledgedWriter, ServerProcess, server_command  # noqa: E402
from tools.bench import load_keys, run_benchmark  # noqa: E402
from tools.report import wide_console  # noqa: E402

SERVER = Path(__file__).resolve().parent / "server.py"
POLICIES = {"off": ("--appendonly", "no"), "everysec": ("--appendonly", "yes", "--appendfsync", "everysec"),
            "always": ("--appendonly", "yes", "--appendfsync", "always")}  # fmt: skip


def start(ours: bool, directory: Path, *args: str) -> tuple[ServerProcess, float]:
    """A server on `directory` and the seconds until it answered a PING.
    (Redis accepts connections while it loads, and answers -LOADING.)"""
    command = server_command(SERVER) if ours else [shutil.which("redis-server") or "redis-server"]
    started = time.perf_counter()
    server = ServerProcess(command, ("--dir", str(directory), "--save", "", *args), own_server=ours)
    with redis.Redis(port=server.port) as client:
        while True:
            try:
                client.ping()
                break
            except redis.BusyLoadingError:
                time.sleep(0.01)
    return server, time.perf_counter() - started


def writes(ours: bool, policy: str, requests: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        server, _ = start(ours, Path(directory), *POLICIES[policy])
        try:
            return tuple(float(run_benchmark(server.port, "set", 50, pipeline, requests * pipeline, 100_000)[0][1])
                         for pipeline in (1, 16))  # type: ignore[return-value]  # fmt: skip
        finally:
            server.stop()


def start_up(ours: bool, keys: int) -> dict[str, float]:
    """Seconds to start with `keys` keys: from the snapshot, from the AOF."""
    times = {}
    for kind, args in (("rdb", ("--appendonly", "no")), ("aof", ("--appendonly", "yes"))):
        with tempfile.TemporaryDirectory() as directory:
            server, _ = start(ours, Path(directory), *args)
            load_keys(server.port, keys)
            if kind == "rdb":
                with redis.Redis(port=server.port) as client:
                    client.save()
            server.stop()
            again, seconds = start(ours, Path(directory), *args)
            with redis.Redis(port=again.port) as client:
                assert client.dbsize() == keys, "the restart did not load every key"
            again.stop()
            times[kind] = seconds
    return times


def bgsave_stall(ours: bool, keys: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        server, _ = start(ours, Path(directory))
        try:
            load_keys(server.port, keys)
            with redis.Redis(port=server.port) as probe, redis.Redis(port=server.port) as admin:
                rss = admin.info("memory")["used_memory_rss"]
                worst = 0.0
                admin.bgsave()
                while True:
                    sent = time.perf_counter()
                    probe.ping()
                    worst = max(worst, time.perf_counter() - sent)
                    if admin.info("persistence")["rdb_bgsave_in_progress"] == 0:
                        break
                    time.sleep(0.001)
                persistence, stats = admin.info("persistence"), admin.info("stats")
            return {"fork_ms": stats["latest_fork_usec"] / 1000, "worst_ping_ms": worst * 1000,
                    "cow": persistence["rdb_last_cow_size"], "rss": rss,
                    "seconds": persistence["rdb_last_bgsave_time_sec"]}  # fmt: skip
        finally:
            server.stop()


def crashes(ours: bool, policy: str, rounds: int) -> tuple[int, int]:
    """kill -9 during a write load: (writes acknowledged, acknowledged writes lost), over every round."""
    acknowledged_total = lost_total = 0
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as directory:
            server, _ = start(ours, Path(directory), *POLICIES[policy])
            writer = AcknowledgedWriter(server.port)
            writer.start()
            time.sleep(random.uniform(0.5, 1.5))
            server.crash()
            writer.join(30)
            again, _ = start(ours, Path(directory), *POLICIES[policy])
            lost_total += writer.lost(again.port)
            again.stop()
            acknowledged_total += writer.acknowledged
    return acknowledged_total, lost_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys for start-up and BGSAVE (default: 1M)")
    parser.add_argument("--requests", type=int, default=50_000, help="SETs per write test at -P 1 (x16 at -P 16)")
    parser.add_argument("--rounds", type=int, default=5, help="kill -9 rounds per policy (default: %(default)s)")
    options = parser.parse_args()
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        sys.exit("redis-server and redis-benchmark are needed (Debian: apt-get install redis-server redis-tools)")
    console = wide_console(110)
    servers = {"chapter 16": True, "Redis": False}

    table = Table(title="SET requests per second (redis-benchmark, 50 clients, -r 100,000)")
    table.add_column("server")
    for policy in POLICIES:
        for pipeline in (1, 16):
            table.add_column(f"AOF {policy}, -P {pipeline}", justify="right")
    for name, ours in servers.items():
        console.print(f"[dim]{name}: writes ...[/dim]")
        cells = []
        for policy in POLICIES:
            cells += [f"{rps:,.0f}" for rps in writes(ours, policy, options.requests)]
        table.add_row(name, *cells)
    console.print(table)

    table = Table(title=f"{options.keys:,} keys: start-up, and BGSAVE")
    for column in ("server", "start from RDB", "start from AOF", "fork()", "longest PING during BGSAVE",
                   "copied on write (child)", "parent RSS", "BGSAVE took"):  # fmt: skip
        table.add_column(column, justify="right")
    for name, ours in servers.items():
        console.print(f"[dim]{name}: start-up and BGSAVE with {options.keys:,} keys ...[/dim]")
        times = start_up(ours, options.keys)
        stall = bgsave_stall(ours, options.keys)
        table.add_row(name, f"{times['rdb']:.2f} s", f"{times['aof']:.2f} s", f"{stall['fork_ms']:.1f} ms",
                      f"{stall['worst_ping_ms']:.1f} ms", f"{stall['cow'] / 2**20:.0f} MB",
                      f"{stall['rss'] / 2**20:.0f} MB", f"{stall['seconds']:.0f} s")  # fmt: skip
    console.print(table)

    table = Table(title=f"kill -9 during writes, {options.rounds} rounds per policy")
    for column in ("server", "policy", "acknowledged", "lost"):
        table.add_column(column, justify="right")
    for name, ours in servers.items():
        for policy in ("always", "everysec"):
            console.print(f"[dim]{name}: kill -9 with appendfsync {policy} ...[/dim]")
            acknowledged, lost = crashes(ours, policy, options.rounds)
            table.add_row(name, policy, f"{acknowledged:,}", f"{lost:,}")
    console.print(table)


if __name__ == "__main__":
    main()
