"""C10k: ten thousand connections, a few of them busy. poll() (chapter 14)
against epoll (chapter 15) against real Redis, in one run.

For each server, started fresh with room for the connections:

1. busy only: --busy clients (redis-benchmark, PING, no pipelining, so
   every request costs a loop iteration) with nobody else connected;
2. the connect storm: --connections minus --busy clients connect at once,
   each sends PING as soon as it is connected; the time until every one has
   had its PONG. They then stay connected, idle;
3. busy among idle: the same busy load again, now among the idle clients.

Reported: requests per second of the busy clients, server CPU per request,
server CPU per event-loop iteration (INFO's eventloop_cycles; Redis 7.0
does not count them), RSS per idle connection, and the storm's duration.

    make demo-chapter 15           # .venv/bin/python chapters/15_epoll/c10k_bench.py
    .venv/bin/python chapters/15_epoll/c10k_bench.py --connections 5000 --requests 5000

Figures are from one run on whatever machine you have: compare the rows
with each other, not with other runs.
"""

from __future__ import annotations

import argparse
import errno
import selectors
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis  # noqa: E402
from rich.table import Table  # noqa: E402

from common.net import raise_open_files_limit  # noqa: E402
from tests.support import CHAPTERS_DIR, ServerProcess, server_command  # noqa: E402
from tools.bench import run_benchmark  # noqa: E402
from tools.report import wide_console  # noqa: E402

STORM_TIMEOUT = 180.0  # seconds for every client of the storm to get its PONG
SPARE_FDS = 64  # descriptors this process needs besides the clients


@dataclass
class Load:
    """One busy-client run: what redis-benchmark saw and what the server spent."""

    rps: float
    cpu_per_request_us: float
    cpu_per_cycle_us: float | None


def server_stats(port: int) -> tuple[float, int | None, int]:
    """(CPU seconds used, event-loop iterations or None, RSS bytes) from INFO."""
    with redis.Redis(port=port, protocol=2) as client:
        info = client.info("all")
    cycles = info.get("eventloop_cycles")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"]), cycles, int(info["used_memory_rss"])


def busy_load(port: int, busy: int, requests: int) -> Load:
    """redis-benchmark's PING from `busy` clients, and the server's CPU spent meanwhile."""
    cpu_before, cycles_before, _ = server_stats(port)
    rps = float(run_benchmark(port, "ping_mbulk", busy, 1, requests)[0][1])
    cpu_after, cycles_after, _ = server_stats(port)
    cpu = cpu_after - cpu_before
    per_cycle = None
    if cycles_before is not None and cycles_after is not None and cycles_after > cycles_before:
        per_cycle = cpu / (cycles_after - cycles_before) * 1e6
    return Load(rps, cpu / requests * 1e6, per_cycle)


def connect_storm(port: int, count: int) -> tuple[float, list[socket.socket]]:
    """`count` clients connect at once and each sends PING when connected.
    Returns the seconds until all have their PONG, and the open sockets."""
    selector = selectors.EpollSelector()  # this client would need epoll too
    replies: dict[socket.socket, bytes] = {}
    started = time.perf_counter()
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", port))
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, f"connect: {errno.errorcode.get(code, code)}")
        selector.register(sock, selectors.EVENT_WRITE)
    waiting = count
    deadline = started + STORM_TIMEOUT
    while waiting:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{waiting} of {count} clients had no PONG after {STORM_TIMEOUT} s")
        for key, events in selector.select(timeout=1.0):
            sock = key.fileobj
            if events & selectors.EVENT_WRITE:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise OSError(error, f"connect: {errno.errorcode.get(error, error)}")
                sock.send(b"PING\r\n")
                selector.modify(sock, selectors.EVENT_READ)
                replies[sock] = b""
            else:
                replies[sock] += sock.recv(64)
                if replies[sock].endswith(b"\r\n"):
                    if replies[sock] != b"+PONG\r\n":
                        raise RuntimeError(f"unexpected reply {replies[sock]!r}")
                    selector.unregister(sock)
                    waiting -= 1
    elapsed = time.perf_counter() - started
    selector.close()
    return elapsed, list(replies)


def measure(name: str, command: list[str], connections: int, busy: int, requests: int) -> dict[str, object]:
    idle = connections - busy
    server = ServerProcess(command, ("--maxclients", str(connections + 100)), own_server=name != "Redis")
    sockets: list[socket.socket] = []
    try:
        alone = busy_load(server.port, busy, requests)
        _, _, rss_before = server_stats(server.port)
        storm_seconds, sockets = connect_storm(server.port, idle)
        _, _, rss_after = server_stats(server.port)
        among_idle = busy_load(server.port, busy, requests)
    finally:
        for sock in sockets:
            sock.close()
        server.stop()
    return {
        "alone": alone,
        "among_idle": among_idle,
        "rss_per_idle": (rss_after - rss_before) / idle,
        "storm": storm_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--connections", type=int, default=10_000, help="open connections in all (default: %(default)s)"
    )
    parser.add_argument("--busy", type=int, default=50, help="of which busy (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=20_000, help="PINGs per busy run (default: %(default)s)")
    options = parser.parse_args()
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install redis-server redis-tools)")
    allowed = raise_open_files_limit(options.connections + SPARE_FDS) - SPARE_FDS
    if allowed < options.connections:
        print(f"the open-files hard limit allows {allowed} connections, not {options.connections}: using {allowed}")
        options.connections = allowed
    servers = {
        "chapter 14 (poll)": server_command(next(CHAPTERS_DIR.glob("14_*/server.py"))),
        "chapter 15 (epoll)": server_command(Path(__file__).resolve().parent / "server.py"),
        "Redis": [shutil.which("redis-server") or "redis-server", "--save", "", "--appendonly", "no"],
    }
    console = wide_console(140)
    results = {}
    for name, command in servers.items():
        console.print(f"[dim]{name} ...[/dim]")
        results[name] = measure(name, command, options.connections, options.busy, options.requests)
    idle = options.connections - options.busy
    table = Table(title=f"{options.busy} busy clients (PING, redis-benchmark), alone and among {idle:,} idle ones")
    for heading in ("server", "clients", "requests/s", "CPU µs/request", "CPU µs/loop iteration",
                    "RSS/idle client", f"storm: {idle:,} PONGs"):  # fmt: skip
        table.add_column(heading, justify="left" if heading in ("server", "clients") else "right", no_wrap=True)
    for name, result in results.items():
        for label, load in (("busy only", result["alone"]), (f"+{idle:,} idle", result["among_idle"])):
            first = label == "busy only"
            table.add_row(
                name if first else "", label, f"{load.rps:,.0f}", f"{load.cpu_per_request_us:.1f}",
                "n/a" if load.cpu_per_cycle_us is None else f"{load.cpu_per_cycle_us:.1f}",
                "" if first else f"{result['rss_per_idle'] / 1024:.1f} KB",
                "" if first else f"{result['storm']:.2f} s",
            )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
