"""My Redis server, written along "Build Your Own Redis" (build-your-own.org/redis).

It starts where the book's chapter 3 ends: accept a connection, read one
message, answer "world", close. It passes `make test-chapter 3`. Grow it
chapter by chapter, checking each step against the repository's tests:

    make test-chapter 4 SERVER='python /path/to/server.py --port {port}'
    make progress SERVER='python /path/to/server.py --port {port}'

Next, chapter 4 (chapters/04_protocol/README.md): a protocol, so that the
server knows where a request ends and can serve many on one connection.
Use only the standard library; the lesson is to build it.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys


def handle(conn: socket.socket) -> None:
    """Chapter 3: one message in, one reply out."""
    message = conn.recv(64 * 1024)
    if message:  # an empty read: the client connected and left without a word
        conn.sendall(b"world")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    options = parser.parse_args()
    # The tests stop a server with SIGTERM: exit quietly, as Redis does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    # socket(), setsockopt(), bind(), listen(): the book's chapter 3, one call each.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart without waiting out TIME_WAIT
    listener.bind((options.host, options.port))
    listener.listen(128)
    print(f"listening on {options.host}:{options.port}", flush=True)
    while True:
        conn, _address = listener.accept()  # one client at a time (chapters 5 and 6 fix that)
        with conn:
            try:
                handle(conn)
            except OSError as error:  # the client reset: serve the next one
                print(f"connection error: {error}", flush=True)


if __name__ == "__main__":
    main()
