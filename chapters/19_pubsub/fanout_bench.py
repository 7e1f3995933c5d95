"""Fan-out: one publisher, many subscribers, measured in one run.

--subscribers connections (a tenth of them by pattern, PSUBSCRIBE fan*,
the rest SUBSCRIBE fanout), then --messages PUBLISH fanout, pipelined by
one publisher. Every subscriber must receive every message, in order,
byte for byte; the figure is deliveries (subscribers x messages) per
second, from the first PUBLISH sent to the last delivery read, for
chapter 19 and for real Redis.

    make demo-chapter 19            # .venv/bin/python chapters/19_pubsub/fanout_bench.py
    .venv/bin/python chapters/19_pubsub/fanout_bench.py --subscribers 2000 --messages 500

The subscribers are read by one thread of this process: against Redis it
is the reader, not the server, that sets the pace. Compare the rows of
one run with each other, not with other runs.
"""

from __future__ import annotations

import argparse
import resource
import selectors
import shutil
import socket
import sys
import time
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rich.table import Table  # noqa: E402

from common.resp import encode_command  # noqa: E402
from tests.support import ServerProcess, server_command  # noqa: E402
from tools.report import wide_console  # noqa: E402

SERVER = Path(__file__).resolve().parent / "server.py"
CHANNEL, PATTERN = b"fanout", b"fan*"


def expected_stream(by_pattern: bool, payloads: list[bytes]) -> bytes:
    """The exact bytes a subscriber must receive (RESP2)."""
    def bulk(data: bytes) -> bytes:
        return b"$%d\r\n%s\r\n" % (len(data), data)

    head = b"*4\r\n" + bulk(b"pmessage") + bulk(PATTERN) if by_pattern else b"*3\r\n" + bulk(b"message")
    return b"".join(head + bulk(CHANNEL) + bulk(payload) for payload in payloads)


def subscribe(port: int, by_pattern: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    command = (b"PSUBSCRIBE", PATTERN) if by_pattern else (b"SUBSCRIBE", CHANNEL)
    sock.sendall(encode_command(*command))
    confirmation = b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n:1\r\n" % (len(command[0]), command[0].lower(), len(command[1]),
                                                              command[1])  # fmt: skip
    received = b""
    while len(received) < len(confirmation):
        received += sock.recv(len(confirmation) - len(received))
    assert received == confirmation, received
    sock.setblocking(False)
    return sock


def fan_out(port: int, subscribers: int, messages: int) -> float:
    """Deliveries per second; raises if any subscriber missed or reordered anything."""
    sockets = [subscribe(port, by_pattern=n % 10 == 0) for n in range(subscribers)]
    payloads = [b"message %06d" % n for n in range(messages)]
    expected = {True: expected_stream(True, payloads), False: expected_stream(False, payloads)}
    wanted = {sock: expected[n % 10 == 0] for n, sock in enumerate(sockets)}
    received = {sock: bytearray() for sock in sockets}
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    publisher = socket.create_connection(("127.0.0.1", port))
    started = time.perf_counter()
    publisher.sendall(b"".join(encode_command(b"PUBLISH", CHANNEL, payload) for payload in payloads))
    pending = len(sockets)
    while pending:
        for key, _ in selector.select(timeout=30):
            sock = key.fileobj
            data = sock.recv(1 << 20)
            if not data:
                raise RuntimeError("a subscriber was disconnected")
            buffer = received[sock]
            buffer += data
            if len(buffer) >= len(wanted[sock]):
                selector.unregister(sock)
                pending -= 1
    elapsed = time.perf_counter() - started
    replies = b""
    while replies.count(b"\r\n") < messages:
        replies += publisher.recv(1 << 20)
    assert replies == b":%d\r\n" % subscribers * messages, "PUBLISH did not count every subscriber"
    for sock in sockets:
        if received[sock] != wanted[sock]:
            raise RuntimeError("a subscriber received something else than every message in order")
        sock.close()
    publisher.close()
    return subscribers * messages / elapsed


def measure(ours: bool, subscribers: int, messages: int) -> list[str]:
    command = server_command(SERVER) if ours else [shutil.which("redis-server") or "redis-server"]
    server = ServerProcess(command, ("--save", "", "--appendonly", "no", "--maxclients", str(subscribers + 100)),
                           own_server=ours)  # fmt: skip
    try:
        rate = fan_out(server.port, subscribers, messages)
    finally:
        server.stop()
    return ["chapter 19" if ours else "Redis", f"{subscribers * messages:,}", f"{rate:,.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1000)
    options = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, options.subscribers + 200)), hard))
    rows = [measure(ours, options.subscribers, options.messages) for ours in (True, False)]
    table = Table(title=f"1 publisher, {options.subscribers:,} subscribers (a tenth by pattern), "
                        f"{options.messages:,} messages: every delivery checked, one run")  # fmt: skip
    for column in ("server", "deliveries", "deliveries/s"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for row in rows:
        table.add_row(*row)
    wide_console().print(table)
    ratio = float(rows[0][2].replace(",", "")) / float(rows[1][2].replace(",", ""))
    print(f"chapter 19 delivers at {ratio:.2f} of Redis's rate")


if __name__ == "__main__":
    main()
