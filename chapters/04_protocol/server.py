"""Chapter 04: a request-response protocol over TCP.

TCP delivers a stream of bytes, not messages: one recv() may hold half a
request, or three of them. So the server needs a protocol that says where
each request ends. The book uses a 4-byte length prefix; we use RESP, Redis's
own protocol (see common/resp.py), so real clients work from here on:

    redis-cli PING
    redis-cli ECHO hello
    printf 'PING\\r\\nECHO hi\\r\\n' | nc 127.0.0.1 6379

The server is still blocking and serves one client at a time, but now a
client may send many requests on one connection, and may pipeline them:
every complete request in what was received is answered, and the replies
leave in one send.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.commands import unknown_command_message, wrong_arity_message  # noqa: E402
from common.net import create_listener, log, parse_options, serve  # noqa: E402
from common.resp import (  # noqa: E402
    ProtocolError,
    RequestParser,
    write_bulk,
    write_error,
    write_simple,
)

RECV_SIZE = 64 * 1024

# --- commands ------------------------------------------------------------------
# A command takes its arguments (the name excluded) and appends its reply to
# `out`, the connection's output buffer.

Command = Callable[[list[bytes], bytearray], None]


def ping(args: list[bytes], out: bytearray) -> None:
    if len(args) > 1:  # Redis checks PING's upper bound itself, as here
        write_error(out, wrong_arity_message(b"ping"))
    elif args:
        write_bulk(out, args[0])
    else:
        write_simple(out, "PONG")


def echo(args: list[bytes], out: bytearray) -> None:
    write_bulk(out, args[0])


# name -> (function, arity). Arity counts the name too, as in Redis: a
# positive arity is exact, a negative one is a minimum.
COMMANDS: dict[bytes, tuple[Command, int]] = {
    b"ping": (ping, -1),
    b"echo": (echo, 2),
}


def execute(request: list[bytes], out: bytearray) -> None:
    """Run one request and append its reply, or Redis's error for it."""
    name = request[0].lower()
    entry = COMMANDS.get(name)
    if entry is None:
        write_error(out, unknown_command_message(request))
        return
    function, arity = entry
    count = len(request)
    if (arity > 0 and count != arity) or (arity < 0 and count < -arity):
        write_error(out, wrong_arity_message(name))
        return
    function(request[1:], out)


# --- serving one client ----------------------------------------------------------


def serve_client(conn: socket.socket) -> None:
    """Answer requests on `conn` until the client disconnects."""
    parser = RequestParser()
    while True:
        data = conn.recv(RECV_SIZE)
        if not data:
            return  # the client closed its end
        parser.feed(data)
        out = bytearray()
        try:
            while (request := parser.next_request()) is not None:
                execute(request, out)
        except ProtocolError as error:
            # The stream can no longer be framed: answer and hang up.
            write_error(out, f"ERR {error}")
            conn.sendall(out)
            return
        # One send for every reply to what this recv() brought: pipelined
        # requests cost one system call, not one each.
        conn.sendall(out)


def main() -> None:
    options = parse_options("Chapter 04: RESP requests and replies, one client at a time")
    with create_listener(options.host, options.port) as listener:
        log.info("listening on %s:%d", options.host, options.port)

        def run() -> None:
            while True:
                conn, address = listener.accept()
                log.debug("connection from %s:%d", *address[:2])
                with conn:
                    try:
                        serve_client(conn)
                    except OSError as error:  # e.g. reset by the client
                        log.debug("connection error: %s", error)
                    except Exception:
                        # A bug in a command must cost this one connection, not the server.
                        log.exception("internal error while serving a client; closing the connection")

        serve(run)


if __name__ == "__main__":
    main()
