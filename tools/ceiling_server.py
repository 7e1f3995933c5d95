"""The yardstick for `make bench`: about the fastest plain Python allows.

Not a chapter, and not a Redis: a minimal RESP server on poll(), with the
design of chapter 06 (nonblocking sockets, one thread, a buffer per
connection) and a dict, answering only what redis-benchmark sends (PING,
SET, GET, CONFIG GET, and an empty array to anything else), with no
timers, TTLs, limits, statistics, error texts or edge cases, and it
parses all the requests of a read in one pass (`parse_all`). Every
chapter pays for more than this; `make bench` reports each chapter's
requests per second as a ratio to this server's in the same run.

    python tools/ceiling_server.py --port 6390
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import sys

RECV_SIZE = 256 * 1024
POLLIN, POLLOUT = select.POLLIN, select.POLLOUT


def parse_all(buffer: bytearray) -> tuple[list[list[bytes]], int]:
    """Every complete RESP multibulk request in `buffer`, and the bytes they
    took. The buffer is split at CRLF once, by one call in C, and requests are
    read off the lines, the payloads being the arguments (as chapter 04's
    parser does; this one assumes no CRLF inside an argument)."""
    lines = bytes(buffer).split(b"\r\n")
    requests = []
    index = 0
    while index < len(lines) - 1:
        last = index + 2 * int(lines[index][1:])
        if last >= len(lines) - 1:
            break  # incomplete
        requests.append(lines[index + 2 : last + 1 : 2])
        index = last + 1
    rest = lines[index:]  # what is left, with the CRLFs between its lines
    return requests, len(buffer) - sum(map(len, rest)) - 2 * (len(rest) - 1)


def serve(port: int) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=511)
    listener.setblocking(False)
    poller = select.poll()
    poller.register(listener, POLLIN)
    clients: dict[int, list] = {}  # fd -> [socket, input, output, events polled for]
    data: dict[bytes, bytes] = {}
    while True:
        for fd, events in poller.poll():
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    clients[sock.fileno()] = [sock, bytearray(), bytearray(), POLLIN]
                    poller.register(sock, POLLIN)
                continue
            client = clients[fd]
            sock, incoming, outgoing, polled = client
            if events & (POLLIN | select.POLLHUP | select.POLLERR):
                try:
                    chunk = sock.recv(RECV_SIZE)
                except OSError:
                    chunk = b""
                if not chunk:
                    poller.unregister(fd)
                    del clients[fd]
                    sock.close()
                    continue
                incoming += chunk
                requests, consumed = parse_all(incoming)
                for args in requests:
                    name = args[0].upper()
                    if name == b"GET":
                        value = data.get(args[1])
                        outgoing += b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)
                    elif name == b"SET":
                        data[args[1]] = args[2]
                        outgoing += b"+OK\r\n"
                    elif name == b"PING":
                        outgoing += b"+PONG\r\n"
                    else:
                        outgoing += b"*0\r\n"
                del incoming[:consumed]
            if outgoing:
                try:
                    sent = sock.send(outgoing)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    outgoing.clear()
                    sent = 0
                del outgoing[:sent]
            wanted = POLLIN | POLLOUT if outgoing else POLLIN
            if wanted != polled:  # a modify() makes the next poll() rebuild its array
                poller.modify(fd, wanted)
                client[3] = wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=6390)
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve(options.port)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
