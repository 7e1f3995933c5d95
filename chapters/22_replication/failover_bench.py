"""Failover by real Redis Sentinel: kill -9 the master under a write load.

Three redis-sentinel processes watch a master and its two replicas
(down-after-milliseconds 1000, quorum 2). A writer, through redis-py's
Sentinel client, SETs w:0, w:1, ... in pipelines of 50 and counts the
writes acknowledged. The master is killed (SIGKILL); the sentinels agree it is
down, elect a leader, which promotes a replica (REPLICAOF NO ONE) and
points the other at it; the client asks the sentinels for the new master
and writes on. The old master, restarted empty, is turned into a replica.

Measured: the failover time (the kill to the first write acknowledged by
the new master) and the acknowledged writes lost: a write acknowledged by
the master but not yet copied when it died is gone, as replication is
asynchronous; with WAIT 1 before a write counts as acknowledged, none is.

    python chapters/22_replication/failover_bench.py            # ours and real Redis, both ways
    python chapters/22_replication/failover_bench.py --rounds 3

tests/test_sentinel.py runs the same scenario on the chapter under test.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.sentinel import Sentinel

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import ServerProcess, require_tool, server_command  # noqa: E402

MASTER_NAME = "mymaster"
DOWN_AFTER_MS = 1000
WRITES_BEFORE_KILL = 5000
WRITES_AFTER_FAILOVER = 5000
BATCH = 50  # SETs per pipeline: acknowledged together when all replied OK
TIMEOUT = 60.0  # seconds for any one step

# (port or None, directory, extra arguments) -> a started server
StartServer = Callable[..., ServerProcess]


@dataclass
class FailoverResult:
    failover_seconds: float  # the kill to the first write the new master acknowledged
    acknowledged: int
    lost: int  # acknowledged, and not on the new master
    promoted_port: int


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except redis.RedisError:
            pass  # not up yet, or mid-change
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def replication(port: int) -> dict:
    with redis.Redis(port=port, socket_timeout=2) as client:
        return client.info("replication")


def follows(port: int, master_port: int) -> bool:
    fields = replication(port)
    return fields["role"] == "slave" and fields["master_port"] == master_port and fields["master_link_status"] == "up"


def start_sentinels(directory: Path, master_port: int) -> list[ServerProcess]:
    sentinels = []
    for number in range(3):
        config = directory / f"sentinel-{number}.conf"  # Sentinel rewrites its file with what it learns
        config.write_text(f"bind 127.0.0.1\ndir {directory}\n"
                          f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
                          f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                          f"sentinel failover-timeout {MASTER_NAME} 10000\n")  # fmt: skip
        sentinels.append(ServerProcess([require_tool("redis-sentinel"), str(config)], own_server=False))
    return sentinels


def sentinels_know_everyone(sentinels: list[ServerProcess]) -> bool:
    """Each sentinel has found both replicas (from the master's INFO) and
    the two other sentinels (from the hello channel)."""
    for sentinel in sentinels:
        with redis.Redis(port=sentinel.port, socket_timeout=2) as client:
            if len(client.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)) != 2:
                return False
            if len(client.execute_command("SENTINEL", "SENTINELS", MASTER_NAME)) != 2:
                return False
    return True


class Writer(threading.Thread):
    """SETs w:0, w:1, ... through the Sentinel client, BATCH at a time,
    retrying a batch that failed; with `use_wait`, a batch counts only once
    WAIT 1 says a replica has it."""

    def __init__(self, sentinel_ports: list[int], use_wait: bool) -> None:
        super().__init__(daemon=True)
        self.sentinel = Sentinel([("127.0.0.1", port) for port in sentinel_ports], socket_timeout=0.5)
        self.use_wait = use_wait
        self.acknowledged = 0  # w:0 .. w:<acknowledged - 1>
        self.killed_at: float | None = None
        self.first_after_kill: float | None = None
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            master = self.sentinel.master_for(MASTER_NAME, socket_timeout=0.5, socket_connect_timeout=0.5)
            while not self.stop.is_set():
                pipe = master.pipeline(transaction=False)  # one connection: WAIT waits for these SETs
                for n in range(self.acknowledged, self.acknowledged + BATCH):
                    pipe.set(f"w:{n}", n)
                if self.use_wait:
                    pipe.wait(1, 1000)
                started = time.monotonic()
                try:
                    replies = pipe.execute()
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    time.sleep(0.02)  # not acknowledged: the same write again
                    continue
                if self.use_wait and replies[-1] < 1:
                    continue
                self.acknowledged += BATCH
                # Sent after the kill: only a new master can have acknowledged it.
                if self.killed_at is not None and started > self.killed_at and self.first_after_kill is None:
                    self.first_after_kill = time.monotonic()
        except BaseException as error:  # reported by the main thread
            self.error = error


def run_failover(start: StartServer, directory: Path, use_wait: bool) -> FailoverResult:
    """The whole scenario, on servers made by `start(port, directory, *args)`."""
    directories = [directory / name for name in ("m", "r1", "r2", "sentinels")]
    for path in directories:
        path.mkdir()
    master = start(None, directories[0])
    replicas = [start(None, path, "--replicaof", "127.0.0.1", str(master.port)) for path in directories[1:3]]
    servers = [master, *replicas]
    sentinels: list[ServerProcess] = []
    writer: Writer | None = None
    try:
        wait_for(lambda: all(follows(r.port, master.port) for r in replicas), "the replicas' first copies")
        sentinels = start_sentinels(directories[3], master.port)
        wait_for(lambda: sentinels_know_everyone(sentinels), "the sentinels to find everyone")
        writer = Writer([s.port for s in sentinels], use_wait)
        writer.start()
        wait_for(lambda: writer.acknowledged >= WRITES_BEFORE_KILL or writer.error is not None, "the first writes")
        writer.killed_at = time.monotonic()
        master.crash()  # kill -9
        wait_for(lambda: writer.first_after_kill is not None or writer.error is not None, "a write after the failover")
        assert writer.error is None, writer.error
        failover_seconds = writer.first_after_kill - writer.killed_at
        target = writer.acknowledged + WRITES_AFTER_FAILOVER
        wait_for(lambda: writer.acknowledged >= target or writer.error is not None, "writes on the new master")
        writer.stop.set()
        writer.join(5)
        assert writer.error is None, writer.error
        with redis.Redis(port=sentinels[0].port, socket_timeout=2) as client:
            promoted_port = int(client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)[1])
        promoted, other = (replicas if replicas[0].port == promoted_port else replicas[::-1])
        assert replication(promoted.port)["role"] == "master"
        wait_for(lambda: follows(other.port, promoted_port), "the other replica to follow the new master")
        # The old master back, empty, on its port: Sentinel makes it a replica of the new one.
        restarted = start(master.port, directories[0])
        servers.append(restarted)
        wait_for(lambda: follows(restarted.port, promoted_port), "the old master to come back as a replica")
        with redis.Redis(port=promoted_port, socket_timeout=5) as client:
            pipe = client.pipeline(transaction=False)
            for n in range(writer.acknowledged):
                pipe.exists(f"w:{n}")
            lost = writer.acknowledged - sum(pipe.execute())
        return FailoverResult(failover_seconds, writer.acknowledged, lost, promoted_port)
    finally:
        if writer is not None:
            writer.stop.set()
        for process in sentinels + servers:
            if process.process.poll() is None:
                process.stop()


def ours(chapter_server: Path) -> StartServer:
    def start(port: int | None, directory: Path, *args: str) -> ServerProcess:
        return ServerProcess(server_command(chapter_server), ("--dir", str(directory), "--save", "", *args), port=port)
    return start


def real_redis(port: int | None, directory: Path, *args: str) -> ServerProcess:
    return ServerProcess([shutil.which("redis-server"), "--dir", str(directory), "--save", "", *args],
                         own_server=False, port=port)  # fmt: skip


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()
    table = Table(title="kill -9 the master: Sentinel's failover under writes (3 sentinels, down-after 1000 ms)")
    for column in ("servers", "writes", "failover (s)", "acknowledged", "lost"):
        table.add_column(column)
    kinds = {"chapter 22": ours(ROOT / "chapters/22_replication/server.py"), "real Redis 7.0": real_redis}
    for name, start in kinds.items():
        for use_wait in (False, True):
            for _ in range(options.rounds):
                with tempfile.TemporaryDirectory() as directory:
                    result = run_failover(start, Path(directory), use_wait)
                table.add_row(name, "SET, WAIT 1" if use_wait else "SET", f"{result.failover_seconds:.2f}",
                              str(result.acknowledged), str(result.lost))  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
