"""Threads against an event loop, measured: chapter 05's thread-per-connection
server side by side with chapter 06's event loop, in one run.

    .venv/bin/python chapters/05_concurrency/measure.py [--idle 1000]

For each server:
- memory per connection: the server's resident memory after --idle
  connections have each sent a PING and got PONG, minus before, divided
  by their number; and how many threads the process then has;
- latency: with those connections still open, 10 clients on threads of
  this script send 1000 PINGs each, one at a time; the round trips'
  median, 99th percentile and maximum;
- churn: connections per second for connect, PING, read, close, one after
  another (the thread server starts a thread for each).

Linux only (it reads /proc). Figures are from one run on one machine:
compare the two columns with each other, not with other runs.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from tests.support import ServerProcess, discover_chapters, server_command  # noqa: E402
from tools.report import comparison_table, wide_console  # noqa: E402

PING = b"*1\r\n$4\r\nPING\r\n"
ACTIVE_CLIENTS = 10
PINGS_PER_CLIENT = 1000
CHURN_CONNECTIONS = 2000


def process_status(pid: int, field: str) -> int:
    """A number from /proc/PID/status, e.g. VmRSS (in kB) or Threads."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def ping(sock: socket.socket) -> None:
    sock.sendall(PING)
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(64)
        if not chunk:
            raise ConnectionError("server closed the connection")
        reply += chunk


def open_idle_connections(port: int, count: int) -> list[socket.socket]:
    connections = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        ping(sock)
        connections.append(sock)
    return connections


def active_latencies(port: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        mine = []
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(PINGS_PER_CLIENT):
                started = time.perf_counter()
                ping(sock)
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(ACTIVE_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(latencies)


def churn_rate(port: int) -> float:
    started = time.perf_counter()
    for _ in range(CHURN_CONNECTIONS):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            ping(sock)
    return CHURN_CONNECTIONS / (time.perf_counter() - started)


def measure(server_path: Path, idle: int) -> dict[str, float]:
    server = ServerProcess(server_command(server_path))
    pid = server.process.pid
    try:
        rss_before = process_status(pid, "VmRSS")
        connections = open_idle_connections(server.port, idle)
        time.sleep(0.2)  # let the last threads settle
        rss_after = process_status(pid, "VmRSS")
        threads = process_status(pid, "Threads")
        latencies = active_latencies(server.port)
        for sock in connections:
            sock.close()
        rate = churn_rate(server.port)
    finally:
        server.stop()
    return {
        "memory": (rss_after - rss_before) / idle,
        "threads": threads,
        "p50": statistics.median(latencies) * 1e3,
        "p99": latencies[int(len(latencies) * 0.99)] * 1e3,
        "max": latencies[-1] * 1e3,
        "churn": rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=1000, help="idle connections to hold open")
    options = parser.parse_args()
    chapters = discover_chapters()
    servers = {"chapter 05: a thread per connection": chapters[5], "chapter 06: event loop": chapters[6]}
    console = wide_console()
    results = {}
    for name, path in servers.items():
        console.print(f"measuring {name} ...")
        results[name] = measure(path, options.idle)
    title = f"{options.idle:,} idle connections, {ACTIVE_CLIENTS} active clients"
    rows = [
        ("memory per idle connection", "memory", "{:.1f} kB"),
        ("threads in the server", "threads", "{:,.0f}"),
        ("PING round trip, median", "p50", "{:.3f} ms"),
        ("PING round trip, p99", "p99", "{:.3f} ms"),
        ("PING round trip, max", "max", "{:.2f} ms"),
        ("connect + PING + close", "churn", "{:,.0f} /s"),
    ]
    console.print(comparison_table(title, results, rows))


if __name__ == "__main__":
    main()
