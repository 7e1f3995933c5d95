"""Chapter 03: a TCP server that answers "world" to whoever says hello.

The smallest possible server, as in the book: accept a connection, read
one message, write one reply, close, and go back to accept(). It serves one
client at a time and does not know where a message ends (it just takes
whatever one recv() returns); the next chapter fixes the latter with a
protocol, and chapters 05 and 06 the former.

Run it, then `python chapters/03_hello/client.py` or `nc 127.0.0.1 6379`.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.net import create_listener, log, parse_options, serve  # noqa: E402

MAX_MESSAGE = 64 * 1024


def handle(conn: socket.socket) -> None:
    """Read one message and answer it."""
    message = conn.recv(MAX_MESSAGE)
    if not message:  # the client connected and closed without a word
        return
    log.info("client says: %s", message.decode(errors="replace").strip())
    conn.sendall(b"world")


def main() -> None:
    options = parse_options("Chapter 03: hello/world over TCP")
    with create_listener(options.host, options.port) as listener:
        log.info("listening on %s:%d", options.host, options.port)

        def run() -> None:
            while True:
                conn, address = listener.accept()
                with conn:
                    log.debug("connection from %s:%d", *address[:2])
                    try:
                        handle(conn)
                    except OSError as error:  # e.g. the client reset: serve the next one
                        log.info("connection error: %s", error)

        serve(run)


if __name__ == "__main__":
    main()
